"""Sessions: save/load round trips in both formats, atomic no-overwrite writes, bad files."""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ServerThread, counting_app
from session_support import crafted_document, profile_document, run_sync

from stressdeck.cli import main
from stressdeck.core.errors import InputError
from stressdeck.core.files import WriteError
from stressdeck.engine import Plan, Snapshot, build_plan
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.session import (
    FORMAT_VERSION,
    Session,
    build_session,
    dumps_session,
    load_session,
    save_session,
    session_from_document,
    snapshot_from_session,
    write_session,
)


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[Plan, Snapshot]]:
    """One real 2 s run with live changes, shared by the round-trip tests."""
    with ServerThread(counting_app()) as server:
        changes = [
            (0.5, lambda h: h.set_users(3)),
            (0.9, lambda h: h.pause()),
            (1.2, lambda h: h.resume()),
        ]
        yield run_sync(profile_document(server.url), changes, users=2)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_then_load_gives_an_equal_session(
    run: tuple[Plan, Snapshot], tmp_path: Path, suffix: str
) -> None:
    plan, snapshot = run
    expected = build_session(plan, snapshot)
    path = save_session(tmp_path / f"s{suffix}", plan, snapshot)
    loaded = load_session(path)
    assert loaded.created and loaded.host == expected.host
    assert replace(loaded, created="") == replace(expected, created="")
    # Writing what was read gives the same bytes: nothing is lost or reshaped on the way.
    assert dumps_session(loaded, suffix) == path.read_text()


@pytest.mark.parametrize("elapsed", [1.5251, 1.5249, 2.0, 0.0049])
def test_the_summary_prints_the_elapsed_time_the_session_keeps(
    run: tuple[Plan, Snapshot], tmp_path: Path, elapsed: float
) -> None:
    """The summary printed at the end of a run and the one of its saved session agree to
    the last digit (the document keeps milliseconds; 1.5251 s once printed 1.53 live and
    1.52 read back)."""
    from stressdeck.sessions.summary import summary_text

    plan, snapshot = run
    live = replace(snapshot, elapsed=elapsed)
    saved = snapshot_from_session(load_session(save_session(tmp_path / "s.toml", plan, live)))
    line = next(x for x in summary_text(live).splitlines() if x.startswith("elapsed "))
    assert line in summary_text(saved).splitlines()


def test_session_holds_what_the_run_did(run: tuple[Plan, Snapshot], tmp_path: Path) -> None:
    plan, snapshot = run
    session = load_session(save_session(tmp_path / "s.toml", plan, snapshot))
    assert session.format_version == FORMAT_VERSION
    assert [e.command for e in session.control_log] == ["users", "pause", "resume"]
    assert session.control_log[0].value == 3
    assert session.plan.document["endpoints"][0]["path"] == "/ok"
    assert session.plan.overrides == Overrides(users=2)
    assert session.plan.load.users == 2 and session.plan.load.duration == 2.0
    assert session.results.total.requests == snapshot.total.requests > 0
    assert [ep.name for ep in session.results.endpoints] == ["ok", "teapot"]
    assert len(session.results.thresholds) == 3 and session.results.passed
    assert session.results.thresholds[2].endpoint == "ok"
    assert len(session.results.timeline) >= 2
    assert {"total/latency", "ok/latency", "teapot/latency", "total/ttfb"} <= set(
        session.histograms
    )
    assert session.host.cores > 0 and session.replay_of is None


def test_a_profile_with_null_values_round_trips_through_toml(
    run: tuple[Plan, Snapshot], tmp_path: Path
) -> None:
    """TOML has no null: such a profile (from JSON) is kept as JSON text, exactly."""
    _, snapshot = run
    document = profile_document("http://127.0.0.1:9")
    document["endpoints"][0].update(method="POST", json={"name": None, "tags": [1, None]})
    plan = build_plan(parse_profile(document, "p.json"))
    session = build_session(plan, snapshot)
    for suffix in (".toml", ".json"):
        loaded = load_session(write_session(tmp_path / f"n{suffix}", session))
        assert loaded == session
        assert loaded.plan.document["endpoints"][0]["json"] == {"name": None, "tags": [1, None]}


