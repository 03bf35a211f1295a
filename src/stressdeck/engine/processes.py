"""Workers in child processes, so the load is not bound to one core by the GIL.

Each child runs one ``Worker`` on its own event loop and sends its ``IntervalStats``
deltas over a queue; the parent merges them exactly. A child never outlives its parent:
it asks the kernel for SIGTERM when the parent dies, and also watches its parent's pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import threading
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # The worker itself (its HTTP clients, aiohttp, h2, numpy) is imported in the child, and
    # here only once a run needs it: the console shows its first screen without it.
    from stressdeck.engine.placement import Share
    from stressdeck.engine.plan import Plan
    from stressdeck.engine.worker import Command, WorkerMessage

_READY = "ready"
_PR_SET_PDEATHSIG = 1
# Signals the parent decides on for its workers (see _child_main).
_PARENTS_SIGNALS = {signal.SIGINT, signal.SIGHUP}


def resolve_processes(value: str | int | None) -> int:
    """``auto`` (or None) is one process per core."""
    if value in (None, "auto"):
        return max(os.cpu_count() or 1, 1)
    count = int(value)  # type: ignore[arg-type]
    if count < 1:
        raise ValueError("processes must be at least 1")
    return count


@dataclass(frozen=True)
class _Standby:
    """A worker process started ahead of its run: imported, waiting for its plan."""

    commands: Any
    messages: Any
    sent: Any
    process: BaseProcess


class Standbys:
    """Worker processes started before they are needed, so that a run starts without
    waiting for them: the console starts them while its user reads the first screen (a
    spawned child takes 0.5-1 s to import the engine on a busy two-core machine, the bulk
    of the time from ``s`` to the first figures). A run takes them in place of new ones;
    whatever it does not take dies with this process (daemons, and ``_die_with_parent``)."""

    def __init__(self) -> None:
        self._waiting: list[_Standby] = []

    def prepare(self, count: int) -> None:
        """Have ``count`` processes waiting (this starts only the missing ones)."""
        self._waiting = [s for s in self._waiting if s.process.is_alive()]
        while len(self._waiting) < count:
            context = multiprocessing.get_context("spawn")
            commands, messages = context.Queue(), context.Queue()
            sent = context.RawValue(ctypes.c_int64, 0)
            process = context.Process(
                target=_standby_main,
                args=(commands, messages, os.getpid(), sent),
                name="stressdeck-worker-standby",
                daemon=True,
            )
            _start_unsignalled(process)
            self._waiting.append(_Standby(commands, messages, sent, process))

    def take(self) -> _Standby | None:
        while self._waiting:
            standby = self._waiting.pop(0)
            if standby.process.is_alive():
                return standby
        return None

    def waiting(self) -> int:
        return sum(1 for s in self._waiting if s.process.is_alive())


STANDBYS = Standbys()


def _start_unsignalled(process: BaseProcess) -> None:
    # Ctrl+C and a hang-up reach the whole process group, the child too, and the child
    # ignores them only once its code runs: before that (spawn's bootstrap, its imports)
    # one would print a KeyboardInterrupt traceback. Born with them blocked (the mask
    # survives fork and exec), it sets them aside unseen; here they wait for the unblock.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENTS_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class ProcessWorker:
    """A worker in a child process (spawned, so no thread state leaks into it): one of
    ``STANDBYS`` when one is waiting, else a new one."""

    def __init__(self, plan: Plan, share: Share) -> None:
        self.share = share
        self._finished = False
        self._ready = False
        standby = STANDBYS.take()
        # Its plan goes with its first command (a standby's), or with its start (a new one).
        self._assignment: tuple[Plan, Share] | None = None
        if standby is not None:
            self._commands: Any = standby.commands
            self._messages: Any = standby.messages
            self._sent: Any = standby.sent
            self._process: BaseProcess = standby.process
            self._assignment = (plan, share)
            return
        context = multiprocessing.get_context("spawn")
        self._commands = context.Queue()
        self._messages = context.Queue()
        # Shared memory the child counts its sent requests into as they go: readable here
        # even when the child is stuck, stopped or killed.
        self._sent = context.RawValue(ctypes.c_int64, 0)
        self._process = context.Process(
            target=_child_main,
            args=(plan, share, self._commands, self._messages, os.getpid(), self._sent),
            name=f"stressdeck-worker-{share.worker_id}",
            daemon=True,
        )

    def start(self) -> None:
        if self._assignment is not None:
            # Pickled here, as a new process's arguments are at its start: a plan that
            # cannot travel fails now, in this call, not later in the queue's feeder thread.
            self._commands.put(bytes(ForkingPickler.dumps(self._assignment)))
            return
        _start_unsignalled(self._process)

    def wait_ready(self, timeout: float) -> bool:
        try:
            first = self._messages.get(timeout=timeout)
        except queue.Empty:
            return False
        self._ready = first == _READY
        return self._ready

    def send(self, command: Command) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self._commands.put(command)

    def poll(self) -> list[WorkerMessage]:
        from stressdeck.engine.worker import WorkerFinished

        messages: list[WorkerMessage] = []
        while True:
            try:
                message = self._messages.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):
                break
            if isinstance(message, WorkerFinished):
                self._finished = True
            if message != _READY:
                messages.append(message)
        if not self._finished and not self._process.is_alive():
            # Died without a word (killed, out of memory): report it rather than wait on it.
            self._finished = True
            messages.append(
                WorkerFinished(
                    self.share.worker_id,
                    "crashed",
                    f"worker process exited with code {self._process.exitcode}",
                )
            )
        return messages

    def join(self, timeout: float) -> bool:
        """Wait for the child; one still alive then is killed at once. It had its stop
        command and the runner's deadline: SIGTERM would lose its counts just the same,
        and a stopped (SIGSTOP) process would not even act on it."""
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(0.5)
        if not self._process.is_alive():
            # A child killed while writing a large delta leaves half a message in the pipe,
            # and our own copy of the pipe's write end (the queue was made here) would keep
            # the next poll() waiting for the rest for ever (100,000 endpoints on 2 processes:
            # the run never ended). With no writer left, that read ends at once (EOFError).
            with contextlib.suppress(OSError, AttributeError):
                self._messages._writer.close()
        return not self._process.is_alive()

    def sent_so_far(self) -> int | None:
        return int(self._sent.value)

    @property
    def pid(self) -> int | None:
        return self._process.pid


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the pid watch below still covers it
    if os.getppid() != parent_pid:
        os._exit(0)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            threading.Event().wait(0.5)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _settle_in(parent_pid: int) -> None:
    # Ctrl+C goes to the whole process group, and so does the SIGHUP of a dropped SSH
    # connection; the parent decides, and tells us to stop (we die with it anyway).
    for signum in _PARENTS_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # one pending since birth is dropped here
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENTS_SIGNALS)
    _die_with_parent(parent_pid)


def _standby_main(commands: Any, messages: Any, parent_pid: int, sent: Any) -> None:
    """A standby: it imports the whole worker now, then waits for its plan."""
    _settle_in(parent_pid)
    import stressdeck.engine.placement  # noqa: F401  (and with it the worker and clients)

    try:
        plan, share = ForkingPickler.loads(commands.get())
    except (EOFError, OSError):  # the parent went away without a run
        return
    _serve(plan, share, commands, messages, sent)


def _child_main(
    plan: Plan, share: Share, commands: Any, messages: Any, parent_pid: int, sent: Any
) -> None:
    _settle_in(parent_pid)
    _serve(plan, share, commands, messages, sent)


def _serve(plan: Plan, share: Share, commands: Any, messages: Any, sent: Any) -> None:
    from stressdeck.engine.placement import new_worker_loop
    from stressdeck.engine.snapshot import Control
    from stressdeck.engine.worker import Command, Worker, WorkerFinished

    loop = new_worker_loop()
    worker = Worker(
        plan,
        share.worker_id,
        share.users,
        share.rate,
        share.request_budget,
        messages.put,
        share.workers,
        connections=share.connections,
        max_in_flight=share.max_in_flight,
        sent=sent,
        ready=lambda: messages.put(_READY),  # once its clients are built
    )

    def forward() -> None:
        while True:
            try:
                command = commands.get()
            except (EOFError, OSError):
                command = Command(Control.STOP)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(worker.apply, command)
            if command.name == Control.STOP:
                return

    threading.Thread(target=forward, name="commands", daemon=True).start()
    try:
        loop.run_until_complete(worker.run())
    except BaseException as exc:
        messages.put(WorkerFinished(share.worker_id, "crashed", f"{type(exc).__name__}: {exc}"))
    finally:
        messages.close()
        messages.join_thread()  # make sure the last delta reaches the parent before exiting
