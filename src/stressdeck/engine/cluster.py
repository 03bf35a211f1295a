"""Workers as Ray actors spread over a cluster's nodes (``--cluster ADDRESS``).

Each actor runs the same ``Worker`` as a local run, on its own event loop (a
``ThreadWorker`` inside the actor process); commands are actor calls, and its
``IntervalStats`` deltas come back through a ``poll`` call, one in flight per actor at a
time, so the runner merges them exactly as it merges a worker process's.

Ray is imported here only, and only when a run asks for a cluster: without ``--cluster``
nothing in stressdeck touches it. It is the optional ``cluster`` extra.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import psutil

from stressdeck.core.errors import InputError
from stressdeck.engine.placement import Share, ThreadWorker
from stressdeck.engine.plan import Plan
from stressdeck.engine.snapshot import NodeHealth
from stressdeck.engine.worker import Command, WorkerFinished, WorkerMessage

INSTALL_HINT = "Ray is not installed: pip install 'stressdeck[cluster]' (on every node)"
# A polled actor that has not answered within this long is a lost one (a node gone silent).
POLL_DEADLINE = 10.0
# Stop must return in a second or two: a worker gets this long to hand over its last delta.
FINISH_WAIT = 0.5
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")


def import_ray() -> ModuleType:
    """Ray, or an InputError saying how to install it (one line, no traceback)."""
    try:
        import ray
    except ImportError:
        raise InputError("--cluster", "", INSTALL_HINT) from None
    return ray


def check_address(address: str) -> str:
    """``auto`` (Ray reads RAY_ADDRESS, then a cluster started on this machine) or HOST:PORT."""
    if address == "auto" or _ADDRESS.match(address):
        return address
    raise InputError("--cluster", "", f'expected "auto" or HOST:PORT, got {address!r}')


@dataclass(frozen=True)
class ClusterNode:
    """One live node and the CPUs it has free for workers (one worker per CPU)."""

    node_id: str
    address: str
    cpus: int
    free_cpus: int

    @property
    def label(self) -> str:
        # Several nodes may share an address (containers, a simulated cluster): the id tells.
        return f"{self.address}/{self.node_id[:6]}"


def spread(nodes: list[ClusterNode], workers: int) -> list[ClusterNode]:
    """Which node each worker goes to: round robin over nodes with a free CPU, so two
    workers on two nodes land one on each. Raises InputError when they do not fit."""
    free = sum(node.free_cpus for node in nodes)
    if workers > free:
        raise InputError(
            "--processes",
            "",
            f"{workers} workers asked, the cluster has {free} free CPU(s) on "
            f"{len(nodes)} node(s) (one worker per CPU)",
        )
    left = {node.node_id: node.free_cpus for node in nodes}
    layout: list[ClusterNode] = []
    while len(layout) < workers:
        for node in nodes:
            if left[node.node_id] > 0 and len(layout) < workers:
                left[node.node_id] -= 1
                layout.append(node)
    return layout


class WorkerActor:
    """The actor's body, in a process on some node; wrapped by ``ray.remote`` at connect."""

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
        """What the worker said since the last poll, this process's CPU seconds and the node's
        CPU in % of all its cores."""
        times = self._process.cpu_times()
        return self._worker.poll(), times.user + times.system, psutil.cpu_percent(interval=None)

    def finish(self, timeout: float) -> tuple[list[WorkerMessage], float, float]:
        self._worker.join(timeout)
        return self.poll()


