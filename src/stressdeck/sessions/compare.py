"""Compare two sides (one or several sessions each), endpoint by endpoint, and judge each change
against the tolerance *and* the noise the sessions let us measure (see ``sessions/noise.py``).

Each figure of a side is shown with its 95 % interval. With tolerance ``t`` (0.10 for "10%"),
the change of a figure in its worse direction (latency and error rate up, rps down) is:

* a **regression** when it exceeds the margin *and* the noise. The margin is ``t`` of the
  base (latency: at least the latency floor, 1 ms by default, so sub-millisecond jitter on a
  fast endpoint is not a regression; error rate: ``t * max(base, 1%)``, so 0 % -> 0.01 % is
  not an infinite relative rise). The noise is the half-width of the change: for latency
  and rps a pooled two-sample t over the sides' seconds (of all their runs; with three or
  more runs a side, never less than a t over the runs' means at 97.5 %), on the log scale,
  and never less than the sampling noise of the percentile; for the error rate a two-proportion test on the counted requests. It is taken
  at the **decision level**, one-sided 0.1 % per figure (the t or normal 0.999 quantile):
  a one-endpoint comparison judges ten figures (the endpoint's five and the total's), and by
  Bonferroni 10 x 0.1 % keeps a comparison of identical runs from saying regression more
  than about 1 % of the time, as the goal "at most 1 of 20 identical pairs" needs with room
  to spare. (With one run a side the spread between runs is not measured at all, only the
  spread within each run. In the compare_noise benchmark on a shared 2-core machine, at
  99 % two-sided a figure, identical sub-millisecond runs said regression in 2 of 20
  consecutive pairs and in 5.9-11.5 % of all pairs of runs; at this level 0 of 20 and
  1.9-4.5 %. Each figure of each further endpoint adds its 0.1 %.);
* an **improvement** in the mirror case;
* **no change** otherwise ("within noise" when it exceeds the margin but not the noise);
* **inconclusive** when the data cannot tell: the noise of a latency or rps figure is more
  than three times the margin (a busy host, a short run: "no change" would claim what the
  runs cannot show; an error rate's noise is sampling alone, shown in its interval), too few
  requests for the percentile (fewer than 10 beyond it), fewer than two seconds of timeline,
  a generator saturated for a quarter of the run (it measured itself), or (latency and rps)
  **hosts that differed between the sides**: the share of the host's cores that other
  processes left the run (``100 % - host.noise.other_cpu_percent``, the mean over a side's
  runs, at least 10 %: below it a host is saturated, alike on either side) is 1.5 times
  larger on one side than on the other. A host that is busy alike on
  both sides is no reason: it slows both sides alike, and its jitter is in the per-second
  spread the noise is measured from; what no run can measure is a host that changed between
  them. A ratio, not a difference in points: 80 % -> 90 % busy halves what is left, and
  sub-millisecond tails followed (the benchmark's identical runs). (A target on the same
  machine counts as "other processes": its own CPU is in the figure.) The reason is kept.

requests are shown (per run), never judged: they follow the duration more than the backend.
The comparison's verdict: regression if any figure regressed, else inconclusive if any could
not be told, else no change.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.engine.hdr import decode_histogram, percentiles_us
from stressdeck.engine.snapshot import EndpointSummary, TimelinePoint
from stressdeck.sessions.compare_limit import LOWER, UNSURE, LimitChange, compare_limits
from stressdeck.sessions.noise import (
    Z95,
    Z_DECIDE,
    Interval,
    log,
    pooled_t_noise,
    proportion_noise,
    quantile_ranks,
    spread_half_width,
    t975,
    t999,
    wilson,
)
from stressdeck.sessions.session import Session

REGRESSION, IMPROVEMENT, SAME, INCONCLUSIVE = "regression", "improvement", "", "inconclusive"
LATENCY_METRICS = ("p50", "p95", "p99")
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
JUDGED = ("rps", "error_rate", *LATENCY_METRICS)
METRICS = ("requests", *JUDGED)
DEFAULT_TOLERANCE = 0.10
DEFAULT_LATENCY_FLOOR_MS = 1.0
ERROR_RATE_FLOOR = 0.01
TOTAL = "TOTAL"
# A percentile is placed only with this many samples beyond it (p99 needs 1,000 requests).
MIN_TAIL_SAMPLES = 10
# A generator saturated this share of the run measured itself, not the backend.
SATURATED_SHARE = 0.25
# With this many runs on both sides, the spread between the runs' means bounds the noise too
# (two runs a side leave a t with 2 degrees of freedom: the seconds of all runs alone serve).
RUN_LEVEL = 3
# Sides whose hosts left the run shares of their cores this many times apart (the larger
# over the smaller) ran on different machines, in effect: latency and rps may have changed
# with the host. Measured (benchmarks/results/compare-noise-2026-12-07.md): identical
# sub-millisecond runs 1.5 to 2 times apart said regression in 27 % of pairs, under 1.5 in 3 %.
HOST_FREE_RATIO = 1.5
# Below a tenth of its cores left, a host is saturated on that side: two saturated sides are
# alike (2 % against 5 % left is a few clock ticks, not a different host), and the spread of
# their seconds shows what saturation does. Measured: with this floor, identical runs said
# regression in 1.3-4.5 % of all pairs; with 1 %, a test's sides 2 % and 5 % apart were
# "unalike" on a saturated machine; with 20 %, identical runs said regression in 12 %.
MIN_FREE_PERCENT = 10.0
# A figure whose noise exceeds this many times the tolerance cannot be called unchanged.
NOISY = 3.0

_TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_tolerance(text: str) -> float:
    """ "10%" or 0.1 -> 0.1; raises InputError for anything else."""
    match = _TOLERANCE.match(text)
    if match is None:
        raise InputError(
            "--tolerance",
            "",
            f"expected a percentage like 10% or a fraction like 0.1, got {describe(text)}",
        )
    value = float(match.group(1))
    if match.group(2):
        value /= 100
    elif value > 1:
        raise InputError(
            "--tolerance", "", f"expected a percentage like {value:g}% or a fraction <= 1"
        )
    return value


@dataclass(frozen=True)
class Measured:
    """One side's figures of one endpoint (the mean over its runs) and what their noise is
    measured from; latency and rps noise on the log scale (see ``sessions/noise.py``)."""

    requests: int  # summed over the side's runs
    errors: int
    runs: int
    figures: Mapping[str, Interval]  # the JUDGED metrics, each with its 95 % interval
    seconds: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # TOTAL: log/second
    run_logs: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # log of each run's
    sampling: Mapping[str, float] = field(default_factory=dict)  # log half-width of sampling
    unsure: Mapping[str, str] = field(default_factory=dict)  # metric -> why the data cannot tell
    status_counts: Mapping[int, int] = field(default_factory=dict)  # summed over the runs

    def value(self, metric: str) -> float:
        if metric == "requests":
            return self.requests / self.runs  # per run: sides of 1 and 3 runs stay comparable
        return self.figures[metric].value


@dataclass(frozen=True)
class Change:
    metric: str
    base: float
    new: float
    verdict: str
    base_interval: Interval | None = None  # None: not judged (requests)
    new_interval: Interval | None = None
    noise: float = 0.0  # the 95 % half-width of the change: log scale, error rate in points
    reason: str = ""  # why inconclusive, or "within noise" for a change beyond the tolerance

    @property
    def delta(self) -> float:
        return self.new - self.base

    @property
    def percent(self) -> float | None:
        """Relative change in percent; None when the base is zero."""
        return None if self.base == 0 else (self.new - self.base) / self.base * 100

    @property
    def noise_text(self) -> str:
        """The noise as the change it allows: "±12.3 %" (error rate: "±0.41 pt")."""
        if self.metric == "error_rate":
            return f"±{self.noise * 100:.2f} pt"
        return f"±{(math.exp(self.noise) - 1) * 100:.1f} %" if math.isfinite(self.noise) else "n/a"


@dataclass(frozen=True)
class Row:
    name: str
    base: Measured | None  # None: the endpoint is only in the new side
    new: Measured | None  # None: only in the base side
    changes: tuple[Change, ...]

    @property
    def regressions(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.verdict == REGRESSION)

    @property
    def inconclusive(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.verdict == INCONCLUSIVE)


@dataclass(frozen=True)
class Comparison:
    rows: tuple[Row, ...]
    tolerance: float
    latency_floor_ms: float
    base_runs: int = 1
    new_runs: int = 1
    # Both sides find-limit searches: their limits decide (the whole-search figures mix every
    # step's load, and are shown, not judged); sessions/compare_limit.py.
    limit: LimitChange | None = None

    @property
    def regressed(self) -> bool:
        if self.limit is not None and self.limit.compared:
            return self.limit.outcome == LOWER
        return any(row.regressions for row in self.rows)

    @property
    def regressions(self) -> list[tuple[str, Change]]:
        return [(row.name, change) for row in self.rows for change in row.regressions]

    @property
    def inconclusive(self) -> list[tuple[str, Change]]:
        return [(row.name, change) for row in self.rows for change in row.inconclusive]

    @property
    def verdict(self) -> str:
        """REGRESSION if any figure regressed, else INCONCLUSIVE if any could not be told,
        else SAME."""
        if self.regressed:
            return REGRESSION
        if self.limit is not None and self.limit.compared:
            return INCONCLUSIVE if self.limit.outcome == UNSURE else SAME
        return INCONCLUSIVE if self.inconclusive else SAME


def margin(metric: str, base: float, tolerance: float, latency_floor_ms: float) -> float:
    """How much a figure may change before it counts (see the module docstring)."""
    if metric in LATENCY_METRICS:
        return max(tolerance * base, latency_floor_ms)
    if metric == "error_rate":
        return tolerance * max(base, ERROR_RATE_FLOOR)
    return tolerance * abs(base)


def judge(
    metric: str,
    base: float,
    new: float,
    tolerance: float,
    latency_floor_ms: float = DEFAULT_LATENCY_FLOOR_MS,
    noise: float = 0.0,
) -> str:
    """REGRESSION, IMPROVEMENT or SAME for one metric: beyond the margin *and* the noise
    (``noise`` on the log scale for latency and rps, in points for the error rate)."""
    if metric not in JUDGED:
        return SAME
    worse = base - new if metric == "rps" else new - base
    if abs(worse) <= margin(metric, base, tolerance, latency_floor_ms):
        return SAME
    size = abs(worse) if metric == "error_rate" else abs(log(new) - log(base))
    if size <= noise:
        return SAME
    return REGRESSION if worse > 0 else IMPROVEMENT


# -- measuring a side ----------------------------------------------------------------------------

_SCALED = ("rps", *LATENCY_METRICS)  # judged on the log scale against batch noise


def _order_interval(session: Session, owner: str, q: float, value: float) -> Interval | None:
    """The percentile's order-statistic interval from the saved histogram; None without one."""
    encoded = session.histograms.get(f"{owner}/latency")
    if not encoded:
        return None
    counts = decode_histogram(encoded)
    n = counts.get_total_count()
    if n == 0:
        return None
    low, high = percentiles_us(counts, quantile_ranks(n, q))
    return Interval(value, min(value, low / 1000), max(value, high / 1000))


