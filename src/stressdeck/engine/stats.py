"""Recording and merging of request statistics.

A worker records into a process-local ``Recorder``; every tick the recorder is cut into an
``IntervalStats`` delta (plain picklable data, histograms HDR-encoded) and starts afresh.
The runner folds deltas into ``Totals`` exactly: HDR histograms merge without loss, so
percentiles over many workers equal those of one recorder that saw every sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from stressdeck.engine.hdr import Counts, EncodedHistogram, decode_histogram, record_many, summarise
from stressdeck.engine.snapshot import EndpointSummary

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
        "due",
        "stale_resends",
        "unasked",
        "decoded_bytes",
    )

    def __init__(self) -> None:
        # Sparse counts, not three dense 184 KB histograms per endpoint per tick.
        self.latency = Counts()
        self.service = Counts()
        self.ttfb = Counts()
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
        self.due = 0
        self.stale_resends = 0
        self.unasked = 0
        self.decoded_bytes = 0

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
            due=self.due,
            stale_resends=self.stale_resends,
            unasked=self.unasked,
            decoded_bytes=self.decoded_bytes,
            latency=_encode(self.latency),
            service=_encode(self.service),
            ttfb=_encode(self.ttfb),
        )


# A delta's histograms travel in a sparse form of our own, not the HDR wire format: HDR
# encoding (a dense scratch histogram, zlib, base64) and decoding cost ~0.4 ms each, three
# per endpoint sent to in a tick, which with thousands of endpoints made each request cost
# milliseconds (1,000 endpoints: a third of the requests of one). Deltas only ever pass
# between our own workers and runner; sessions keep the standard HDR encoding.
_SPARSE = b"#"


def _encode(histogram: Counts) -> bytes:
    """b"" when empty, else ``#``, the bucket indexes and their counts (int64 each)."""
    if not histogram.total:
        return b""
    index, count = histogram.index.astype(np.int64), histogram.count.astype(np.int64)
    return _SPARSE + index.tobytes() + count.tobytes()


def _decode(raw: bytes) -> Counts:
    """A delta's histogram: the sparse form, or (from an older peer) the HDR encoding."""
    if not raw.startswith(_SPARSE):
        return decode_histogram(raw)
    n, odd = divmod(len(raw) - 1, 16)
    if odd:
        raise ValueError("a delta's histogram is cut short")
    index = np.frombuffer(raw, np.int64, n, 1).copy()
    count = np.frombuffer(raw, np.int64, n, 1 + 8 * n).copy()
    return Counts(index, count)


