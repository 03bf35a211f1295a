"""Recording and merging of request statistics.

A worker records into a process-local ``Recorder``; every tick the recorder is cut into an
``IntervalStats`` delta (plain picklable data, histograms HDR-encoded) and starts afresh.
The runner folds deltas into ``Totals`` exactly: HDR histograms merge without loss, so
percentiles over many workers equal those of one recorder that saw every sample.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from hdrh.histogram import HdrHistogram

from stressdeck.engine.snapshot import EndpointSummary, HistogramBucket, Percentiles

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: no sane request outlives that, and HDR needs a bound
SIGNIFICANT_FIGURES = 3  # 0.1 % resolution at any magnitude

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
# An HDR histogram in its compressed wire form (a name, not `bytes`: the deltas count bytes too).
EncodedHistogram = bytes


def _acyclic(histogram: HdrHistogram) -> HdrHistogram:
    """Break the histogram <-> encoder reference cycle so refcounting frees it at once.

    Each histogram holds a 184 KB counts array. In the cycle, a discarded one waits for
    Python's cyclic collector, and a run makes several per tick: a 30-minute soak grew by
    100 MB of dead histograms between full collections.
    """
    histogram.encoder.histogram = weakref.proxy(histogram)
    return histogram


def new_histogram() -> HdrHistogram:
    return _acyclic(HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES))


def decode_histogram(encoded: bytes | str) -> HdrHistogram:
    """A histogram in our layout: the decoded one itself when it has it (every worker delta
    does), else a copy into a fresh one (a session file written with other settings)."""
    if not encoded:
        return new_histogram()
    decoded = _acyclic(HdrHistogram.decode(encoded))  # decode_and_add would leave it in a cycle
    if (
        decoded.lowest_trackable_value,
        decoded.highest_trackable_value,
        decoded.significant_figures,
    ) == (LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES):
        return decoded
    histogram = new_histogram()
    histogram.add(decoded)
    return histogram


@functools.lru_cache(maxsize=1)
def _index_values() -> np.ndarray:
    """The value each HDR counts index stands for (its highest equivalent value), as HDR reports it."""
    histogram = new_histogram()
    return np.array(
        [
            histogram.get_highest_equivalent_value(histogram.get_value_from_index(i))
            for i in range(histogram.counts_len)
        ],
        dtype=np.float64,
    )


@functools.lru_cache(maxsize=1)
def _median_values() -> np.ndarray:
    """The median equivalent value of each counts index, which hdrh's mean is built on."""
    histogram = new_histogram()
    return np.array(
        [
            histogram._hdr_median_equiv_value(
                histogram.get_highest_equivalent_value(histogram.get_value_from_index(i))
            )
            for i in range(histogram.counts_len)
        ],
        dtype=np.float64,
    )


def mean_us(histogram: HdrHistogram) -> float:
    """Same as ``get_mean_value`` (which iterates in Python, ~150 ms on a full histogram)."""
    total = histogram.get_total_count()
    if total == 0:
        return 0.0
    return float(np.dot(_counts(histogram).astype(np.float64), _median_values()) / total)


def _counts(histogram: HdrHistogram) -> np.ndarray:
    return np.ctypeslib.as_array(histogram.counts)


def percentiles_us(histogram: HdrHistogram, wanted: Iterable[float] = PERCENTILES) -> list[float]:
    """Percentiles in microseconds, identical to ``get_value_at_percentile`` but vectorised.

    hdrh walks the counts array in Python for every percentile (about 0.3 ms each); a
    cumulative sum in numpy answers all of them in about 20 µs.
    """
    total = histogram.get_total_count()
    wanted = list(wanted)
    if total == 0:
        return [0.0] * len(wanted)
    cumulative = np.cumsum(_counts(histogram))
    # Same rounding as hdrh's get_target_count_at_percentile.
    targets = [max(int(p * total / 100 + 0.5), 1) for p in wanted]
    indexes = np.searchsorted(cumulative, targets)
    values = _index_values()
    return [float(values[min(i, len(values) - 1)]) for i in indexes]


