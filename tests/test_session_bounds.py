"""A session holds no more than a live run can: times within a year and never negative,
users and rates within the ceilings even --i-know keeps, at most 3,600 timeline points and
100,000 (+ the stop) control-log entries. Anything past that is one line naming the file and
the field, never a traceback, an hour-long replay or a gigabyte report."""

from __future__ import annotations

import copy
import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerThread
from hypothesis import example, given, settings
from hypothesis import strategies as st
from session_support import crafted_document
from test_ui_support import screen_text, wait_for

from stressdeck.cli.console import view_app
from stressdeck.cli.main import main
from stressdeck.core.errors import InputError
from stressdeck.core.fields import MAX_SECONDS
from stressdeck.engine import build_plan, runner, start
from stressdeck.engine.plan import CEILING_RATE, CEILING_USERS
from stressdeck.engine.snapshot import MAX_CONTROL_EVENTS, Control
from stressdeck.engine.timeline import DEFAULT_MAX_POINTS
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.exports import write_csv, write_html
from stressdeck.sessions.session import (
    build_session,
    session_from_document,
    session_to_document,
    snapshot_from_session,
)
from stressdeck.sessions.summary import summary_text
from stressdeck.ui.widgets.eventlog import MAX_LINES, EventLog

Document = dict[str, Any]


