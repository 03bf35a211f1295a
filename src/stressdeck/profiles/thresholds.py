"""Pass/fail thresholds such as ``p95 < 200ms`` or ``error_rate < 1%``: parsing and checking.

Values are normalised at parse time: latencies to milliseconds, rates to a fraction.

A threshold may be sustained, ``p95 < 200ms for 10s``: it fails only when the figure of each
second of the run (the per-second timeline) breaks it for that long in a row, so one slow
second (a GC pause, a cold cache) does not fail or abort a run. ``Breach`` follows it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.core.fields import Reader

LATENCY_METRICS = ("p50", "p90", "p95", "p99", "p999", "max", "mean", "ttfb_p95")
# Shares, written "1%" or 0.01: error_rate, and checks (the share of response checks that passed).
RATE_METRICS = ("error_rate", "checks")
OTHER_METRICS = (*RATE_METRICS, "rps", "dropped")
METRICS = LATENCY_METRICS + OTHER_METRICS

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# Figures the per-second timeline holds (for the total and for each endpoint): the only
# ones a sustained threshold can follow second by second.
SUSTAINED_METRICS = ("p50", "p95", "p99", "error_rate", "rps", "dropped")
_EXPRESSION = re.compile(
    r"^\s*([a-z_0-9]+)\s*(<=|>=|<|>)\s*(\d+(?:\.\d+)?)\s*(ms|s|us|%)?"
    r"(?:\s+for\s+(\d+(?:\.\d+)?)\s*(s|m)?)?\s*$"
)
_LATENCY_UNIT_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}
_SUSTAIN_UNIT_S = {"s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Threshold:
    expr: str
    metric: str
    op: str
    limit: float
    # Seconds the per-second figure must break the limit in a row before the threshold
    # fails; 0: the whole run's figure decides.
    sustain: float = 0.0

    def check(self, value: float | None, final: bool = False) -> bool:
        """While a run goes, nothing measured yet is pending (not a failure, not an abort);
        at its end nothing measured fails: a dead target must never pass."""
        if value is None:
            return not final
        return self.holds(value)

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.limit)


@dataclass(frozen=True)
class ThresholdResult:
    expr: str
    endpoint: str | None
    value: float | None
    ok: bool
    # Sustained thresholds only: the longest time in a row (s) the per-second figure broke
    # the limit, and the run time when a breach had lasted long enough to fail (None: never).
    breached_for: float = 0.0
    failed_at: float | None = None

    @property
    def no_data(self) -> bool:
        return self.value is None

    @property
    def metric(self) -> str:
        """The metric the expression measures ("p95<200ms" too: spaces are optional)."""
        match = _EXPRESSION.match(self.expr)
        return match.group(1) if match else ""

    @property
    def sustain(self) -> float:
        """Seconds a breach must last to fail (``for 10s``); 0 for a plain threshold."""
        match = _EXPRESSION.match(self.expr)
        if not match or match.group(5) is None:
            return 0.0
        return float(match.group(5)) * _SUSTAIN_UNIT_S[match.group(6) or "s"]

    def breach_text(self) -> str:
        """How a sustained threshold's per-second figure fared, in words; "" for a plain one."""
        if not self.sustain:
            return ""
        # Tenths: the last second of a run may be partial (2.553 s says nothing more).
        lasted = f"{round(self.breached_for, 1):g} s"
        if self.failed_at is not None:
            return f"broken {lasted} in a row, failed at {round(self.failed_at, 1):g} s"
        if self.breached_for:
            return f"broken at most {lasted} in a row"
        return "held every second"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expr": self.expr,
            "endpoint": self.endpoint,
            "value": self.value,
            "ok": self.ok,
            "breached_for": round(self.breached_for, 3),
            "failed_at": self.failed_at,
        }

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> ThresholdResult:
        """Files from before sustained thresholds hold neither breach field: 0 and None."""
        return cls(
            expr=r.string(table, "expr", where),
            endpoint=r.optional_string(table, "endpoint", where),
            value=r.optional_number(table, "value", where),
            ok=r.boolean(table, "ok", where),
            breached_for=r.number(table, "breached_for", where, default=0.0),
            failed_at=r.optional_number(table, "failed_at", where),
        )


