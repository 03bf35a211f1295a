"""Immutable views of a run, published by the runner every tick.

Everything a screen or a report shows comes from these frozen dataclasses; they hold
plain numbers only (milliseconds for latencies), never live histograms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stressdeck.profiles.thresholds import ThresholdResult
from stressdeck.target.metrics import MetricsSnapshot

# Run states, in the order a run goes through them.
IDLE, RUNNING, PAUSED, STOPPING, STOPPED = "idle", "running", "paused", "stopping", "stopped"
# A stop reason starting with this: a signal ended the run, not the run itself.
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in milliseconds; all zero when nothing was recorded."""

    p50: float = 0.0
    p90: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    p999: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class EndpointSummary:
    """Cumulative results of one endpoint (or of all of them, for ``Snapshot.total``).

    ``requests`` counts completed requests: every one has exactly one status code or one
    error class, so ``requests == sum(status_counts) + sum(error_counts)``. ``errors`` are
    transport errors plus responses whose status was not expected. Cancelled (in flight at
    stop), dropped (open model, over ``max_in_flight``) and skipped requests are counted
    apart and are not in ``requests``.
    """

    name: str
    requests: int = 0
    errors: int = 0
    rps: float = 0.0
    interval_rps: float = 0.0
    error_rate: float = 0.0
    status_counts: Mapping[int, int] = field(default_factory=dict)
    error_counts: Mapping[str, int] = field(default_factory=dict)
    bytes: int = 0
    latency_ms: Percentiles = Percentiles()
    service_ms: Percentiles = Percentiles()
    ttfb_ms: Percentiles = Percentiles()
    dropped: int = 0
    cancelled: int = 0
    skipped: int = 0
    skip_reasons: Mapping[str, int] = field(default_factory=dict)
    # Streaming: HTTP chunks and server-sent events received; time to last byte is service_ms.
    chunks: int = 0
    events: int = 0


@dataclass(frozen=True)
class TimelinePoint:
    """One second of the run (or, for old points of a long run, several seconds summarised)."""

    t: float
    span: float
    requests: int
    rps: float
    errors: int
    p50: float
    p95: float
    p99: float
    users: int
    rate: float | None = None
    dropped: int = 0


@dataclass(frozen=True)
class ControlEvent:
    """A live change, stamped with its offset from the start of the run, for replay."""

    offset: float
    command: str
    value: float | None = None


@dataclass(frozen=True)
class HistogramBucket:
    low_ms: float
    high_ms: float
    count: int


@dataclass(frozen=True)
class GeneratorHealth:
    """How healthy the load generator itself is; a saturated generator measures itself."""

    loop_lag_ms: float = 0.0  # this tick: how late the workers' timers fired (worst process)
    send_lag_ms: float = 0.0  # open model: how late requests went out versus their due time
    cpu_percent: float = 0.0  # the generator's CPU over the last second, all processes
    processes: int = 1
    # The whole run so far: how long the generator was saturated, and its worst figures.
    saturated_seconds: float = 0.0
    peak_loop_lag_ms: float = 0.0
    peak_send_lag_ms: float = 0.0
    peak_cpu_percent: float = 0.0

    @property
    def saturated(self) -> bool:
        return (
            self.loop_lag_ms > 50 or self.send_lag_ms > 50 or self.cpu_percent > 90 * self.processes
        )


@dataclass(frozen=True)
class Snapshot:
    elapsed: float
    state: str
    model: str
    target: str
    users: int
    active_users: int
    rate: float | None
    in_flight: int
    total: EndpointSummary
    endpoints: tuple[EndpointSummary, ...]
    timeline: tuple[TimelinePoint, ...]
    control_log: tuple[ControlEvent, ...]
    thresholds: tuple[ThresholdResult, ...] = ()
    latency_buckets: tuple[HistogramBucket, ...] = ()
    recent_latency_buckets: tuple[HistogramBucket, ...] = ()
    manual: bool = False
    stage: int | None = None
    stop_reason: str = ""
    health: GeneratorHealth = GeneratorHealth()
    # Encoded HDR histograms (name -> base64 text), filled in on the final snapshot only.
    histograms: Mapping[str, str] = field(default_factory=dict)
    # The target's own metrics (``metrics_url``), as of the last scrape; None without one.
    target_metrics: MetricsSnapshot | None = None

    @property
    def thresholds_ok(self) -> bool:
        return all(result.ok for result in self.thresholds)

    @property
    def finished(self) -> bool:
        return self.state == STOPPED
