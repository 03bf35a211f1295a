"""A target's hostile histogram buckets (issue 27.3): NaN, infinite, negative or falling counts
are a marker in the series, never an exception in the scraper, and the run ends on time."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from conftest import ServerThread
from hypothesis import example, given
from hypothesis import strategies as st

from stressdeck.observe.metrics import _Series, histogram_quantile, parse_exposition, parse_series

NAN_BUCKETS = (
    '# TYPE h histogram\nh_bucket{le="0.1"} NaN\nh_bucket{le="+Inf"} NaN\nh_sum NaN\nh_count NaN\n'
)

bounds = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 0.0, 0.1, 1.0]),
)
counts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 5.0]),
)
hostile_buckets = st.lists(st.tuples(bounds, counts), max_size=8).map(
    lambda pairs: [*pairs, (math.inf, pairs[-1][1] if pairs else math.nan)]
)


@pytest.mark.fuzz
@given(q=st.floats(allow_nan=True, allow_infinity=True), buckets=hostile_buckets)
# Found at 2,000 examples: the interpolation landed an ulp above its bucket's upper bound.
@example(
    q=1 / 3,
    buckets=[(7.562200372325584e-219, 0.0), (7.562200372325584e-219, 1.0), (math.inf, 1.0)],
)
def test_histogram_quantile_never_raises_and_is_finite_or_none(
    q: float, buckets: list[tuple[float, float]]
) -> None:
    result = histogram_quantile(q, buckets)
    if result is not None:
        assert math.isfinite(result)
        finite = [bound for bound, _ in buckets if math.isfinite(bound)]
        assert min([*finite, 0.0]) <= result <= max([*finite, 0.0])


def exposition_text(pairs: list[tuple[float, float]]) -> str:
    def number(value: float) -> str:
        return (
            "NaN"
            if math.isnan(value)
            else {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, repr(value))
        )

    lines = ["# TYPE h histogram"]
    lines += [f'h_bucket{{le="{number(bound)}"}} {number(count)}' for bound, count in pairs]
    return "\n".join(lines) + "\n"


@pytest.mark.fuzz
@given(scrapes=st.lists(hostile_buckets, min_size=2, max_size=4))
def test_a_series_over_hostile_scrapes_gets_one_point_each_and_never_raises(
    scrapes: list[list[tuple[float, float]]],
) -> None:
    series = _Series(parse_series("p95(h)"), 10)
    parsed = 0
    for t, pairs in enumerate(scrapes):
        try:
            families = parse_exposition(exposition_text(pairs))
        except ValueError:
            continue  # the scraper marks bad text itself (duplicate bounds, say)
        series.record(float(t), families)
        parsed += 1
    # The first good reading only starts the series; every later one is a point.
    assert len(series.points) == max(parsed - 1, 0)
    for point in series.points:
        assert point.value is None or math.isfinite(point.value)


def test_nan_buckets_are_a_marker() -> None:
    series = _Series(parse_series("p95(h)"), 10)
    for t in (0.0, 1.0):
        series.record(t, parse_exposition(NAN_BUCKETS))
    (point,) = series.points
    assert point.value is None and point.error == "the target's buckets hold NaN or infinite counts"


def nan_metrics_app() -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=NAN_BUCKETS)

    app = web.Application()
    app.router.add_get("/x", ok)
    app.router.add_get("/metrics", metrics)
    return app


def test_a_run_following_nan_buckets_ends_on_time_with_markers(tmp_path: Path) -> None:
    with ServerThread(nan_metrics_app()) as server:
        out = tmp_path / "out.json"
        done = subprocess.run(
            [sys.executable, "-m", "stressdeck", "run", f"{server.url}/x",
             "--rate", "20", "--model", "open", "--duration", "3s", "--processes", "1",
             "--metrics-url", "/metrics", "--metric", "p95(h)", "--json", str(out)],
            capture_output=True, text=True, timeout=90, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert document["stop_reason"] == "duration reached"
    metrics = document["target_metrics"]
    assert metrics["failures"] == 0 and metrics["scrapes"] >= 2
    (series,) = metrics["series"]
    assert series["spec"] == "p95(h)"
    points = series["points"]
    assert len(points) == metrics["scrapes"] - 1
    assert all(p["value"] is None for p in points)
    assert {p["error"] for p in points} == {"the target's buckets hold NaN or infinite counts"}
