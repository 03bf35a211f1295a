"""The console's find-limit: the form's fields read into a Search, the plan of its one run,
and what the console says about it (the header's line, one log line per step, the answer).

The search itself is engine/limit_search.py's ``find_limit`` driving ``LiveSteps`` on the run the
console started, exactly as ``stressdeck find-limit`` does (cli/limit.py); this module only
keeps what the console shows of it while it goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stressdeck.core.errors import InputError
from stressdeck.core.text import printable
from stressdeck.core.units import parse_duration
from stressdeck.engine.limit import (
    CLOSED_START,
    DEFAULT_PRECISION,
    OPEN_START,
    DeadTarget,
    LimitResult,
    Search,
    Step,
    StepsEnded,
    default_warmup,
    precision_of,
    search_profile,
    slo_problem,
)
from stressdeck.engine.plan import MAX_RATE, MAX_USERS
from stressdeck.engine.snapshot import SEARCH_ENDED
from stressdeck.profiles.thresholds import Threshold, parse_threshold
from stressdeck.ui.events import ERROR, INFO, WARN
from stressdeck.ui.planning import PlanSource

if TYPE_CHECKING:
    from stressdeck.engine.limit_search import Window
    from stressdeck.engine.runner import RunHandle

DEFAULT_SLOS = ("p95 < 200ms", "error_rate < 1%")
DEFAULT_STEP_S = 10.0
MAX_STEP_S = 600.0  # a step of more than 10 minutes would make a search of hours
MODELS = ("open", "closed")


def default_start(model: str) -> float:
    return OPEN_START if model == "open" else CLOSED_START


def safety_cap(model: str) -> float:
    return MAX_RATE if model == "open" else float(MAX_USERS)


def split_slos(text: str) -> list[str]:
    """SLOs typed one per line, or separated by commas or semicolons."""
    parts = text.replace(";", "\n").replace(",", "\n").splitlines()
    return [part.strip() for part in parts if part.strip()]


def parse_search(
    slos: str,
    model: str,
    start: str,
    maximum: str,
    step: str,
    precision: str = "",
    *,
    i_know: bool = False,
) -> Search:
    """The search the form asks for (an empty field: its default); raises InputError naming
    the field ("SLOs", "model", "start", "max", "step", "precision") and what was expected."""
    model = model.strip().lower()
    if model not in MODELS:
        raise InputError("model", "", f'expected "open" or "closed", got {printable(model, 20)!r}')
    texts = split_slos(slos)
    if not texts:
        raise InputError("SLOs", "", 'expected at least one, e.g. "p95 < 200ms"')
    parsed: list[Threshold] = [parse_threshold(text, "SLOs", "") for text in texts]
    for slo in parsed:
        if (problem := slo_problem(slo)) is not None:
            raise InputError("SLOs", "", problem)
    cap = safety_cap(model)
    unit = "requests/s" if model == "open" else "users"
    first = _number("start", start, default_start(model), whole=model == "closed")
    top = _number("max", maximum, cap, whole=model == "closed")
    if top > cap and not i_know:
        raise InputError(
            "max",
            "",
            f"{top:g} {unit} is above the safety cap of {cap:g} {unit} (--i-know lifts it)",
        )
    if first > top:
        raise InputError("start", "", f"expected at most max ({top:g} {unit})")
    seconds = parse_duration(step.strip()) if step.strip() else DEFAULT_STEP_S
    if seconds is None or seconds <= 0:
        raise InputError(
            "step", "", f'expected a duration like "10s" or "1m", got {printable(step, 20)!r}'
        )
    if seconds > MAX_STEP_S:
        raise InputError("step", "", f"expected at most {MAX_STEP_S / 60:g}m")
    return Search(
        model=model,
        slos=tuple(parsed),
        start=first,
        maximum=top,
        step=seconds,
        warmup=default_warmup(seconds),
        precision=_fraction(precision),
    )


def _fraction(text: str) -> float:
    if not text.strip():
        return DEFAULT_PRECISION
    value = precision_of(text)
    if value is None:
        raise InputError(
            "precision", "", f'expected a percentage like "5%", got {printable(text, 20)!r}'
        )
    return value


def _number(name: str, text: str, default: float, *, whole: bool) -> float:
    typed = text.strip().replace(",", "").replace("_", "").removesuffix("/s").strip()
    if not typed:
        return default
    what = "a whole number of users" if whole else "a rate in requests/s"
    try:
        value = float(typed)
    except ValueError:
        raise InputError(name, "", f"expected {what}, got {printable(text, 20)!r}") from None
    if not 0 < value < float("inf") or (whole and value != int(value)):
        raise InputError(name, "", f"expected {what} above 0, got {printable(text, 20)!r}")
    return value


def search_source(source: PlanSource, search: Search) -> PlanSource:
    """What the search's run is built from: the console's profile and overrides, its load set
    by the steps (the profile's stages, preset, request budget and abort are not this
    search's); raises InputError."""
    profile = search_profile(source.profile)
    overrides = source.overrides.changed(**search.load_overrides(), requests=None, preset=None)
    built = PlanSource(profile, overrides, search.budget + 60, source.tick, source.i_know)
    built.build()
    return built


def load_text(level: float, unit: str) -> str:
    return f"{level:.0f} users" if unit == "users" else f"{level:g} {unit}"


def step_text(step: Step, number: int, unit: str) -> str:
    """One log line per step: the CLI's table row, in words."""
    verdict = "held" if step.held else "broke: " + "; ".join(step.broken)
    if step.recheck:
        verdict += " (measured again)"
    latency = step.latency
    return (
        f"find-limit step {number}: {load_text(step.asked, unit)} asked, "
        f"{step.achieved:.1f} req/s achieved, p50/p95/p99 {latency.p50:.1f}/{latency.p95:.1f}/"
        f"{latency.p99:.1f} ms, {step.errors} errors, bottleneck {step.bottleneck.kind}: "
        f"{verdict}"
    )


def limit_figure(result: LimitResult) -> str:
    """ "limit 87.5 req/s", "limit at least 40 req/s" or "no limit found"."""
    if result.limit is None:
        return "no limit found"
    at_least = "at least " if result.at_least else ""
    return f"limit {at_least}{load_text(result.limit, result.search.unit)}"


def answer_text(result: LimitResult) -> str:
    """The answer in one line: the limit (or at least), and how the search ended."""
    return f"{limit_figure(result)}: {result.why}"


@dataclass
class ConsoleSearch:
    """A find-limit under way in the console, or the last one: what its steps measured."""

    search: Search
    steps: list[Step] = field(default_factory=list)
    level: float | None = None  # the load of the step being measured
    began: int = 0  # steps begun
    result: LimitResult | None = None
    ended: str | None = None  # why it ended without an answer
    dead: bool = False  # the target answered nothing at the first step: an error
    running: bool = True

    @property
    def unit(self) -> str:
        return self.search.unit

    def describe(self) -> str:
        """The search in one line, for the log's "run N:" line."""
        search = self.search
        slos = ", ".join(slo.expr for slo in search.slos)
        return (
            f"find-limit, {search.model} model from {load_text(search.start, self.unit)}, "
            f"steps of {search.warmup:g}s warm-up + {search.step:g}s measured, SLOs {slos}"
        )

    def begin(self, level: float) -> None:
        self.level = level
        self.began += 1

    def status(self, rate_now: float | None = None) -> str:
        """The header's line: what the search is doing, or what it found."""
        if self.result is not None:
            return "find-limit: " + limit_figure(self.result)
        if self.ended is not None:
            return f"find-limit ended without a limit: {self.ended}"
        if self.level is None:
            return "find-limit: starting"
        text = f"find-limit step {self.began}: {load_text(self.level, self.unit)}"
        if self.search.model == "open" and rate_now == 0 and self.level > 0:
            text += " (the queue drains first)"
        return text


async def run_search(
    handle: RunHandle,
    state: ConsoleSearch,
    target: str,
    changed: Callable[[], None],
    log: Callable[[str, str], None],
) -> None:
    """Find the limit on the run ``handle`` drives, as ``stressdeck find-limit`` does,
    keeping ``state`` up to date (``changed`` is called after each change, ``log`` with a
    line and its level). When the search is done the run stops there (SEARCH_ENDED, so a
    replay stops there too); ended first (``s``, a signal, a cap), what was measured stays."""
    from stressdeck.engine.limit_search import LiveSteps, find_limit  # a run is going: loaded

    steps = LiveSteps(handle, state.search)

    async def measure(level: float) -> Window:
        state.begin(level)
        changed()
        return await steps(level)

    def measured(step: Step) -> None:
        state.steps.append(step)
        log(
            printable(step_text(step, len(state.steps), state.unit), 400),
            INFO if step.held else WARN,
        )
        changed()

    try:
        state.result = await find_limit(state.search, target, measure, on_step=measured)
    except DeadTarget as exc:
        state.ended, state.dead = str(exc), True
        log(f"find-limit: {printable(exc)}", ERROR)
    except StepsEnded as exc:
        state.ended = f"the run ended first ({exc})"
        state.result = exc.partial  # a floor ("at least"), from the steps measured
        log(
            f"find-limit stopped before it found the limit: {len(state.steps)} steps measured "
            "are kept (on the Charts tab and in a saved session)",
            WARN,
        )
        if exc.partial is not None and exc.partial.steps:
            log(f"find-limit: {printable(answer_text(exc.partial), 400)}", WARN)
    else:
        log(f"find-limit: {printable(answer_text(state.result), 400)}", INFO)
    finally:
        state.running = False
        changed()
    await handle.stop(SEARCH_ENDED)  # nothing to do when the run ended first
