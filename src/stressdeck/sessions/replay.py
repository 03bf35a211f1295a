"""Replay: run a saved session's plan again and apply its live changes at the same offsets.

Offsets are measured on the run handle's own clock (``handle.elapsed()``, zero when the
workers are ready), the same clock the original control log was stamped with, so a change
lands within a tick of where it was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from stressdeck.core.errors import InputError
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import Plan, build_plan, chosen_model
from stressdeck.engine.snapshot import (
    INTERRUPTED,
    REPLAY_ENDED,
    STOPPED,
    STOPPING,
    Control,
    ControlEvent,
    Snapshot,
)
from stressdeck.profiles.profile import Profile, parse_profile
from stressdeck.sessions.session import Session

# Wake this much before a change is due. The runner folds statistics on the same loop at tick
# boundaries, and a fold can hold the loop for a good part of a tick; a change due on a
# boundary (as replayed offsets often are) that loses the race waits the whole fold. Landing
# 20 ms early is the better error.
EARLY = 0.02
# A replay that ends where its original was interrupted; still starts with INTERRUPTED, so a
# replay of this replay stops at the same point too.
REPLAYED_INTERRUPT = "interrupted here in the original run"
# The original's control log ends in a stop: the replay ends there by itself, not by a user.
REPLAYED_STOP = REPLAY_ENDED


class Steerable(Protocol):
    """What a replay needs of a run: ``RunHandle`` has all of it."""

    @property
    def state(self) -> str: ...

    def elapsed(self) -> float: ...

    def set_users(self, users: int) -> None: ...

    def set_rate(self, rate: float) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    async def stop(self, reason: str = ...) -> Snapshot: ...


# Where build_plan reports a bad value (a field of the profile, or the option's name) -> the
# override that set it.
_OVERRIDDEN = {
    "load.users": "users",
    "load.rate": "rate",
    "--base-url": "base_url",
    "--metrics-url": "metrics_url",
    "--metric": "metrics",
    "--preset": "preset",
}


def replay_inputs(
    session: Session, source: str, *, base_url: str | None = None, i_know: bool = False
) -> tuple[Profile, Overrides, Plan]:
    """The saved profile, its overrides (``base_url`` wins) and the plan they build.

    Raises InputError naming the session file when the saved profile no longer builds
    (a missing ``${ENV}`` variable, a data file that moved ...).
    """
    saved = session.plan
    overrides = _as_ran(saved.overrides, saved.load.model)
    if base_url is not None:
        overrides = overrides.changed(base_url=base_url)
    try:
        # Parsed as the original profile file, so relative data files resolve as they did.
        profile = parse_profile(
            _document_as_ran(saved.document, saved.load.model), saved.source or source
        )
        if overrides.model is None and chosen_model(profile.load.model, overrides) != (
            saved.load.model
        ):
            # The profile chooses another model today (a rate alone in a profile is the
            # open model now; it was ignored before): replay the model that ran.
            overrides = overrides.changed(model=saved.load.model)
        plan = build_plan(
            profile,
            overrides,
            max_duration=saved.load.max_duration,
            tick=saved.load.tick,
            i_know=i_know,
        )
    except InputError as exc:
        # A value the session's overrides set is named there, not in the profile it overrode.
        key = _OVERRIDDEN.get(exc.field or exc.source)
        set_by_session = key is not None and getattr(saved.overrides, key) is not None
        if set_by_session and not (key == "base_url" and base_url is not None):
            raise InputError(source, f"plan.overrides.{key}", exc.message) from None
        if exc.source.startswith("--"):  # a command-line option, e.g. a bad --base-url
            raise
        field = f"plan.profile.{exc.field}" if exc.field else "plan.profile"
        raise InputError(source, field, exc.message) from None
    return profile, overrides, plan


def _as_ran(overrides: Overrides, model: str) -> Overrides:
    """The overrides that made the saved run's load model. Before --rate chose the open model
    and --users the closed one, the other model's option was ignored (``--users 5 --rate 10``
    ran 5 users): a replay runs what ran, not what the option would choose today."""
    if overrides.model is not None:
        return overrides
    if model == "closed" and overrides.rate is not None:
        return overrides.changed(rate=None, model="closed" if overrides.users is None else None)
    if model == "open" and overrides.users is not None:
        return overrides.changed(users=None, model="open" if overrides.rate is None else None)
    return overrides


def _document_as_ran(document: Mapping[str, Any], model: str) -> Mapping[str, Any]:
    """The saved profile with the load model that ran. Profiles once could give a rate
    beside the closed model (``model = "closed"``, or users and a rate without a model),
    and the rate was ignored; they are refused now, and a replay runs what ran."""
    load = document.get("load")
    if not isinstance(load, dict) or "rate" not in load:
        return document
    if load.get("model", "open" if "users" not in load else "closed") != "closed":
        return document
    as_ran = dict(load, model=model)
    if model == "closed":
        del as_ran["rate"]
    return {**document, "load": as_ran}


def plan_for_replay(
    session: Session, source: str, *, base_url: str | None = None, i_know: bool = False
) -> Plan:
    """The plan to replay; raises InputError as ``replay_inputs`` does."""
    return replay_inputs(session, source, base_url=base_url, i_know=i_know)[2]


def replay_events(session: Session) -> tuple[ControlEvent, ...]:
    """The changes to apply, in the order they were made."""
    return tuple(sorted(session.results.control_log, key=lambda event: event.offset))


def apply_event(handle: Steerable, event: ControlEvent) -> None:
    """Apply one non-stop change; unknown commands were refused when the session was loaded."""
    match event.command:
        case Control.USERS if event.value is not None:
            handle.set_users(int(event.value))
        case Control.RATE if event.value is not None:
            handle.set_rate(float(event.value))
        case Control.PAUSE:
            handle.pause()
        case Control.RESUME:
            handle.resume()


async def _sleep_until(handle: Steerable, offset: float) -> None:
    delay = offset - EARLY - handle.elapsed()
    if delay > 0:
        await asyncio.sleep(delay)


async def steer(
    handle: Steerable,
    events: Sequence[ControlEvent],
    *,
    stop_at: float | None = None,
    stop_reason: str = REPLAYED_INTERRUPT,
) -> None:
    """Apply ``events`` at their offsets; stop at ``stop_at`` if the original run was cut short.

    Returns early when the run ends by itself (duration, a cap, an abort).
    """
    for event in events:
        await _sleep_until(handle, event.offset)
        if handle.state in (STOPPING, STOPPED):
            return
        if event.command == Control.STOP:
            await handle.stop(REPLAYED_STOP)
            return
        if event.command == "resume" and event.value:
            # The run's clock stands still while paused: the entry says how long it was.
            await asyncio.sleep(event.value)
            if handle.state in (STOPPING, STOPPED):
                return
        apply_event(handle, event)
    if stop_at is not None:
        await _sleep_until(handle, stop_at)
        if handle.state not in (STOPPING, STOPPED):
            await handle.stop(stop_reason)


def stop_offset(session: Session) -> float | None:
    """Where to cut a replay short: an interrupted original stopped before its planned end."""
    if session.results.stop_reason.startswith(INTERRUPTED):
        return session.results.elapsed
    return None
