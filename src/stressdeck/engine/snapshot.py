"""Immutable views of a run, published by the runner every tick.

Everything a screen or a report shows comes from these frozen dataclasses; they hold
plain numbers only (milliseconds for latencies), never live histograms. The parts that are
kept after a run (an endpoint's figures, a timeline point, a control event, the generator's
health) read and write themselves (``to_dict``/``from_dict``): that is the results schema
of ``--json`` and of sessions, in one place (see engine/results.py).
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from stressdeck.core.fields import MAX_COUNT, MAX_SECONDS, Reader, join
from stressdeck.core.units import is_finite
from stressdeck.engine.bottleneck import CPU_SHARE, LOOP_LAG_MS, Bottleneck
from stressdeck.engine.hostload import HostNoise
from stressdeck.observe.metrics import MetricsSnapshot
from stressdeck.profiles.thresholds import ThresholdResult

# Run states, in the order a run goes through them.
IDLE, RUNNING, PAUSED, STOPPING, STOPPED = "idle", "running", "paused", "stopping", "stopped"
# A stop reason starting with this: a signal ended the run, not the run itself.
INTERRUPTED = "interrupted"


def interrupted_by(signum: int) -> str:
    """The stop reason of a run a signal ended, the same wherever it ran (headless, the
    console, a replay) and wherever it is read (the summary, --json, the session)."""
    return f"{INTERRUPTED} ({signal.Signals(signum).name})"


def cut_short(snapshot: Snapshot, signum: int | None) -> Snapshot:
    """The latest figures of a run the watchdog ends (its stop never came, so no reason
    was given): named as a run that signal ended."""
    if snapshot.stop_reason or signum is None:
        return snapshot
    return dataclasses.replace(snapshot, stop_reason=interrupted_by(signum))


# A replay whose original was stopped by its user stops at the same point, by itself.
REPLAY_ENDED = "replay ended: stopped here in the original run"
# find-limit stops its run once the search is done (a replay of it stops at the same point).
SEARCH_ENDED = "find-limit ended: the search is done"


class Control(StrEnum):
    """A live change to a run: sent to workers as a Command, logged as a ControlEvent."""

    USERS = "users"
    RATE = "rate"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in milliseconds; all zero when nothing was recorded (``count`` 0),
    which every output shows as no data (``null`` in files, ``n/a`` on screen), never 0."""

    p50: float = 0.0
    p90: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    p999: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    count: int = 0

    @property
    def measured(self) -> bool:
        """Something was recorded: the figures are times, not placeholders."""
        return self.count > 0

    def to_dict(self) -> dict[str, float | None]:
        """The figures, or null for each when nothing was measured."""
        if not self.measured:
            return dict.fromkeys(PERCENTILE_KEYS)
        return {key: round(getattr(self, key), 3) for key in PERCENTILE_KEYS}

    @classmethod
    def from_dict(
        cls,
        r: Reader,
        table: Mapping[str, Any],
        key: str,
        where: str,
        *,
        required: tuple[str, ...] = (),
        fallback: Percentiles | None = None,
        answers: int = 0,
    ) -> Percentiles:
        """``table[key]`` read back; figures it lacks come from ``fallback`` (a saved histogram).

        ``answers`` (the responses counted, one time recorded for each) is how many times the
        figures summarise when no histogram says it: 0 reads as no data, so an older file's
        0.0 for a run nothing answered reads as no data too. ``null`` is no data; the
        ``required`` figures are required only when something was answered.
        """
        base = fallback or cls()
        count = base.count or answers
        inner = r.table(table, key, where, required=bool(required) and count > 0)
        path = join(where, key)
        unknown = sorted(str(name) for name in set(inner) - set(PERCENTILE_KEYS))
        if unknown:
            raise r.fail(join(path, unknown[0]), "unknown percentile")
        present = [name for name in PERCENTILE_KEYS if inner.get(name) is not None]
        if count and present:
            for name in required:
                r.number(inner, name, path)
        figures = {
            name: r.number(inner, name, path, minimum=0.0, maximum=MAX_SECONDS * 1000)
            for name in present
        }
        if not count or not (present or base.count):
            return cls()
        values = {name: figures.get(name, getattr(base, name)) for name in PERCENTILE_KEYS}
        return cls(**values, count=count)


PERCENTILE_KEYS = ("p50", "p90", "p95", "p99", "p999", "max", "mean")