def counts_at_or_below(histogram: HdrHistogram, edges_us: Sequence[float]) -> list[int]:
    """How many samples were at or below each edge (cumulative, as Prometheus buckets are).

    A sample counts below an edge when its HDR bucket's highest value is: exact to the
    histogram's 0.1 % resolution.
    """
    if histogram.get_total_count() == 0:
        return [0] * len(edges_us)
    cumulative = np.cumsum(_counts(histogram))
    below = np.searchsorted(_index_values(), np.asarray(edges_us, dtype=np.float64), side="right")
    return [int(cumulative[i - 1]) if i > 0 else 0 for i in below]


def summarise(histogram: HdrHistogram) -> Percentiles:
    """Percentiles, max and mean in milliseconds."""
    total = histogram.get_total_count()
    if total == 0:
        return Percentiles()
    p50, p90, p95, p99, p999 = percentiles_us(histogram)
    return Percentiles(
        p50=p50 / 1000,
        p90=p90 / 1000,
        p95=p95 / 1000,
        p99=p99 / 1000,
        p999=p999 / 1000,
        max=histogram.get_max_value() / 1000,
        mean=mean_us(histogram) / 1000,
        count=total,
    )


def log_buckets(histogram: HdrHistogram, count: int = 24) -> tuple[HistogramBucket, ...]:
    """Group the recorded latencies into ``count`` log-spaced buckets between min and max."""
    counts = _counts(histogram)
    recorded = np.nonzero(counts)[0]
    if len(recorded) == 0:
        return ()
    values = _index_values()[recorded]
    weights = counts[recorded].astype(np.float64)
    low, high = max(values.min(), 1.0), max(values.max(), 1.0)
    if high <= low:
        high = low * 1.01
    edges = np.geomspace(low, high, count + 1)
    sums, _ = np.histogram(values, bins=edges, weights=weights)
    return tuple(
        HistogramBucket(
            low_ms=float(edges[i]) / 1000, high_ms=float(edges[i + 1]) / 1000, count=int(sums[i])
        )
        for i in range(count)
    )


def record_many(histogram: HdrHistogram, samples_us: list[float]) -> None:
    """Record many values at once, exactly as ``record_value`` would one by one.

    ``record_value`` costs about 2 µs a call in Python (three per response); here numpy
    computes the HDR counts index of every sample (the same bucket arithmetic as hdrh's
    ``_counts_index_for``) and adds them to the counts array in one pass.
    """
    if not samples_us:
        return
    values = np.clip(np.asarray(samples_us, dtype=np.float64), LOWEST_US, HIGHEST_US).astype(
        np.int64
    )
    # bit_length(v | mask): frexp's exponent is exact for integers below 2**53.
    bit_length = np.frexp((values | histogram.sub_bucket_mask).astype(np.float64))[1]
    bucket = bit_length - histogram.unit_magnitude - (histogram.sub_bucket_half_count_magnitude + 1)
    sub_bucket = values >> (bucket + histogram.unit_magnitude)
    index = ((bucket + 1) << histogram.sub_bucket_half_count_magnitude) + (
        sub_bucket - histogram.sub_bucket_half_count
    )
    counts = _counts(histogram)
    added = np.bincount(index, minlength=len(counts))
    counts += added.astype(counts.dtype)
    histogram.total_count += len(values)
    histogram.min_value = min(histogram.min_value, int(values.min()))
    histogram.max_value = max(histogram.max_value, int(values.max()))


# Samples wait in plain lists between cuts; past this many they go into the histograms at
# once, so a tick that never comes (a stalled loop) cannot grow them without bound.
PENDING_SAMPLES = 65_536


