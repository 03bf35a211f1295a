"""The per-second timeline of a run, bounded in memory however long the run lasts."""

from __future__ import annotations

from collections import deque

from hdrh.histogram import HdrHistogram

from stressdeck.engine.snapshot import HistogramBucket, TimelinePoint
from stressdeck.engine.stats import log_buckets, new_histogram, percentiles_us

DEFAULT_MAX_POINTS = 3600
RECENT_SECONDS = 10


class Timeline:
    """Folds tick intervals into one point per second.

    Past ``max_points`` the older half is summarised two points into one (percentiles
    become request-weighted means of their seconds), so a day-long soak keeps recent
    seconds exact and the whole run in bounded memory.
    """

    def __init__(self, max_points: int = DEFAULT_MAX_POINTS) -> None:
        self.max_points = max(max_points, 4)
        self.points: list[TimelinePoint] = []
        self._second_end = 1.0
        self._histogram = new_histogram()
        self._requests = self._errors = self._dropped = 0
        self._recent: deque[HdrHistogram] = deque(maxlen=RECENT_SECONDS)

    def add(self, elapsed: float, requests: int, errors: int, dropped: int,
            histogram: HdrHistogram, users: int, rate: float | None) -> None:
        """Fold one tick that ended at ``elapsed`` seconds."""
        while elapsed > self._second_end + 1e-9:
            self._flush(self._second_end, 1.0, users, rate)
        self._requests += requests
        self._errors += errors
        self._dropped += dropped
        if histogram.get_total_count():
            self._histogram.add(histogram)
        if abs(elapsed - self._second_end) <= 1e-9:
            self._flush(self._second_end, 1.0, users, rate)

    def close(self, elapsed: float, users: int, rate: float | None) -> None:
        """Flush the last, partial second at the end of a run."""
        span = elapsed - (self._second_end - 1.0)
        if span > 1e-3 and (self._requests or self._errors or self._dropped):
            self._flush(elapsed, span, users, rate)

    def recent_buckets(self) -> tuple[HistogramBucket, ...]:
        """Latency buckets of the last ten seconds (the seconds done plus the one under way)."""
        merged = new_histogram()
        for histogram in (*self._recent, self._histogram):
            if histogram.get_total_count():
                merged.add(histogram)
        return log_buckets(merged)

    def _flush(self, t: float, span: float, users: int, rate: float | None) -> None:
        p50, p95, p99 = (v / 1000 for v in percentiles_us(self._histogram, (50.0, 95.0, 99.0)))
        self.points.append(TimelinePoint(
            t=round(t, 3), span=round(span, 3), requests=self._requests, rps=self._requests / span,
            errors=self._errors, p50=p50, p95=p95, p99=p99, users=users, rate=rate, dropped=self._dropped,
        ))
        self._recent.append(self._histogram)
        self._histogram = new_histogram()
        self._requests = self._errors = self._dropped = 0
        self._second_end += 1.0
        if len(self.points) > self.max_points:
            self._compact()

    def _compact(self) -> None:
        half = len(self.points) // 2
        old, recent = self.points[:half], self.points[half:]
        merged = [_merge_points(old[i], old[i + 1]) if i + 1 < len(old) else old[i]
                  for i in range(0, len(old), 2)]
        self.points = merged + recent


def _merge_points(a: TimelinePoint, b: TimelinePoint) -> TimelinePoint:
    requests = a.requests + b.requests
    span = a.span + b.span

    def weighted(x: float, y: float) -> float:
        return (x * a.requests + y * b.requests) / requests if requests else 0.0

    return TimelinePoint(
        t=b.t, span=span, requests=requests, rps=requests / span if span else 0.0,
        errors=a.errors + b.errors, p50=weighted(a.p50, b.p50), p95=weighted(a.p95, b.p95),
        p99=max(a.p99, b.p99), users=b.users, rate=b.rate, dropped=a.dropped + b.dropped,
    )