@dataclass(frozen=True)
class EndpointSummary:
    """Cumulative results of one endpoint (or of all of them, for ``Snapshot.total``).

    ``requests`` counts completed requests: every one has exactly one status code or one
    error class, so ``requests == sum(status_counts) + sum(error_counts)``. ``errors`` are
    transport errors plus responses whose status was not expected. Cancelled (in flight at
    stop), dropped (open model, over ``max_in_flight``) and skipped requests are counted
    apart and are not in ``requests``.
    """

    name: str
    requests: int = 0
    errors: int = 0
    rps: float = 0.0
    interval_rps: float = 0.0
    error_rate: float = 0.0
    status_counts: Mapping[int, int] = field(default_factory=dict)
    error_counts: Mapping[str, int] = field(default_factory=dict)
    bytes: int = 0
    latency_ms: Percentiles = Percentiles()
    service_ms: Percentiles = Percentiles()
    ttfb_ms: Percentiles = Percentiles()
    dropped: int = 0
    cancelled: int = 0
    skipped: int = 0
    skip_reasons: Mapping[str, int] = field(default_factory=dict)
    # Responses whose extractor gave up (reason -> n): a pathological regex, say.
    extract_failures: Mapping[str, int] = field(default_factory=dict)
    # Streaming: HTTP chunks and server-sent events received; time to last byte is service_ms.
    chunks: int = 0
    events: int = 0
    # Response checks: each response judged by each check of its endpoint. A failed check is
    # counted here only, never as an error.
    checked: int = 0  # responses judged (a request's final answer; a transport error has none)
    checks_passed: int = 0
    checks_failed: int = 0
    check_failures: Mapping[str, int] = field(default_factory=dict)  # check expression -> n
    # What the transport errors said ("connect: Connection refused"), most frequent first;
    # at most a few dozen distinct texts, the rest under "(other messages)".
    error_messages: Mapping[str, int] = field(default_factory=dict)
    # The HTTP client that sent these requests: "fast", "aiohttp" (or both, for a total).
    client: str = ""
    # Open model: requests that fell due (a flow: its iterations). Each is exactly one of
    # requests, cancelled or dropped (skipped, where a template variable was missing).
    due: int = 0
    # Requests sent again, once, on a fresh connection because the reused keep-alive one
    # was found closed before any byte of an answer (the server never read them). Not errors.
    stale_resends: int = 0
    # Answers nobody asked for: bytes on an idle keep-alive connection after a complete
    # answer. The connection is closed; they are no request's status.
    unasked: int = 0
    # Answer bodies as decoded (a gzip or deflate body: what it decoded to; any other: its
    # bytes). ``bytes`` is what came over the wire.
    decoded_bytes: int = 0

    @property
    def checks_rate(self) -> float | None:
        """The share of checks that passed; None when no check was judged."""
        judged = self.checks_passed + self.checks_failed
        return self.checks_passed / judged if judged else None

    def to_dict(self) -> dict[str, Any]:
        """The endpoint's figures as in ``--json`` and sessions (its name is the key)."""
        out: dict[str, Any] = {}
        for item in _kept_fields(EndpointSummary):
            value = getattr(self, item.name)
            if isinstance(value, Percentiles):
                out[item.name] = value.to_dict()
            elif isinstance(value, Mapping):
                out[item.name] = {str(key): n for key, n in value.items()}
            elif isinstance(value, float):
                out[item.name] = round(value, _DECIMALS.get(item.name, 3))
            else:
                out[item.name] = value
        return out

    @classmethod
    def from_dict(
        cls,
        r: Reader,
        table: Mapping[str, Any],
        name: str,
        where: str,
        histograms: Mapping[str, Percentiles] | None = None,
    ) -> EndpointSummary:
        """Read back what ``to_dict`` wrote. Counters added later default to 0, so older
        files read; percentiles a file lacks come from ``histograms`` ("latency" -> ...)."""
        figures: dict[str, Any] = {"name": name}
        for item in _kept_fields(EndpointSummary):
            key, default = item.name, field_default(item)
            if isinstance(default, Percentiles):
                fallback = (histograms or {}).get(key.removesuffix("_ms"))
                required = ("p50", "p95", "p99") if key == "latency_ms" else ()
                # status_counts is read before (field order): one time per answer.
                answers = sum(figures["status_counts"].values())
                figures[key] = Percentiles.from_dict(
                    r, table, key, where, required=required, fallback=fallback, answers=answers
                )
            elif key == "status_counts":
                figures[key] = _read_status_counts(r, table, where)
            elif isinstance(default, dict):
                figures[key] = r.count_map(table, key, where)
            elif key in _REQUIRED:
                # Every whole figure here counts something: never negative, never 10^30.
                read = r.number if isinstance(default, float) else r.count
                figures[key] = read(table, key, where)
            elif isinstance(default, float):
                figures[key] = r.number(table, key, where, default=default)
            elif isinstance(default, str):  # "" in files from before the field was written
                figures[key] = r.optional_string(table, key, where) or default
            else:
                figures[key] = r.count(table, key, where, default=default)
        return cls(**figures)