def test_an_existing_file_is_never_overwritten_unless_asked(
    run: tuple[Plan, Snapshot], tmp_path: Path
) -> None:
    plan, snapshot = run
    path = tmp_path / "s.toml"
    path.write_text("keep me")
    with pytest.raises(WriteError, match="already exists"):
        save_session(path, plan, snapshot)
    assert path.read_text() == "keep me"
    save_session(path, plan, snapshot, overwrite=True)
    assert load_session(path).results.total.requests > 0
    assert [p.name for p in tmp_path.iterdir()] == ["s.toml"]  # no temporary file left behind


def test_a_file_name_without_a_known_extension_is_refused(
    run: tuple[Plan, Snapshot], tmp_path: Path
) -> None:
    plan, snapshot = run
    with pytest.raises(WriteError, match="expected a .toml or .json"):
        save_session(tmp_path / "s.yaml", plan, snapshot)


def test_replay_of_is_recorded(run: tuple[Plan, Snapshot], tmp_path: Path) -> None:
    plan, snapshot = run
    path = save_session(tmp_path / "r.json", plan, snapshot, replay_of="sessions/base.toml")
    assert load_session(path).replay_of == "sessions/base.toml"


# -- bad files ------------------------------------------------------------------------------


def _write(
    tmp_path: Path, document: dict[str, Any], suffix: str = ".toml", name: str = "bad"
) -> Path:
    path = tmp_path / f"{name}{suffix}"
    path.write_text(tomli_w.dumps(document) if suffix == ".toml" else json.dumps(document))
    return path