class EndpointRecorder:
    """The samples of one endpoint within one tick; plain attributes to keep recording cheap.

    Latencies wait in lists (an append is ~30 ns) and go into the HDR histograms in bulk
    when the tick is cut (``record_many``).
    """

    __slots__ = (
        "latency",
        "service",
        "ttfb",
        "pending_latency",
        "pending_service",
        "pending_ttfb",
        "status_counts",
        "error_counts",
        "error_messages",
        "skip_reasons",
        "extract_failures",
        "requests",
        "errors",
        "bytes",
        "dropped",
        "cancelled",
        "skipped",
        "chunks",
        "events",
        "checked",
        "checks_passed",
        "checks_failed",
        "check_failures",
    )

    def __init__(self) -> None:
        self.latency = new_histogram()
        self.service = new_histogram()
        self.ttfb = new_histogram()
        self.pending_latency: list[float] = []
        self.pending_service: list[float] = []
        self.pending_ttfb: list[float] = []
        self.status_counts: dict[int, int] = {}
        self.error_counts: dict[str, int] = {}
        self.error_messages: dict[str, int] = {}
        self.skip_reasons: dict[str, int] = {}
        self.extract_failures: dict[str, int] = {}
        self.requests = 0
        self.errors = 0
        self.bytes = 0
        self.dropped = 0
        self.cancelled = 0
        self.skipped = 0
        self.chunks = 0
        self.events = 0
        self.checked = 0
        self.checks_passed = 0
        self.checks_failed = 0
        self.check_failures: dict[str, int] = {}

    def flush(self) -> None:
        """Move the waiting samples into the histograms."""
        for histogram, pending in (
            (self.latency, self.pending_latency),
            (self.service, self.pending_service),
            (self.ttfb, self.pending_ttfb),
        ):
            record_many(histogram, pending)
            pending.clear()

    def delta(self) -> EndpointDelta:
        self.flush()
        return EndpointDelta(
            requests=self.requests,
            errors=self.errors,
            bytes=self.bytes,
            dropped=self.dropped,
            cancelled=self.cancelled,
            skipped=self.skipped,
            chunks=self.chunks,
            events=self.events,
            status_counts=self.status_counts,
            error_counts=self.error_counts,
            error_messages=self.error_messages,
            skip_reasons=self.skip_reasons,
            extract_failures=self.extract_failures,
            checked=self.checked,
            checks_passed=self.checks_passed,
            checks_failed=self.checks_failed,
            check_failures=self.check_failures,
            latency=_encode(self.latency),
            service=_encode(self.service),
            ttfb=_encode(self.ttfb),
        )


def _encode(histogram: HdrHistogram) -> bytes:
    return histogram.encode() if histogram.get_total_count() else b""


class Recorder:
    """Process-local recorder for one worker; cut it every tick."""

    def __init__(self, endpoint_count: int) -> None:
        self.endpoint_count = endpoint_count
        self.endpoints = [EndpointRecorder() for _ in range(endpoint_count)]

    def record_response(
        self,
        endpoint: int,
        status: int,
        ok: bool,
        latency_us: float,
        service_us: float,
        ttfb_us: float,
        nbytes: int,
        chunks: int = 0,
        events: int = 0,
    ) -> None:
        rec = self.endpoints[endpoint]
        rec.requests += 1
        if chunks or events:
            rec.chunks += chunks
            rec.events += events
        if not ok:
            rec.errors += 1
        rec.status_counts[status] = rec.status_counts.get(status, 0) + 1
        rec.bytes += nbytes
        pending = rec.pending_latency
        pending.append(latency_us)
        rec.pending_service.append(service_us)
        rec.pending_ttfb.append(ttfb_us)
        if len(pending) >= PENDING_SAMPLES:
            rec.flush()

    def record_error(
        self, endpoint: int, error_class: str, nbytes: int = 0, message: str = ""
    ) -> None:
        rec = self.endpoints[endpoint]
        rec.requests += 1
        rec.errors += 1
        rec.error_counts[error_class] = rec.error_counts.get(error_class, 0) + 1
        rec.bytes += nbytes
        if message:
            count_message(rec.error_messages, message)

    def record_checks(self, endpoint: int, passed: int, failed: Iterable[str]) -> None:
        """Count one response's checks (see ``profiles.checks.run_checks``)."""
        rec = self.endpoints[endpoint]
        rec.checked += 1
        rec.checks_passed += passed
        for expr in failed:
            rec.checks_failed += 1
            rec.check_failures[expr] = rec.check_failures.get(expr, 0) + 1

    def record_dropped(self, endpoint: int) -> None:
        self.endpoints[endpoint].dropped += 1

    def record_cancelled(self, endpoint: int) -> None:
        self.endpoints[endpoint].cancelled += 1

    def record_skipped(self, endpoint: int, reason: str = "") -> None:
        rec = self.endpoints[endpoint]
        rec.skipped += 1
        if reason:
            rec.skip_reasons[reason] = rec.skip_reasons.get(reason, 0) + 1

    def record_extract_failure(self, endpoint: int, reason: str) -> None:
        failures = self.endpoints[endpoint].extract_failures
        failures[reason] = failures.get(reason, 0) + 1

    def cut(self, start: float, end: float, worker: int = 0) -> IntervalStats:
        """Hand over what was recorded since the last cut and start afresh."""
        done, self.endpoints = (
            self.endpoints,
            [EndpointRecorder() for _ in range(self.endpoint_count)],
        )
        return IntervalStats(
            worker=worker, start=start, end=end, endpoints=tuple(rec.delta() for rec in done)
        )