# Figures every results file has had since the first format; the rest default to zero.
_REQUIRED = ("requests", "errors", "rps", "error_rate")
_DECIMALS = {"error_rate": 6}  # a rate of one error in a million still shows
LIVE_ONLY_FIELDS = ("name", "interval_rps")  # the name is the key; the last tick's rate is not kept


def field_default(item: dataclasses.Field[Any]) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def _kept_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [item for item in dataclasses.fields(cls) if item.name not in LIVE_ONLY_FIELDS]


def _read_status_counts(r: Reader, table: Mapping[str, Any], where: str) -> dict[int, int]:
    counts = r.count_map(table, "status_counts", where)
    for code in counts:
        # Keys are HTTP status codes written as text (TOML keys are strings).
        if not (code.isascii() and code.isdigit() and len(code) <= 3):
            raise r.fail(
                f"{where}.status_counts.{code}", "expected an HTTP status code (up to 3 digits)"
            )
    return {int(code): n for code, n in counts.items()}


@dataclass(frozen=True)
class TimelinePoint:
    """One second of the run (or, for old points of a long run, several seconds summarised)."""

    t: float
    span: float
    requests: int
    rps: float
    errors: int
    p50: float | None  # None: nothing answered in this second
    p95: float | None
    p99: float | None
    users: int
    rate: float | None = None
    dropped: int = 0
    service_p50: float = 0.0  # service time from the actual send (the target's own share)
    bottleneck: Bottleneck = Bottleneck()  # what limited the load in this second

    @property
    def measured(self) -> bool:
        """Some answer came in this second: its percentiles are times."""
        return self.p50 is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None and item.name not in LATENCY_KEYS:
                continue  # no rate in the closed model: left out (a session drops every None)
            if isinstance(value, Bottleneck):
                out[item.name] = value.to_dict()
                continue
            out[item.name] = round(value, 3) if isinstance(value, float) else value
        return out

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> TimelinePoint:
        return cls(
            t=r.seconds(table, "t", where),
            span=r.seconds(table, "span", where),
            requests=r.count(table, "requests", where),
            # A second's rate is at most its count: bounded as counts are.
            rps=r.number(table, "rps", where, minimum=0.0, maximum=float(MAX_COUNT)),
            errors=r.count(table, "errors", where),
            **_second_latencies(r, table, where),
            users=r.count(table, "users", where),
            rate=r.optional_number(table, "rate", where, minimum=0.0, maximum=float(MAX_COUNT)),
            dropped=r.count(table, "dropped", where, default=0),
            service_p50=r.number(
                table, "service_p50", where, default=0.0, minimum=0.0, maximum=MAX_SECONDS * 1000
            ),
            bottleneck=Bottleneck.from_dict(
                r, r.table(table, "bottleneck", where, required=False), f"{where}.bottleneck"
            ),
        )


# Live changes one run logs (the runner stops logging past it; a stop is always logged):
# hours of a key held down in the console, and what a session may hold.
MAX_CONTROL_EVENTS = 100_000
LATENCY_KEYS = ("p50", "p95", "p99")  # a timeline point's: null or left out when no answer


def _second_latencies(r: Reader, table: Mapping[str, Any], where: str) -> dict[str, float | None]:
    """A timeline point's percentiles; None (no answer that second) when null or left out.

    Files before format 3 wrote 0.0 for such a second: a p99 of exactly 0.000 ms is no
    measured time (the clock resolves 0.001 ms), so all three at 0 read as no data too.
    """
    most = MAX_SECONDS * 1000
    values = {
        key: r.optional_number(table, key, where, minimum=0.0, maximum=most) for key in LATENCY_KEYS
    }
    if all(not value for value in values.values()):
        return dict.fromkeys(LATENCY_KEYS)
    if any(value is None for value in values.values()):
        missing = next(key for key, value in values.items() if value is None)
        raise r.fail(join(where, missing), "missing (the other percentiles are given)")
    return values