def at(document: Document, path: str) -> tuple[Any, str | int]:
    """The container holding ``path``'s last part ("results.control_log[0].offset"), and it."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    node: Any = document
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def setting(path: str, value: Any) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        node, key = at(document, path)
        node[key] = value

    return change


def repeated(path: str, count: int) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        node, key = at(document, path)
        node[key] = [copy.deepcopy(node[key][0]) for _ in range(count)]

    return change


def with_stage(document: Document) -> None:
    document["plan"]["load"]["stages"] = [{"duration": -30.0, "target": 5.0}]


def rate_event(value: float) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        document["results"]["control_log"] = [{"offset": 1.0, "command": "rate", "value": value}]

    return change


YEAR = f"{MAX_SECONDS:,.12g}"
CASES: list[tuple[str, Callable[[Document], None], str]] = [
    ("elapsed 1e308", setting("results.elapsed", 1e308), f"results.elapsed: expected a number from 0 up to {YEAR}"),
    ("elapsed < 0", setting("results.elapsed", -1.0), "results.elapsed: expected a number from 0"),
    ("offset < 0", setting("results.control_log[0].offset", -600.0), "results.control_log[0].offset: expected a number from 0"),
    ("users 1e308", setting("results.control_log[0].value", 1e308), f"results.control_log[0].value: expected at most {CEILING_USERS:,} users"),
    ("rate 1e308", rate_event(1e308), f"results.control_log[0].value: expected at most {CEILING_RATE:,.0f} requests/s"),
    ("rate < 0", rate_event(-5.0), "results.control_log[0].value: expected a number from 0"),
    ("pause of 10 years", setting("results.control_log[1]", {"offset": 3.5, "command": "resume", "value": 3.2e8}), "results.control_log[1].value: expected at most"),
    ("load.rate 1e308", setting("plan.load.rate", 1e308), f"plan.load.rate: expected a number from 0 up to {CEILING_RATE:,.12g}"),
    ("load.users < 0", setting("plan.load.users", -1), "plan.load.users: expected a whole number from 0"),
    ("load.users past the ceiling", setting("plan.load.users", CEILING_USERS + 1), "plan.load.users: expected at most"),
    ("load.duration < 0", setting("plan.load.duration", -10.0), "plan.load.duration: expected a number from 0"),
    ("max_duration 1e308", setting("plan.load.max_duration", 1e308), "plan.load.max_duration: expected a number from 0"),
    ("tick 0", setting("plan.load.tick", 0.0), "plan.load.tick: expected a number from 0.001"),
    ("stage duration < 0", with_stage, "plan.load.stages[0].duration: expected a number from 0"),
    ("override duration < 0", setting("plan.overrides.duration", -10.0), "plan.overrides.duration: expected a number from 0"),
    ("override users < 0", setting("plan.overrides.users", -3), "plan.overrides.users: expected a whole number from 0"),
    ("point t < 0", setting("results.timeline[0].t", -1.0), "results.timeline[0].t: expected a number from 0"),
    ("point span 1e308", setting("results.timeline[0].span", 1e308), "results.timeline[0].span: expected a number from 0"),
    ("point p50 < 0", setting("results.timeline[0].p50", -3.0), "results.timeline[0].p50: expected a number from 0"),
    ("point users past the ceiling", setting("results.timeline[0].users", 10**9), "results.timeline[0].users: expected at most"),
    ("latency 1e308", setting("results.summary.total.latency_ms.p95", 1e308), "results.summary.total.latency_ms.p95: expected a number from 0"),
    ("300,000 points", repeated("results.timeline", 300_000), f"results.timeline: 300,000 entries, more than the {DEFAULT_MAX_POINTS:,} a run keeps"),
    ("200,000 changes", repeated("results.control_log", 200_000), f"results.control_log: 200,000 entries, more than the {MAX_CONTROL_EVENTS + 1:,} a run keeps"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_session_past_what_a_run_holds_is_one_line(
    case: str, change: Callable[[Document], None], message: str, tmp_path: Path, capsys
) -> None:
    document = crafted_document()
    change(document)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    started = time.monotonic()
    assert main(["report", str(path), "--html", str(tmp_path / "r.html")]) == 2
    # Refused before any report work: a 200,000-entry log took seconds and gigabytes.
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"stressdeck: {path}: ") or f"{path}: " in err, err
    assert message in err, err
    assert not (tmp_path / "r.html").exists()


def test_the_crafted_session_itself_reads_and_reports(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(crafted_document()), encoding="utf-8")
    assert main(["report", str(path), "--html", str(tmp_path / "r.html")]) == 0


# -- a live run is held to the same bounds -----------------------------------------------


async def test_a_live_control_log_keeps_its_bound_and_reads_back(
    target: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound (scaled down to 5 here) a change of the same kind replaces the last
    entry, so the level the run ends at is kept; the stop is always logged."""
    monkeypatch.setattr(runner, "MAX_CONTROL_EVENTS", 5)
    profile = parse_profile(
        {
            "name": "p",
            "base_url": target.url,
            "load": {"users": 1, "duration": "30s"},
            "endpoints": [{"name": "ok", "path": "/ok"}],
        },
        "p.toml",
    )
    plan = build_plan(profile)
    handle = await start(plan)
    for users in range(2, 10):
        handle.set_users(users)
    handle.pause()  # past the bound, of another kind than the last entry: not logged
    handle.resume()
    handle.set_users(3)
    final = await handle.stop()
    log = final.control_log
    assert [(e.command, e.value) for e in log] == [
        (Control.USERS, 2),
        (Control.USERS, 3),
        (Control.USERS, 4),
        (Control.USERS, 5),
        (Control.USERS, 3),  # the last change of its kind, the level the run ended at
        (Control.STOP, None),
    ]
    document = json.loads(json.dumps(session_to_document(build_session(plan, final))))
    assert session_from_document(document, "live.json").control_log == log


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "9000h"], "--duration: expected a duration up to 366 days"),
        (["--max-duration", "99999999999"], "--max-duration: expected a duration up to 366 days"),
        (["--users", "2000000", "--i-know"], "above the safety cap of 1e+06 (no option lifts it)"),
        (["--rate", "1e9", "--i-know"], "above the safety cap of 1e+07 requests/s (no option"),
    ],
)
def test_a_live_run_is_refused_past_what_a_session_holds(
    argv: list[str], message: str, target: ServerThread, capsys
) -> None:
    try:
        code = main(["run", f"{target.url}/ok", "--processes", "1", *argv])
    except SystemExit as exit_:  # argparse refuses a bad option value itself
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert target.count == 0


def test_a_profile_duration_past_a_year_is_refused() -> None:
    with pytest.raises(InputError, match=r"p.toml: load.duration: expected a duration up to 366"):
        parse_profile(
            {
                "name": "p",
                "base_url": "http://127.0.0.1:1",
                "load": {"duration": "9000h"},
                "endpoints": [{"name": "a", "path": "/"}],
            },
            "p.toml",
        )


# -- properties --------------------------------------------------------------------------

