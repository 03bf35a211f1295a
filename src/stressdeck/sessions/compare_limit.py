"""Two find-limit searches compared by their answer: the limit each found, and whether the change
is beyond what the searches themselves can tell apart.

A search places its limit no closer than its precision: it bisects until the load that broke is
within ``precision`` of the one that held (a closed search: within one user at least). Two
searches of the same backend may then differ by that bracket and one more step of it, so a
change counts only beyond ``precision x limit + the step the search ended on`` (the wider of the
two sides'), and beyond the comparison's tolerance, as every figure compare judges.

A limit that is *at least* (the load tool's own bound, or ``--max``, gave out first) is a floor:
a new floor below the base's limit cannot say the target got worse, and is said to be unsure.
Searches held to different SLOs, or in different units, are said to differ, never compared.

The words here describe the limit's change (``lower``, ``higher``...); sessions/compare.py turns
them into the comparison's verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stressdeck.core.text import printable
from stressdeck.engine.limit import LimitResult
from stressdeck.sessions.session import Session

LOWER, HIGHER, UNCHANGED, UNSURE, NOT_COMPARED = "lower", "higher", "same", "unsure", "not compared"


@dataclass(frozen=True)
class Side:
    """One side's answer: the mean limit over its searches (None: no load held every SLO)."""

    limit: float | None
    at_least: bool
    unit: str
    margin: float  # how far this side's limit may be from another search of the same backend
    searches: tuple[LimitResult, ...]


@dataclass(frozen=True)
class LimitChange:
    """The limits of both sides and what their change is (``outcome``), with why."""

    unit: str
    slos: tuple[str, ...]
    base: Side | None  # None: the side's sessions are not all find-limit searches
    new: Side | None
    outcome: str  # LOWER, HIGHER, UNCHANGED, UNSURE or NOT_COMPARED
    reason: str
    margin: float = 0.0  # the change allowed (the searches' precision, the tolerance)

    @property
    def compared(self) -> bool:
        return self.outcome != NOT_COMPARED

    @property
    def percent(self) -> float | None:
        """The change of the limit, in percent of the base's; None when not compared."""
        if self.base is None or self.new is None or not self.compared:
            return None
        if self.base.limit is None or self.new.limit is None or self.base.limit == 0:
            return None
        return (self.new.limit - self.base.limit) / self.base.limit * 100

    def lines(self) -> list[str]:
        """``find-limit: limit 96.9 → 80.1 req/s −17.3 %``, then what the change is and why (or
        why the limits are not compared)."""
        if self.base is None or self.new is None:
            return [f"find-limit: {printable(self.reason, 300)}"]
        percent = self.percent
        change = f" {percent:+.1f} %".replace("-", "−") if percent is not None else ""
        figures = f"{_figure(self.base)} → {_figure(self.new)} {self.unit}"
        if self.base.unit != self.new.unit:
            figures = f"{_figure(self.base)} {self.base.unit} → {_figure(self.new)} {self.new.unit}"
        head = f"find-limit: limit {figures}{change}"
        reason = printable(self.reason, 300)  # it may quote a session's SLOs
        return [head, f"  {reason}" if not self.compared else f"  {self.outcome}: {reason}"]

    def to_dict(self) -> dict[str, Any]:
        def side(value: Side | None) -> dict[str, Any] | None:
            if value is None:
                return None
            return {
                "limit": None if value.limit is None else round(value.limit, 3),
                "at_least": value.at_least,
                "searches": [search.to_dict() for search in value.searches],
            }

        percent = self.percent
        return {
            "unit": self.unit,
            "slos": list(self.slos),
            "base": side(self.base),
            "new": side(self.new),
            "percent": None if percent is None else round(percent, 3),
            "margin": round(self.margin, 3),
            "outcome": self.outcome,
            "reason": self.reason,
        }


def _figure(side: Side) -> str:
    if side.limit is None:
        return "none"
    return ("at least " if side.at_least else "") + f"{round(side.limit, 1):g}"


def _side(searches: Sequence[LimitResult]) -> Side:
    limits = [s.limit for s in searches if s.limit is not None]
    if len(limits) < len(searches):
        limit = None  # a search of the side held at no load: the side's answer is none
    else:
        limit = sum(limits) / len(limits)
    return Side(
        limit=limit,
        at_least=any(s.at_least for s in searches),
        unit=searches[0].search.unit if searches else "",
        margin=max((search_margin(s) for s in searches), default=0.0),
        searches=tuple(searches),
    )