def full_seconds(session: Session) -> list[TimelinePoint]:
    """The timeline's whole seconds with requests: the short last point of a run (a few
    milliseconds after its last full second) would weigh as much as a second."""
    return [p for p in session.results.timeline if p.requests > 0 and p.span >= 0.5]


def _run_reasons(session: Session, seconds: int) -> list[str]:
    results = session.results
    reasons = []
    if seconds < 2:
        reasons.append(
            f"{seconds} second(s) of timeline with requests: too short to measure the noise"
        )
    saturated, elapsed = results.generator.saturated_seconds, results.elapsed
    if elapsed > 0 and saturated > SATURATED_SHARE * elapsed:
        reasons.append(
            f"the generator was saturated {saturated:.1f} of {elapsed:.1f} s: it measured itself"
        )
    return reasons


def _measure_run(session: Session) -> dict[str, Measured]:
    """One run's figures, by endpoint name (the total as TOTAL)."""
    results = session.results
    points = full_seconds(session)
    reasons = _run_reasons(session, len(points))
    total_seconds = {"rps": tuple(log(p.rps) for p in points)}
    # A second in which nothing was answered has no latency (None): it is left out, not 0.
    total_seconds |= {
        m: tuple(log(value) for p in points if (value := getattr(p, m)) is not None)
        for m in LATENCY_METRICS
    }
    # The total's between-second noise: an endpoint has no timeline, and the host slows all.
    host = {m: spread_half_width(total_seconds[m]) for m in _SCALED}

    def measure(summary: EndpointSummary, owner: str) -> Measured:
        figures: dict[str, Interval] = {}
        sampling: dict[str, float] = {}
        unsure: dict[str, str] = {}
        if summary.requests == 0:
            unsure = dict.fromkeys(JUDGED, "no requests")
        elif not summary.latency_ms.measured:
            unsure = dict.fromkeys(QUANTILES, "nothing answered: no latency")
        # rps: counting (Poisson) noise at least.
        sampling["rps"] = Z95 / math.sqrt(summary.requests) if summary.requests else math.inf
        values = {"rps": summary.rps}
        for metric, q in QUANTILES.items():
            # No answer, no latency: NaN, shown as n/a (and null in JSON), never 0 ms.
            measured = summary.requests and summary.latency_ms.measured
            values[metric] = getattr(summary.latency_ms, metric) if measured else math.nan
            ordered = _order_interval(session, owner, q, values[metric])
            sampling[metric] = ordered.log_half_width if ordered else 0.0
            if summary.requests and summary.requests * (1 - q) < MIN_TAIL_SAMPLES:
                unsure.setdefault(metric, f"{summary.requests} requests: too few to place {metric}")
        for metric in _SCALED:
            spread = host[metric]
            own = sampling[metric] if math.isfinite(sampling[metric]) else 0.0
            figures[metric] = Interval.relative(values[metric], max(spread or 0.0, own))
        figures["error_rate"] = wilson(summary.errors, summary.requests)
        for reason in reasons:
            for metric in _SCALED:
                unsure.setdefault(metric, reason)
        return Measured(
            requests=summary.requests,
            errors=summary.errors,
            runs=1,
            figures=figures,
            seconds=total_seconds if owner == "total" else {},
            run_logs={m: (log(values[m]),) for m in _SCALED},
            sampling=sampling,
            unsure=unsure,
            status_counts=dict(summary.status_counts),
        )

    out = {ep.name: measure(ep, ep.name) for ep in results.endpoints}
    out[TOTAL] = measure(results.total, "total")
    return out


