"""The per-second timeline of a run, bounded in memory however long the run lasts."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from stressdeck.engine.hdr import Counts, log_buckets, percentiles_us, summarise
from stressdeck.engine.snapshot import HistogramBucket, Percentiles, TimelinePoint

DEFAULT_MAX_POINTS = 3600
RECENT_SECONDS = 10


@dataclass
class _Second:
    requests: int = 0
    errors: int = 0
    dropped: int = 0
    histogram: Counts = field(default_factory=Counts)


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

    def __init__(self, max_points: int = DEFAULT_MAX_POINTS, grace: float = 0.5) -> None:
        self.max_points = max(max_points, 4)
        self.grace = grace
        self.points: list[TimelinePoint] = []
        self._open: dict[int, _Second] = {}
        self._next_second = 1  # the first second not yet closed
        self._recent: deque[Counts] = deque(maxlen=RECENT_SECONDS)

    def add(
        self,
        at: float,
        requests: int,
        errors: int,
        dropped: int,
        histogram: Counts | HdrHistogram | None,
    ) -> None:
        """Fold what happened around ``at`` seconds into the run; late deltas join the oldest open second."""
        second = max(math.ceil(at), self._next_second, 1)
        bucket = self._open.setdefault(second, _Second())
        bucket.requests += requests
        bucket.errors += errors
        bucket.dropped += dropped
        if histogram is not None and histogram.get_total_count():
            bucket.histogram.add(histogram)

    def advance(self, now: float, users: int, rate: float | None) -> None:
        """Close every second that ended at least ``grace`` seconds before ``now``."""
        while self._next_second + self.grace <= now:
            self._close_second(float(self._next_second), 1.0, users, rate)

    def close(self, end: float, users: int, rate: float | None) -> None:
        """Close everything at the end of a run; the last second may be partial."""
        while self._next_second < end - 1e-3:
            self._close_second(float(self._next_second), 1.0, users, rate)
        span = end - (self._next_second - 1)
        leftover = self._open.get(self._next_second)
        if (
            leftover is not None
            and (leftover.requests or leftover.errors or leftover.dropped)
            and span > 1e-3
        ):
            self._close_second(end, span, users, rate)

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

    def _close_second(self, t: float, span: float, users: int, rate: float | None) -> None:
        bucket = self._open.pop(self._next_second, None) or _Second()
        p50: float | None = None  # nothing answered in this second: no latency, not 0 ms
        p95: float | None = None
        p99: float | None = None
        if bucket.histogram.get_total_count():
            p50, p95, p99 = (v / 1000 for v in percentiles_us(bucket.histogram, (50.0, 95.0, 99.0)))
        self.points.append(
            TimelinePoint(
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
            )
        )
        self._recent.append(bucket.histogram)
        self._next_second += 1
        if len(self.points) > self.max_points:
            self._compact()

    def _compact(self) -> None:
        half = len(self.points) // 2
        old, recent = self.points[:half], self.points[half:]
        merged = [
            _merge_points(old[i], old[i + 1]) if i + 1 < len(old) else old[i]
            for i in range(0, len(old), 2)
        ]
        self.points = merged + recent


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
    )