def search_margin(result: LimitResult) -> float:
    """How far another search of the same backend may place the limit: the search's precision
    of its limit plus the step it ended on (the bracket between the load that held and the one
    that broke; a closed search's step is one user at least)."""
    if result.limit is None:
        return 0.0
    precision = result.search.precision * result.limit
    step = precision
    if result.broken_at is not None and result.broken_at > result.limit:
        step = result.broken_at - result.limit
    if result.search.unit == "users":
        step = max(step, 1.0)
    return precision + step


def compare_limits(
    base: Sequence[Session], new: Sequence[Session], tolerance: float
) -> LimitChange | None:
    """The change of the limit when either side holds a find-limit search; None when neither."""
    base_searches = [s.limit for s in base if s.limit is not None]
    new_searches = [s.limit for s in new if s.limit is not None]
    if not base_searches and not new_searches:
        return None
    first = (base_searches or new_searches)[0]
    unit, slos = first.search.unit, tuple(slo.expr for slo in first.search.slos)
    if len(base_searches) < len(base) or len(new_searches) < len(new):
        side = "base" if len(base_searches) < len(base) else "new"
        return LimitChange(
            unit,
            slos,
            None,
            None,
            NOT_COMPARED,
            f"the {side} side holds sessions that are not find-limit searches: limits not compared",
        )
    units = {s.search.unit for s in [*base_searches, *new_searches]}
    slo_sets = {
        tuple(sorted(slo.expr for slo in s.search.slos)) for s in [*base_searches, *new_searches]
    }
    b, n = _side(base_searches), _side(new_searches)
    if len(units) > 1:
        return LimitChange(
            unit,
            slos,
            b,
            n,
            NOT_COMPARED,
            f"the searches differ in unit ({' and '.join(sorted(units))}): not compared",
        )
    if len(slo_sets) > 1:
        named = " and ".join(f"[{', '.join(s)}]" for s in sorted(slo_sets))
        return LimitChange(
            unit,
            slos,
            b,
            n,
            NOT_COMPARED,
            f"the searches held different SLOs ({named}): not compared",
        )
    return _judge(unit, slos, b, n, tolerance)


def _judge(unit: str, slos: tuple[str, ...], b: Side, n: Side, tolerance: float) -> LimitChange:
    def answer(outcome: str, reason: str, margin: float = 0.0) -> LimitChange:
        return LimitChange(unit, slos, b, n, outcome, reason, margin)

    if b.limit is None or n.limit is None:
        if b.limit is None and n.limit is None:
            return answer(UNCHANGED, "no load held every SLO in either search")
        if b.limit is None:
            return answer(HIGHER, "no load held every SLO in the base search")
        return answer(LOWER, "no load held every SLO in the new search")
    precision = max(b.margin, n.margin)
    allowed = tolerance * b.limit
    margin = max(precision, allowed)
    # Which of the two set the margin, the other's figure beside it.
    if allowed > precision:
        source = f"the {tolerance:.0%} tolerance; the searches' precision ±{_amount(precision)}"
    else:
        source = f"the searches' precision; the {tolerance:.0%} tolerance ±{_amount(allowed)}"
    beyond = f"beyond ±{_amount(margin)} {unit} ({source})"
    within = f"within ±{_amount(margin)} {unit} ({source})"
    drop = b.limit - n.limit
    floor = "stopped before the target broke (--max, or the load tool's own bound)"
    if b.at_least and n.at_least:
        if drop > margin:
            return answer(UNSURE, f"both searches {floor}, the new one lower", margin)
        return answer(UNCHANGED, f"both searches {floor}: floors, {within}", margin)
    if n.at_least:
        if drop > margin:
            return answer(UNSURE, f"the new search {floor}: its limit is at least that", margin)
        higher = -drop > margin
        return answer(
            HIGHER if higher else UNCHANGED,
            f"the new limit is a floor, {beyond if higher else within}",
            margin,
        )
    if b.at_least:
        if drop > margin:
            return answer(LOWER, f"below the base's floor, {beyond}", margin)
        return answer(UNSURE, f"the base search {floor}: its limit is at least that", margin)
    if drop > margin:
        return answer(LOWER, beyond, margin)
    if -drop > margin:
        return answer(HIGHER, beyond, margin)
    return answer(UNCHANGED, within, margin)


def _amount(value: float) -> str:
    return f"{round(value, 1):g}"