class RayWorker:
    """The runner's handle on one actor, pinned to its node (a ``WorkerHandle``)."""

    def __init__(
        self, ray: ModuleType, actor_class: Any, plan: Plan, share: Share, node: ClusterNode
    ) -> None:
        self._ray = ray
        self._actor_class = actor_class
        self.plan = plan
        self.share = share
        self.node = node
        self._actor: Any = None
        self._inflight: Any = None
        self._asked = 0.0
        self._offset = 0.0  # add to the actor's clock to get ours
        self._finished = False
        self._pending: list[WorkerMessage] = []
        self.requests = 0
        self.lost = False
        self.loop_lag_ms = 0.0  # worst since the placement last read it
        self.peak_loop_lag_ms = 0.0
        self.cpu_seconds: list[tuple[float, float]] = []  # (our clock, actor CPU seconds)
        self.node_cpu_percent = 0.0

    def start(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._actor = self._actor_class.options(
            num_cpus=1,
            # Hard affinity: a worker moved elsewhere would make the layout shown a lie.
            scheduling_strategy=NodeAffinitySchedulingStrategy(self.node.node_id, soft=False),
            max_restarts=0,
            max_task_retries=0,
        ).remote(self.plan, self.share)

    def wait_ready(self, timeout: float) -> bool:
        before = time.monotonic()
        try:
            ok, actor_clock = self._ray.get(self._actor.ready.remote(timeout), timeout=timeout)
        except Exception as exc:  # an actor that never came up: the runner reports it
            self._lose(f"did not start: {_reason(exc)}")
            return False
        after = time.monotonic()
        # The same machine shares one monotonic clock; a clock read inside our call window
        # cannot be told apart from ours, and correcting it would only add the round trip.
        self._offset = 0.0 if before <= actor_clock <= after else (before + after) / 2 - actor_clock
        return bool(ok)

    def send(self, command: Command) -> None:
        if self._actor is not None and not self._finished:
            self._actor.send.remote(command)  # actor calls from one caller run in order

    def poll(self) -> list[WorkerMessage]:
        messages, self._pending = self._pending, []
        if self._finished or self._actor is None:
            return messages
        if self._inflight is None:
            self._inflight, self._asked = self._actor.poll.remote(), time.monotonic()
        ready, _ = self._ray.wait([self._inflight], timeout=0)
        if ready:
            messages += self._collect(self._inflight)
            self._inflight = None
            if not self._finished:
                # Ask now for the next tick's: the answer is waiting when the runner comes back.
                self._inflight, self._asked = self._actor.poll.remote(), time.monotonic()
        elif time.monotonic() - self._asked > POLL_DEADLINE:
            messages += self._lose(f"no answer for {POLL_DEADLINE:g} s")
        return messages

    def join(self, timeout: float) -> bool:
        if self._actor is None:
            return True
        deadline = time.monotonic() + max(timeout, FINISH_WAIT)
        if not self._finished:
            try:
                if self._inflight is not None:
                    self._pending += self._collect(self._inflight, deadline - time.monotonic())
                    self._inflight = None
                if not self._finished:
                    ref = self._actor.finish.remote(max(deadline - time.monotonic(), 0.05))
                    self._pending += self._collect(ref, deadline - time.monotonic() + 0.2)
            except Exception as exc:  # a lost actor at the very end: report it, never hang
                self._pending += self._lose(_reason(exc))
        # Ask Ray to end the actor process even when the worker said it finished: an actor
        # left alive holds a CPU of the cluster for nothing.
        self._ray.kill(self._actor, no_restart=True)
        return True

    def _collect(self, ref: Any, timeout: float | None = None) -> list[WorkerMessage]:
        try:
            messages, cpu_seconds, node_cpu = self._ray.get(ref, timeout=timeout)
        except Exception as exc:  # RayActorError, a lost node ...: crashed, counts kept
            return self._lose(_reason(exc))
        now = time.monotonic()
        self.cpu_seconds.append((now, cpu_seconds))
        while len(self.cpu_seconds) > 2 and now - self.cpu_seconds[1][0] >= 1.0:
            self.cpu_seconds.pop(0)
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
                message = replace(
                    message, start=message.start + self._offset, end=message.end + self._offset
                )
            out.append(message)
        return out

    def _lose(self, why: str) -> list[WorkerMessage]:
        if self._finished:
            return []
        self._finished = self.lost = True
        return [
            WorkerFinished(
                self.share.worker_id, "crashed", f"actor on node {self.node.label} lost: {why}"
            )
        ]

    def cpu_percent(self) -> float:
        if len(self.cpu_seconds) < 2:
            return 0.0
        (then, used_then), (now, used) = self.cpu_seconds[0], self.cpu_seconds[-1]
        return max(0.0, 100.0 * (used - used_then) / (now - then)) if now > then else 0.0


def _reason(exc: BaseException) -> str:
    """The first line of a Ray error: its full text is a page of traceback."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


class RayPlacement:
    """A ``WorkerFactory`` that puts each worker on a node of a Ray cluster, and reports per
    node where the load comes from. One placement serves every run of a console session."""

    def __init__(self, ray: ModuleType, address: str) -> None:
        self._ray = ray
        self.address = address
        self._actor_class = ray.remote(WorkerActor)
        self._workers: list[RayWorker] = []
        self._layout: list[ClusterNode] = []
        self.nodes_seen: list[ClusterNode] = []
        self.notes: list[str] = []

    # -- the cluster ----------------------------------------------------------------------

    def live_nodes(self) -> list[ClusterNode]:
        """Live nodes, sorted by address; CPUs already taken by others are not free."""
        try:
            from ray._private.state import available_resources_per_node

            available = available_resources_per_node()
        except Exception:  # a Ray without it: count every CPU as free, Ray queues the rest
            available = None
        nodes = []
        for info in self._ray.nodes():
            if not info.get("Alive"):
                continue
            node_id = info["NodeID"]
            cpus = int(info.get("Resources", {}).get("CPU", 0))
            free = cpus if available is None else int(available.get(node_id, {}).get("CPU", 0))
            nodes.append(ClusterNode(node_id, info.get("NodeManagerAddress", "?"), cpus, free))
        return sorted(nodes, key=lambda node: (node.address, node.node_id))

    def plan_workers(self, asked: int | None) -> int:
        """Lay out ``asked`` workers (None: one per free CPU); notes say which nodes get none."""
        nodes = self.live_nodes()
        self.nodes_seen = nodes
        self.notes = [
            f"node {node.label} has no free CPU: no worker there ({node.cpus} CPU(s) in all)"
            for node in nodes
            if node.free_cpus < 1
        ]
        usable = [node for node in nodes if node.free_cpus >= 1]
        workers = asked if asked is not None else sum(node.free_cpus for node in usable)
        if workers < 1:
            raise InputError(
                "--cluster", "", f"no node of the cluster at {self.address} has a free CPU"
            )
        self._layout = spread(usable, workers)
        idle = [node for node in usable if node not in self._layout]
        if idle:
            self.notes.append(
                f"{len(idle)} node(s) get no worker: {workers} worker(s) over {len(usable)} node(s)"
            )
        return workers

    def shape(self) -> dict[str, int]:
        """Workers per node label, as laid out."""
        counts: dict[str, int] = {}
        for node in self._layout:
            counts[node.label] = counts.get(node.label, 0) + 1
        return counts

    # -- WorkerFactory ---------------------------------------------------------------------

    def __call__(self, plan: Plan, share: Share) -> RayWorker:
        if share.worker_id == 0:
            # The runner makes its workers in order: worker 0 opens a new run. A console may
            # start several runs on one placement, and each run's layout is laid anew.
            self._workers = []
            if len(self._layout) != share.workers:
                self.plan_workers(share.workers)
        worker = RayWorker(self._ray, self._actor_class, plan, share, self._layout[share.worker_id])
        self._workers.append(worker)
        return worker

    # -- figures per node, for each snapshot -----------------------------------------------

    def cpu_percent(self) -> float:
        """The workers' processes over the whole cluster, in % of one core."""
        return sum(worker.cpu_percent() for worker in self._workers)

    def node_health(self) -> tuple[NodeHealth, ...]:
        by_node: dict[str, list[RayWorker]] = {}
        for worker in self._workers:
            by_node.setdefault(worker.node.label, []).append(worker)
        nodes = []
        for label, workers in by_node.items():
            nodes.append(
                NodeHealth(
                    node=label,
                    workers=len(workers),
                    cpus=workers[0].node.cpus,
                    crashed=sum(1 for worker in workers if worker.lost),
                    requests=sum(worker.requests for worker in workers),
                    cpu_percent=round(sum(worker.cpu_percent() for worker in workers), 1),
                    node_cpu_percent=max(worker.node_cpu_percent for worker in workers),
                    loop_lag_ms=max(worker.loop_lag_ms for worker in workers),
                    peak_loop_lag_ms=max(worker.peak_loop_lag_ms for worker in workers),
                )
            )
            for worker in workers:
                worker.loop_lag_ms = 0.0  # "lately": since the last snapshot
        return tuple(nodes)

    def close(self) -> None:
        """End every actor still alive and leave the cluster (it keeps running for others)."""
        for worker in self._workers:
            if worker._actor is not None:
                self._ray.kill(worker._actor, no_restart=True)
        self._ray.shutdown()


def connect(address: str) -> RayPlacement:
    """Join the Ray cluster at ``address``; InputError (one line) when Ray or the cluster is
    missing."""
    check_address(address)
    ray = import_ray()
    try:
        ray.init(
            address=address,
            log_to_driver=False,  # the workers' output would land in the console's terminal
            logging_level=logging.ERROR,
            configure_logging=True,
        )
    except Exception as exc:
        raise InputError(
            "--cluster",
            "",
            f"no Ray cluster at {address} ({_reason(exc)}); start one with `ray start --head`",
        ) from None
    return RayPlacement(ray, address)