class Recorder:
    """Process-local recorder for one worker; cut it every tick.

    Sparse: only endpoints that recorded something since the last cut have a recorder, so
    a tick costs what was sent in it, not the number of endpoints (20,000 endpoints made
    every tick of a 4 s run take longer than the tick, and the worker stalled)."""

    def __init__(self, endpoint_count: int) -> None:
        self.endpoint_count = endpoint_count
        self.active: dict[int, EndpointRecorder] = {}
        # Whether the request recorded last succeeded (an answer its endpoint expects, every
        # check passed). A client records a request's outcome and returns without yielding,
        # so right after a send this is that request's: a user's setup reads it.
        self.last_succeeded = True

    def _at(self, endpoint: int) -> EndpointRecorder:
        rec = self.active.get(endpoint)
        if rec is None:
            if not 0 <= endpoint < self.endpoint_count:
                raise IndexError(f"endpoint {endpoint} of {self.endpoint_count}")
            rec = self.active[endpoint] = EndpointRecorder()
        return rec

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
        decoded_bytes: int | None = None,
    ) -> None:
        """One answer; ``decoded_bytes`` is what a compressed body decoded to (None: it
        was not compressed, and decoded to its ``nbytes``)."""
        self.last_succeeded = ok
        rec = self.active.get(endpoint) or self._at(endpoint)  # the hot path: one lookup
        rec.requests += 1
        if chunks or events:
            rec.chunks += chunks
            rec.events += events
        if not ok:
            rec.errors += 1
        rec.status_counts[status] = rec.status_counts.get(status, 0) + 1
        rec.bytes += nbytes
        rec.decoded_bytes += nbytes if decoded_bytes is None else decoded_bytes
        pending = rec.pending_latency
        pending.append(latency_us)
        rec.pending_service.append(service_us)
        rec.pending_ttfb.append(ttfb_us)
        if len(pending) >= PENDING_SAMPLES:
            rec.flush()

    def record_error(
        self, endpoint: int, error_class: str, nbytes: int = 0, message: str = ""
    ) -> None:
        self.last_succeeded = False
        rec = self._at(endpoint)
        rec.requests += 1
        rec.errors += 1
        rec.error_counts[error_class] = rec.error_counts.get(error_class, 0) + 1
        rec.bytes += nbytes
        if message:
            count_message(rec.error_messages, message)

    def record_checks(self, endpoint: int, passed: int, failed: Iterable[str]) -> None:
        """Count one response's checks (see ``profiles.checks.run_checks``)."""
        rec = self._at(endpoint)
        rec.checked += 1
        rec.checks_passed += passed
        for expr in failed:
            self.last_succeeded = False
            rec.checks_failed += 1
            rec.check_failures[expr] = rec.check_failures.get(expr, 0) + 1

    def record_due(self, endpoint: int) -> None:
        """Open model: a request fell due (it ends as exactly one request, cancelled or dropped)."""
        self._at(endpoint).due += 1

    def record_stale_resend(self, endpoint: int) -> None:
        """A request found its reused keep-alive connection closed by the server before any
        byte of an answer came back, and was sent again on a fresh one (not an error)."""
        self._at(endpoint).stale_resends += 1

    def record_unasked(self, endpoint: int) -> None:
        """Bytes arrived on an idle keep-alive connection (after this endpoint's answer was
        complete, before the next request was written): an answer nobody asked for. The
        connection was closed; no request is counted for it."""
        self._at(endpoint).unasked += 1

    def record_dropped(self, endpoint: int) -> None:
        self._at(endpoint).dropped += 1

    def record_cancelled(self, endpoint: int) -> None:
        self._at(endpoint).cancelled += 1

    def record_skipped(self, endpoint: int, reason: str = "") -> None:
        self.last_succeeded = False
        rec = self._at(endpoint)
        rec.skipped += 1
        if reason:
            rec.skip_reasons[reason] = rec.skip_reasons.get(reason, 0) + 1

    def record_extract_failure(self, endpoint: int, reason: str) -> None:
        failures = self._at(endpoint).extract_failures
        failures[reason] = failures.get(reason, 0) + 1

    def cut(self, start: float, end: float, worker: int = 0, sparse: bool = False) -> IntervalStats:
        """Hand over what was recorded since the last cut and start afresh.

        ``sparse``: only the endpoints that recorded something, with their indexes (what
        workers send); otherwise one delta per endpoint, in order."""
        done, self.active = self.active, {}
        if sparse:
            order = sorted(done)
            return IntervalStats(
                worker=worker,
                start=start,
                end=end,
                endpoints=tuple(done[index].delta() for index in order),
                indexes=tuple(order),
            )
        empty = EndpointDelta()
        return IntervalStats(
            worker=worker,
            start=start,
            end=end,
            endpoints=tuple(
                done[index].delta() if index in done else empty
                for index in range(self.endpoint_count)
            ),
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
    due: int = 0
    stale_resends: int = 0
    unasked: int = 0
    decoded_bytes: int = 0
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
    # The endpoint of each delta when sparse (only endpoints that recorded something); None:
    # one delta per endpoint of the plan, in order.
    indexes: tuple[int, ...] | None = None
    in_flight: int = 0  # due or sent, not settled: waiting for a lane plus on the wire
    active_users: int = 0
    loop_lag_ms: float = 0.0
    send_lag_ms: float = 0.0
    on_wire: int = 0  # sent and not answered: what a worker killed now would leave unaccounted
    # Requests handed to a connection since the worker started (cumulative), as of this cut:
    # with ``on_wire``, what the runner knows was sent; the worker's live ``sent`` counter
    # minus it, plus ``on_wire``, is what a worker ended without its final delta leaves
    # unaccounted.
    sent: int = 0
    final: bool = False  # the worker's last delta: everything it sent is settled in it

    def by_endpoint(self) -> Iterable[tuple[int, EndpointDelta]]:
        """(endpoint index, delta) of every endpoint this delta holds."""
        if self.indexes is None:
            return enumerate(self.endpoints)
        return zip(self.indexes, self.endpoints, strict=True)


def decode_delta(delta: EndpointDelta) -> tuple[Counts | None, ...]:
    return tuple(
        _decode(raw) if raw else None for raw in (delta.latency, delta.service, delta.ttfb)
    )


def merge_histograms(decoded: Sequence[tuple[Counts | None, ...]]) -> tuple[Counts | None, ...]:
    """Latency, service and ttfb of many endpoints' deltas (``decode_delta``), each summed."""
    merged: list[Counts | None] = []
    for kind in zip(*decoded, strict=True):
        parts = [counts for counts in kind if counts is not None]
        merged.append(Counts.merged(parts) if parts else None)
    return tuple(merged)


class EndpointTotals:
    """Cumulative, mergeable statistics of one endpoint (or all of them)."""

    def __init__(self, name: str, client: str = "") -> None:
        self.name = name
        self.client = client
        self.latency = Counts()
        self.service = Counts()
        self.ttfb = Counts()
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
        self.due = self.stale_resends = self.unasked = self.decoded_bytes = 0

    def add(
        self, delta: EndpointDelta, histograms: tuple[Counts | None, ...] | None = None
    ) -> None:
        """Fold in one delta; pass ``histograms`` already decoded to avoid decoding twice."""
        self._add_counters(delta)
        self._add_histograms(decode_delta(delta) if histograms is None else histograms)

    def add_many(self, deltas: Sequence[EndpointDelta], merged: tuple[Counts | None, ...]) -> None:
        """Fold in many deltas whose histograms are already summed (``merge_histograms``)."""
        for delta in deltas:
            self._add_counters(delta)
        self._add_histograms(merged)

    def _add_histograms(self, histograms: tuple[Counts | None, ...]) -> None:
        for mine, theirs in zip((self.latency, self.service, self.ttfb), histograms, strict=False):
            if theirs is not None:
                mine.add(theirs)

    def _add_counters(self, delta: EndpointDelta) -> None:
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
        self.due += delta.due
        self.stale_resends += delta.stale_resends
        self.unasked += delta.unasked
        self.decoded_bytes += delta.decoded_bytes
        for expr, n in delta.check_failures.items():
            self.check_failures[expr] = self.check_failures.get(expr, 0) + n
        for code, n in delta.status_counts.items():
            self.status_counts[code] = self.status_counts.get(code, 0) + n
        for kind, n in delta.error_counts.items():
            self.error_counts[kind] = self.error_counts.get(kind, 0) + n
        for message, n in delta.error_messages.items():
            count_message(self.error_messages, message, n)

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
            due=self.due,
            stale_resends=self.stale_resends,
            unasked=self.unasked,
            decoded_bytes=self.decoded_bytes,
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
        for index, endpoint_delta in delta.by_endpoint():
            histograms = decode_delta(endpoint_delta)
            self.endpoints[index].add(endpoint_delta, histograms)
            self.total.add(endpoint_delta, histograms)
