"""The per-second timeline of a run, bounded in memory however long the run lasts."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from hdrh.histogram import HdrHistogram

from stressdeck.engine.bottleneck import (
    SecondFigures,
    Unloaded,
    classify,
    unloaded_after,
    worst,
)
from stressdeck.engine.hdr import Counts, log_buckets, mean_us, percentiles_us, summarise
from stressdeck.engine.snapshot import (
    EndpointPoint,
    EndpointSeries,
    EndpointSummary,
    HistogramBucket,
    Percentiles,
    TimelinePoint,
)

DEFAULT_MAX_POINTS = 3600
RECENT_SECONDS = 10
# Points kept over all endpoints' timelines together: past it each endpoint's older half is
# merged two into one, as the total's is. 1,000 endpoints keep 30 points each: their session
# grows by about 2.5 MB (TOML; measured by benchmarks/endpoint_timeline.py); a profile of a
# few endpoints keeps every second, as the total does.
ENDPOINT_POINTS_BUDGET = 30_000
MIN_ENDPOINT_POINTS = 16

P = TypeVar("P")


@dataclass
class _Counted:
    requests: int = 0
    errors: int = 0
    dropped: int = 0
    histogram: Counts = field(default_factory=Counts)

    def add(self, requests: int, errors: int, dropped: int, histogram: Counts | None) -> None:
        self.requests += requests
        self.errors += errors
        self.dropped += dropped
        if histogram is not None and histogram.get_total_count():
            self.histogram.add(histogram)


@dataclass
class _Second(_Counted):
    endpoints: dict[int, _Counted] = field(default_factory=dict)
    service: Counts = field(default_factory=Counts)
    loop_lags_ms: list[float] = field(default_factory=list)  # one per runner tick
    cpu_percent: float = 0.0


@dataclass(frozen=True)
class RunShape:
    """What a second's bottleneck is judged against: the load model and the generator's size."""

    model: str = "closed"
    connections: int = 0  # open model: lanes in all
    processes: int = 1


class EndpointPart(NamedTuple):
    """One endpoint's share of a worker delta, as the timeline folds it."""

    endpoint: int  # its position in the plan
    requests: int
    errors: int
    dropped: int
    latency: Counts | None


class ClosedSecond(NamedTuple):
    """A second as it closed: the total's point and each active endpoint's, with how many
    latencies each holds (0: its percentiles were not measured, whatever they read)."""

    total: TimelinePoint
    measured: int
    endpoints: tuple[tuple[int, EndpointPoint, int], ...]


