"""Saved sessions: what a run was asked to do and what happened, in one TOML or JSON file.

One schema for both formats (the extension decides). A session holds the profile as written
(``${ENV}`` references kept, literal secrets redacted), the overrides and effective load,
the control log, the ``--json`` results, and the encoded HDR histograms so percentiles can be
recomputed or merged later. ``load_session`` validates everything it reads: a bad file is one
``InputError`` line naming the file and the field, never a traceback.

Format versions: 1 is the first. 2 adds the generator's whole-run figures (``saturated_seconds``
and the peaks) and, for a run with a metrics URL, ``results.target_metrics``; a format 2 file
without them means "none", a format 1 file "not recorded". 3 leaves out the latencies nothing
was measured for (an endpoint nothing answered, a second without an answer): no data, where
1 and 2 wrote 0.0, which reads back as no data too. All three are read; only 3 is written.
``host.noise`` (what other processes took of the machine during the run) is optional:
a run started from the command line records it, others may not. Also optional:
``results.endpoint_timeline`` (each endpoint's per-second figures) and each threshold's
``breached_for``/``failed_at``; a file without them reads as "none".
"""

from __future__ import annotations

import copy
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import tomli_w

from stressdeck import __version__
from stressdeck.core.errors import InputError
from stressdeck.core.fields import MAX_SECONDS, Reader
from stressdeck.core.files import WriteError, write_atomic
from stressdeck.core.redact import redact_document, redact_url, redact_urls
from stressdeck.engine.hdr import Counts, HistogramError, decode_histogram, log_buckets, summarise
from stressdeck.engine.hostload import HostNoise
from stressdeck.engine.limit import LimitResult
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import CEILING_RATE, CEILING_USERS, Plan
from stressdeck.engine.results import Results
from stressdeck.engine.snapshot import STOPPED, Control, ControlEvent, Percentiles, Snapshot
from stressdeck.profiles.presets import Stage
from stressdeck.profiles.profile import SUFFIXES, read_document

FORMAT_VERSION = 3
# A run's tick: a second or less live (DEFAULT_TICK is 0.25 s); a minute is past any plan.
MAX_TICK = 60.0


@dataclass(frozen=True)
class Host:
    """The machine that generated the load: figures from a laptop and a CI box differ."""

    cores: int
    ram_bytes: int
    os: str
    python: str
    noise: HostNoise | None = None  # what other processes took during the run; None: unknown


@dataclass(frozen=True)
class LoadSettings:
    """The load the run started with, after the overrides (``None``: not set)."""

    model: str
    users: int
    rate: float | None = None
    max_in_flight: int | None = None
    connections: int | None = None
    duration: float | None = None
    requests: int | None = None
    preset: str | None = None
    stages: tuple[Stage, ...] = ()
    max_duration: float = 600.0
    tick: float = 0.25


@dataclass(frozen=True)
class SavedPlan:
    name: str
    source: str  # the profile file the run was started from
    target: str
    document: Mapping[str, Any]  # the profile as written; literal secrets "<redacted>"
    overrides: Overrides  # what the command line or the console changed of the profile
    load: LoadSettings


@dataclass(frozen=True)
class Session:
    format_version: int
    stressdeck_version: str
    created: str  # UTC, ISO 8601
    host: Host
    plan: SavedPlan
    results: Results
    histograms: Mapping[str, str]  # "total/latency", "<endpoint>/ttfb" ... -> base64 HDR
    replay_of: str | None = None
    limit: LimitResult | None = None  # a find-limit run's search: its steps and its answer

    @property
    def control_log(self) -> tuple[ControlEvent, ...]:
        return self.results.control_log


# -- building ------------------------------------------------------------------------------


def host_info() -> Host:
    try:
        ram = int(psutil.virtual_memory().total)
    except (psutil.Error, OSError):
        ram = 0
    return Host(
        cores=os.cpu_count() or 0,
        ram_bytes=ram,
        os=platform.platform(),
        python=platform.python_version(),
    )