def _combine(present: Sequence[Measured], runs: int) -> Measured:
    """One side of several runs: the mean of the runs' figures; its interval the wider of the
    between-run spread and the runs' own intervals combined (``sqrt(sum hw²) / n``)."""
    if len(present) == 1 and runs == 1:
        return present[0]
    n = len(present)
    requests = sum(m.requests for m in present)
    errors = sum(m.errors for m in present)
    figures: dict[str, Interval] = {}
    run_logs: dict[str, tuple[float, ...]] = {}
    sampling: dict[str, float] = {}
    seconds: dict[str, tuple[float, ...]] = {}
    for metric in _SCALED:
        run_logs[metric] = tuple(v for m in present for v in m.run_logs[metric])
        seconds[metric] = tuple(v for m in present for v in m.seconds.get(metric, ()))
        sampling[metric] = math.sqrt(sum(m.sampling[metric] ** 2 for m in present)) / n
        within = math.sqrt(sum(m.figures[metric].log_half_width ** 2 for m in present)) / n
        between = spread_half_width(run_logs[metric]) or 0.0
        mean = sum(m.figures[metric].value for m in present) / n
        figures[metric] = Interval.relative(mean, max(within, between))
    # The error rate: the pooled proportion, widened by the spread between the runs' rates.
    rates = [m.errors / m.requests for m in present if m.requests]
    pooled = wilson(errors, requests)
    if len(rates) >= 2:
        half = t975(len(rates) - 1) * math.sqrt(
            sum((r - pooled.value) ** 2 for r in rates) / (len(rates) - 1) / len(rates)
        )
        pooled = pooled.widened(Interval(pooled.value, pooled.value - half, pooled.value + half))
        pooled = Interval(pooled.value, max(0.0, pooled.low), min(1.0, pooled.high))
    figures["error_rate"] = pooled
    unsure: dict[str, str] = {}
    for m in present:
        for metric, reason in m.unsure.items():
            unsure.setdefault(metric, reason)
    if n < runs:
        for metric in JUDGED:
            unsure.setdefault(metric, f"in {n} of {runs} runs only")
    status: dict[int, int] = {}
    for m in present:
        for code, count in m.status_counts.items():
            status[code] = status.get(code, 0) + count
    return Measured(requests, errors, n, figures, seconds, run_logs, sampling, unsure, status)