class Timeline:
    """Folds worker deltas into one point per second of the run.

    Each delta lands in the second that holds the middle of the interval it covers (by
    the worker's own clock), so a point counts what happened in that second whenever the
    delta reached the runner. A second is closed ``grace`` seconds after it ends, leaving
    time for every worker's delta to arrive.

    Past ``max_points`` the older half is summarised two points into one (percentiles
    become request-weighted means of their seconds), so a day-long soak keeps recent
    seconds exact and the whole run in bounded memory.
    """

    def __init__(
        self,
        max_points: int = DEFAULT_MAX_POINTS,
        grace: float = 0.5,
        endpoints: Sequence[str] = (),
        endpoint_budget: int = ENDPOINT_POINTS_BUDGET,
        shape: RunShape = RunShape(),
    ) -> None:
        self.max_points = max(max_points, 4)
        self.grace = grace
        self.shape = shape
        self._unloaded = Unloaded()  # the run's lowest service time, for the bottleneck
        self.points: list[TimelinePoint] = []
        self._open: dict[int, _Second] = {}
        self._next_second = 1  # the first second not yet closed
        self._recent: deque[Counts] = deque(maxlen=RECENT_SECONDS)
        self.endpoint_names = tuple(endpoints)
        self.max_endpoint_points = min(
            self.max_points,
            max(endpoint_budget // max(len(self.endpoint_names), 1), MIN_ENDPOINT_POINTS),
        )
        self.endpoint_points: list[list[EndpointPoint]] = [[] for _ in self.endpoint_names]
        # The last closed seconds, each with its own counts per endpoint, and their sum per
        # endpoint, kept rolling: a closing second is added, the one leaving the window taken
        # away (merging ten seconds of 1,000 endpoints every second cost the runner 40 ms).
        self._recent_seconds: deque[_Second] = deque()
        self._recent_spans: deque[float] = deque()
        self._window: dict[int, _Counted] = {}
        self.recent_endpoints: tuple[EndpointSummary, ...] = ()
        self.recent_total: EndpointSummary | None = None

    def add(
        self,
        at: float,
        requests: int,
        errors: int,
        dropped: int,
        histogram: Counts | HdrHistogram | None,
        endpoints: Sequence[EndpointPart] = (),
        service: Counts | None = None,
    ) -> None:
        """Fold what happened around ``at`` seconds into the run; late deltas join the oldest
        open second. ``endpoints``: the same delta per endpoint (those that did something)."""
        bucket = self._bucket(at)
        bucket.requests += requests
        bucket.errors += errors
        bucket.dropped += dropped
        if histogram is not None and histogram.get_total_count():
            bucket.histogram.add(histogram)
        for part in endpoints:
            counted = bucket.endpoints.get(part.endpoint)
            if counted is None:
                counted = bucket.endpoints[part.endpoint] = _Counted()
            counted.add(part.requests, part.errors, part.dropped, part.latency)
        if service is not None and service.get_total_count():
            bucket.service.add(service)

    def note_health(self, at: float, loop_lag_ms: float, cpu_percent: float) -> None:
        """The generator's health as of ``at`` seconds: the second keeps its worst."""
        bucket = self._bucket(at)
        bucket.loop_lags_ms.append(loop_lag_ms)
        bucket.cpu_percent = max(bucket.cpu_percent, cpu_percent)

    def _bucket(self, at: float) -> _Second:
        second = max(math.ceil(at), self._next_second, 1)
        return self._open.setdefault(second, _Second())

    def advance(self, now: float, users: int, rate: float | None) -> list[ClosedSecond]:
        """Close every second that ended at least ``grace`` seconds before ``now``."""
        closed = []
        while self._next_second + self.grace <= now:
            closed.append(self._close_second(float(self._next_second), 1.0, users, rate))
        if closed:
            self._refresh_recent()
        return closed

    def close(self, end: float, users: int, rate: float | None) -> list[ClosedSecond]:
        """Close everything at the end of a run; the last second may be partial."""
        closed = []
        while self._next_second < end - 1e-3:
            closed.append(self._close_second(float(self._next_second), 1.0, users, rate))
        span = end - (self._next_second - 1)
        leftover = self._open.get(self._next_second)
        if (
            leftover is not None
            and (leftover.requests or leftover.errors or leftover.dropped)
            and span > 1e-3
        ):
            closed.append(self._close_second(end, span, users, rate))
        self._refresh_recent()
        return closed

    def endpoint_series(self) -> tuple[EndpointSeries, ...]:
        """Each endpoint's timeline, for the final snapshot and the session."""
        return tuple(
            EndpointSeries(name, tuple(points))
            for name, points in zip(self.endpoint_names, self.endpoint_points, strict=True)
        )

    def recent_buckets(self) -> tuple[HistogramBucket, ...]:
        """Latency buckets of the last ten seconds (those closed plus those still open)."""
        return self.recent()[0]

    def recent(self) -> tuple[tuple[HistogramBucket, ...], Percentiles]:
        """Latency buckets and percentiles of the last ten seconds, from one merge."""
        merged = Counts()
        for histogram in (*self._recent, *(s.histogram for s in self._open.values())):
            if histogram.get_total_count():
                merged.add(histogram)
        return log_buckets(merged), summarise(merged)

    def _close_second(self, t: float, span: float, users: int, rate: float | None) -> ClosedSecond:
        bucket = self._open.pop(self._next_second, None) or _Second()
        # Nothing answered in this second: no latency, not 0 ms.
        p50: float | None = None
        p95: float | None = None
        p99: float | None = None
        if bucket.histogram.get_total_count():
            p50, p95, p99 = _percentiles_ms(bucket.histogram)
        lags = sorted(bucket.loop_lags_ms)
        service_low, service_p50 = (v / 1000 for v in percentiles_us(bucket.service, (0.0, 50.0)))
        figures = SecondFigures(
            model=self.shape.model,
            requests=bucket.requests,
            rps=bucket.requests / span,
            asked_rate=rate,
            dropped=bucket.dropped,
            latency_p50_ms=p50 if p50 is not None else 0.0,
            service_p50_ms=service_p50,
            service_mean_ms=mean_us(bucket.service) / 1000,
            service_low_ms=service_low,
            connections=self.shape.connections,
            processes=self.shape.processes,
            cpu_percent=bucket.cpu_percent,
            loop_lag_ms=lags[len(lags) // 2] if lags else 0.0,
            users=users,
        )
        # Judged against the lowest service time so far, this second's included: a run that
        # starts overloaded still has its first requests' service time to compare with.
        self._unloaded = unloaded_after(self._unloaded, figures)
        bottleneck = classify(figures, self._unloaded)
        point = TimelinePoint(
            t=round(t, 3),
            span=round(span, 3),
            requests=bucket.requests,
            rps=bucket.requests / span,
            errors=bucket.errors,
            p50=p50,
            p95=p95,
            p99=p99,
            users=users,
            rate=rate,
            dropped=bucket.dropped,
            service_p50=service_p50,
            bottleneck=bottleneck,
        )
        self.points.append(point)
        endpoints = []
        for index, counted in sorted(bucket.endpoints.items()):
            if index >= len(self.endpoint_points):
                continue  # a timeline built without endpoint names keeps the total only
            series = self.endpoint_points[index]
            e50, e95, e99 = _percentiles_ms(counted.histogram)
            endpoint_point = EndpointPoint(
                t=round(t, 3),
                span=round(span, 3),
                requests=counted.requests,
                errors=counted.errors,
                dropped=counted.dropped,
                p50=e50,
                p95=e95,
                p99=e99,
            )
            series.append(endpoint_point)
            if len(series) > self.max_endpoint_points:
                self.endpoint_points[index] = _compact(series, _merge_endpoint_points)
            endpoints.append((index, endpoint_point, counted.histogram.get_total_count()))
        self._recent.append(bucket.histogram)
        self._roll_window(bucket, span)
        self._next_second += 1
        if len(self.points) > self.max_points:
            self.points = _compact(self.points, _merge_points)
        return ClosedSecond(point, bucket.histogram.get_total_count(), tuple(endpoints))

    def _roll_window(self, bucket: _Second, span: float) -> None:
        self._recent_seconds.append(bucket)
        self._recent_spans.append(span)
        for index, counted in bucket.endpoints.items():
            self._window.setdefault(index, _Counted()).add(
                counted.requests, counted.errors, counted.dropped, counted.histogram
            )
        if len(self._recent_seconds) > RECENT_SECONDS:
            leaving = self._recent_seconds.popleft()
            self._recent_spans.popleft()
            for index, counted in leaving.endpoints.items():
                window = self._window[index]
                window.requests -= counted.requests
                window.errors -= counted.errors
                window.dropped -= counted.dropped
                window.histogram.take_away(counted.histogram)
                if not (window.requests or window.dropped):
                    del self._window[index]

    def _refresh_recent(self) -> None:
        """The last closed seconds per endpoint and in total (the console's window)."""
        seconds = sum(self._recent_spans)
        if not seconds:
            return
        idle = _Counted()
        self.recent_endpoints = tuple(
            _window(name, [self._window.get(index, idle)], seconds)
            for index, name in enumerate(self.endpoint_names)
        )
        self.recent_total = _window("total", list(self._recent_seconds), seconds)


def _percentiles_ms(histogram: Counts) -> tuple[float, float, float]:
    p50, p95, p99 = percentiles_us(histogram, (50.0, 95.0, 99.0))
    return p50 / 1000, p95 / 1000, p99 / 1000


def _window(name: str, parts: list[_Counted], seconds: float) -> EndpointSummary:
    """One endpoint's figures over a window of ``seconds``, from its seconds' counts."""
    requests = sum(part.requests for part in parts)
    errors = sum(part.errors for part in parts)
    histograms = [part.histogram for part in parts if part.histogram.get_total_count()]
    if len(histograms) == 1:
        latency = summarise(histograms[0])  # cached on it until it changes
    else:
        latency = summarise(Counts.merged(histograms)) if histograms else Percentiles()
    return EndpointSummary(
        name=name,
        requests=requests,
        errors=errors,
        rps=requests / seconds,
        interval_rps=requests / seconds,
        error_rate=errors / requests if requests else 0.0,
        latency_ms=latency,
        dropped=sum(part.dropped for part in parts),
    )


def _compact(points: list[P], merge: Callable[[P, P], P]) -> list[P]:
    """The older half merged two points into one, the recent half kept as it is."""
    half = len(points) // 2
    old, recent = points[:half], points[half:]
    merged = [
        merge(old[i], old[i + 1]) if i + 1 < len(old) else old[i] for i in range(0, len(old), 2)
    ]
    return merged + recent


def _merge_endpoint_points(a: EndpointPoint, b: EndpointPoint) -> EndpointPoint:
    requests = a.requests + b.requests

    def weighted(x: float, y: float) -> float:
        return (x * a.requests + y * b.requests) / requests if requests else 0.0

    return EndpointPoint(
        t=b.t,
        # From a's start to b's end: the seconds between them, left out, saw nothing.
        span=round(b.t - (a.t - a.span), 3),
        requests=requests,
        errors=a.errors + b.errors,
        dropped=a.dropped + b.dropped,
        p50=weighted(a.p50, b.p50),
        p95=weighted(a.p95, b.p95),
        p99=max(a.p99, b.p99),
    )


def _merge_points(a: TimelinePoint, b: TimelinePoint) -> TimelinePoint:
    requests = a.requests + b.requests
    span = a.span + b.span

    def weighted(x: float | None, y: float | None) -> float | None:
        # A second without an answer has no time to weigh: the other one's stands alone.
        if x is None or y is None:
            return y if x is None else x
        return (x * a.requests + y * b.requests) / requests if requests else 0.0

    return TimelinePoint(
        t=b.t,
        span=span,
        requests=requests,
        rps=requests / span if span else 0.0,
        errors=a.errors + b.errors,
        p50=weighted(a.p50, b.p50),
        p95=weighted(a.p95, b.p95),
        p99=max((p for p in (a.p99, b.p99) if p is not None), default=None),
        users=b.users,
        rate=b.rate,
        dropped=a.dropped + b.dropped,
        service_p50=weighted(a.service_p50, b.service_p50) or 0.0,
        bottleneck=worst(a.bottleneck, b.bottleneck),
    )
