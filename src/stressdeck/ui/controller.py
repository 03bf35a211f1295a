"""The console's hold on a run: starts it, steers it through the RunHandle, stops it.

Live changes go through ``RunHandle`` only, so each lands in the control log (and so in a
saved session and its replay). Before a run starts, the same keys change the starting load
instead, by rebuilding the plan with an override.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import TYPE_CHECKING

from stressdeck.engine.plan import Plan
from stressdeck.engine.processes import ProcessWorker
from stressdeck.engine.snapshot import PAUSED, RUNNING, STOPPING, Snapshot
from stressdeck.ui.planning import PlanSource, idle_snapshot

if TYPE_CHECKING:
    from stressdeck.engine.runner import RunHandle, WorkerFactory


def preload_run() -> None:
    """Import what a run needs besides the plan: the runner (and with it the workers, their
    HTTP clients, numpy) and the sessions an autosave writes. The console calls it once its
    first screen is up, while the user reads it, and before each run: the first screen
    appears without them, and the watchdog's forced autosave never imports on its thread."""
    import stressdeck.engine.runner
    import stressdeck.sessions.autosave
    import stressdeck.sessions.session  # noqa: F401


MIN_RATE = 0.1  # requests/s: ±10 % steps must never reach zero and get stuck there


class ControlError(Exception):
    """A control that does not apply now; the message says why, for a notification."""