def measure_side(sessions: Sequence[Session]) -> dict[str, Measured]:
    """A side's figures by endpoint (the total last): the mean over its runs, with what their
    noise is measured from."""
    runs = [_measure_run(session) for session in sessions]
    names: list[str] = []
    for run in runs:
        names += [name for name in run if name not in names and name != TOTAL]
    return {
        name: _combine([run[name] for run in runs if name in run], len(runs))
        for name in [*names, TOTAL]
    }


# -- judging ----------------------------------------------------------------------------------


def change_noise(
    metric: str, base: Measured, new: Measured, base_total: Measured, new_total: Measured
) -> float | None:
    """The half-width of the change of ``metric`` at the decision level (one-sided 0.1 %, see
    the module docstring; log scale, error rate in points); None when the runs are too short
    to measure it."""
    widen = Z_DECIDE / Z95  # the 95 % sampling half-widths, at the decision level
    if metric == "error_rate":
        noise = proportion_noise(base.errors, base.requests, new.errors, new.requests, Z_DECIDE)
        if base.runs > 1 and new.runs > 1:  # the runs' own spread, when larger
            noise = max(noise, math.hypot(_half(base), _half(new)) * widen)
        return noise
    batches = pooled_t_noise(base_total.seconds[metric], new_total.seconds[metric], t999)
    if batches is None:
        return None
    if base.runs >= RUN_LEVEL and new.runs >= RUN_LEVEL:
        # The seconds of all runs at the decision level, and the spread between the runs'
        # means at 97.5 %: with 3 runs a side a t of 4 degrees of freedom at 0.1 % (7.2) would
        # hide a 30 % change that every run shows; the seconds alone would call a host that
        # drifted between runs a change.
        runs = pooled_t_noise(base.run_logs[metric], new.run_logs[metric], t975)
        if runs is not None:
            batches = max(batches, runs)
    return max(batches, math.hypot(base.sampling[metric], new.sampling[metric]) * widen)


