"""One worker as a Ray actor, and the runner's handle on it (see cluster.py for the placement).

The actor runs the same ``Worker`` as a local run, on its own event loop (a ``ThreadWorker``
inside the actor process). Commands are actor calls, which Ray runs in the order one caller
sent them. Deltas come back through ``poll`` calls that a ``Poller`` thread keeps in flight
for every actor, a few times a tick, so what the runner folds each tick is at most a fraction
of a tick old (a worker silent for two ticks looks stalled to the runner).

Nothing here imports Ray: the placement hands its module in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

import psutil

from stressdeck.engine.placement import Share, ThreadWorker
from stressdeck.engine.plan import Plan
from stressdeck.engine.worker import Command, WorkerFinished, WorkerMessage

# An actor that leaves a poll unanswered this long is lost (a node gone silent, a partition).
POLL_DEADLINE = 10.0
# Past the runner's own stop deadline, a worker that has not finished yet (a slow or lost
# node) gets this much more to hand over its last delta; joins run one after another.
FINISH_GRACE = 0.2


class WorkerActor:
    """The actor's body, in a process on some node; ``ray.remote`` wraps it at connect."""

    def __init__(self, plan: Plan, share: Share) -> None:
        self._worker = ThreadWorker(plan, share)
        self._worker.start()
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)  # the first reading only starts the measure

    def ready(self, timeout: float) -> tuple[bool, float]:
        """Whether the worker's loop is up, and this node's monotonic clock."""
        return self._worker.wait_ready(timeout), time.monotonic()

    def send(self, command: Command) -> None:
        self._worker.send(command)

    def poll(self) -> tuple[list[WorkerMessage], float, float]:
        """What the worker said since the last poll, this process's CPU seconds, and the
        node's CPU in % of all its cores."""
        times = self._process.cpu_times()
        return self._worker.poll(), times.user + times.system, psutil.cpu_percent(interval=None)

    def finish(self, timeout: float) -> tuple[list[WorkerMessage], float, float]:
        self._worker.join(timeout)
        return self.poll()