class RunController:
    """``worker_factory`` defaults to one worker *process*: in a thread, the load and the UI
    would share one GIL, so every frame drawn would cost requests (and a busy load would
    make the UI stutter). None runs the load in a thread of this process instead.
    ``processes`` is how many workers send the load (``--processes``, already resolved)."""

    def __init__(
        self,
        source: PlanSource,
        worker_factory: WorkerFactory | None = ProcessWorker,
        processes: int = 1,
    ) -> None:
        self.source = source
        self.worker_factory = worker_factory
        self.processes = max(processes, 1)
        self.plan: Plan = source.build()
        self.handle: RunHandle | None = None
        self.run_plan: Plan | None = None  # the plan of the current (or last) run
        self._idle = idle_snapshot(self.plan)

    # -- reading ---------------------------------------------------------------------------

    def latest(self) -> Snapshot:
        return self.handle.latest if self.handle is not None else self._idle

    @property
    def state(self) -> str:
        return self.handle.state if self.handle is not None else self._idle.state

    @property
    def active(self) -> bool:
        """True while a run is going (running, paused or stopping)."""
        return self.handle is not None and self.handle.state in (RUNNING, PAUSED, STOPPING)

    @property
    def open_model(self) -> bool:
        return self.plan.load.model == "open"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, plan: Plan | None = None) -> RunHandle:
        """Start the next run: ``plan``, or the one the keys shaped (``self.plan``)."""
        if self.active:
            raise ControlError("a run is already going")
        self.run_plan = plan or self.plan
        from stressdeck.engine.runner import start

        preload_run()
        self.handle = await start(self.run_plan, self.processes, self.worker_factory)
        return self.handle

    async def stop(self, reason: str = "stopped by user") -> Snapshot | None:
        """Ask the run to stop and wait for its final snapshot (under a second)."""
        if self.handle is None or not self.active:
            return None
        return await self.handle.stop(reason)

    async def stop_and_autosave(
        self, reason: str, directory: Path, replay_of: str | None = None
    ) -> Path | None:
        """Stop the run and keep what it measured as ``directory``/autosave-*.toml; None when
        no run was going, or it had sent nothing yet. Raises WriteError (one line) when it cannot be written."""
        from stressdeck.sessions.autosave import autosave_path, sent_anything
        from stressdeck.sessions.session import save_session

        if self.run_plan is None or not self.active:
            return None
        final = await self.stop(reason)
        snapshot = final if final is not None else self.latest()
        if not sent_anything(snapshot):
            return None  # stopped before its first request: nothing to keep
        plan = self.run_plan
        # Off the event loop: a long run's timeline and histograms take a moment to encode.
        return await asyncio.to_thread(
            save_session, autosave_path(str(directory)), plan, snapshot, replay_of=replay_of
        )

    def toggle_pause(self) -> str:
        if self.handle is None or not self.active:
            raise ControlError("nothing to pause: start a run with s")
        if self.handle.state == RUNNING:
            self.handle.pause()
        elif self.handle.state == PAUSED:
            self.handle.resume()
        return self.handle.state

    # -- load ------------------------------------------------------------------------------

    def change_users(self, delta: int = 0, factor: float = 1.0) -> int:
        """Users ±delta or ×factor: live on a running run, else for the next one."""
        if self.open_model:
            raise ControlError("open model: change the rate with ] and [")
        if self.active:
            assert self.handle is not None
            # The handle's target, not the snapshot's: keys pressed within one tick add up.
            self.handle.set_users(_scaled(self.handle.users, delta, factor, minimum=0))
            return self.handle.users  # after the safety cap
        users = _scaled(self.plan.load.users, delta, factor, minimum=1)
        self._rebuild(users=users)
        return users

    def change_rate(self, factor: float) -> float:
        """Rate ×factor (open model): live on a running run, else for the next one."""
        if not self.open_model:
            raise ControlError("closed model: change users with + and - (rate is for --model open)")
        if self.active:
            assert self.handle is not None
            current = self.handle.rate or self.plan.load.rate or MIN_RATE
            self.handle.set_rate(round(max(current * factor, MIN_RATE), 2))
            return self.handle.rate or 0.0
        value = round(max((self.plan.load.rate or MIN_RATE) * factor, MIN_RATE), 2)
        self._rebuild(rate=value)
        return value

    def step_rate(self, up: bool) -> float:
        """The rate to the next step of RATE_LADDER above (or below) the current one."""
        if not self.open_model:
            raise ControlError("closed model: + and - change users")
        current = self.handle.rate if self.active and self.handle is not None else None
        if current is None:
            current = self.plan.load.rate or MIN_RATE
        return self.set_rate(ladder_step(current, up))

    def set_users(self, users: int) -> int:
        """Exactly ``users`` virtual users: live on a running run, else for the next one."""
        if self.open_model:
            raise ControlError("open model: set the rate with R")
        if self.active:
            assert self.handle is not None
            self.handle.set_users(max(users, 0))
            return self.handle.users  # after the safety cap
        users = max(users, 1)
        self._rebuild(users=users)
        return users

    def set_rate(self, rate: float) -> float:
        """Exactly ``rate`` requests/s (open model): live, else for the next run."""
        if not self.open_model:
            raise ControlError("closed model: set users with u (rate is for --model open)")
        value = round(max(rate, MIN_RATE), 2)
        if self.active:
            assert self.handle is not None
            self.handle.set_rate(value)
            return self.handle.rate or 0.0
        self._rebuild(rate=value)
        return value

    def set_duration(self, seconds: float) -> float:
        """How long the next run lasts. RunHandle has no control that moves a live run's
        end, so, like a preset, it applies from the next start."""
        self._rebuild(duration=seconds)
        return seconds

    def choose_preset(self, name: str | None) -> None:
        """Shape the next run with a preset (None: back to the profile's load).

        RunHandle has no control that swaps a live run's stages, so a preset always
        applies from the next start; the caller says so when a run is going.
        """
        self._rebuild(preset=name)

    def set_metrics(self, url: str | None, series: tuple[str, ...]) -> None:
        """Follow the target's metrics from the next start; raises InputError (nothing changed).

        Like a preset, this waits for the next start: the run's scraper is the engine's and
        RunHandle has no control that swaps it.
        """
        self._rebuild(metrics_url=url, metrics=series or None)

    def _rebuild(self, **changes: object) -> None:
        self.source = self.source.with_overrides(**changes)
        self.plan = self.source.build()
        self._idle = idle_snapshot(self.plan)


# Rates a person steps through with + and -: 1, 1.5, 2, 3, 5, 7 times a power of ten, so
# 200 → 1,000 req/s is four presses (300, 500, 700, 1000) instead of seventeen at +10 %.
LADDER = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)


def ladder_step(current: float, up: bool) -> float:
    """The next ladder value strictly above (or below) ``current``; never under MIN_RATE."""
    exponent = math.floor(math.log10(max(current, MIN_RATE)))
    candidates = sorted(
        round(step * 10.0**power, 6)
        for power in range(exponent - 1, exponent + 2)
        for step in LADDER
    )
    tolerance = current * 1e-9
    if up:
        return next(v for v in candidates if v > current + tolerance)
    below = [v for v in candidates if v < current - tolerance]
    return max(below[-1] if below else MIN_RATE, MIN_RATE)


def _scaled(current: int, delta: int, factor: float, minimum: int) -> int:
    value = int(round(current * factor)) + delta
    if factor > 1 and value == current:
        value += 1  # doubling 0 users must still move
    return max(value, minimum)