def _relative(metric: str, noise: float, base: float) -> float:
    """The noise as a share of the base (points for the error rate)."""
    return noise if metric == "error_rate" else math.exp(noise) - 1


def _share(allowed: float, base: float, metric: str) -> float:
    if metric == "error_rate":
        return allowed
    return allowed / base if base > 0 else math.inf


def _noise_words(metric: str, value: float, *, absolute: bool = False, base: float = 0.0) -> str:
    if metric == "error_rate":
        return f"±{value * 100:.2f} pt"
    if absolute:
        return f"±{value / base * 100:.0f} %" if base > 0 else "n/a"
    return f"±{(math.exp(value) - 1) * 100:.0f} %"


def _half(measured: Measured) -> float:
    interval = measured.figures["error_rate"]
    return max(interval.value - interval.low, interval.high - interval.value)


def compare_measured(
    base: Measured,
    new: Measured,
    base_total: Measured,
    new_total: Measured,
    tolerance: float,
    latency_floor_ms: float = DEFAULT_LATENCY_FLOOR_MS,
    host_reason: str = "",
) -> tuple[Change, ...]:
    """The changes of one endpoint; ``host_reason`` (see ``host_difference``) makes its
    latency and rps inconclusive."""
    changes = [Change("requests", base.value("requests"), new.value("requests"), SAME)]
    for metric in JUDGED:
        b, n = base.figures[metric], new.figures[metric]
        noise = change_noise(metric, base, new, base_total, new_total)
        reason = base.unsure.get(metric) or new.unsure.get(metric)
        if reason:
            side = "base" if metric in base.unsure else "new"
            verdict, reason = INCONCLUSIVE, f"{side}: {reason}"
        elif host_reason and metric in _SCALED:
            verdict, reason = INCONCLUSIVE, host_reason
        elif noise is None:
            verdict, reason = INCONCLUSIVE, "too few whole seconds to measure the noise"
        else:
            verdict = judge(metric, b.value, n.value, tolerance, latency_floor_ms, noise)
            allowed = margin(metric, b.value, tolerance, latency_floor_ms)
            beyond = abs(n.value - b.value) > allowed
            reason = "within noise" if verdict == SAME and beyond else ""
            noisy = _relative(metric, noise, b.value) > NOISY * _share(allowed, b.value, metric)
            # an error rate's noise is sampling alone, known exactly and shown in its interval
            if verdict == SAME and noisy and metric != "error_rate":
                verdict = INCONCLUSIVE
                reason = (
                    f"the noise ({_noise_words(metric, noise)}) is more than {NOISY:g} times "
                    f"the tolerance ({_noise_words(metric, allowed, absolute=True, base=b.value)}): "
                    "these runs cannot tell a change of that size"
                )
        changes.append(
            Change(
                metric,
                b.value,
                n.value,
                verdict,
                b,
                n,
                math.inf if noise is None else noise,
                reason,
            )
        )
    return tuple(changes)