def build_session(
    plan: Plan,
    snapshot: Snapshot,
    *,
    keep_secrets: bool = False,
    replay_of: str | None = None,
    created: datetime | None = None,
    limit: LimitResult | None = None,
) -> Session:
    """The session of a run, exactly as ``load_session`` will read it back."""
    document = copy.deepcopy(dict(plan.document))
    overrides = plan.overrides.to_dict()
    results = Results.from_snapshot(snapshot, plan.name).to_dict()  # metrics URL redacted
    if not keep_secrets:
        document = redact_document(document)
        redact_urls(overrides)
    load = plan.load
    settings = LoadSettings(
        model=load.model,
        users=load.users,
        rate=load.rate,
        max_in_flight=load.max_in_flight,
        connections=load.connections,
        duration=load.duration,
        requests=load.requests,
        preset=load.preset,
        stages=tuple(load.stages),
        max_duration=plan.max_duration,
        tick=plan.tick,
    )
    when = created or datetime.now(UTC)
    raw = {
        "format_version": FORMAT_VERSION,
        "stressdeck_version": __version__,
        "created": when.astimezone(UTC).isoformat(timespec="seconds"),
        "host": _host_dict(replace(host_info(), noise=snapshot.host_noise)),
        "plan": {
            "name": plan.name,
            "source": plan.source,
            "target": plan.target,
            "overrides": overrides,
            "load": _load_dict(settings),
        },
        "results": results,
        "limit": _redacted_limit(limit, keep_secrets),
        "histograms": dict(snapshot.histograms),
        "replay_of": replay_of,
    }
    raw = _drop_none(raw)
    raw["plan"]["profile"] = document  # verbatim: a JSON profile's null is meaningful
    # Parsing what we are about to write guarantees that save then load gives an equal Session.
    return session_from_document(raw, "<session>")


# -- rebuilding a snapshot ----------------------------------------------------------------


def snapshot_from_session(session: Session) -> Snapshot:
    """The final snapshot of a saved run, so a screen can show it as it shows a finished one.

    Figures are as saved (rounded as in the file, so the console and a report agree);
    percentiles the file does not hold were filled from its HDR histograms when it was read.
    Live-only figures (in flight, the last tick's rate, the recent buckets) are zero or
    empty: the run is over.
    """
    results = session.results
    last = results.timeline[-1] if results.timeline else None
    load = session.plan.load
    total_latency = session.histograms.get("total/latency")
    return Snapshot(
        elapsed=results.elapsed,
        state=STOPPED,
        model=results.model,
        target=results.target,
        users=last.users if last is not None else load.users,
        active_users=0,
        rate=last.rate if last is not None else load.rate,
        in_flight=0,
        total=results.total,
        endpoints=results.endpoints,
        timeline=results.timeline,
        control_log=results.control_log,
        thresholds=results.thresholds,
        latency_buckets=log_buckets(decode_histogram(total_latency)) if total_latency else (),
        stop_reason=results.stop_reason,
        health=results.generator,
        histograms=dict(session.histograms),
        target_metrics=results.target_metrics,
        nodes=results.nodes,
        endpoint_timeline=results.endpoint_timeline,
        host_noise=session.host.noise,
    )


# -- writing -------------------------------------------------------------------------------


def session_to_document(session: Session) -> dict[str, Any]:
    """The file's content as plain data: None values are left out (TOML has no null)."""
    plan, results = session.plan, session.results
    document: dict[str, Any] = {
        "format_version": session.format_version,
        "stressdeck_version": session.stressdeck_version,
        "created": session.created,
        "replay_of": session.replay_of,
        "host": _host_dict(session.host),
        "plan": {
            "name": plan.name,
            "source": plan.source,
            "target": plan.target,
            "overrides": plan.overrides.to_dict(),
            "load": _load_dict(plan.load),
        },
        "results": results.to_dict(),
        "limit": session.limit.to_dict() if session.limit is not None else None,
        "histograms": dict(session.histograms),  # last, always: see _read_histograms
    }
    document = _drop_none(document)
    # The profile is kept verbatim; a JSON profile may hold null, which only JSON can write.
    document["plan"]["profile"] = copy.deepcopy(dict(plan.document))
    return document


