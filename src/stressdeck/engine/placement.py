"""Where workers run, behind one small interface.

The runner only starts a worker with its share, sends it commands, polls its messages
and waits for it to end. ``ThreadWorker`` runs the worker's event loop on a thread of
this process (``--processes 1``, what tests use); ``ProcessWorker`` (procs.py) runs it in a
child process. A worker on another machine would be one more class with these methods.
"""

from __future__ import annotations

import asyncio
import ctypes
import queue
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stressdeck.engine.plan import Plan
from stressdeck.engine.snapshot import NodeHealth
from stressdeck.engine.worker import Command, Worker, WorkerFinished, WorkerMessage


def new_worker_loop() -> asyncio.AbstractEventLoop:
    """uvloop (a dependency, except on Windows), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass(frozen=True)
class Share:
    """One worker's part of the load."""

    worker_id: int
    users: int
    rate: float | None
    request_budget: int | None
    workers: int = 1
    # Open model: this worker's part of the plan's connections and max_in_flight totals.
    connections: int | None = None
    max_in_flight: int | None = None


class WorkerHandle(Protocol):
    """Where a worker runs (a thread, a process, later another machine). It starts held,
    sending nothing, until the runner's first "resume" releases every worker at once."""

    def start(self) -> None: ...
    def wait_ready(self, timeout: float) -> bool: ...
    def send(self, command: Command) -> None: ...
    def poll(self) -> list[WorkerMessage]: ...
    def join(self, timeout: float) -> bool: ...
    def sent_so_far(self) -> int | None:
        """Requests the worker handed to a connection so far, read live (not from its
        deltas): None where the worker's memory cannot be read (another machine)."""
        ...


@runtime_checkable
class SpreadsNodes(Protocol):
    """A worker factory that places workers on several machines (engine/cluster.py): the
    runner takes the generator's CPU and the per-node figures from it, since the workers
    are not this process's children."""

    def node_health(self) -> tuple[NodeHealth, ...]: ...
    def cpu_percent(self) -> float: ...


class ThreadWorker:
    """A worker on its own event loop in a daemon thread of this process."""

    def __init__(self, plan: Plan, share: Share) -> None:
        self.plan = plan
        self.share = share
        self._messages: queue.SimpleQueue[WorkerMessage] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: Worker | None = None
        self._sent = ctypes.c_int64()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"stressdeck-worker-{share.worker_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        loop = new_worker_loop()
        self._loop = loop
        worker = Worker(
            self.plan,
            self.share.worker_id,
            self.share.users,
            self.share.rate,
            self.share.request_budget,
            self._messages.put,
            self.share.workers,
            connections=self.share.connections,
            max_in_flight=self.share.max_in_flight,
            sent=self._sent,
            ready=self._ready.set,  # once its clients are built
        )
        self._worker = worker
        try:
            loop.run_until_complete(worker.run())
        except BaseException as exc:  # report it: the runner must never wait on a dead worker
            self._messages.put(
                WorkerFinished(self.share.worker_id, "crashed", f"{type(exc).__name__}: {exc}")
            )
        finally:
            self._ready.set()  # a worker that died before it was ready: no wait for nothing
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def send(self, command: Command) -> None:
        loop, worker = self._loop, self._worker
        if loop is None or worker is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(worker.apply, command)
        except RuntimeError:  # the loop closed between the check and the call
            pass

    def poll(self) -> list[WorkerMessage]:
        messages: list[WorkerMessage] = []
        while True:
            try:
                messages.append(self._messages.get_nowait())
            except queue.Empty:
                return messages

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def sent_so_far(self) -> int | None:
        return self._sent.value
