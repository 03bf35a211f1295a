"""Compare two sessions, endpoint by endpoint, and judge each change against a tolerance.

The rules, with tolerance ``t`` (0.10 for "10%"):

* latency (p50, p95, p99): a regression when ``new > base * (1 + t)`` *and* it grew by more
  than the latency floor (1 ms by default): sub-millisecond jitter on a fast endpoint is
  noise, not a regression. An improvement is the mirror image.
* rps: a regression when ``new < base * (1 - t)``; an improvement when ``new > base * (1 + t)``.
* error rate: a regression when it rose by more than ``t * max(base, 1%)`` (absolute). The 1 %
  floor keeps 0 % -> 0.01 % from counting as an infinite relative increase, while a rate that
  was already high must still not grow by more than ``t`` of itself.
* requests: shown, never judged (it follows the duration more than the backend).

Latency is only judged when both sides measured something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.engine.snapshot import EndpointSummary
from stressdeck.sessions.session import Session

REGRESSION, IMPROVEMENT, SAME = "regression", "improvement", ""
LATENCY_METRICS = ("p50", "p95", "p99")
METRICS = ("requests", "rps", "error_rate", *LATENCY_METRICS)
DEFAULT_TOLERANCE = 0.10
DEFAULT_LATENCY_FLOOR_MS = 1.0
ERROR_RATE_FLOOR = 0.01
TOTAL = "TOTAL"

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
class Figures:
    """What is compared of one endpoint: the ``--json`` figures, latencies in ms."""

    requests: int
    rps: float
    error_rate: float
    p50: float
    p95: float
    p99: float
    latency_measured: bool = True  # False: nothing answered, the latencies are no data

    @classmethod
    def of(cls, result: EndpointSummary) -> Figures:
        latency = result.latency_ms
        return cls(
            requests=result.requests,
            rps=result.rps,
            error_rate=result.error_rate,
            p50=latency.p50,
            p95=latency.p95,
            p99=latency.p99,
            latency_measured=latency.measured,
        )


@dataclass(frozen=True)
class Change:
    metric: str
    base: float
    new: float
    verdict: str
    # False: that side measured no latency (nothing answered): its figure is no data, not 0.
    base_measured: bool = True
    new_measured: bool = True

    @property
    def measured(self) -> bool:
        return self.base_measured and self.new_measured

    @property
    def delta(self) -> float:
        return self.new - self.base

    @property
    def percent(self) -> float | None:
        """Relative change in percent; None when the base is zero."""
        return None if self.base == 0 else (self.new - self.base) / self.base * 100


@dataclass(frozen=True)
class Row:
    name: str
    base: Figures | None  # None: the endpoint is only in the new session
    new: Figures | None  # None: only in the base session
    changes: tuple[Change, ...]

    @property
    def regressions(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.verdict == REGRESSION)


@dataclass(frozen=True)
class Comparison:
    rows: tuple[Row, ...]
    tolerance: float
    latency_floor_ms: float

    @property
    def regressed(self) -> bool:
        return any(row.regressions for row in self.rows)

    @property
    def regressions(self) -> list[tuple[str, Change]]:
        return [(row.name, change) for row in self.rows for change in row.regressions]


def judge(
    metric: str,
    base: float,
    new: float,
    tolerance: float,
    latency_floor_ms: float = DEFAULT_LATENCY_FLOOR_MS,
) -> str:
    """REGRESSION, IMPROVEMENT or SAME for one metric (see the module docstring)."""
    if metric in LATENCY_METRICS:
        if new > base * (1 + tolerance) and new - base > latency_floor_ms:
            return REGRESSION
        if new < base * (1 - tolerance) and base - new > latency_floor_ms:
            return IMPROVEMENT
        return SAME
    if metric == "rps":
        if new < base * (1 - tolerance):
            return REGRESSION
        if new > base * (1 + tolerance):
            return IMPROVEMENT
        return SAME
    if metric == "error_rate":
        allowed = tolerance * max(base, ERROR_RATE_FLOOR)
        if new - base > allowed:
            return REGRESSION
        if base - new > allowed:
            return IMPROVEMENT
        return SAME
    return SAME


def compare_figures(
    base: Figures,
    new: Figures,
    tolerance: float,
    latency_floor_ms: float = DEFAULT_LATENCY_FLOOR_MS,
) -> tuple[Change, ...]:
    measured = base.requests > 0 and new.requests > 0
    measured = measured and base.latency_measured and new.latency_measured
    changes = []
    for metric in METRICS:
        b, n = float(getattr(base, metric)), float(getattr(new, metric))
        judged = measured or metric not in LATENCY_METRICS
        verdict = judge(metric, b, n, tolerance, latency_floor_ms) if judged else SAME
        latency = metric in LATENCY_METRICS
        changes.append(
            Change(
                metric,
                b,
                n,
                verdict,
                base_measured=not latency or (base.latency_measured and base.requests > 0),
                new_measured=not latency or (new.latency_measured and new.requests > 0),
            )
        )
    return tuple(changes)


def compare_sessions(
    base: Session,
    new: Session,
    tolerance: float = DEFAULT_TOLERANCE,
    latency_floor_ms: float = DEFAULT_LATENCY_FLOOR_MS,
) -> Comparison:
    """Rows for every endpoint in either session (base order first), then the total."""
    base_eps = {ep.name: Figures.of(ep) for ep in base.results.endpoints}
    new_eps = {ep.name: Figures.of(ep) for ep in new.results.endpoints}
    names = list(base_eps) + [name for name in new_eps if name not in base_eps]
    rows = []
    for name in names:
        b, n = base_eps.get(name), new_eps.get(name)
        changes = compare_figures(b, n, tolerance, latency_floor_ms) if b and n else ()
        rows.append(Row(name, b, n, changes))
    b, n = Figures.of(base.results.total), Figures.of(new.results.total)
    rows.append(Row(TOTAL, b, n, compare_figures(b, n, tolerance, latency_floor_ms)))
    return Comparison(tuple(rows), tolerance, latency_floor_ms)


def comparison_dict(
    comparison: Comparison, base_source: str = "", new_source: str = ""
) -> dict[str, Any]:
    """The ``compare --json`` document."""
    rows = []
    for row in comparison.rows:
        entry: dict[str, Any] = {
            "name": row.name,
            "in_base": row.base is not None,
            "in_new": row.new is not None,
        }
        entry["metrics"] = {
            c.metric: {
                "base": c.base if c.base_measured else None,
                "new": c.new if c.new_measured else None,
                "delta": round(c.delta, 6) if c.measured else None,
                "percent": None if c.percent is None or not c.measured else round(c.percent, 3),
                "verdict": c.verdict or "same",
            }
            for c in row.changes
        }
        rows.append(entry)
    return {
        "base": base_source,
        "new": new_source,
        "tolerance": comparison.tolerance,
        "latency_floor_ms": comparison.latency_floor_ms,
        "regressed": comparison.regressed,
        "regressions": [
            {"endpoint": name, "metric": c.metric} for name, c in comparison.regressions
        ],
        "rows": rows,
    }


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
    ]
    return [f"{name} {x} → {y}" for name, x, y in pairs if x != y]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"