# Distinct error messages kept per endpoint (per tick, and for the whole run): a message
# with a varying part (an address, an id) must not grow memory; the rest are counted as one.
MAX_MESSAGES = 20
OTHER_MESSAGES = "(other messages)"


def count_message(counts: dict[str, int], message: str, n: int = 1) -> None:
    """Add ``n`` to ``message``, or to OTHER_MESSAGES once MAX_MESSAGES distinct are kept."""
    if message not in counts and len(counts) >= MAX_MESSAGES:
        message = OTHER_MESSAGES
    counts[message] = counts.get(message, 0) + n


@dataclass(frozen=True)
class EndpointDelta:
    requests: int = 0
    errors: int = 0
    bytes: int = 0
    dropped: int = 0
    cancelled: int = 0
    skipped: int = 0
    chunks: int = 0
    events: int = 0
    status_counts: Mapping[int, int] = field(default_factory=dict)
    error_counts: Mapping[str, int] = field(default_factory=dict)
    skip_reasons: Mapping[str, int] = field(default_factory=dict)
    extract_failures: Mapping[str, int] = field(default_factory=dict)
    checked: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    check_failures: Mapping[str, int] = field(default_factory=dict)  # check expression -> n
    latency: EncodedHistogram = b""
    service: EncodedHistogram = b""
    ttfb: EncodedHistogram = b""
    error_messages: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IntervalStats:
    """What one worker recorded during one tick: plain data that crosses processes."""

    worker: int
    start: float
    end: float
    endpoints: tuple[EndpointDelta, ...]
    in_flight: int = 0  # due or sent, not settled: waiting for a lane plus on the wire
    active_users: int = 0
    loop_lag_ms: float = 0.0
    send_lag_ms: float = 0.0
    on_wire: int = 0  # sent and not answered: what a worker killed now would leave unaccounted
    final: bool = False  # the worker's last delta: everything it sent is settled in it


def decode_delta(delta: EndpointDelta) -> tuple[HdrHistogram | None, ...]:
    return tuple(
        decode_histogram(raw) if raw else None for raw in (delta.latency, delta.service, delta.ttfb)
    )


