"""Each endpoint's per-second timeline: exact against the server's counts, bounded at 1,000
endpoints, kept in sessions (older sessions without it still load), drawn by the HTML report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import tomli_w
from conftest import ServerThread
from test_engine import assert_counted_once
from test_sustained import SPEED, speed_app
from waiting import eventually

from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.hdr import Counts
from stressdeck.engine.snapshot import EndpointPoint, EndpointSeries, Snapshot
from stressdeck.engine.timeline import EndpointPart, Timeline
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.exports import write_html
from stressdeck.sessions.session import load_session, save_session

ENDPOINT_COUNT = 1000


def two_endpoints(url: str, duration: str = "4s") -> dict:
    return {
        "name": "two",
        "base_url": url,
        "endpoints": [{"name": "api", "path": "/api"}, {"name": "fast", "path": "/fast"}],
        "load": {"model": "open", "rate": 40, "duration": duration},
    }


async def run_with_a_slowdown(server: ServerThread) -> tuple[object, Snapshot, list[Snapshot]]:
    """4 s at 40/s; after the first 40 requests /api answers in 150 ms, /fast stays fast."""
    state = server.app[SPEED]
    plan = build_plan(parse_profile(two_endpoints(server.url), "two.toml"))
    handle = await start(plan)
    seen: list[Snapshot] = []
    handle.add_listener(seen.append)
    await eventually(lambda: state["received"] >= 40, 10, "the first second's requests")
    state["ms"] = 150
    return plan, await handle.wait(), seen


async def test_each_endpoint_has_its_seconds_exactly(tmp_path: Path) -> None:
    with ServerThread(speed_app()) as server:
        plan, final, seen = await run_with_a_slowdown(server)
        received = server.app[SPEED]["received"]
    assert_counted_once(final)
    assert received == final.total.requests + final.total.cancelled
    series = {s.name: s for s in final.endpoint_timeline}
    assert list(series) == ["api", "fast"]
    for summary in final.endpoints:
        points = series[summary.name].points
        # Every request and error is in exactly one second of its endpoint.
        assert sum(p.requests for p in points) == summary.requests
        assert sum(p.errors for p in points) == summary.errors
        assert all(p.span == 1.0 for p in points[:-1])
    # Per second, the endpoints add up to the total's point.
    by_second: dict[float, int] = {}
    for s in series.values():
        for p in s.points:
            by_second[p.t] = by_second.get(p.t, 0) + p.requests
    assert by_second == {p.t: p.requests for p in final.timeline if p.requests}
    # The slowdown shows on /api alone, from the second after the change.
    # (the server's sleep is a floor; how fast /fast is on a busy machine is not asserted)
    api, fast = series["api"].points, series["fast"].points
    slow = api[-2]  # the last whole second of /api (its last point may be partial)
    [fast_then] = [p for p in fast if p.t == slow.t]
    assert slow.span == 1.0 and slow.p95 >= 150 and fast_then.p95 < slow.p95
    # Only the final snapshot carries it; every tick carries the last 10 s per endpoint.
    assert all(not s.endpoint_timeline for s in seen[:-1])
    assert [s.name for s in final.recent_endpoints] == ["api", "fast"]

    path = save_session(tmp_path / "two.toml", plan, final)  # type: ignore[arg-type]
    loaded = load_session(path)
    again = load_session(save_session(tmp_path / "again.json", plan, final))  # type: ignore[arg-type]
    assert loaded.results.endpoint_timeline == again.results.endpoint_timeline
    saved = {s.name: s for s in loaded.results.endpoint_timeline}
    for name, kept in series.items():
        assert [p.requests for p in saved[name].points] == [p.requests for p in kept.points]
        assert [p.p95 for p in saved[name].points] == [round(p.p95, 3) for p in kept.points]

    # An older session, saved before endpoint timelines were kept, still loads.
    older = json.loads((tmp_path / "again.json").read_text())
    del older["results"]["endpoint_timeline"]
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert load_session(tmp_path / "older.json").results.endpoint_timeline == ()

    # The HTML report draws every endpoint's p95, requests and errors per second.
    out = io.StringIO()
    write_html(loaded, out)
    html = out.getvalue()
    section = html[html.index("<h2>Per endpoint over time</h2>") : html.index("<h2>Target")]
    for title in ("p95 per second", "Requests per second", "Errors per second"):
        assert f'aria-label="{title} by endpoint"' in section
    assert section.count("<title>api</title></polyline>") == 3
    assert section.count("<title>fast</title></polyline>") == 3


def test_a_broken_endpoint_timeline_is_one_line(tmp_path: Path) -> None:
    with ServerThread(speed_app()) as server:
        import asyncio

        plan = build_plan(parse_profile(two_endpoints(server.url, "1s"), "two.toml"))
        final = asyncio.run(_run(plan))
    path = save_session(tmp_path / "s.json", plan, final)
    document = json.loads(path.read_text())
    document["results"]["endpoint_timeline"]["api"]["p95"].append(1.0)  # one value too many
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as caught:
        load_session(path)
    assert caught.value.line() == (
        f"{path}: results.endpoint_timeline.api: "
        "expected columns of one length (one value per point each)"
    )
    document["results"]["endpoint_timeline"]["api"]["p95"][-1] = "slow"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as caught:
        load_session(path)
    assert caught.value.line().startswith(f"{path}: results.endpoint_timeline.api.p95")


async def _run(plan: object) -> Snapshot:
    return await (await start(plan)).wait()  # type: ignore[arg-type]


def test_the_timeline_budget_is_shared_by_the_endpoints() -> None:
    assert Timeline(endpoints=[f"ep{i}" for i in range(ENDPOINT_COUNT)]).max_endpoint_points == 30
    assert Timeline(endpoints=["a", "b"]).max_endpoint_points == 3600  # the total's own cap
    assert Timeline(endpoints=["a"] * 5_000).max_endpoint_points == 16  # a floor


def test_a_long_run_keeps_each_endpoint_within_its_cap() -> None:
    """400 s of 100 endpoints, each active every second, with a cap of 20 points each: every
    request and error still in one point, the oldest merged, the last ten seconds exact."""
    names = [f"ep{i}" for i in range(100)]
    timeline = Timeline(endpoints=names, endpoint_budget=2000)
    assert timeline.max_endpoint_points == 20
    latency = Counts.of_values([2000.0, 3000.0])
    seconds = 400
    for second in range(1, seconds + 1):
        parts = [EndpointPart(i, 2, i % 2, 0, latency) for i in range(len(names))]
        timeline.add(second - 0.5, 2 * len(names), len(names) // 2, 0, None, parts)
        timeline.advance(second + 0.6, users=1, rate=None)
    timeline.close(float(seconds), users=1, rate=None)
    series = timeline.endpoint_series()
    assert all(len(s.points) <= 20 for s in series)
    for index, s in enumerate(series):
        assert sum(p.requests for p in s.points) == 2 * seconds
        assert sum(p.errors for p in s.points) == seconds * (index % 2)
        assert sum(p.span for p in s.points) == pytest.approx(seconds)
        assert s.points[-1].span == 1.0 and s.points[0].span > 1
        assert s.points[-1].p95 == pytest.approx(3.0, rel=0.01)
    assert timeline.recent_endpoints[1].requests == 20  # the last 10 s, exact
    assert timeline.recent_endpoints[1].error_rate == 0.5
    assert timeline.recent_endpoints[1].rps == 2.0


def test_a_thousand_endpoints_timelines_at_their_budget_stay_within_the_stated_size() -> None:
    """The stated bound: at 1,000 endpoints the per-endpoint timeline adds at most 3.5 MB to a
    TOML session and 5 MB to a JSON one (indented: a number a line), with wide figures (a
    day-long run, 5-digit counts and latencies, long names)."""
    cap = Timeline(endpoints=[str(i) for i in range(ENDPOINT_COUNT)]).max_endpoint_points
    series = tuple(
        EndpointSeries(
            f"GET /api/v1/items/{{id}}/variant-{i}",
            tuple(
                EndpointPoint(
                    t=86_400.0 - 1.5 * (cap - k),
                    span=1024.0 if k < cap // 2 else 1.0,
                    requests=54_321,
                    errors=1_234,
                    dropped=12,
                    p50=1234.567,
                    p95=23456.789,
                    p99=34567.891,
                )
                for k in range(cap)
            ),
        )
        for i in range(ENDPOINT_COUNT)
    )
    # Nested as in a session file, written as dumps_session writes it.
    document = {"results": {"endpoint_timeline": {s.name: s.to_dict() for s in series}}}
    toml_bytes = len(tomli_w.dumps(document).encode())
    json_bytes = len(json.dumps(document, indent=2, ensure_ascii=False).encode())
    assert sum(len(s.points) for s in series) == 30_000
    assert (toml_bytes < 3_500_000, json_bytes < 5_000_000) == (True, True), (
        toml_bytes,
        json_bytes,
    )