def _other_share(sessions: Sequence[Session]) -> float | None:
    """Other processes' share of all cores, the mean over the runs that measured it."""
    shares = [s.host.noise.other_cpu_percent for s in sessions if s.host.noise is not None]
    return sum(shares) / len(shares) if shares else None


def host_difference(base: Sequence[Session], new: Sequence[Session]) -> str:
    """Why latency and rps cannot be told when the sides ran on hosts unalike: the share of
    the cores other processes left the run differs by ``HOST_FREE_RATIO`` or more; "" when
    alike or unknown."""
    b, n = _other_share(base), _other_share(new)
    if b is None or n is None:
        return ""
    left_b, left_n = max(100 - b, MIN_FREE_PERCENT), max(100 - n, MIN_FREE_PERCENT)
    if max(left_b, left_n) / min(left_b, left_n) < HOST_FREE_RATIO:
        return ""
    return (
        f"the host differed between the sides: other processes left the run {left_b:.0f} % "
        f"of its cores in base, {left_n:.0f} % in new (alike means within a factor of "
        f"{HOST_FREE_RATIO:g})"
    )


def compare_sides(
    base: Sequence[Session],
    new: Sequence[Session],
    tolerance: float = DEFAULT_TOLERANCE,
    latency_floor_ms: float = DEFAULT_LATENCY_FLOOR_MS,
) -> Comparison:
    """Rows for every endpoint in either side (base order first), then the total."""
    base_eps, new_eps = measure_side(base), measure_side(new)
    host_reason = host_difference(base, new)
    names = [n for n in base_eps if n != TOTAL]
    names += [n for n in new_eps if n not in base_eps]
    rows = []
    for name in [*names, TOTAL]:
        b, n = base_eps.get(name), new_eps.get(name)
        changes = (
            compare_measured(
                b, n, base_eps[TOTAL], new_eps[TOTAL], tolerance, latency_floor_ms, host_reason
            )
            if b and n
            else ()
        )
        rows.append(Row(name, b, n, changes))
    limit = compare_limits(base, new, tolerance)
    if limit is not None and limit.compared:
        rows = [Row(r.name, r.base, r.new, tuple(map(_not_judged, r.changes))) for r in rows]
    return Comparison(tuple(rows), tolerance, latency_floor_ms, len(base), len(new), limit)


