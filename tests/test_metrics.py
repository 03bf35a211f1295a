"""Target metrics: the maths as pure functions, then real scrapes of the demo target's /metrics."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator

import pytest
from aiohttp import web
from conftest import ServerThread
from waiting import eventually

from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.observe.demo import BUCKETS, DemoServerThread
from stressdeck.observe.metrics import (
    MetricsScraper,
    MetricsSnapshot,
    SeriesSpec,
    _Series,
    counter_increase,
    histogram_quantile,
    parse_exposition,
    parse_series,
)
from stressdeck.profiles.profile import parse_profile

INF = math.inf


# ---- pure maths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(1, 0), (2, 10), (INF, 10)], 1.5),  # rank 5 of 10, halfway through (1, 2]
        (0.95, [(0.1, 50), (0.2, 90), (0.4, 100), (INF, 100)], 0.3),
        (0.5, [(0.1, 100), (INF, 100)], 0.05),  # the first bucket starts at 0
        (0.99, [(0.1, 10), (1, 20), (INF, 100)], 1.0),  # rank in +Inf: the highest finite bound
        (0.5, [(1, 0), (INF, 0)], None),  # nothing observed
        (0.5, [(1, 5)], None),  # no +Inf bucket: not a histogram
        (1.0, [(1, 4), (2, 4), (INF, 4)], 1.0),
        (0.0, [(1, 4), (2, 8), (INF, 8)], 0.0),
        (0.5, [(-1, 2), (INF, 4)], -1),  # a first bound <= 0 is returned as is
        (0.5, [(INF, 10), (2, 10), (1, 0)], 1.5),  # order does not matter
    ],
)
def test_histogram_quantile(
    q: float, buckets: list[tuple[float, float]], expected: float | None
) -> None:
    result = histogram_quantile(q, buckets)
    assert result == pytest.approx(expected) if expected is not None else result is None


@pytest.mark.parametrize(
    ("previous", "current", "increase"), [(10, 25, 15), (10, 10, 0), (100, 7, 7)]
)
def test_counter_increase_survives_a_reset(
    previous: float, current: float, increase: float
) -> None:
    assert counter_increase(previous, current) == increase


@pytest.mark.parametrize(
    ("text", "name", "labels", "function", "quantile"),
    [
        ("demo_requests_total", "demo_requests_total", (), None, None),
        (
            'demo_requests_total{route="/items", status="200"}',
            "demo_requests_total",
            (("route", "/items"), ("status", "200")),
            None,
            None,
        ),
        ("p99(demo_request_duration_seconds)", "demo_request_duration_seconds", (), "p99", 0.99),
        ('p99.9( x{a="q\\"uote"} )', "x", (("a", 'q"uote'),), "p99.9", 0.999),
        ("rate(x)", "x", (), "rate", None),
        ("MEAN(x)", "x", (), "mean", None),
    ],
)
def test_parse_series(
    text: str, name: str, labels: tuple, function: str | None, quantile: float | None
) -> None:
    spec = parse_series(text)
    assert (spec.name, spec.labels, spec.function, spec.quantile) == (
        name,
        labels,
        function,
        quantile,
    )


@pytest.mark.parametrize(
    "text", ["", "1abc", "rate(x", "x{a=1}", 'x{a="1"', "sum(x)", "p100(x)", "p0(x)", "x y"]
)
def test_parse_series_rejects_with_one_line(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_series(text)
    assert "\n" not in caught.value.line() and caught.value.line().startswith("--metric")


def exposition(requests: int, buckets: list[int], gauge: float = 3) -> str:
    """A tiny target: a counter, a histogram (cumulative counts for le 0.1, 0.5, +Inf), a gauge."""
    lines = [
        "# TYPE app_requests_total counter",
        f'app_requests_total{{code="200"}} {requests - 1}',
        'app_requests_total{code="500"} 1',
        "# TYPE app_seconds histogram",
    ]
    lines += [
        f'app_seconds_bucket{{le="{le}"}} {count}'
        for le, count in zip(("0.1", "0.5", "+Inf"), buckets, strict=False)
    ]
    lines += [
        f"app_seconds_sum {buckets[-1] * 0.2}",
        f"app_seconds_count {buckets[-1]}",
        "# TYPE app_open gauge",
        f"app_open {gauge}",
    ]
    return "\n".join(lines) + "\n"


def test_derived_series_from_two_scrapes() -> None:
    rate, p95, gauge = (
        _Series(parse_series(t), 10) for t in ("app_requests_total", "app_seconds", "app_open")
    )
    rate_200 = _Series(parse_series('app_requests_total{code="200"}'), 10)
    for t, text in ((0.0, exposition(11, [0, 0, 0])), (2.0, exposition(51, [10, 19, 20], gauge=5))):
        families = parse_exposition(text)
        for series in (rate, p95, gauge, rate_200):
            series.record(t, families)
    assert [p.value for p in rate.points] == [20.0]  # (51 - 11) / 2 s
    assert [p.value for p in rate_200.points] == [20.0]
    assert rate.history().unit == "/s" and p95.history().kind == "p95"
    # rank 19 of 20 is the 9th of 9 observations in (0.1, 0.5]: its upper edge
    assert p95.points[-1].value == pytest.approx(0.5)
    assert [p.value for p in gauge.points] == [3.0, 5.0]


def test_a_restarted_target_is_not_a_negative_rate() -> None:
    rate = _Series(parse_series("app_requests_total"), 10)
    p50 = _Series(parse_series("p50(app_seconds)"), 10)
    for t, text in ((0.0, exposition(500, [300, 400, 400])), (1.0, exposition(21, [10, 20, 20]))):
        for series in (rate, p50):
            series.record(t, parse_exposition(text))
    assert rate.points[-1].value == 21.0
    assert p50.points[-1].value == pytest.approx(0.1)


def test_wrong_function_for_the_type_is_a_marker() -> None:
    series = _Series(parse_series("p95(app_open)"), 10)
    series.record(0.0, parse_exposition(exposition(1, [0, 0, 0])))
    (point,) = series.points
    assert not point.ok and "needs a histogram" in (point.error or "")


def test_history_is_bounded() -> None:
    series = _Series(SeriesSpec("app_open", "app_open"), 5)
    families = parse_exposition(exposition(1, [0, 0, 0]))
    for t in range(50):
        series.record(float(t), families)
    assert len(series.points) == 5 and series.points[0].t == 45.0


# ---- real scrapes ----------------------------------------------------------------------------


@pytest.fixture
def demo() -> Iterator[str]:
    with DemoServerThread(seed=3) as server:
        yield server.url


SERIES = [
    "demo_requests_total",
    "demo_request_duration_seconds",
    'p95(demo_request_duration_seconds{route="/slow"})',
    "demo_in_flight",
    "process_resident_memory_bytes",
]


@pytest.mark.slow
async def test_scrape_while_traffic_runs(demo: str) -> None:
    snapshots: list[MetricsSnapshot] = []
    scraper = MetricsScraper(
        f"{demo}/metrics", series=SERIES, interval=0.25, on_snapshot=snapshots.append
    )
    document = {
        "name": "metrics",
        "base_url": demo,
        "load": {"model": "open", "rate": 60},
        "endpoints": [{"name": "slow", "path": "/slow", "query": {"ms": "30"}}],
    }
    plan = build_plan(parse_profile(document, "metrics.toml"), Overrides(duration=3.0), env={})
    async with scraper:
        final = await (await start(plan)).wait()
    snapshot = scraper.snapshot()
    assert snapshot.failures == 0 and snapshot.scrapes >= 8 and snapshots[-1] is snapshot
    sent_rate = final.total.requests / 3.0
    rates = [v for v in snapshot.get("demo_requests_total").values()[2:-2] if v is not None]
    assert rates and all(v > 0 for v in rates)
    mean_rate = sum(rates) / len(rates)
    assert 0.6 * sent_rate <= mean_rate <= 1.4 * sent_rate, (mean_rate, sent_rate)
    # /slow?ms=30 sleeps 30 ms: its observations land in the (0.025, 0.05] bucket, or above when the
    # machine is busy; a p95 interpolated from buckets stays within the bucket bounds.
    p95s = [v for v in snapshot.get(SERIES[2]).values() if v is not None]
    assert p95s and all(0.025 <= v <= BUCKETS[-1] for v in p95s)
    assert min(p95s) <= 0.05
    overall = [v for v in snapshot.get(SERIES[1]).values() if v is not None]
    assert overall and all(0 < v <= BUCKETS[-1] for v in overall)
    memory = snapshot.get("process_resident_memory_bytes")
    assert memory is not None and memory.unit == "B" and (memory.last.value or 0) > 1_000_000
    in_flight = [v for v in snapshot.get("demo_in_flight").values() if v is not None]
    assert in_flight and all(v >= 0 for v in in_flight)
    json.dumps(snapshot.to_dict())  # a session can store it as it is


async def test_a_refused_port_is_a_marker_not_an_exception(refused_url: str) -> None:
    scraper = MetricsScraper(
        f"{refused_url}/metrics", series=["demo_requests_total"], interval=0.05
    )
    snapshot = await scraper.scrape_once()
    assert snapshot.failures == 1 and snapshot.last_error
    (point,) = snapshot.get("demo_requests_total").points
    assert point.ok is False and point.value is None and point.error == snapshot.last_error
    assert snapshot.scrape_points[-1].ok is False
    stop = asyncio.Event()
    task = asyncio.create_task(scraper.run(stop))
    await eventually(lambda: scraper.snapshot().failures >= 3, what="three failed scrapes")
    stop.set()
    await asyncio.wait_for(task, 2)  # ran, failed every time, returned cleanly
    snapshot = scraper.snapshot()
    assert snapshot.failures == snapshot.scrapes >= 3


def misbehaving_app() -> web.Application:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>not metrics</html>")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late 1\n")

    app = web.Application()
    app.router.add_get("/garbage", garbage)
    app.router.add_get("/missing", missing)
    app.router.add_get("/slow", slow)
    return app


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/garbage", "bad exposition text"),
        ("/missing", "HTTP 404"),
        ("/slow", "timed out"),
    ],
)
async def test_bad_endpoints_are_markers(path: str, error: str) -> None:
    with ServerThread(misbehaving_app()) as server:
        scraper = MetricsScraper(server.url + path, series=["x"], timeout=0.3)
        snapshot = await scraper.scrape_once()
        await scraper.close()
    assert snapshot.failures == 1 and error in (snapshot.last_error or "")
    assert snapshot.series[0].points[-1].ok is False


async def test_bad_configuration_is_refused_up_front(refused_url: str) -> None:
    with pytest.raises(InputError):
        MetricsScraper("ftp://127.0.0.1/metrics")
    with pytest.raises(InputError):
        MetricsScraper("http://127.0.0.1:1/metrics", series=["rate(x"])
    scraper = MetricsScraper(f"{refused_url}/metrics", series=["x", "x", "y"], timeout=0.3)
    snapshot = await scraper.scrape_once()
    await scraper.close()
    assert [series.spec for series in snapshot.series] == ["x", "y"]  # a series named twice is one


# ---- wired into a run: profile fields, the snapshot, the results -------------------------------


def test_a_metrics_url_override_may_be_a_path_on_the_target() -> None:
    """As a profile's ``metrics_url``: ``--metrics-url /metrics`` (or the console's field)
    follows the target, including a --base-url given beside it; a bad URL is still refused."""
    document = {
        "name": "m",
        "base_url": "http://127.0.0.1:1",
        "endpoints": [{"name": "health", "path": "/health"}],
    }
    profile = parse_profile(document, "m.toml")
    assert (
        build_plan(profile, Overrides(metrics_url="/metrics"), env={}).metrics_url
        == "http://127.0.0.1:1/metrics"
    )
    moved = build_plan(
        profile, Overrides(base_url="http://127.0.0.1:2", metrics_url="/metrics"), env={}
    )
    assert moved.metrics_url == "http://127.0.0.1:2/metrics"
    with pytest.raises(InputError, match="--metrics-url"):
        build_plan(profile, Overrides(metrics_url="metrics"), env={})


async def test_a_run_scrapes_the_profile_metrics_url_into_its_snapshots(demo: str) -> None:
    document = {
        "name": "metrics",
        "base_url": demo,
        "metrics_url": "/metrics",
        "metrics": ["demo_requests_total", "process_resident_memory_bytes"],
        "endpoints": [{"name": "health", "path": "/health"}],
        "load": {"users": 2},
    }
    plan = build_plan(parse_profile(document, "metrics.toml"), Overrides(duration=3.0), env={})
    assert plan.metrics_url == f"{demo}/metrics"  # "/metrics" is on the target, wherever it runs
    final = await (await start(plan)).wait()
    metrics = final.target_metrics
    assert metrics is not None and metrics.failures == 0 and metrics.scrapes >= 3
    rates = [v for v in metrics.get("demo_requests_total").values() if v is not None]
    # Every request we sent, the target counted: its rate is ours (±40 %, scrape timing).
    mean_rate = sum(rates) / len(rates) if rates else 0.0
    assert 0.6 * final.total.rps <= mean_rate <= 1.4 * final.total.rps, (rates, final.total.rps)
    assert (metrics.get("process_resident_memory_bytes").last.value or 0) > 1_000_000


async def test_a_dead_metrics_endpoint_marks_failures_and_the_run_goes_on(
    demo: str, refused_url: str
) -> None:
    document = {
        "name": "metrics",
        "base_url": demo,
        "metrics_url": f"{refused_url}/metrics",
        "metrics": ["demo_requests_total"],
        "endpoints": [{"name": "health", "path": "/health"}],
        "load": {"users": 2},
    }
    final = await (
        await start(
            build_plan(parse_profile(document, "metrics.toml"), Overrides(duration=2.0), env={})
        )
    ).wait()
    assert final.stop_reason == "duration reached" and final.total.requests > 100
    metrics = final.target_metrics
    assert metrics is not None and metrics.scrapes >= 2 and metrics.failures == metrics.scrapes
    assert all(point.ok is False for point in metrics.get("demo_requests_total").points)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": ["demo_requests_total"]}, "metrics: needs metrics_url"),
        ({"metrics_url": "/metrics", "metrics": ["p95("]}, "metrics[0]: expected a series"),
        ({"metrics_url": "/metrics", "metrics": "demo_requests_total"}, "metrics: expected a list"),
    ],
)
def test_metrics_fields_are_checked_at_load(change: dict, message: str) -> None:
    document = {
        "name": "m",
        "base_url": "http://127.0.0.1:1",
        "endpoints": [{"name": "a", "path": "/"}],
        **change,
    }
    with pytest.raises(InputError) as caught:
        parse_profile(document, "m.toml")
    assert message in caught.value.line()


async def test_a_password_in_the_metrics_url_is_not_shown_and_inf_is_valid_json() -> None:
    import json
    import math

    from stressdeck.observe.metrics import MetricPoint, MetricsScraper

    app = web.Application()

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="no")

    app.router.add_get("/metrics", broken)
    with ServerThread(app) as server:
        url = server.url.replace("http://", "http://scraper:hunter2@") + "/metrics"
        scraper = MetricsScraper(url, interval=0.05)
        await scraper.start()
        await eventually(lambda: scraper.snapshot().failures >= 1, what="a failed scrape")
        await scraper.stop()
    shown = json.dumps(scraper.snapshot().to_dict())
    assert scraper.snapshot().failures >= 1 and "HTTP 500 from" in shown
    assert "hunter2" not in shown
    assert json.loads(json.dumps(MetricPoint(1.0, math.inf).to_dict()))["value"] is None
