"""find-limit: the highest load at which every SLO held, found by steps of real load.

Open model: the rate doubles from ``start`` until an SLO breaks, then the bracket is bisected
until its width is within ``precision`` of the load that held. Closed model: users climb the
ladder 1, 2, 5, 10, 20, 50, 100... until an SLO breaks, then are bisected in whole users; the
steps are fitted with the Universal Scalability Law (engine/usl.py).

The steps are parts of one run (LiveSteps): each sets the level live, discards ``warmup``
seconds, then measures ``step`` seconds from the run's counts and histograms (the difference
between the mark at the end of the warm-up and the one at the end of the step). A step's verdict comes from its bottleneck (engine/bottleneck.py) as
much as from its SLOs: when the generator or the connections gave out, the search stops and
the limit is *at least* the last load that held, never a target limit that is ours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stressdeck.core.fields import MAX_SECONDS, Reader, join
from stressdeck.engine.bottleneck import (
    CONNECTIONS,
    GENERATOR,
    NONE,
    Bottleneck,
    bottleneck_schema,
    summarise,
)
from stressdeck.engine.hdr import Counts
from stressdeck.engine.hdr import summarise as summarise_histogram
from stressdeck.engine.plan import CEILING_RATE
from stressdeck.engine.runner import RunHandle, threshold_metrics
from stressdeck.engine.snapshot import EndpointSummary, Percentiles, Snapshot, TimelinePoint
from stressdeck.engine.usl import UslFit, fit_usl
from stressdeck.profiles.thresholds import Threshold, parse_threshold

OPEN_START, CLOSED_START = 10.0, 1.0
USER_LADDER = (1, 2, 5)  # times 10**k: 1, 2, 5, 10, 20, 50, 100...
DEFAULT_PRECISION = 0.05
OURS = (GENERATOR, CONNECTIONS)
DRAIN_S = 10.0  # seconds a lower step waits at most for the target's queue to empty
MAX_STEPS = 40  # a bound on any search: the climb takes at most 15, bisection a handful  # bottlenecks of the load tool, not of the target


class DeadTarget(Exception):
    """The target answered nothing at the lowest load: an error, never a limit of 0."""


@dataclass(frozen=True)
class Search:
    """What find-limit steps through and what it holds the target to."""

    model: str  # "open" (rate) or "closed" (users)
    slos: tuple[Threshold, ...]
    start: float
    maximum: float
    step: float = 10.0  # seconds measured per step
    warmup: float = 2.5  # seconds discarded at the start of each step
    precision: float = DEFAULT_PRECISION

    @property
    def unit(self) -> str:
        return "req/s" if self.model == "open" else "users"


@dataclass(frozen=True)
class Step:
    """One step: the load asked, what came of it, and whether every SLO held."""

    asked: float
    achieved: float  # completed requests per second over the measured part
    requests: int
    errors: int
    dropped: int
    latency: Percentiles
    broken: tuple[str, ...]  # "p95 < 200ms (p95 312.4)" for each SLO that failed
    bottleneck: Bottleneck
    seconds: float  # measured, warm-up left out
    recheck: bool = False  # the same load again: its first try broke with no bottleneck named

    @property
    def held(self) -> bool:
        return not self.broken

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": round(self.asked, 3),
            "achieved": round(self.achieved, 3),
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "dropped": self.dropped,
            "p50": round(self.latency.p50, 3),
            "p95": round(self.latency.p95, 3),
            "p99": round(self.latency.p99, 3),
            "held": self.held,
            "broken_by": list(self.broken),
            "bottleneck": self.bottleneck.to_dict(),
            "seconds": round(self.seconds, 3),
            "recheck": self.recheck,
        }

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> Step:
        requests = r.count(table, "requests", where)
        ms = {"minimum": 0.0, "maximum": MAX_SECONDS * 1000}
        return cls(
            asked=r.number(table, "asked", where, minimum=0.0, maximum=CEILING_RATE),
            achieved=r.number(table, "achieved", where, minimum=0.0, maximum=CEILING_RATE),
            requests=requests,
            errors=r.count(table, "errors", where),
            dropped=r.count(table, "dropped", where),
            latency=Percentiles(
                p50=r.number(table, "p50", where, **ms),
                p95=r.number(table, "p95", where, **ms),
                p99=r.number(table, "p99", where, **ms),
                count=requests,
            ),
            broken=tuple(r.string_list(table, "broken_by", where)),
            bottleneck=Bottleneck.from_dict(
                r, r.table(table, "bottleneck", where, required=False), join(where, "bottleneck")
            ),
            seconds=r.seconds(table, "seconds", where),
            recheck=r.boolean(table, "recheck", where),
        )


@dataclass(frozen=True)
class LimitResult:
    """The answer: the limit, what broke first and why, and every step that led there."""

    target: str
    search: Search
    steps: tuple[Step, ...]
    limit: float | None  # the highest load where every SLO held; None: none held
    at_least: bool  # the search stopped on our own bound (or --max) before any SLO broke
    why: str  # one sentence: how the search ended
    broken_by: str | None = None  # the first SLO that broke at the break
    broken_at: float | None = None
    bottleneck: Bottleneck = Bottleneck()  # at the break (or where our bound gave out)
    usl: UslFit | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "model": self.search.model,
            "unit": self.search.unit,
            "limit": round(self.limit, 3) if self.limit is not None else None,
            "at_least": self.at_least,
            "why": self.why,
            "broken_by": self.broken_by,
            "broken_at": round(self.broken_at, 3) if self.broken_at is not None else None,
            "bottleneck": self.bottleneck.to_dict(),
            "slos": [slo.expr for slo in self.search.slos],
            "precision": self.search.precision,
            "step_seconds": self.search.step,
            "warmup_seconds": self.search.warmup,
            "steps": [step.to_dict() for step in self.steps],
            "usl": self.usl.to_dict() if self.usl is not None else None,
        }

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> LimitResult:
        """Read back what ``to_dict`` wrote (a saved session's ``limit``); InputError names
        the field of anything else."""
        model = r.choice(table, "model", where, ("open", "closed"))
        slos = tuple(
            parse_threshold(text, r.source, join(where, "slos"))
            for text in r.string_list(table, "slos", where)
        )
        rows = r.bounded_list(table, "steps", where, MAX_STEPS * 2, "steps a search takes")
        steps = tuple(
            Step.from_dict(r, r.as_table(row, f"{where}.steps[{i}]"), f"{where}.steps[{i}]")
            for i, row in enumerate(rows)
        )
        level = {"minimum": 0.0, "maximum": CEILING_RATE}
        search = Search(
            model=model,
            slos=slos,
            start=steps[0].asked if steps else 0.0,
            maximum=max((s.asked for s in steps), default=0.0),
            step=r.seconds(table, "step_seconds", where),
            warmup=r.seconds(table, "warmup_seconds", where),
            precision=r.number(table, "precision", where, minimum=0.0, maximum=1.0),
        )
        usl_table = r.table(table, "usl", where, required=False)
        usl = None
        if usl_table:
            at = join(where, "usl")
            usl = UslFit(
                lam=r.number(usl_table, "lambda", at),
                sigma=r.number(usl_table, "sigma", at),
                kappa=r.number(usl_table, "kappa", at),
                r2=r.number(usl_table, "r2", at),
                points=sum(1 for s in steps if s.requests),
            )
        return cls(
            target=r.string(table, "target", where),
            search=search,
            steps=steps,
            limit=r.optional_number(table, "limit", where, **level),
            at_least=r.boolean(table, "at_least", where),
            why=r.string(table, "why", where),
            broken_by=r.optional_string(table, "broken_by", where),
            broken_at=r.optional_number(table, "broken_at", where, **level),
            bottleneck=Bottleneck.from_dict(
                r, r.table(table, "bottleneck", where, required=False), join(where, "bottleneck")
            ),
            usl=usl,
        )


class StepsEnded(Exception):
    """The run ended (stopped, interrupted, a cap) before a step was measured."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Window:
    """What one step measured: its run's figures between the end of the warm-up and the end
    of the step (a difference of two marks of the same run)."""

    requests: int
    errors: int
    dropped: int
    latency: Counts
    seconds: float
    points: tuple[TimelinePoint, ...]  # the run's seconds inside the window


# One step: set the load to ``level``, discard the warm-up, measure ``search.step`` seconds.
StepMeasure = Callable[[float], Awaitable[Window]]


async def find_limit(
    search: Search,
    target: str,
    measure_at: StepMeasure,
    on_step: Callable[[Step], None] | None = None,
) -> LimitResult:
    """Step the load as ``search`` says, ``measure_at(level)`` measuring each step (LiveSteps
    does it on one running run). Raises DeadTarget; StepsEnded when the run ends first."""
    steps: list[Step] = []
    tried: dict[float, Step] = {}

    async def once(level: float, recheck: bool = False) -> Step:
        step = judge(await measure_at(level), level, search, recheck)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        return step

    async def at(level: float) -> Step:
        if level not in tried:
            step = await once(level)
            if not step.held and step.bottleneck.kind == NONE and step.requests:
                # A break with nothing named as limited may be the host's noise (a stall of
                # the shared machine spikes a short step's p95): measured again, the second
                # verdict stands.
                step = await once(level, recheck=True)
            tried[level] = step
        return tried[level]

    def result(
        limit: float | None, at_least: bool, why: str, broke: Step | None = None
    ) -> LimitResult:
        broken_by = broke.broken[0].split(" (")[0] if broke is not None and broke.broken else None
        usl = None
        if search.model == "closed":
            points = [s for s in steps if s.requests]
            usl = fit_usl([s.asked for s in points], [s.achieved for s in points])
        return LimitResult(
            target=target,
            search=search,
            steps=tuple(steps),
            limit=limit,
            at_least=at_least,
            why=why,
            broken_by=broken_by,
            broken_at=broke.asked if broke is not None else None,
            bottleneck=broke.bottleneck if broke is not None else Bottleneck(),
            usl=usl,
        )

    unit = search.unit
    # Climb: double the rate (or the next rung of users) until a step breaks or is ours.
    level, held = search.start, None
    while True:
        step = await at(level)
        if held is None and not step.held and step.errors == step.requests:
            raise DeadTarget(
                f"the target answered no request successfully at {_load(level, unit)} "
                f"({step.requests} sent, {step.errors} errors): is it up?"
            )
        if step.bottleneck.kind in OURS:
            # Our own bound gave out: what the target carried here (if it held) or at the
            # last step is a floor under its limit, not the limit.
            floor = max(held or 0.0, step.achieved) if step.held else held
            return result(
                floor,
                True,
                f"at {_load(level, unit)} the {step.bottleneck.kind} gave out before the "
                f"target: the limit is at least {_load(floor or 0.0, unit)}; the load tool "
                f"could not push further ({step.bottleneck.evidence})",
                step,
            )
        if not step.held:
            broke = step
            break
        held = level
        if level >= search.maximum:
            return result(
                held,
                True,
                f"every SLO held up to --max ({_load(search.maximum, unit)}): the limit is "
                "at least that",
            )
        level = min(_next_level(level, search.model), search.maximum)
    if held is None:
        # The first step broke: walk down until one holds (a rate halves; users down the ladder).
        while held is None:
            lower = _lower_level(level, search.model)
            if lower is None:
                return result(
                    None,
                    False,
                    f"an SLO broke even at {_load(level, unit)}, the lowest load tried",
                    broke,
                )
            level = lower
            step = await at(level)
            if step.held:
                held = level
            else:
                broke = step
    # Bisect between the load that held and the one that broke.
    high = broke.asked
    while not _close_enough(held, high, search) and len(steps) < MAX_STEPS:
        middle = _middle(held, high, search.model)
        step = await at(middle)
        if step.bottleneck.kind in OURS and not step.held:
            return result(
                held,
                True,
                f"at {_load(middle, unit)} the {step.bottleneck.kind} gave out before the "
                f"target: the limit is at least {_load(held, unit)} "
                f"({step.bottleneck.evidence})",
                step,
            )
        if step.held:
            held = middle
        else:
            high, broke = middle, step
    return result(
        held,
        False,
        f"every SLO held at {_load(held, unit)}; at {_load(high, unit)} "
        f"{broke.broken[0]} broke first",
        broke,
    )


def _load(level: float, unit: str) -> str:
    return f"{level:.0f} users" if unit == "users" else f"{level:g} req/s"


def _next_level(level: float, model: str) -> float:
    if model == "open":
        return level * 2
    return float(_ladder(level)[-1])  # the first rung above ``level``


def _lower_level(level: float, model: str) -> float | None:
    if model == "open":
        lower = round(level / 2, 3)
        return lower if lower >= 1 else None
    below = [rung for rung in _ladder(level) if rung < level]
    return float(below[-1]) if below else None


def _ladder(up_to: float) -> Sequence[int]:
    """The rungs 1, 2, 5, 10, 20, 50... up to and including the first one above ``up_to``."""
    rungs: list[int] = []
    scale = 1
    while True:
        for base in USER_LADDER:
            rungs.append(base * scale)
            if base * scale > up_to:
                return rungs
        scale *= 10


def _close_enough(held: float, broke: float, search: Search) -> bool:
    if search.model == "closed":
        return broke - held <= max(1.0, held * search.precision)
    return (broke - held) <= held * search.precision


def _middle(held: float, broke: float, model: str) -> float:
    middle = (held + broke) / 2
    return float(round(middle)) if model == "closed" else round(middle, 1)


# -- one step --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    """A run's cumulative figures at one snapshot."""

    elapsed: float = 0.0
    requests: int = 0
    errors: int = 0
    dropped: int = 0
    latency: Counts = field(default_factory=Counts)


class LiveSteps:
    """Steps the load of one running run: each step sets the level live (rate or users),
    lets ``search.warmup`` seconds pass, then measures ``search.step`` seconds.

    One run for the whole search, not a run per step: its session holds every step (the
    control log replays them), the console shows them as they happen, and connections and
    workers are not rebuilt each step.

    A lower rate after a higher one (open model) first lets the target's queue drain: the
    requests the overloaded step left waiting would otherwise be the next step's latency,
    and a load that holds would be measured as breaking. The rate is set to 0 until nothing
    is in flight (at most DRAIN_S), then to the new level. Users (closed model) never queue
    more than their number: no drain.
    """

    def __init__(self, handle: RunHandle, search: Search) -> None:
        self._handle = handle
        self._search = search
        self._level: float | None = None
        self._due = 0.0  # the run time the next mark is taken at
        self._waiting: asyncio.Future[_Mark] | None = None
        self._drained: asyncio.Future[None] | None = None
        handle.add_listener(self._on_snapshot)

    async def __call__(self, level: float) -> Window:
        handle = self._handle
        if handle.latest.finished:
            raise StepsEnded(handle.latest.stop_reason)
        lower = self._level is not None and level < self._level
        self._level = level
        if self._search.model == "open":
            if lower:
                await self._drain()
            handle.set_rate(level)
        else:
            handle.set_users(int(round(level)))
        began = handle.elapsed()
        first = await self._mark_at(began + self._search.warmup)
        last = await self._mark_at(first.elapsed + self._search.step)
        latency = _since(last.latency, first.latency)
        points = handle.latest.timeline
        return Window(
            requests=last.requests - first.requests,
            errors=last.errors - first.errors,
            dropped=last.dropped - first.dropped,
            latency=latency,
            seconds=max(last.elapsed - first.elapsed, 1e-6),
            points=tuple(p for p in points if first.elapsed < p.t <= last.elapsed),
        )

    async def _drain(self) -> None:
        self._handle.set_rate(0.0)
        self._drained = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drained), DRAIN_S)
        finally:
            self._drained = None
        if self._handle.latest.finished:
            raise StepsEnded(self._handle.latest.stop_reason)

    async def _mark_at(self, elapsed: float) -> _Mark:
        self._due = elapsed
        self._waiting = asyncio.get_running_loop().create_future()
        try:
            return await self._waiting
        finally:
            self._waiting = None

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        # On the runner's loop, right after the snapshot was folded: the histograms agree
        # with its counts.
        drained = self._drained
        if drained is not None and not drained.done():
            if snapshot.finished or snapshot.in_flight == 0:
                drained.set_result(None)
        waiting = self._waiting
        if waiting is None or waiting.done():
            return
        if snapshot.finished:
            waiting.set_exception(StepsEnded(snapshot.stop_reason))
        elif snapshot.elapsed >= self._due:
            total = snapshot.total
            latency, _ = self._handle.total_histograms()
            waiting.set_result(
                _Mark(snapshot.elapsed, total.requests, total.errors, total.dropped, latency)
            )