@dataclass(frozen=True)
class EndpointPoint:
    """One endpoint in one second of the run (or, for old points, several seconds merged).

    Kept only for seconds in which the endpoint did something: the seconds left out saw
    nothing of it. A merged point spans from its first second's start to ``t``.
    """

    t: float
    span: float
    requests: int
    errors: int
    dropped: int
    p50: float
    p95: float
    p99: float

    @property
    def rps(self) -> float:
        return self.requests / self.span if self.span else 0.0


# The columns of an endpoint's saved timeline, in EndpointPoint's order.
ENDPOINT_POINT_FIELDS = ("t", "span", "requests", "errors", "dropped", "p50", "p95", "p99")
_COUNT_FIELDS = ("requests", "errors", "dropped")


def _plain_value(value: Any, whole: bool) -> bool:
    """A count (whole, not negative, one a run can reach) or a finite number; never a bool."""
    if whole:
        return type(value) is int and 0 <= value <= MAX_COUNT
    return type(value) in (int, float) and is_finite(value)


@dataclass(frozen=True)
class EndpointSeries:
    """The per-second timeline of one endpoint, kept column by column: a session with
    thousands of endpoints stays a few MB (one array per figure, not a table per point)."""

    name: str
    points: tuple[EndpointPoint, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {
            key: [
                getattr(point, key) if key in _COUNT_FIELDS else round(getattr(point, key), 3)
                for point in self.points
            ]
            for key in ENDPOINT_POINT_FIELDS
        }

    @classmethod
    def from_dict(
        cls, r: Reader, table: Mapping[str, Any], name: str, where: str
    ) -> EndpointSeries:
        columns: dict[str, Sequence[Any]] = {}
        for key in ENDPOINT_POINT_FIELDS:
            values = r.array(table, key, where)
            whole = key in _COUNT_FIELDS
            for index, value in enumerate(values):
                # A type check per value (100,000 of them in a big session), then the
                # Reader's own check, for its message, only on a value that failed it.
                if _plain_value(value, whole):
                    continue
                read = r.count if whole else r.number
                read({str(index): value}, str(index), join(where, key))
            columns[key] = values
        lengths = {len(column) for column in columns.values()}
        if len(lengths) > 1:
            raise r.fail(where, "expected columns of one length (one value per point each)")
        points = tuple(
            EndpointPoint(**dict(zip(ENDPOINT_POINT_FIELDS, row, strict=True)))
            for row in zip(*columns.values(), strict=True)
        )
        return cls(name, points)


@dataclass(frozen=True)
class ControlEvent:
    """A live change, stamped with its offset from the start of the run, for replay."""

    offset: float
    command: Control
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "command": str(self.command), "value": self.value}

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> ControlEvent:
        # Users, a rate, or how long a pause lasted (resume): never below 0.
        return cls(
            offset=r.seconds(table, "offset", where),
            command=Control(r.choice(table, "command", where, tuple(Control))),
            value=r.optional_number(table, "value", where, minimum=0.0),
        )


@dataclass(frozen=True)
class HistogramBucket:
    low_ms: float
    high_ms: float
    count: int


@dataclass(frozen=True)
class GeneratorHealth:
    """How healthy the load generator itself is; a saturated generator measures itself."""

    loop_lag_ms: float = 0.0  # this tick: how late the workers' timers fired (worst process)
    send_lag_ms: float = 0.0  # open model: how late requests went out versus their due time
    cpu_percent: float = 0.0  # the generator's CPU over the last second, all processes
    processes: int = 1
    # The whole run so far: how long the generator was saturated, and its worst figures.
    saturated_seconds: float = 0.0
    peak_loop_lag_ms: float = 0.0
    peak_send_lag_ms: float = 0.0
    peak_cpu_percent: float = 0.0
    # Workers that stopped reporting: how many now, for how long in the run, and requests
    # whose outcome never reached the runner (a worker ended at stop without its last delta).
    stalled_workers: int = 0
    stalled_seconds: float = 0.0
    unaccounted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> GeneratorHealth:
        """Every figure defaults to its zero: format 1 sessions hold only the last tick's four.
        Read back field by field, so a new field needs no list."""
        figures: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            read = r.integer if isinstance(item.default, int) else r.number
            figures[item.name] = read(table, item.name, where, default=item.default)
        return cls(**figures)

    @property
    def saturated(self) -> bool:
        # Not send lag: a request waiting for a busy connection is late because of the
        # connections or the target (engine/bottleneck.py). The pacer's own lateness is
        # reported as loop lag.
        return self.loop_lag_ms > LOOP_LAG_MS or self.cpu_percent > CPU_SHARE * self.processes


