"""Statistics: percentiles match numpy within HDR precision; merging deltas loses nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stressdeck.engine.hdr import new_histogram, percentiles_us, summarise
from stressdeck.engine.stats import Recorder, Totals
from stressdeck.engine.timeline import Timeline

RELATIVE_PRECISION = 1e-3  # three significant figures


def _distributions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    return {
        "uniform": rng.uniform(100, 100_000, 50_000),
        "lognormal": rng.lognormal(8, 1.2, 50_000),
        "bimodal": np.concatenate(
            [rng.normal(2_000, 100, 40_000), rng.normal(900_000, 5_000, 10_000)]
        ),
        "exponential": rng.exponential(5_000, 50_000) + 1,
    }


@pytest.mark.parametrize("name", list(_distributions()))
def test_percentiles_match_numpy_within_hdr_precision(name: str) -> None:
    values = np.maximum(_distributions()[name].astype(np.int64), 1)
    histogram = new_histogram()
    for value in values:
        histogram.record_value(int(value))
    wanted = (50.0, 90.0, 95.0, 99.0, 99.9)
    ours = percentiles_us(histogram, wanted)
    ordered = np.sort(values)
    for p, measured in zip(wanted, ours, strict=False):
        # The sample at HDR's rank (nearest rank, rounded half up), exact, from numpy.
        exact = float(ordered[max(int(p * len(values) / 100 + 0.5), 1) - 1])
        assert abs(measured - exact) <= exact * RELATIVE_PRECISION * 2 + 1, (p, measured, exact)
        # and identical to the reference implementation we vectorised
        assert measured == histogram.get_value_at_percentile(p)
    summary = summarise(histogram)
    assert summary.count == len(values)
    assert summary.mean == pytest.approx(values.mean() / 1000, rel=RELATIVE_PRECISION)
    assert summary.max == pytest.approx(values.max() / 1000, rel=RELATIVE_PRECISION)


def test_merging_deltas_equals_recording_all_in_one() -> None:
    rng = np.random.default_rng(7)
    names = ["a", "b"]
    single = Recorder(2)
    workers = [Recorder(2) for _ in range(3)]
    deltas = []
    for tick in range(5):
        for worker_id, worker in enumerate(workers):
            for _ in range(200):
                endpoint = int(rng.integers(0, 2))
                latency = float(rng.lognormal(7, 1))
                if rng.random() < 0.1:
                    worker.record_error(endpoint, "timeout")
                    single.record_error(endpoint, "timeout")
                else:
                    status = int(rng.choice([200, 201, 500]))
                    args = (endpoint, status, status < 400, latency, latency / 2, latency / 3, 100)
                    worker.record_response(*args)
                    single.record_response(*args)
            deltas.append(worker.cut(tick, tick + 1, worker_id))
    # Folded as the runner folds them: one Totals, one add() per delta.
    merged, alone = Totals(names), Totals(names)
    for delta in deltas:
        merged.add(delta)
    alone.add(single.cut(0, 5))
    for ours, reference in [
        (merged.total, alone.total),
        *zip(merged.endpoints, alone.endpoints, strict=False),
    ]:
        a, b = ours.summary(5.0), reference.summary(5.0)
        assert a == b
    total = merged.total.summary(5.0)
    assert total.requests == 3 * 5 * 200
    assert total.requests == sum(total.status_counts.values()) + sum(total.error_counts.values())


def test_many_endpoints_folded_at_once_equal_one_by_one() -> None:
    """The runner sums a delta's endpoints first (``merge_histograms``, ``add_many``): the
    same figures as folding each endpoint's delta in turn."""
    from stressdeck.engine.hdr import Counts
    from stressdeck.engine.stats import EndpointTotals, decode_delta, merge_histograms

    rng = np.random.default_rng(3)
    worker = Recorder(40)
    for _ in range(2_000):
        endpoint = int(rng.integers(0, 40))
        if endpoint % 7 == 0:
            continue  # endpoints with nothing this tick: no histograms at all
        latency = float(rng.lognormal(6, 1.5))
        worker.record_response(endpoint, 200, True, latency, latency / 2, latency / 3, 10)
    deltas = worker.cut(0, 1, 0).endpoints
    decoded = [decode_delta(delta) for delta in deltas]
    one_by_one, at_once = EndpointTotals("a"), EndpointTotals("b")
    for delta, histograms in zip(deltas, decoded, strict=True):
        one_by_one.add(delta, histograms)
    at_once.add_many(deltas, merge_histograms(decoded))
    assert replace(at_once.summary(1.0), name="a") == one_by_one.summary(1.0)
    assert at_once.latency.index.tolist() == one_by_one.latency.index.tolist()
    assert at_once.latency.count.tolist() == one_by_one.latency.count.tolist()
    assert Counts.merged([]).total == 0 and merge_histograms([]) == ()