def _set(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        document = document[int(key)] if isinstance(document, list) else document[key]
    if value is _DELETE:
        del document[last]
    elif isinstance(document, list):
        document[int(last)] = value
    else:
        document[last] = value


_DELETE = object()

BAD_FIELDS = [
    ("format_version", _DELETE, "format_version: missing"),
    ("format_version", "1", "format_version: expected a whole number"),
    ("format_version", 0, "format_version: expected 1 to"),
    ("host", "laptop", "host: expected a table"),
    ("results.elapsed", "ten", "results.elapsed: expected a number"),
    ("results.summary.total.rps", "fast", "results.summary.total.rps: expected a number"),
    (
        "results.summary.total.latency_ms",
        {"p50": 1.0},
        "results.summary.total.latency_ms.p95: missing",
    ),
    (
        "results.summary.endpoints.home.requests",
        1.5,
        "results.summary.endpoints.home.requests: expected a whole",
    ),
    ("results.summary.endpoints.home", [], "results.summary.endpoints.home: expected a table"),
    ("results.control_log.0.command", "explode", "results.control_log[0].command: expected one of"),
    ("results.control_log.0.offset", True, "results.control_log[0].offset: expected a number"),
    ("results.control_log", {"a": 1}, "results.control_log: expected a list"),
    ("results.timeline.2.p99", "slow", "results.timeline[2].p99: expected a number"),
    ("results.thresholds.0.ok", "yes", "results.thresholds[0].ok: expected true or false"),
    ("plan.load.model", "sideways", "plan.load.model: expected one of closed, open"),
    ("plan.overrides.colour", "red", "plan.overrides.colour: unknown override"),
    ("plan.profile", "inline", "plan.profile: expected a table"),
    ("histograms", {"total/latency": "not base64!"}, "histograms.total/latency: expected a base64"),
    ("replay_of", 7, "replay_of: expected a string"),
]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_wrongly_typed_fields_are_one_line_errors_naming_the_field(
    tmp_path: Path, suffix: str, field: str, value: Any, message: str
) -> None:
    document = crafted_document()
    _set(document, field, value)
    path = _write(tmp_path, document, suffix)
    with pytest.raises(InputError) as info:
        load_session(path)
    line = info.value.line()
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line


def test_a_newer_format_version_is_refused_clearly(tmp_path: Path) -> None:
    document = crafted_document()
    document["format_version"] = FORMAT_VERSION + 1
    document["something_new"] = {"x": 1}
    with pytest.raises(
        InputError,
        match=rf"format_version: version {FORMAT_VERSION + 1} is newer than this "
        rf"stressdeck reads \({FORMAT_VERSION}\); upgrade",
    ):
        load_session(_write(tmp_path, document))


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_truncated_files_are_one_line_errors(
    run: tuple[Plan, Snapshot], tmp_path: Path, suffix: str
) -> None:
    plan, snapshot = run
    text = save_session(tmp_path / f"full{suffix}", plan, snapshot).read_text()
    for fraction in (0.0, 0.1, 0.5, 0.9, 0.99):
        cut = tmp_path / f"cut{suffix}"
        cut.write_text(text[: int(len(text) * fraction)])
        with pytest.raises(InputError) as info:
            load_session(cut)
        assert info.value.line().startswith(str(cut)) and "\n" not in info.value.line()


def test_a_toml_file_cut_at_any_line_before_its_end_is_refused(
    run: tuple[Plan, Snapshot], tmp_path: Path
) -> None:
    """A cut between lines still parses as TOML; the histograms table, written last, is required."""
    plan, snapshot = run
    lines = (
        save_session(tmp_path / "full.toml", plan, snapshot).read_text().splitlines(keepends=True)
    )
    last_table = lines.index("[histograms]\n")
    cut = tmp_path / "cut.toml"
    for end in range(last_table + 1):
        cut.write_text("".join(lines[:end]))
        with pytest.raises(InputError):
            load_session(cut)


@pytest.mark.parametrize(
    "command",
    [["compare", "{bad}", "{good}"], ["report", "{bad}", "--csv", "{out}"], ["replay", "{bad}"]],
)
@pytest.mark.parametrize(
    "content",
    [
        "format_version = 1\n[results\n",
        "format_version = 9\n",
        "[1, 2]",
        "format_version = 1\nhost = 3\n",
    ],
)
def test_the_cli_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], content: str
) -> None:
    bad = tmp_path / ("bad.json" if content.startswith("[") else "bad.toml")
    bad.write_text(content)
    good = _write(tmp_path, crafted_document(), name="good")
    argv = [a.format(bad=bad, good=good, out=tmp_path / "t.csv") for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "t.csv").exists()


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope.toml"), "--csv", str(tmp_path / "t.csv")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.toml'}: file not found\n"


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out += _paths(inner, (*prefix, index))
    return out


_DOCUMENT = crafted_document()
_ALL_PATHS = [p for p in _paths(_DOCUMENT) if p[:2] != ("plan", "profile")]


@pytest.mark.fuzz
# The example count is the profile's (conftest.py): 300 everyday, 2,000 in CI's thorough pass.
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_ALL_PATHS), value=_LEAVES)
def test_any_one_wrong_value_loads_or_fails_with_an_input_error(
    path: tuple[Any, ...], value: Any
) -> None:
    document = json.loads(json.dumps(_DOCUMENT))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        session = session_from_document(document, "fuzz.json")
    except InputError as exc:
        assert exc.line().startswith("fuzz.json") and "\n" not in exc.line()
    else:
        assert isinstance(session, Session)


def test_the_crafted_document_is_valid_in_both_formats(tmp_path: Path) -> None:
    toml = load_session(_write(tmp_path, crafted_document(), ".toml"))
    assert load_session(_write(tmp_path, crafted_document(), ".json")) == toml
    assert tomllib.loads(dumps_session(toml, ".toml"))["plan"]["load"]["users"] == 5
