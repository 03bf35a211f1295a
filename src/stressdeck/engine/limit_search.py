"""find-limit's search: the steps of one running run, and the verdict of each.

The models it produces (Search, Step, LimitResult) and the search's constants are in
engine/limit.py, which imports nothing heavy: the console reads those on its first screen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from stressdeck.engine.bottleneck import NONE, Bottleneck, summarise
from stressdeck.engine.hdr import Counts
from stressdeck.engine.hdr import summarise as summarise_histogram
from stressdeck.engine.limit import (
    DRAIN_S,
    MAX_STEPS,
    OURS,
    USER_LADDER,
    DeadTarget,
    LimitResult,
    Search,
    Step,
    StepsEnded,
)
from stressdeck.engine.runner import RunHandle, threshold_metrics
from stressdeck.engine.snapshot import EndpointSummary, Snapshot, TimelinePoint
from stressdeck.engine.usl import fit_usl


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
    does it on one running run). Raises DeadTarget; StepsEnded when the run ends first, with
    what the steps so far say as its ``partial`` answer (a floor, "at least")."""
    steps: list[Step] = []
    tried: dict[float, Step] = {}

    async def once(level: float, recheck: bool = False) -> Step:
        try:
            window = await measure_at(level)
        except StepsEnded as ended:
            ended.partial = stopped_early(ended.reason)
            raise
        step = judge(window, level, search, recheck)
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

    def stopped_early(reason: str) -> LimitResult:
        # What the steps measured so far say: the highest load that held below any that
        # broke is a floor under the limit, never the limit itself.
        lowest_broken = min((s.asked for s in steps if not s.held), default=float("inf"))
        floor = max((s.asked for s in steps if s.held and s.asked < lowest_broken), default=None)
        broke = min((s for s in steps if not s.held), key=lambda s: s.asked, default=None)
        held = (
            f"every SLO held at {_load(floor, search.unit)}"
            if floor is not None
            else "no load had held every SLO yet"
        )
        return result(floor, True, f"stopped before the search was done ({reason}): {held}", broke)

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
    since = Counts.merged([later])  # a copy: ``later`` is the run's mark, kept as it is
    since.take_away(earlier)
    return since