def judge(window: Window, level: float, search: Search, recheck: bool = False) -> Step:
    """A step's verdict from what it measured: its SLOs and its bottleneck."""
    requests, seconds = window.requests, window.seconds
    summary = EndpointSummary(
        "step",
        requests=requests,
        errors=window.errors,
        rps=requests / seconds,
        error_rate=window.errors / requests if requests else 0.0,
        latency_ms=summarise_histogram(window.latency),
        dropped=window.dropped,
    )
    metrics = threshold_metrics(summary)
    broken = tuple(
        f"{slo.expr} ({slo.metric} {_figure(metrics.get(slo.metric))})"
        for slo in search.slos
        if not slo.check(metrics.get(slo.metric), final=True)
    )
    points = window.points
    return Step(
        asked=level,
        achieved=summary.rps,
        requests=requests,
        errors=window.errors,
        dropped=window.dropped,
        latency=summary.latency_ms,
        broken=broken,
        bottleneck=summarise([p.bottleneck for p in points], [p.service_p50 for p in points]),
        seconds=seconds,
        recheck=recheck,
    )


def _figure(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4g}"


def _since(later: Counts, earlier: Counts) -> Counts:
    """The samples ``later`` holds beyond ``earlier`` (a histogram of the same run, before)."""
    if not earlier.total:
        return later
    count = later.count.copy()
    positions = np.searchsorted(later.index, earlier.index)
    count[positions] -= earlier.count
    keep = count > 0
    return Counts(later.index[keep], count[keep])


