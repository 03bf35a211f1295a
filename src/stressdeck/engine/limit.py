"""find-limit: the highest load at which every SLO held, found by steps of real load.

Open model: the rate doubles from ``start`` until an SLO breaks, then the bracket is bisected
until its width is within ``precision`` of the load that held. Closed model: users climb the
ladder 1, 2, 5, 10, 20, 50, 100... until an SLO breaks, then are bisected in whole users; the
steps are fitted with the Universal Scalability Law (engine/usl.py).

The steps are parts of one run (engine/limit_search.py's LiveSteps): each sets the level live, discards ``warmup``
seconds, then measures ``step`` seconds from the run's counts and histograms (the difference
between the mark at the end of the warm-up and the one at the end of the step). A step's verdict comes from its bottleneck (engine/bottleneck.py) as
much as from its SLOs: when the generator or the connections gave out, the search stops and
the limit is *at least* the last load that held, never a target limit that is ours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stressdeck.core.fields import MAX_SECONDS, Reader, join
from stressdeck.engine.bottleneck import (
    CONNECTIONS,
    GENERATOR,
    Bottleneck,
    bottleneck_schema,
)
from stressdeck.engine.plan import CEILING_RATE
from stressdeck.engine.snapshot import Percentiles
from stressdeck.engine.usl import UslFit
from stressdeck.profiles.profile import Profile
from stressdeck.profiles.thresholds import Threshold, parse_threshold

OPEN_START, CLOSED_START = 10.0, 1.0
USER_LADDER = (1, 2, 5)  # times 10**k: 1, 2, 5, 10, 20, 50, 100...
DEFAULT_PRECISION = 0.05
OURS = (GENERATOR, CONNECTIONS)
MAX_WARMUP = 5.0  # seconds: the default warm-up is a quarter of the step, at most this
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

    @property
    def budget(self) -> float:
        """Seconds the search's one run may last: every step it may take, drains included;
        the search stops the run when it is done."""
        return MAX_STEPS * (self.warmup + self.step + DRAIN_S) + 10

    def load_overrides(self) -> dict[str, Any]:
        """What the run's overrides set for the search: the model, the first step's load and
        the budget (``Overrides(**...)`` or ``.changed(**...)``)."""
        return {
            "model": self.model,
            "rate": self.start if self.model == "open" else None,
            "users": int(round(self.start)) if self.model == "closed" else None,
            "duration": self.budget,
        }


def slo_problem(slo: Threshold) -> str | None:
    """Why ``slo`` cannot bound a search (None: it can). More load only ever makes latency,
    errors and drops worse and rps higher, so a search holds latency, errors and drops
    under a bound and rps over one: ``p95 > 100ms`` would "hold" only once the target is
    overloaded, and the search would walk down to nothing."""
    if slo.metric == "rps":
        if slo.op not in (">", ">="):
            return f'expected rps with > or >= (a floor the target must reach), got "{slo.expr}"'
    elif slo.op not in ("<", "<="):
        return f'expected {slo.metric} with < or <= (a bound more load breaks), got "{slo.expr}"'
    return None


def precision_of(text: str) -> float | None:
    """A search's precision as typed ("5%" or 0.05); None unless strictly between 0 and 1."""
    typed = text.strip()
    try:
        value = float(typed[:-1]) / 100 if typed.endswith("%") else float(typed)
    except ValueError:
        return None
    return value if 0 < value < 1 else None


def default_warmup(step: float) -> float:
    """A quarter of the step, at most MAX_WARMUP seconds."""
    return min(step / 4, MAX_WARMUP)


def search_profile(profile: Profile) -> Profile:
    """The profile a search runs: its load set by the steps, so the profile's stages, preset
    and abort on a failed threshold are not the search's."""
    return dataclasses.replace(
        profile,
        load=dataclasses.replace(profile.load, stages=(), preset=None),
        abort_on_fail=False,
    )


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
    """The run ended (stopped, interrupted, a cap) before a step was measured. ``partial``:
    what the steps measured until then say (set by the search; kept, shown and saved)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial: LimitResult | None = None


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