class EndpointTotals:
    """Cumulative, mergeable statistics of one endpoint (or all of them)."""

    def __init__(self, name: str, client: str = "") -> None:
        self.name = name
        self.client = client
        self.latency = new_histogram()
        self.service = new_histogram()
        self.ttfb = new_histogram()
        self.status_counts: dict[int, int] = {}
        self.error_counts: dict[str, int] = {}
        self.error_messages: dict[str, int] = {}
        self.skip_reasons: dict[str, int] = {}
        self.extract_failures: dict[str, int] = {}
        self.requests = self.errors = self.bytes = 0
        self.dropped = self.cancelled = self.skipped = 0
        self.chunks = self.events = 0
        self.checked = self.checks_passed = self.checks_failed = 0
        self.check_failures: dict[str, int] = {}

    def add(
        self, delta: EndpointDelta, histograms: tuple[HdrHistogram | None, ...] | None = None
    ) -> None:
        """Fold in one delta; pass ``histograms`` already decoded to avoid decoding twice."""
        self.requests += delta.requests
        self.errors += delta.errors
        self.bytes += delta.bytes
        self.dropped += delta.dropped
        self.cancelled += delta.cancelled
        self.skipped += delta.skipped
        self.chunks += delta.chunks
        self.events += delta.events
        for reason, n in delta.skip_reasons.items():
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + n
        for reason, n in delta.extract_failures.items():
            self.extract_failures[reason] = self.extract_failures.get(reason, 0) + n
        self.checked += delta.checked
        self.checks_passed += delta.checks_passed
        self.checks_failed += delta.checks_failed
        for expr, n in delta.check_failures.items():
            self.check_failures[expr] = self.check_failures.get(expr, 0) + n
        for code, n in delta.status_counts.items():
            self.status_counts[code] = self.status_counts.get(code, 0) + n
        for kind, n in delta.error_counts.items():
            self.error_counts[kind] = self.error_counts.get(kind, 0) + n
        for message, n in delta.error_messages.items():
            count_message(self.error_messages, message, n)
        if histograms is None:
            histograms = decode_delta(delta)
        for mine, theirs in zip((self.latency, self.service, self.ttfb), histograms, strict=False):
            if theirs is not None:
                mine.add(theirs)

    def summary(self, elapsed: float, interval_rps: float = 0.0) -> EndpointSummary:
        return EndpointSummary(
            name=self.name,
            requests=self.requests,
            errors=self.errors,
            rps=self.requests / elapsed if elapsed > 0 else 0.0,
            interval_rps=interval_rps,
            error_rate=self.errors / self.requests if self.requests else 0.0,
            status_counts=dict(sorted(self.status_counts.items())),
            error_counts=dict(sorted(self.error_counts.items())),
            error_messages=dict(sorted(self.error_messages.items(), key=lambda kv: -kv[1])),
            bytes=self.bytes,
            latency_ms=summarise(self.latency),
            service_ms=summarise(self.service),
            ttfb_ms=summarise(self.ttfb),
            dropped=self.dropped,
            cancelled=self.cancelled,
            skipped=self.skipped,
            skip_reasons=dict(self.skip_reasons),
            extract_failures=dict(self.extract_failures),
            chunks=self.chunks,
            events=self.events,
            checked=self.checked,
            checks_passed=self.checks_passed,
            checks_failed=self.checks_failed,
            check_failures=dict(self.check_failures),
            client=self.client,
        )

    def encoded(self) -> dict[str, str]:
        """Base64 HDR encodings, the form sessions keep so percentiles can be recomputed."""
        return {
            kind: hist.encode().decode("ascii")
            for kind, hist in (
                ("latency", self.latency),
                ("service", self.service),
                ("ttfb", self.ttfb),
            )
            if hist.get_total_count()
        }


class Totals:
    """Cumulative statistics per endpoint and in total, folded from deltas."""

    def __init__(self, names: Iterable[str], clients: Iterable[str] = ()) -> None:
        """``clients``: the HTTP client of each endpoint, shown beside its figures."""
        names, clients = list(names), list(clients)
        clients += [""] * (len(names) - len(clients))
        self.endpoints = [
            EndpointTotals(name, client) for name, client in zip(names, clients, strict=True)
        ]
        self.total = EndpointTotals("total", "+".join(sorted(set(clients) - {""})))

    def add(self, delta: IntervalStats) -> None:
        for totals, endpoint_delta in zip(self.endpoints, delta.endpoints, strict=False):
            histograms = decode_delta(endpoint_delta)
            totals.add(endpoint_delta, histograms)
            self.total.add(endpoint_delta, histograms)
