"""What the console will run next: a profile plus overrides, rebuilt into a Plan on demand.

Keeping the profile and the overrides (instead of only a Plan) lets the console change the
starting load before a run (users, rate, preset) through the same ``build_plan`` the CLI
uses, so the plan's ``overrides`` record exactly what was changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stressdeck.engine.overrides import NO_OVERRIDES, Overrides
from stressdeck.engine.plan import DEFAULT_MAX_DURATION, DEFAULT_TICK, Plan, build_plan
from stressdeck.engine.snapshot import IDLE, EndpointSummary, Snapshot
from stressdeck.profiles.adhoc import url_profile
from stressdeck.profiles.profile import Profile, load_profile
from stressdeck.profiles.thresholds import ThresholdResult


@dataclass(frozen=True)
class PlanSource:
    profile: Profile
    overrides: Overrides = NO_OVERRIDES
    max_duration: float = DEFAULT_MAX_DURATION
    tick: float = DEFAULT_TICK
    # --i-know: the safety caps on users and rate are lifted for every plan built from here.
    i_know: bool = False
    # The plan, built once: the console checks a source when it is made (the CLI, the
    # picker, a changed override) and then runs the same one (20,000 endpoints: seconds).
    _built: list[Plan] = field(default_factory=list, init=False, compare=False, repr=False)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        overrides: Overrides = NO_OVERRIDES,
        max_duration: float = DEFAULT_MAX_DURATION,
        *,
        i_know: bool = False,
    ) -> PlanSource:
        """Load a profile and check the overrides apply; raises InputError."""
        source = cls(load_profile(path), overrides, max_duration, i_know=i_know)
        source.build()
        return source

    def build(self) -> Plan:
        """The Plan for these overrides; raises InputError."""
        if not self._built:
            self._built.append(
                build_plan(
                    self.profile,
                    self.overrides,
                    max_duration=self.max_duration,
                    tick=self.tick,
                    i_know=self.i_know,
                )
            )
        return self._built[0]

    def with_overrides(self, **changes: Any) -> PlanSource:
        """A copy with some overrides changed (None removes one); raises InputError if invalid."""
        merged = self.overrides.changed(**changes)
        source = PlanSource(self.profile, merged, self.max_duration, self.tick, self.i_know)
        source.build()
        return source


def adhoc_profile(method: str, url: str) -> Profile:
    """A one-endpoint profile for a URL typed into the picker; raises InputError."""
    return url_profile(url, method)


def idle_snapshot(plan: Plan) -> Snapshot:
    """What the dashboard shows before the first run: the plan's shape, nothing measured."""
    return Snapshot(
        elapsed=0.0,
        state=IDLE,
        model=plan.load.model,
        target=plan.target,
        users=plan.load.users,
        active_users=0,
        rate=plan.load.rate if plan.load.model == "open" else None,
        in_flight=0,
        total=EndpointSummary("total"),
        endpoints=tuple(EndpointSummary(name) for name in plan.endpoint_names),
        timeline=(),
        control_log=(),
        # Not measured yet (value None): the header lists them without a verdict.
        thresholds=tuple(ThresholdResult(t.expr, None, None, True) for t in plan.thresholds)
        + tuple(
            ThresholdResult(t.expr, name, None, True)
            for name, ts in zip(plan.endpoint_names, plan.endpoint_thresholds, strict=False)
            for t in ts
        ),
    )


def describe_load(plan: Plan) -> str:
    """One line: model, users or rate, duration or request budget, preset."""
    load = plan.load
    parts = [load.model]
    if load.model == "open":
        # Stages without a base rate: the stages give it.
        parts.append(f"{load.rate:g}/s" if load.rate is not None else "rate from stages")
    else:
        parts.append(f"{load.users} users")
    if load.requests is not None:
        parts.append(f"{load.requests} requests")
    elif load.duration is not None:
        parts.append(f"{load.duration:g}s")
    if load.preset:
        parts.append(f"preset {load.preset}")
    elif load.stages:
        parts.append(f"{len(load.stages)} stages")
    return ", ".join(parts)