def dumps_session(session: Session, suffix: str) -> str:
    """The session as TOML or JSON text (``suffix`` is ".toml" or ".json")."""
    document = session_to_document(session)
    if suffix == ".json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    profile = document["plan"].pop("profile")
    if _holds_none(profile):
        document["plan"]["profile_json"] = json.dumps(profile, ensure_ascii=False)
    else:
        document["plan"]["profile"] = profile
    return tomli_w.dumps(document)


def write_session(path: str | Path, session: Session, *, overwrite: bool = False) -> Path:
    """Write atomically; an existing file is kept unless ``overwrite``. Raises WriteError."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise WriteError(f"{target}: expected a .toml or .json file name")
    try:
        text = dumps_session(session, suffix)
    except (TypeError, ValueError) as exc:  # a value the format cannot hold
        raise WriteError(f"{target}: cannot encode the session ({exc})") from None
    return write_atomic(target, text, overwrite=overwrite)


def save_session(
    path: str | Path,
    plan: Plan,
    snapshot: Snapshot,
    *,
    overwrite: bool = False,
    keep_secrets: bool = False,
    replay_of: str | None = None,
    limit: LimitResult | None = None,
) -> Path:
    """Save a run (finished or partial) as a session; TOML or JSON by extension.

    Atomic; raises WriteError (one line naming the file) when it cannot write or when the
    file exists and ``overwrite`` is False.
    """
    try:
        session = build_session(
            plan, snapshot, keep_secrets=keep_secrets, replay_of=replay_of, limit=limit
        )
    except InputError as exc:
        # A value the schema refuses (say, a non-finite number): a bug, said in one line.
        raise WriteError(f"{path}: cannot save the session ({exc.line()})") from None
    return write_session(path, session, overwrite=overwrite)


# -- reading -------------------------------------------------------------------------------


def load_session(path: str | Path) -> Session:
    """Read and validate a session file; raises InputError (one line) on any problem."""
    source = str(path)
    document = read_document(source, "session")
    return session_from_document(document, source)


HISTOGRAM_KINDS = ("latency", "service", "ttfb")


def session_from_document(document: Mapping[str, Any], source: str) -> Session:
    r = Reader(source)
    version = document.get("format_version")
    if version is None:
        raise InputError(source, "format_version", "missing (is this a stressdeck session file?)")
    version = r.integer(document, "format_version", "")
    if version > FORMAT_VERSION:
        raise InputError(
            source,
            "format_version",
            f"version {version} is newer than this stressdeck reads ({FORMAT_VERSION}); "
            "upgrade stressdeck to read it",
        )
    if version < 1:  # 1 to 3 all read: what 2 added defaults to "not recorded"
        raise InputError(source, "format_version", f"expected 1 to {FORMAT_VERSION}, got {version}")
    host = r.table(document, "host", "")
    plan = r.table(document, "plan", "")
    histograms, decoded = _read_histograms(r, document)
    results = Results.from_dict(r, r.table(document, "results", ""), "results", _measured(decoded))
    _check_samples(r, decoded, results)
    _check_levels(r, results)
    return Session(
        format_version=version,
        stressdeck_version=r.string(document, "stressdeck_version", ""),
        created=r.string(document, "created", ""),
        host=Host(
            cores=r.integer(host, "cores", "host"),
            ram_bytes=r.integer(host, "ram_bytes", "host"),
            os=r.string(host, "os", "host"),
            python=r.string(host, "python", "host"),
            noise=_read_host_noise(r, host),
        ),
        plan=_read_plan(r, plan),
        results=results,
        histograms=histograms,
        replay_of=r.optional_string(document, "replay_of", ""),
        limit=_read_limit(r, document),
    )


def _read_limit(r: Reader, document: Mapping[str, Any]) -> LimitResult | None:
    table = r.table(document, "limit", "", required=False)
    return LimitResult.from_dict(r, table, "limit") if table else None


def _redacted_limit(limit: LimitResult | None, keep_secrets: bool) -> dict[str, Any] | None:
    if limit is None:
        return None
    document = limit.to_dict()
    if not keep_secrets:
        document["target"] = redact_url(document["target"])
    return document


def _read_histograms(
    r: Reader, document: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, Counts]]:
    """The encoded histograms and their counts, each checked before use: a key we write
    (``ENDPOINT/KIND``) and our own HDR layout, decoded in bounded time and memory (see
    ``decode_histogram``): a 52-byte histogram in another layout may claim gigabytes."""
    # Always written, and written last: a TOML file cut anywhere before it still parses, so
    # requiring it is what tells a truncated file from a complete one.
    histograms = r.string_map(document, "histograms", "", required=True)
    decoded: dict[str, Counts] = {}
    for name, text in histograms.items():
        where = f"histograms.{name}"
        owner, _, kind = name.rpartition("/")
        if not owner or kind not in HISTOGRAM_KINDS:
            raise r.fail(where, _UNKNOWN_HISTOGRAM)
        try:
            decoded[name] = decode_histogram(text)
        except HistogramError as exc:
            raise r.fail(where, str(exc)) from None
    return histograms, decoded


_UNKNOWN_HISTOGRAM = (
    "unknown histogram; expected ENDPOINT/KIND with an endpoint of the results (or total) "
    "and a kind of " + ", ".join(HISTOGRAM_KINDS)
)


def _check_samples(r: Reader, decoded: Mapping[str, Counts], results: Results) -> None:
    """Each histogram belongs to a counted endpoint and holds no more samples than its requests."""
    requests = {"total": results.total.requests}
    requests.update({ep.name: ep.requests for ep in results.endpoints})
    for name, counts in decoded.items():
        owner = name.rpartition("/")[0]
        if owner not in requests:
            raise r.fail(f"histograms.{name}", _UNKNOWN_HISTOGRAM)
        if counts.get_total_count() > requests[owner]:
            raise r.fail(
                f"histograms.{name}",
                f"holds {counts.get_total_count():,} samples, more than the "
                f"{requests[owner]:,} requests",
            )


def _check_levels(r: Reader, results: Results) -> None:
    """Users and rates no run can reach, even with --i-know (a 1e308 rate replayed would
    ask the workers for it): the ceilings a live run is held to, in the log and timeline."""
    for index, event in enumerate(results.control_log):
        where = f"results.control_log[{index}].value"
        if event.value is None:
            continue
        if event.command == Control.USERS:
            _at_most(r, where, event.value, CEILING_USERS, "users")
        elif event.command == Control.RATE:
            _at_most(r, where, event.value, CEILING_RATE, "requests/s")
        elif event.value > MAX_SECONDS:  # resume: how long the pause lasted
            _at_most(r, where, event.value, MAX_SECONDS, "seconds")
    for index, point in enumerate(results.timeline):
        where = f"results.timeline[{index}]"
        _at_most(r, f"{where}.users", point.users, CEILING_USERS, "users")
        if point.rate is not None:
            _at_most(r, f"{where}.rate", point.rate, CEILING_RATE, "requests/s")


def _at_most(r: Reader, where: str, value: float, most: float, unit: str) -> None:
    if value > most:
        raise r.fail(where, f"expected at most {most:,.0f} {unit}, got {value:g}")


def _measured(decoded: Mapping[str, Counts]) -> dict[str, dict[str, Percentiles]]:
    """Percentiles of the saved histograms ("total/latency" -> ["total"]["latency"]), for
    figures the results table does not hold (older files kept three ttfb percentiles)."""
    out: dict[str, dict[str, Percentiles]] = {}
    for name, counts in decoded.items():
        owner, _, kind = name.rpartition("/")
        out.setdefault(owner, {})[kind] = summarise(counts)
    return out


def _read_plan(r: Reader, plan: Mapping[str, Any]) -> SavedPlan:
    if "profile_json" in plan and "profile" not in plan:
        text = r.string(plan, "profile_json", "plan")
        try:
            profile = json.loads(text)
        except (ValueError, RecursionError):  # JSONDecodeError, or a 4,300+ digit integer
            raise r.fail("plan.profile_json", "expected the profile as JSON text") from None
        if not isinstance(profile, dict):
            raise r.fail("plan.profile_json", "expected a JSON object")
    else:
        profile = dict(r.table(plan, "profile", "plan"))
    load = r.table(plan, "load", "plan")
    stages = []
    for index, item in enumerate(r.array(load, "stages", "plan.load", required=False)):
        where = f"plan.load.stages[{index}]"
        stage = r.as_table(item, where)
        stages.append(
            Stage(
                duration=r.seconds(stage, "duration", where),
                target=r.number(stage, "target", where, minimum=0.0, maximum=CEILING_RATE),
            )
        )
    return SavedPlan(
        name=r.string(plan, "name", "plan"),
        source=r.string(plan, "source", "plan"),
        target=r.string(plan, "target", "plan"),
        document=profile,
        overrides=Overrides.from_dict(
            r, r.table(plan, "overrides", "plan", required=False), "plan.overrides"
        ),
        load=LoadSettings(
            model=r.choice(load, "model", "plan.load", ("closed", "open")),
            users=_users(r, load),
            rate=r.optional_number(load, "rate", "plan.load", minimum=0.0, maximum=CEILING_RATE),
            max_in_flight=_optional_count(r, load, "max_in_flight"),
            connections=_optional_count(r, load, "connections"),
            duration=r.optional_seconds(load, "duration", "plan.load"),
            requests=_optional_count(r, load, "requests"),
            preset=r.optional_string(load, "preset", "plan.load"),
            stages=tuple(stages),
            max_duration=r.seconds(load, "max_duration", "plan.load"),
            tick=r.number(load, "tick", "plan.load", minimum=0.001, maximum=MAX_TICK),
        ),
    )


# -- helpers -------------------------------------------------------------------------------


def _users(r: Reader, load: Mapping[str, Any]) -> int:
    users = r.count(load, "users", "plan.load")
    _at_most(r, "plan.load.users", users, CEILING_USERS, "users")
    return users


def _optional_count(r: Reader, load: Mapping[str, Any], key: str) -> int | None:
    return None if load.get(key) is None else r.count(load, key, "plan.load")


def _host_dict(host: Host) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cores": host.cores,
        "ram_bytes": host.ram_bytes,
        "os": host.os,
        "python": host.python,
    }
    if host.noise is not None:
        out["noise"] = {
            "other_cpu_percent": host.noise.other_cpu_percent,
            "load_average": host.noise.load_average,
            "seconds": host.noise.seconds,
        }
    return out


def _read_host_noise(r: Reader, host: Mapping[str, Any]) -> HostNoise | None:
    """host.noise: optional (older sessions, and a run too short for the host to be read)."""
    if "noise" not in host:
        return None
    noise = r.table(host, "noise", "host")
    return HostNoise(
        other_cpu_percent=r.number(noise, "other_cpu_percent", "host.noise"),
        load_average=r.number(noise, "load_average", "host.noise"),
        seconds=r.number(noise, "seconds", "host.noise"),
    )


def _load_dict(load: LoadSettings) -> dict[str, Any]:
    return {
        "model": load.model,
        "users": load.users,
        "rate": load.rate,
        "max_in_flight": load.max_in_flight,
        "connections": load.connections,
        "duration": load.duration,
        "requests": load.requests,
        "preset": load.preset,
        "stages": [{"duration": s.duration, "target": s.target} for s in load.stages],
        "max_duration": load.max_duration,
        "tick": load.tick,
    }


def _drop_none(value: Any) -> Any:
    """Leave out None in tables: the reader takes a missing key as None, in both formats."""
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _holds_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_holds_none(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_none(v) for v in value)
    return False
