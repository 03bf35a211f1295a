"""Sustained thresholds (``p95 < 100ms for 3s``), open-model stages without a base rate, and
the load a live abort names: parsing in tables, the verdicts against real servers."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import pytest
from aiohttp import web
from conftest import ServerThread
from test_engine import assert_counted_once, make_plan
from waiting import eventually

from stressdeck.core.errors import InputError
from stressdeck.core.units import format_rate
from stressdeck.engine import build_plan, start
from stressdeck.engine.hdr import Counts
from stressdeck.engine.runner import threshold_metrics
from stressdeck.engine.snapshot import Snapshot, TimelinePoint
from stressdeck.engine.sustained import SustainedThresholds
from stressdeck.engine.timeline import EndpointPart, Timeline
from stressdeck.profiles.profile import parse_profile
from stressdeck.profiles.thresholds import Breach, evaluate, parse_threshold
from stressdeck.sessions.exports import write_html, write_junit
from stressdeck.sessions.replay import plan_for_replay
from stressdeck.sessions.session import build_session, dumps_session, session_from_document
from stressdeck.sessions.summary import progress_line, thresholds_text

SPEED = web.AppKey("speed", dict)


def speed_app() -> web.Application:
    """/api answers after ``app[SPEED]["ms"]`` ms (the test changes it live), /fast at once;
    both count what they received and answered."""
    app = web.Application()
    app[SPEED] = {"ms": 0, "received": 0, "slow_answered": 0}

    async def api(request: web.Request) -> web.Response:
        state = request.app[SPEED]
        state["received"] += 1
        delay = state["ms"]
        if delay:
            await asyncio.sleep(delay / 1000)
            state["slow_answered"] += 1
        return web.Response(text="ok")

    async def fast(request: web.Request) -> web.Response:
        request.app[SPEED]["received"] += 1
        return web.Response(text="ok")

    app.router.add_get("/api", api)
    app.router.add_get("/fast", fast)
    return app


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "metric", "limit", "sustain"),
    [
        ("p95 < 200ms for 10s", "p95", 200.0, 10.0),
        ("p99<1s for 2", "p99", 1000.0, 2.0),
        ("error_rate < 1% for 1m", "error_rate", 0.01, 60.0),
        ("rps > 100 for 30s", "rps", 100.0, 30.0),
        ("dropped < 1 for 5s", "dropped", 1.0, 5.0),
        ("p95 < 200ms", "p95", 200.0, 0.0),
    ],
)
def test_sustained_expressions_parse(expr: str, metric: str, limit: float, sustain: float) -> None:
    threshold = parse_threshold(expr)
    assert (threshold.metric, threshold.limit, threshold.sustain) == (metric, limit, sustain)
    assert evaluate(threshold, {metric: 0.0}).sustain == sustain


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "p999 < 5ms for 10s",
            'x.toml: thresholds[0]: "for" needs a figure kept per second; p999 is not one '
            "(expected one of p50, p95, p99, error_rate, rps, dropped)",
        ),
        ("p95 < 5ms for 0.5s", 'x.toml: thresholds[0]: expected "for" at least 1s, got'),
        ("p95 < 5ms for 10h", "x.toml: thresholds[0]: expected an expression like"),
    ],
)
def test_bad_sustained_expressions_are_one_line(expr: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_threshold(expr, "x.toml", "thresholds[0]")
    assert caught.value.line().startswith(message)


def test_a_breach_fails_only_once_it_has_lasted() -> None:
    breach = Breach(parse_threshold("p95 < 100ms for 4s"))
    # second ending at t: its p95 (None: nothing measured that second)
    for end, value in [(1, 150), (2, 150), (3, 50), (4, 150), (5, None), (6, 150)]:
        breach.observe(float(end), 1.0, value)
        assert breach.result(1.0, final=False).ok, end
    assert breach.longest == 3.0  # 3..6: the silent second does not end it
    breach.observe(7.0, 1.0, 150)
    result = breach.result(80.0, final=True)
    assert (result.ok, result.failed_at, result.breached_for) == (False, 7.0, 4.0)
    assert result.breach_text() == "broken 4 s in a row, failed at 7 s"


def test_a_sustained_threshold_never_measured_fails_at_the_end() -> None:
    breach = Breach(parse_threshold("p95 < 100ms for 3s"))
    breach.observe(1.0, 1.0, None)
    assert breach.result(None, final=False).ok
    assert not breach.result(None, final=True).ok


def test_an_endpoint_left_idle_breaks_its_rate_every_second() -> None:
    """A second in which an endpoint sent nothing is 0 requests/s for it, not a gap."""
    plan = make_plan(
        "http://127.0.0.1:1",
        [
            {"name": "a", "path": "/a", "thresholds": ["rps > 1 for 2s", "p95 < 5ms for 2s"]},
            {"name": "b", "path": "/b"},
        ],
    )
    sustained = SustainedThresholds(plan)
    timeline = Timeline(endpoints=plan.endpoint_names)
    for second in range(1, 5):
        active = [EndpointPart(0, 3, 0, 0, Counts.of_values([1000.0] * 3))] if second == 1 else []
        timeline.add(second - 0.5, 3, 0, 0, None, [*active, EndpointPart(1, 3, 0, 0, None)])
        sustained.observe(timeline.advance(second + 0.6, users=1, rate=None))
    rate, latency = plan.endpoint_thresholds[0]
    failed = sustained.result(rate, 0, 0, 0.75, final=True)
    assert (failed.ok, failed.failed_at, failed.breached_for) == (False, 3.0, 3.0)
    # Its latency was measured once, fine; idle seconds neither break nor hold it.
    held = sustained.result(latency, 1, 0, 1.0, final=True)
    assert (held.ok, held.breached_for) == (True, 0.0)


@pytest.mark.parametrize(
    ("value", "text"), [(7.50644, "7.51"), (138.8333, "138.8"), (1000.0, "1000"), (0.25, "0.25")]
)
def test_rates_are_printed_rounded(value: float, text: str) -> None:
    assert format_rate(value) == text


# -- against real servers ----------------------------------------------------------------------


def longest_breach(points: tuple[TimelinePoint, ...], limit_ms: float) -> float:
    """The longest run of seconds in the timeline whose p95 broke the limit (the test's own
    reading of the per-second figures)."""
    longest = run = 0.0
    for point in points:
        if not point.requests:
            continue
        run = run + point.span if point.p95 >= limit_ms else 0.0
        longest = max(longest, run)
    return longest


async def test_a_spike_shorter_than_for_neither_fails_nor_aborts() -> None:
    with ServerThread(speed_app()) as server:
        state = server.app[SPEED]
        plan = make_plan(
            server.url,
            [{"name": "api", "path": "/api"}],
            model="open",
            rate=40,
            duration="5s",
            thresholds=["p95 < 100ms for 4s"],
            abort_on_fail=True,
        )
        handle = await start(plan)
        await eventually(lambda: state["received"] >= 40, 10, "the first second's requests")
        state["ms"] = 200
        await eventually(lambda: state["slow_answered"] >= 40, 10, "a second of slow answers")
        state["ms"] = 0
        final = await handle.wait()
    assert final.stop_reason == "duration reached"
    assert_counted_once(final)
    assert state["received"] == final.total.requests + final.total.cancelled
    [result] = final.thresholds
    # The whole run's p95 broke the limit: the plain threshold would have failed the run.
    assert not evaluate(parse_threshold("p95 < 100ms"), threshold_metrics(final.total)).ok
    assert result.ok and result.failed_at is None
    assert result.breached_for == longest_breach(final.timeline, 100.0)
    assert 1.0 <= result.breached_for < 4.0
    assert f"broken at most {round(result.breached_for, 1):g} s in a row" in thresholds_text(final)


async def test_a_held_breach_aborts_and_names_the_load() -> None:
    with ServerThread(speed_app()) as server:
        state = server.app[SPEED]
        plan = make_plan(
            server.url,
            [
                {"name": "api", "path": "/api", "thresholds": ["p95 < 100ms for 2s"]},
                {"name": "fast", "path": "/fast", "thresholds": ["p95 < 100ms for 2s"]},
            ],
            model="open",
            rate=20,
            duration="20s",
            abort_on_fail=True,
        )
        handle = await start(plan)
        await eventually(lambda: state["received"] >= 20, 10, "the first second's requests")
        state["ms"] = 200
        final = await handle.wait()
    assert final.stop_reason == "threshold p95 < 100ms for 2s (api) failed at rate 20/s"
    assert final.elapsed < 15
    assert_counted_once(final)
    assert state["received"] == final.total.requests + final.total.cancelled
    api, fast = final.thresholds
    assert (api.endpoint, api.ok, fast.endpoint, fast.ok) == ("api", False, "fast", True)
    assert api.failed_at is not None and api.breached_for >= 2.0
    # The verdict is the endpoint's per-second timeline: the seconds up to the failure broke it.
    [series] = [s for s in final.endpoint_timeline if s.name == "api"]
    breaking = [p for p in series.points if p.t <= api.failed_at and p.t > api.failed_at - 2]
    assert len(breaking) == 2 and all(p.p95 >= 100 for p in breaking), breaking
    assert all(p.p95 < 100 for p in series.points if p.t <= api.failed_at - api.breached_for)
    text = f"broken {round(api.breached_for, 1):g} s in a row, failed at {api.failed_at:g} s"
    assert text in thresholds_text(final)
    # Kept in the session, and shown by the JUnit and HTML exports.
    session = session_from_document(
        __import__("tomllib").loads(dumps_session(build_session(plan, final), ".toml")), "s.toml"
    )
    assert session.results.thresholds == final.thresholds
    junit, html = io.StringIO(), io.StringIO()
    write_junit(session, junit)
    write_html(session, html)
    assert text in junit.getvalue() and text in html.getvalue()


async def test_open_model_stages_need_no_base_rate() -> None:
    with ServerThread(speed_app()) as server:
        document: dict[str, Any] = {
            "name": "ramp",
            "base_url": server.url,
            "endpoints": [{"name": "api", "path": "/api"}],
            "load": {
                "model": "open",
                "stages": [{"duration": "2s", "target": 15}, {"duration": "1s", "target": 15}],
            },
        }
        plan = build_plan(parse_profile(document, "ramp.toml"))
        assert plan.load.rate is None and plan.load.duration == 3.0
        handle = await start(plan)
        lines: list[str] = []
        rates: list[float] = []

        def listen(snapshot: Snapshot) -> None:
            if snapshot.timeline:
                lines.append(progress_line(snapshot))
                rates.append(snapshot.rate or 0.0)

        handle.add_listener(listen)
        final = await handle.wait()
        received = server.app[SPEED]["received"]
    assert final.stop_reason == "duration reached"
    assert received == final.total.requests + final.total.cancelled
    # The stages gave the rate: it ramped (fractional on the way) and reached 15/s.
    assert final.timeline[-1].rate == 15.0
    assert any(rate != round(rate) for rate in rates), rates
    assert 25 <= received <= 35, received  # about 7.5 over the ramp's 2 s... + 15 in the last
    for line in lines:
        assert re.search(r"rate \d+(\.\d{1,2})?/s ", line), line
    # Its session replays with the same stages and still no base rate.
    replayed = plan_for_replay(build_session(plan, final), "ramp-session.toml")
    assert (replayed.load.rate, replayed.load.stages) == (None, plan.load.stages)


def test_open_model_without_rate_or_stages_is_still_refused() -> None:
    document = {
        "name": "x",
        "base_url": "http://127.0.0.1:1",
        "endpoints": [{"name": "a", "path": "/"}],
        "load": {"model": "open", "preset": "spike"},
    }
    with pytest.raises(InputError) as caught:
        build_plan(parse_profile(document, "x.toml"))
    assert caught.value.line() == (
        "x.toml: load.rate: required for the open model without stages (or pass --rate)"
    )