class RayWorker:
    """The runner's handle on one actor pinned to one node (a ``WorkerHandle``).

    ``poll`` only takes what the poller thread collected; the lock keeps the two apart.
    """

    def __init__(
        self, ray: ModuleType, actor_class: Any, plan: Plan, share: Share, node_id: str, label: str
    ) -> None:
        self._ray = ray
        self._actor_class = actor_class
        self.plan = plan
        self.share = share
        self.node_id = node_id
        self.label = label
        self.actor: Any = None
        self._lock = threading.Lock()
        self._inbox: list[WorkerMessage] = []
        self._inflight: Any = None
        self._asked = 0.0
        self._ready = False
        self._closing = False
        self._finished = False
        self._offset = 0.0  # add to the actor's clock to get ours
        # Figures for the per-node view, read by the placement each snapshot.
        self.requests = 0
        self.lost = False
        self.loop_lag_ms = 0.0  # the worst since the placement last read it
        self.peak_loop_lag_ms = 0.0
        self.node_cpu_percent = 0.0
        self._cpu_samples: list[tuple[float, float]] = []  # (our clock, actor CPU seconds)

    # -- WorkerHandle ----------------------------------------------------------------------

    def start(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.actor = self._actor_class.options(
            num_cpus=1,
            # Hard affinity: a worker moved elsewhere would make the layout shown a lie.
            scheduling_strategy=NodeAffinitySchedulingStrategy(self.node_id, soft=False),
            max_restarts=0,
            max_task_retries=0,
        ).remote(self.plan, self.share)

    def wait_ready(self, timeout: float) -> bool:
        before = time.monotonic()
        try:
            ok, actor_clock = self._ray.get(self.actor.ready.remote(timeout), timeout=timeout)
        except Exception as exc:  # an actor that never came up: the runner reports it
            with self._lock:
                self._inbox += self._lose(f"did not start: {reason(exc)}")
            return False
        after = time.monotonic()
        # One machine has one monotonic clock: a reading inside our call's window cannot be
        # told from ours, and "correcting" it would only add the round trip.
        self._offset = 0.0 if before <= actor_clock <= after else (before + after) / 2 - actor_clock
        self._ready = bool(ok)
        return self._ready

    def send(self, command: Command) -> None:
        if self.actor is not None and not self._finished:
            self.actor.send.remote(command)

    def poll(self) -> list[WorkerMessage]:
        with self._lock:
            messages, self._inbox = self._inbox, []
        return messages

    def join(self, timeout: float) -> bool:
        if self.actor is None:
            return True
        with self._lock:
            self._closing = True  # the poller leaves this worker alone from now on
            pending, self._inflight = self._inflight, None
        # A healthy worker said it finished while the runner drained; this wait is for the rest.
        deadline = time.monotonic() + max(timeout, 0.05) + FINISH_GRACE
        collected: list[WorkerMessage] = []
        try:
            if pending is not None and not self._finished:
                collected += self._collect(pending, deadline - time.monotonic())
            if not self._finished and deadline > time.monotonic():
                finish = self.actor.finish.remote(max(deadline - time.monotonic(), 0.05))
                collected += self._collect(finish, max(deadline - time.monotonic(), 0.05))
        except Exception as exc:  # a lost actor at the very end: report it, never hang
            collected += self._lose(reason(exc))
        with self._lock:
            self._inbox += collected
        # End the actor process even when its worker finished: alive, it holds a CPU.
        self._ray.kill(self.actor, no_restart=True)
        return True

    def sent_so_far(self) -> int | None:
        return None  # in another process, maybe on another machine: only its deltas tell

    # -- the poller's side -----------------------------------------------------------------

    def ask(self) -> Any:
        """The poll call in flight, a new one when none is; None when there is nothing to ask."""
        with self._lock:
            if self._closing or self._finished or not self._ready:
                return None
            if self._inflight is None:
                self._inflight, self._asked = self.actor.poll.remote(), time.monotonic()
            return self._inflight

    def answered(self, ref: Any) -> None:
        with self._lock:
            if ref is self._inflight:  # not taken over by join meanwhile
                self._inflight = None
                self._inbox += self._collect(ref, 0)

    def check_overdue(self) -> None:
        with self._lock:
            if self._inflight is not None and time.monotonic() - self._asked > POLL_DEADLINE:
                self._inflight = None
                self._inbox += self._lose(f"no answer for {POLL_DEADLINE:g} s")

    # -- internals -------------------------------------------------------------------------

    def _collect(self, ref: Any, timeout: float | None) -> list[WorkerMessage]:
        try:
            messages, cpu_seconds, node_cpu = self._ray.get(ref, timeout=timeout)
        except Exception as exc:  # RayActorError, a lost node ...: crashed, counts kept
            return self._lose(reason(exc))
        now = time.monotonic()
        self._cpu_samples.append((now, cpu_seconds))
        while len(self._cpu_samples) > 2 and now - self._cpu_samples[1][0] >= 1.0:
            self._cpu_samples.pop(0)
        self.node_cpu_percent = node_cpu
        out: list[WorkerMessage] = []
        for message in messages:
            if isinstance(message, WorkerFinished):
                self._finished = True
                self.lost = self.lost or bool(message.error)
                out.append(message)
                continue
            self.requests += sum(delta.requests for delta in message.endpoints)
            self.loop_lag_ms = max(self.loop_lag_ms, message.loop_lag_ms)
            self.peak_loop_lag_ms = max(self.peak_loop_lag_ms, message.loop_lag_ms)
            if self._offset:
                shift = self._offset
                message = replace(message, start=message.start + shift, end=message.end + shift)
            out.append(message)
        return out

    def _lose(self, why: str) -> list[WorkerMessage]:
        if self._finished:
            return []
        self._finished = self.lost = True
        return [
            WorkerFinished(
                self.share.worker_id, "crashed", f"actor on node {self.label} lost: {why}"
            )
        ]

    def cpu_percent(self) -> float:
        """The actor process's CPU over about the last second, in % of one core."""
        if len(self._cpu_samples) < 2:
            return 0.0
        (then, used_then), (now, used) = self._cpu_samples[0], self._cpu_samples[-1]
        return max(0.0, 100.0 * (used - used_then) / (now - then)) if now > then else 0.0


class Poller(threading.Thread):
    """Keeps one poll call in flight per running actor and hands each answer to its worker
    as it lands; ``every`` seconds between rounds bounds both the delay and the calls."""

    def __init__(
        self, ray: ModuleType, workers: Callable[[], list[RayWorker]], every: float
    ) -> None:
        super().__init__(name="stressdeck-ray-poller", daemon=True)
        self._ray = ray
        self._workers = workers
        self.every = every
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            began = time.monotonic()
            asked = {}
            for worker in self._workers():
                ref = worker.ask()
                if ref is not None:
                    asked[ref] = worker
            if asked:
                try:
                    ready, _ = self._ray.wait(
                        list(asked), num_returns=len(asked), timeout=self.every
                    )
                except Exception:  # Ray shutting down under us: the run is over anyway
                    return
                for ref in ready:
                    asked[ref].answered(ref)
                for worker in asked.values():
                    worker.check_overdue()
            self._halt.wait(max(self.every - (time.monotonic() - began), 0.005))

    def stop(self) -> None:
        self._halt.set()
        self.join(2)


def reason(exc: BaseException) -> str:
    """The first line of a Ray error: the rest is a page of traceback."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