# -- the published shape of --json ------------------------------------------------------------


def limit_schema() -> dict[str, Any]:
    """The JSON Schema of ``LimitResult.to_dict()``, published as ``limit.schema.json``."""
    number, count = {"type": "number"}, {"type": "integer", "minimum": 0}
    nullable_number = {"anyOf": [number, {"type": "null"}]}
    step_properties: dict[str, Any] = {
        "asked": number,
        "achieved": number,
        "requests": count,
        "errors": count,
        "error_rate": number,
        "dropped": count,
        "p50": number,
        "p95": number,
        "p99": number,
        "held": {"type": "boolean"},
        "broken_by": {"type": "array", "items": {"type": "string"}},
        "bottleneck": bottleneck_schema(),
        "seconds": number,
        "recheck": {"type": "boolean"},
    }
    step = {
        "type": "object",
        "properties": step_properties,
        "required": sorted(step_properties),
        "additionalProperties": False,
    }
    usl = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "lambda": number,
                    "sigma": number,
                    "kappa": number,
                    "peak_users": nullable_number,
                    "r2": number,
                    "quality": {"enum": ["good", "poor"]},
                },
                "required": ["lambda", "sigma", "kappa", "peak_users", "r2", "quality"],
                "additionalProperties": False,
            },
            {"type": "null"},
        ]
    }
    properties: dict[str, Any] = {
        "target": {"type": "string"},
        "model": {"enum": ["closed", "open"]},
        "unit": {"enum": ["req/s", "users"]},
        "limit": nullable_number,
        "at_least": {"type": "boolean"},
        "why": {"type": "string"},
        "broken_by": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "broken_at": nullable_number,
        "bottleneck": bottleneck_schema(),
        "slos": {"type": "array", "items": {"type": "string"}},
        "precision": number,
        "step_seconds": number,
        "warmup_seconds": number,
        "steps": {"type": "array", "items": step},
        "usl": usl,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "stressdeck find-limit",
        "description": "The document `stressdeck find-limit --json` writes.",
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


if __name__ == "__main__":  # python -m stressdeck.engine.limit > limit.schema.json
    import json

    print(json.dumps(limit_schema(), indent=2))