NUMERIC_FIELDS = [
    "results.elapsed",
    "results.control_log[0].offset",
    "results.control_log[0].value",
    "results.timeline[0].t",
    "results.timeline[0].span",
    "results.timeline[0].rps",
    "results.timeline[0].p50",
    "results.timeline[0].p99",
    "results.timeline[0].users",
    "results.summary.total.rps",
    "results.summary.total.latency_ms.p95",
    "results.summary.total.latency_ms.max",
    "plan.load.users",
    "plan.load.rate",
    "plan.load.duration",
    "plan.load.max_duration",
    "plan.load.tick",
    "plan.overrides.duration",
]
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, MAX_SECONDS, MAX_SECONDS + 1]),
)


@pytest.mark.fuzz
@settings(deadline=None)
@given(field=st.sampled_from(NUMERIC_FIELDS), value=NUMBERS)
# Found at 2,000 examples: a second's rps near 1.5e308 read, and its chart's ticks overflowed.
@example(field="results.timeline[0].rps", value=1.5000000000000002e308)
def test_any_number_anywhere_reads_within_bounds_or_is_one_line(field: str, value: Any) -> None:
    """Whatever number a field holds, the session either reads (and then its summary and
    its HTML and CSV reports are made without an exception) or is refused in one line
    naming that field."""
    document = crafted_document()
    setting(field, value)(document)
    try:
        session = session_from_document(document, "fuzzed.json")
    except InputError as exc:
        line = exc.line()
        assert "\n" not in line and field.replace("[0]", "") in line.replace("[0]", ""), line
        return
    results = session.results
    assert 0 <= results.elapsed <= MAX_SECONDS
    assert all(0 <= e.offset <= MAX_SECONDS for e in results.control_log)
    assert all(0 <= p.t <= MAX_SECONDS and 0 <= p.span <= MAX_SECONDS for p in results.timeline)
    assert 0 <= session.plan.load.users <= CEILING_USERS
    assert session.plan.load.rate is None or 0 <= session.plan.load.rate <= CEILING_RATE
    for write in (write_html, write_csv):
        out = io.StringIO()
        write(session, out)
        assert out.getvalue()
    assert "TOTAL" in summary_text(snapshot_from_session(session))
    assert math.isfinite(results.elapsed)


def test_a_session_at_the_bounds_reports_in_bounded_size() -> None:
    """The most a session may hold (100,000 changes + the stop, 3,600 points) still makes a
    report of a few MB: past 200 changes the charts leave the markers to the log's table."""
    document = crafted_document()
    first = document["results"]["control_log"][0]
    document["results"]["control_log"] = [
        dict(first, offset=i * 1e-4) for i in range(MAX_CONTROL_EVENTS + 1)
    ]
    point = document["results"]["timeline"][0]
    document["results"]["timeline"] = [
        dict(point, t=float(i + 1)) for i in range(DEFAULT_MAX_POINTS)
    ]
    document["results"]["elapsed"] = float(DEFAULT_MAX_POINTS)
    session = session_from_document(document, "full.json")
    out = io.StringIO()
    write_html(session, out)
    html = out.getvalue()
    assert f"{MAX_CONTROL_EVENTS + 1:,} live changes: too many to mark on the charts" in html
    assert 'class="marker"' not in html
    # The log's table, whole: each row an offset, "users", 8.
    assert html.count("<td>users</td><td>8</td>") == MAX_CONTROL_EVENTS + 1
    assert len(html) < 10 * 2**20


async def test_viewing_a_session_at_the_bounds_keeps_the_log_to_its_last_lines(
    tmp_path: Path,
) -> None:
    """`stressdeck view` of 100,001 changes: the Log pane draws the 500 it keeps (writing
    every one only to drop it took 67 s)."""
    document = crafted_document()
    first = document["results"]["control_log"][0]
    document["results"]["control_log"] = [
        dict(first, offset=i * 1e-4, value=float(i % 7)) for i in range(MAX_CONTROL_EVENTS + 1)
    ]
    path = tmp_path / "full.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    app = view_app(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "STOPPED" in screen_text(app), timeout=60)
        await pilot.press("5")
        log = app.screen.query_one(EventLog)
        await wait_for(pilot, lambda: len(log.lines_text) == MAX_LINES, timeout=60)
        # The newest changes, in order: users set to i % 7 for the last i.
        users = [line.split()[-1] for line in log.lines_text if "users set to" in line]
        expected = [str(i % 7) for i in range(MAX_CONTROL_EVENTS + 1)][-len(users) :]
        assert users == expected and len(users) >= MAX_LINES - 5
        assert len(log.lines) <= MAX_LINES * 2  # wrapped lines of the kept events only
