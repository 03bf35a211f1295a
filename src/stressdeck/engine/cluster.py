"""Workers as Ray actors spread over a cluster's nodes (``--cluster ADDRESS``).

The placement lays workers out over the live nodes (one per free CPU, round robin, so two
workers on two nodes land one on each), makes each a Ray actor pinned to its node
(ray_worker.py), and reports per node where the load comes from. The runner merges the
actors' deltas exactly as it merges a worker process's.

Ray is imported here only, and only when a run asks for a cluster: without ``--cluster``
nothing in stressdeck touches it. It is the optional ``cluster`` extra.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from dataclasses import dataclass
from types import ModuleType

from stressdeck.core.errors import InputError
from stressdeck.engine.placement import Share
from stressdeck.engine.plan import Plan
from stressdeck.engine.ray_worker import Poller, RayWorker, WorkerActor, reason
from stressdeck.engine.snapshot import NodeHealth

INSTALL_HINT = "Ray is not installed: pip install 'stressdeck[cluster]' (on every node)"
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


class RayPlacement:
    """A ``WorkerFactory`` that puts each worker on a node of a Ray cluster, and reports per
    node where the load comes from. One placement serves every run of a console session."""

    def __init__(self, ray: ModuleType, address: str) -> None:
        self._ray = ray
        self.address = address
        self._actor_class = ray.remote(WorkerActor)
        self._workers: list[RayWorker] = []
        self._layout: list[ClusterNode] = []
        self._poller: Poller | None = None
        self._cpus: dict[str, int] = {}  # CPUs of each node label in use
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
        node = self._layout[share.worker_id]
        worker = RayWorker(self._ray, self._actor_class, plan, share, node.node_id, node.label)
        self._cpus[node.label] = node.cpus
        self._workers.append(worker)
        if self._poller is None:
            # A few polls a tick: a delta reaches the runner within a fraction of a tick.
            self._poller = Poller(self._ray, lambda: list(self._workers), every=plan.tick / 4)
            self._poller.start()
        return worker

    # -- figures per node, for each snapshot -----------------------------------------------

    def cpu_percent(self) -> float:
        """The workers' processes over the whole cluster, in % of one core."""
        return sum(worker.cpu_percent() for worker in self._workers)

    def node_health(self) -> tuple[NodeHealth, ...]:
        by_node: dict[str, list[RayWorker]] = {}
        for worker in self._workers:
            by_node.setdefault(worker.label, []).append(worker)
        nodes = []
        for label, workers in by_node.items():
            nodes.append(
                NodeHealth(
                    node=label,
                    workers=len(workers),
                    cpus=self._cpus.get(label, 0),
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
        try:
            if self._poller is not None:
                self._poller.stop()
            for worker in self._workers:
                if worker.actor is not None:
                    self._ray.kill(worker.actor, no_restart=True)
        finally:
            self._ray.shutdown()


# How long joining a cluster may take: Ray's own retries to a GCS that never answers go on
# for minutes, deaf to Ctrl+C.
CONNECT_TIMEOUT_S = 20.0


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S) -> RayPlacement:
    """Join the Ray cluster at ``address`` within ``timeout`` seconds; InputError (one line)
    when Ray or the cluster is missing.

    A HOST:PORT where nothing listens is found out before Ray is even imported (a TCP
    connection, bounded), so a wrong address costs a second, not Ray's minutes of retries.
    Ray itself gets ``timeout`` seconds on a thread of its own; the error then names the
    address Ray dialled, which differs from the one given for a loopback host (Ray replaces
    127.0.0.1 and localhost with this machine's own address).
    """
    check_address(address)
    if address != "auto":
        _check_listening(address, timeout)
    ray = import_ray()
    joined = threading.Event()
    failure: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(
                address=address,
                log_to_driver=False,  # the workers' output would land in the console's terminal
                logging_level=logging.ERROR,
                configure_logging=True,
            )
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
        finally:
            joined.set()

    # A daemon thread: one that never returns does not keep the process alive.
    threading.Thread(target=join, name="stressdeck-ray-init", daemon=True).start()
    if not joined.wait(timeout):
        raise InputError(
            "--cluster",
            "",
            f"no answer from a Ray cluster at {address} within {timeout:g} s "
            f"(Ray dialled {_dialled(address)}); start one with `ray start --head`",
        )
    if failure:
        raise InputError(
            "--cluster",
            "",
            f"no Ray cluster at {address} ({reason(failure[0])}; Ray dialled "
            f"{_dialled(address)}); start one with `ray start --head`",
        ) from None
    return RayPlacement(ray, address)


def _check_listening(address: str, timeout: float) -> None:
    """A TCP connection to HOST:PORT, or the one error line saying why there is none."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        why = "nothing answered" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise InputError(
            "--cluster",
            "",
            f"no Ray cluster at {address}: {why.lower()} (a TCP connection within "
            f"{timeout:g} s, before Ray was started); start one with `ray start --head`",
        ) from None


def _dialled(address: str) -> str:
    """The address Ray connects to for ``address`` (its own canonical form)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return str(canonicalize_bootstrap_address(address) or address)
    except Exception:  # a Ray without it: the address as given is the best we know
        return address