def parse_threshold(expr: str, source: str = "", where: str = "threshold") -> Threshold:
    """Parse one expression; raises InputError naming ``source`` and ``where``."""
    match = _EXPRESSION.match(expr)
    expected = (
        'an expression like "p95 < 200ms", "error_rate < 1%", "rps > 100" or "p95 < 200ms for 10s"'
    )
    if not match:
        raise InputError(source, where, f"expected {expected}, got {describe(expr)}")
    metric, op, number, unit, held, held_unit = match.groups()
    if metric not in METRICS:
        raise InputError(
            source,
            where,
            f"unknown metric {describe(metric)}; expected one of {', '.join(METRICS)}",
        )
    limit = float(number)
    if metric in LATENCY_METRICS:
        if unit == "%":
            raise InputError(source, where, f"expected a time unit (ms, s, us) for {metric}, got %")
        limit *= _LATENCY_UNIT_MS[unit or "ms"]
    elif metric in RATE_METRICS:
        if unit in _LATENCY_UNIT_MS:
            raise InputError(
                source, where, f"expected a percentage or a fraction for {metric}, got {unit}"
            )
        if unit == "%":
            limit /= 100.0
        if limit > 1:
            raise InputError(
                source, where, f"expected a percentage up to 100% or a fraction <= 1 for {metric}"
            )
    elif unit is not None:
        raise InputError(source, where, f"expected a plain number for {metric}, got unit {unit}")
    sustain = 0.0
    if held is not None:
        if metric not in SUSTAINED_METRICS:
            raise InputError(
                source,
                where,
                f'"for" needs a figure kept per second; {metric} is not one '
                f"(expected one of {', '.join(SUSTAINED_METRICS)})",
            )
        sustain = float(held) * _SUSTAIN_UNIT_S[held_unit or "s"]
        if sustain < 1:
            raise InputError(source, where, f'expected "for" at least 1s, got {describe(expr)}')
    return Threshold(
        expr=" ".join(expr.split()), metric=metric, op=op, limit=limit, sustain=sustain
    )


def evaluate(
    threshold: Threshold,
    metrics: Mapping[str, float | None],
    endpoint: str | None = None,
    *,
    final: bool = False,
) -> ThresholdResult:
    """Check one threshold against a flat metric map (see ``runner.threshold_metrics``);
    ``final``: the run is over, so a metric never measured fails."""
    value = metrics.get(threshold.metric)
    return ThresholdResult(threshold.expr, endpoint, value, threshold.check(value, final))


class Breach:
    """Follows one sustained threshold second by second (the per-second timeline's figures).

    A second that breaks the limit starts or extends a breach; one that keeps it ends the
    breach. A second in which nothing was measured (no response: the figure does not exist)
    does not end it: a target that stops answering has not recovered. A breach lasts from
    the start of its first second to the end of its last; the threshold fails once a breach
    has lasted ``sustain`` seconds.
    """

    def __init__(self, threshold: Threshold, endpoint: str | None = None) -> None:
        self.threshold = threshold
        self.endpoint = endpoint
        self.started: float | None = None  # where the current breach began (run time, s)
        self.longest = 0.0
        self.failed_at: float | None = None
        self.measured = False

    def observe(self, end: float, span: float, value: float | None) -> None:
        """One second of the run, ending at ``end``, lasting ``span``, with its figure."""
        if value is None:
            return
        self.measured = True
        if self.threshold.holds(value):
            self.started = None
            return
        if self.started is None:
            self.started = end - span
        lasted = end - self.started
        self.longest = max(self.longest, lasted)
        # A millisecond of slack: seconds close on float boundaries (9.9999 is 10).
        if self.failed_at is None and lasted >= self.threshold.sustain - 1e-3:
            self.failed_at = end

    def result(self, value: float | None, *, final: bool) -> ThresholdResult:
        """The verdict so far; ``value`` is the whole run's figure, shown beside it."""
        ok = self.failed_at is None and (self.measured or not final)
        return ThresholdResult(
            self.threshold.expr, self.endpoint, value, ok, round(self.longest, 3), self.failed_at
        )