def _not_judged(change: Change) -> Change:
    """A figure of a whole search: its steps asked different loads, so it is shown only."""
    if change.base_interval is None:
        return change
    return dataclasses.replace(change, verdict=SAME, reason="not judged: a search")


def compare_sessions(
    base: Session,
    new: Session,
    tolerance: float = DEFAULT_TOLERANCE,
    latency_floor_ms: float = DEFAULT_LATENCY_FLOOR_MS,
) -> Comparison:
    """One run a side."""
    return compare_sides([base], [new], tolerance, latency_floor_ms)


def status_differences(row: Row) -> list[str]:
    """Status codes whose share changed beyond counting noise: "403 gone", "429 12 → 340"
    (per run, so sides of different run counts compare)."""
    if row.base is None or row.new is None:
        return []
    out = []
    for code in sorted(set(row.base.status_counts) | set(row.new.status_counts)):
        b = row.base.status_counts.get(code, 0)
        n = row.new.status_counts.get(code, 0)
        shares = (b / max(row.base.requests, 1), n / max(row.new.requests, 1))
        noise = proportion_noise(b, row.base.requests, n, row.new.requests)
        if abs(shares[1] - shares[0]) <= noise:
            continue
        per_base, per_new = b / row.base.runs, n / row.new.runs
        if n == 0:
            out.append(f"{code} gone (was {per_base:.0f})")
        elif b == 0:
            out.append(f"{code} new ({per_new:.0f})")
        else:
            word = "up" if shares[1] > shares[0] else "down"
            out.append(f"{code} {word} {per_base:.0f} → {per_new:.0f}")
    return out


# -- what else differs ------------------------------------------------------------------------


def load_differences(base: Session, new: Session) -> list[str]:
    """How the two runs' loads differ (users, rate, duration, processes...), one phrase each:
    a difference in the figures may come from these rather than from the backend."""
    a, b = base.plan.load, new.plan.load
    pairs: list[tuple[str, object, object]] = [("model", a.model, b.model)]
    if a.model == b.model == "open":
        pairs.append(
            ("rate", f"{a.rate:g}/s" if a.rate else "-", f"{b.rate:g}/s" if b.rate else "-")
        )
    else:
        pairs.append(("users", a.users, b.users))
    pairs += [
        ("duration", _seconds(a.duration), _seconds(b.duration)),
        ("requests", a.requests, b.requests),
        ("preset", a.preset, b.preset),
        ("stages", len(a.stages), len(b.stages)),
        ("processes", base.results.generator.processes, new.results.generator.processes),
        ("bottleneck", base.results.bottleneck.kind, new.results.bottleneck.kind),
    ]
    return [f"{name} {x} → {y}" for name, x, y in pairs if x != y]


def setup_differences(base: Session, new: Session) -> list[str]:
    """What else differs between the runs and may explain a change: the target, the HTTP
    client of an endpoint, the stressdeck version, the host's cores."""
    out = []
    if base.plan.target != new.plan.target:
        out.append(f"target {base.plan.target} → {new.plan.target}")
    clients_a = {ep.name: ep.client for ep in base.results.endpoints}
    for ep in new.results.endpoints:
        before = clients_a.get(ep.name)
        if before is not None and before != ep.client:
            out.append(f"{ep.name} client {before or '-'} → {ep.client or '-'}")
    if base.stressdeck_version != new.stressdeck_version:
        out.append(f"stressdeck {base.stressdeck_version} → {new.stressdeck_version}")
    if base.host.cores != new.host.cores:
        out.append(f"host cores {base.host.cores} → {new.host.cores}")
    return out