@dataclass(frozen=True)
class NodeHealth:
    """One machine of a cluster run (``--cluster``): where part of the load comes from.

    Counts are what its workers reported before they ended, lost ones included: a crashed
    worker's requests stay in the totals, as a dead worker process's do.
    """

    node: str  # the node's address, as the cluster knows it
    workers: int = 0
    cpus: int = 0  # CPUs the cluster counts on the node
    crashed: int = 0  # workers lost: the actor or the whole node died
    requests: int = 0
    cpu_percent: float = 0.0  # the workers' own processes, % of one core, about the last second
    node_cpu_percent: float = 0.0  # the whole node, % of all its cores
    loop_lag_ms: float = 0.0  # the worst of its workers, lately
    peak_loop_lag_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> NodeHealth:
        figures: dict[str, Any] = {"node": r.string(table, "node", where)}
        for item in dataclasses.fields(cls):
            if item.name != "node":
                read = r.integer if item.type in (int, "int") else r.number
                figures[item.name] = read(table, item.name, where, default=field_default(item))
        return cls(**figures)


@dataclass(frozen=True)
class Snapshot:
    elapsed: float
    state: str
    model: str
    target: str
    users: int
    active_users: int
    rate: float | None
    in_flight: int
    total: EndpointSummary
    endpoints: tuple[EndpointSummary, ...]
    timeline: tuple[TimelinePoint, ...]
    control_log: tuple[ControlEvent, ...]
    thresholds: tuple[ThresholdResult, ...] = ()
    latency_buckets: tuple[HistogramBucket, ...] = ()
    recent_latency_buckets: tuple[HistogramBucket, ...] = ()
    manual: bool = False
    stage: int | None = None
    stop_reason: str = ""
    health: GeneratorHealth = GeneratorHealth()
    # Encoded HDR histograms (name -> base64 text), filled in on the final snapshot only.
    histograms: Mapping[str, str] = field(default_factory=dict)
    # The target's own metrics (``metrics_url``), as of the last scrape; None without one.
    target_metrics: MetricsSnapshot | None = None
    # A cluster run's machines, one entry per node; empty for a run on this machine.
    nodes: tuple[NodeHealth, ...] = ()
    # Workers that have not reported for a few ticks (their ids), as of this snapshot.
    stalled: tuple[int, ...] = ()
    # Pauses: ``elapsed`` is run time and leaves them out. All of them so far, and the
    # current one (0 unless the run is paused now), in seconds.
    paused_seconds: float = 0.0
    paused_for: float = 0.0
    # Latency percentiles of the last ten seconds: the window of recent_latency_buckets.
    recent_latency_ms: Percentiles = Percentiles()
    # What limited the load: over the last seconds while the run goes, the whole run at the end.
    bottleneck: Bottleneck = Bottleneck()
    # The last ten closed seconds, per endpoint and in total (requests, errors, RPS and
    # latency of that window; service time and TTFB are not kept per second, so zero).
    recent_endpoints: tuple[EndpointSummary, ...] = ()
    recent_total: EndpointSummary | None = None
    # Each endpoint's per-second timeline, filled in on the final snapshot only (as
    # ``histograms``): building it every tick would cost the runner for nothing.
    endpoint_timeline: tuple[EndpointSeries, ...] = ()
    # What other processes took of this machine since the run started (engine/hostload.py):
    # kept in the session's host.noise, not in the results; None before the first reading.
    host_noise: HostNoise | None = None

    @property
    def thresholds_ok(self) -> bool:
        return all(result.ok for result in self.thresholds)

    @property
    def finished(self) -> bool:
        return self.state == STOPPED