def test_cut_starts_afresh() -> None:
    recorder = Recorder(1)
    recorder.record_response(0, 200, True, 1000, 1000, 500, 10)
    first = recorder.cut(0, 1)
    second = recorder.cut(1, 2)
    assert first.endpoints[0].requests == 1 and second.endpoints[0].requests == 0
    assert second.endpoints[0].latency == b""


def test_timeline_is_one_point_per_second_and_bounded() -> None:
    timeline = Timeline(max_points=100)
    histogram = new_histogram()
    histogram.record_value(2000)
    for tick in range(1, 4 * 1000 + 1):  # 1000 seconds of 250 ms ticks
        timeline.add(tick * 0.25 - 0.125, 10, 1, 0, histogram)
        timeline.advance(tick * 0.25, users=5, rate=None)
    timeline.close(1000.0, users=5, rate=None)
    assert len(timeline.points) <= 101
    assert sum(p.requests for p in timeline.points) == 4 * 1000 * 10
    assert sum(p.span for p in timeline.points) == pytest.approx(1000)
    assert timeline.points[-1].t == 1000 and timeline.points[-1].span == 1.0
    assert timeline.points[0].span > 1  # old seconds were summarised
    assert all(p.requests == 40 for p in timeline.points if p.span == 1.0)


def test_late_deltas_land_in_their_own_second() -> None:
    timeline = Timeline(grace=0.5)
    histogram = new_histogram()
    timeline.add(0.9, 5, 0, 0, histogram)
    timeline.add(1.2, 7, 0, 0, histogram)
    timeline.advance(1.4, users=1, rate=None)  # second one still open: within grace
    timeline.add(0.95, 3, 0, 0, histogram)  # a late worker's delta for second one
    timeline.advance(1.6, users=1, rate=None)
    timeline.add(0.99, 2, 0, 0, histogram)  # too late: joins the oldest open second
    timeline.close(1.8, users=1, rate=None)
    assert [(p.t, p.span, p.requests) for p in timeline.points] == [(1.0, 1.0, 8), (1.8, 0.8, 9)]


def _edge_values() -> list[int]:
    edges = [1, 2, 3, 2047, 2048, 2049, 3_600_000_000, 3_599_999_999]
    for power in range(1, 32):
        edges += [2**power - 1, 2**power, 2**power + 1]
    rng = np.random.default_rng(11)
    return edges + [int(v) for v in rng.integers(1, 3_600_000_000, 5_000)]


def test_bucket_indexes_are_hdrs_own() -> None:
    from stressdeck.engine.hdr import bucket_indexes

    values = [v for v in _edge_values() if v <= 3_600_000_000]
    reference = new_histogram()
    expected = [reference._counts_index_for(v) for v in values]
    assert bucket_indexes(values).tolist() == expected
    # Out of range and fractional values are clamped and truncated as the recorder always did.
    assert bucket_indexes([0.4, -5.0, 1.9, 1e12]).tolist() == [
        reference._counts_index_for(1),
        reference._counts_index_for(1),
        reference._counts_index_for(1),
        reference._counts_index_for(3_600_000_000),
    ]


def test_index_tables_are_hdrs_own_values() -> None:
    """The per-index value tables are vectorised; hdrh computes them one index at a time."""
    from stressdeck.engine.hdr import _index_values, _layout, _median_values, mean_us

    layout = _layout()
    indices = range(layout.counts_len)
    highest = [layout.get_highest_equivalent_value(layout.get_value_from_index(i)) for i in indices]
    medians = [layout._hdr_median_equiv_value(value) for value in highest]
    assert _index_values().tolist() == highest
    assert _median_values().tolist() == medians
    histogram = new_histogram()
    for value in _edge_values():
        histogram.record_value(min(value, 3_600_000_000))
    assert mean_us(histogram) == pytest.approx(histogram.get_mean_value(), rel=1e-12)


def test_sparse_counts_round_trip_the_hdr_wire_format() -> None:
    from stressdeck.engine.hdr import Counts, decode_histogram

    values = _edge_values()
    dense = new_histogram()
    for value in values:
        dense.record_value(min(value, 3_600_000_000))
    sparse = Counts.of_values(values)
    assert sparse.get_total_count() == dense.get_total_count()
    assert sparse.get_max_value() == dense.get_max_value()
    assert summarise(sparse) == summarise(dense)
    assert sparse.encode() == dense.encode()
    again = decode_histogram(sparse.encode())
    assert again.index.tolist() == sparse.index.tolist()
    assert again.count.tolist() == sparse.count.tolist()
    half = Counts.of_values(values[::2])
    half.add(Counts.of_values(values[1::2]))
    assert summarise(half) == summarise(sparse) and half.encode() == sparse.encode()