def host_warnings(label: str, sessions: Sequence[Session]) -> list[str]:
    """Say when a side ran on a busy host (other processes took a quarter of its cores or
    more) or its generator was saturated: the figures then measure the machine as well."""
    out = []
    busy = [s.host.noise for s in sessions if s.host.noise is not None and s.host.noise.busy()]
    if busy:
        worst = max(busy, key=lambda noise: noise.other_cpu_percent)
        runs = f"{len(busy)} of {len(sessions)} runs" if len(sessions) > 1 else "the run"
        out.append(
            f"{label} ran on a busy host ({runs}): other processes used up to "
            f"{worst.other_cpu_percent:.0f} % of its {sessions[0].host.cores} cores, load "
            f"average {worst.load_average:.1f}"
        )
    saturated = [s for s in sessions if s.results.generator.saturated_seconds > 0]
    if saturated:
        worst_run = max(saturated, key=lambda s: s.results.generator.saturated_seconds)
        health = worst_run.results.generator
        out.append(
            f"{label}'s generator was saturated {health.saturated_seconds:.1f} of "
            f"{worst_run.results.elapsed:.1f} s (peak CPU {health.peak_cpu_percent:.0f} %, "
            f"loop lag {health.peak_loop_lag_ms:.0f} ms)"
            + (f" in {len(saturated)} of {len(sessions)} runs" if len(sessions) > 1 else "")
        )
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


# -- the json document ------------------------------------------------------------------------


def _interval_dict(interval: Interval | None) -> dict[str, float] | None:
    if interval is None:
        return None
    return {
        "value": round(interval.value, 6),
        "low": round(interval.low, 6),
        "high": round(interval.high, 6),
    }


def _noise_value(change: Change) -> float | None:
    """The noise as the change it allows: percent of the base (points for the error rate)."""
    if change.base_interval is None or not math.isfinite(change.noise):
        return None
    if change.metric == "error_rate":
        return round(change.noise * 100, 4)
    return round((math.exp(change.noise) - 1) * 100, 3)


def comparison_dict(
    comparison: Comparison,
    base_sources: Sequence[str] = (),
    new_sources: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``compare --format json`` document (described in compare.schema.json)."""
    rows = []
    for row in comparison.rows:
        entry: dict[str, Any] = {
            "name": row.name,
            "in_base": row.base is not None,
            "in_new": row.new is not None,
            "status_changes": status_differences(row),
        }
        entry["metrics"] = {
            c.metric: {
                "base": c.base,
                "new": c.new,
                "base_interval": _interval_dict(c.base_interval),
                "new_interval": _interval_dict(c.new_interval),
                "delta": round(c.delta, 6),
                "percent": None if c.percent is None else round(c.percent, 3),
                "noise": None
                if c.base_interval is None or not math.isfinite(c.noise)
                else round(c.noise, 6),
                "verdict": c.verdict or "same",
                "reason": c.reason,
            }
            for c in row.changes
        }
        rows.append(entry)
    return _no_data_as_null(
        {
            "base": list(base_sources),
            "new": list(new_sources),
            "tolerance": comparison.tolerance,
            "latency_floor_ms": comparison.latency_floor_ms,
            "confidence": 0.95,
            "verdict": comparison.verdict or "same",
            "regressed": comparison.regressed,
            "regressions": [
                {"endpoint": name, "metric": c.metric} for name, c in comparison.regressions
            ],
            "inconclusive": [
                {"endpoint": name, "metric": c.metric, "reason": c.reason}
                for name, c in comparison.inconclusive
            ],
            "warnings": list(warnings),
            "rows": rows,
            "limit": comparison.limit.to_dict() if comparison.limit is not None else None,
        }
    )


def _no_data_as_null(value: Any) -> Any:
    """A figure that is no data (a latency nothing answered: NaN here) is ``null`` in JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _no_data_as_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_data_as_null(item) for item in value]
    return value
