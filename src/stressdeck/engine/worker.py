"""The load loop of one worker: one event loop, one set of HTTP clients, one Recorder.

Both load models share this loop; they differ only in pacing. The closed model runs N
virtual users that each send, wait, think and repeat. The open model issues requests on a
fixed schedule at a rate, whatever the backend does, and sends them on a fixed number of
lanes (keep-alive connections, see ``lanes.py`` for the contract a client honours). Every
tick the recorder is cut and the delta handed to ``emit``; the worker never formats, logs
or renders anything. Its last delta (``final``) settles everything it sent.
"""

from __future__ import annotations

import asyncio
import bisect
import ctypes
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from stressdeck.engine.client import Sending, SentCounter, sending_slot
from stressdeck.engine.clients import Clients
from stressdeck.engine.lanes import Backlog
from stressdeck.engine.plan import Plan, derived_max_in_flight
from stressdeck.engine.snapshot import Control
from stressdeck.engine.stats import IntervalStats, Recorder
from stressdeck.engine.users import UserState
from stressdeck.profiles.chain import DataFeed, row_variables

# The shortest sleep the pacer asks of the event loop. Loops wake at millisecond
# granularity (epoll's timeout), and uvloop rounds a shorter timer down to zero: at 5,000
# req/s (0.2 ms apart) the pacer then spun, one core at 100 % that the target on the same
# machine needed, and the run was reported saturated. A request due inside this window
# goes out at the next wake, up to a millisecond late, and its latency counts from when it
# was due (as wrk2's millisecond timer does).
PACER_MIN_SLEEP = 0.001
SETUP_RETRY_S = 1.0  # a user whose setup failed tries it again after this long


@dataclass(frozen=True)
class Command:
    """A control sent to a worker (users and rate carry this worker's share as ``value``)."""

    name: Control
    value: float | None = None


@dataclass(frozen=True)
class WorkerFinished:
    worker: int
    reason: str
    error: str = ""


WorkerMessage = IntervalStats | WorkerFinished


class Worker:
    def __init__(
        self,
        plan: Plan,
        worker_id: int,
        users: int,
        rate: float | None,
        request_budget: int | None,
        emit: Callable[[WorkerMessage], None],
        workers: int = 1,
        *,
        connections: int | None = None,
        max_in_flight: int | None = None,
        sent: SentCounter | None = None,
        ready: Callable[[], None] | None = None,
    ) -> None:
        """A worker sends nothing until its first "resume", so that every worker of a run
        starts on the runner's clock, however long each took to start.

        ``connections`` and ``max_in_flight`` are this worker's share of the open model's
        totals (the plan's, when not given: one worker). ``sent`` counts the requests handed
        to a connection as they go (``client.Sending``), for the runner to read at any time.
        ``ready`` is called once the clients are built: the run's clock must not start while
        a worker still prepares (100,000 endpoints: seconds, and the worker looked stalled)."""
        self.plan = plan
        self.worker_id = worker_id
        self.emit = emit
        self.recorder = Recorder(len(plan.requests))
        self.users = users
        self.rate = rate or 0.0
        self.budget = request_budget
        self.open_model = plan.load.model == "open"
        self.connections = max(connections or plan.load.connections or 1, 1)
        self.backlog = Backlog(max_in_flight or plan.load.max_in_flight or self.connections)
        # Derived from the starting rate unless the profile set it: follows a raised rate.
        self._workers = max(workers, 1)
        self._in_flight_follows_rate = "max_in_flight" not in plan.document.get("load", {})
        self._users_in_flight = 0  # closed model: users between send and answer
        self.active_users = 0
        self._running = asyncio.Event()  # set by "resume"
        self._stopped = asyncio.Event()
        self._finish_reason = ""
        self._flushed = False  # the final delta went out: nothing is reported after it
        self._last_cut = time.monotonic()
        self._exhausted = False  # the data feed ran out (mode "stop"): no new iterations
        self._drainer: asyncio.Task[None] | None = None
        self._next_due: float | None = None  # open model: when the next request falls due
        self._user_tasks: dict[int, asyncio.Task[None]] = {}
        self._lanes: list[asyncio.Task[None]] = []
        self._pacer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        # One per lane or user (keyed so a respawned user reuses its place): what each has out.
        self._senders: dict[tuple[str, int], Sending] = {}
        self.sent = sent if sent is not None else ctypes.c_int64()
        self._ready = ready
        self._send_lag_max = 0.0
        self._loop_lag_max = 0.0
        self._last_cut = time.monotonic()  # reset when the run starts
        total = sum(plan.weights)
        self._cumulative = list(itertools.accumulate(w / total for w in plan.weights))
        self._random = random.Random()
        self._iteration_cost = len(plan.flow) or 1
        self._chained = bool(
            plan.flow or plan.data or any(spec.templated or spec.extract for spec in plan.requests)
        )
        data = plan.data
        self._feed = DataFeed(data, worker_id, workers) if data else None
        # The open model has no users to hold a row: each arrival takes the next one.
        self._row_per_iteration = bool(data and (data.per == "iteration" or self.open_model))

    @property
    def in_flight(self) -> int:
        """Requests due or sent and not yet settled."""
        return self.backlog.in_flight if self.open_model else self._users_in_flight

    # -- control ---------------------------------------------------------------------------

    def apply(self, command: Command) -> None:
        """Apply a control; must be called on this worker's event loop."""
        match command.name:
            case Control.USERS if command.value is not None:
                self.users = max(int(command.value), 0)
                self._spawn_users()
            case Control.RATE if command.value is not None:
                self.rate = max(float(command.value), 0.0)
                if self._in_flight_follows_rate:
                    # This worker's share of the bound the rate in force asks; never lower
                    # than the start's (what is in flight now stays allowed).
                    share = -(-derived_max_in_flight(self.rate * self._workers) // self._workers)
                    self.backlog.limit = max(self.backlog.limit, share)
            case Control.PAUSE:
                self._running.clear()
            case Control.RESUME:
                self._running.set()
            case Control.STOP:
                self.finish("stopped")

    def finish(self, reason: str) -> None:
        """End the worker. Its final figures go out now, in this very callback: a loop busy
        with slow work (a huge body, a starved CPU) must not hold them past the runner's
        stop deadline. The tasks are cancelled and the sockets closed afterwards."""
        if not self._stopped.is_set():
            self._finish_reason = reason
            self._stopped.set()
            self._flush("")

    def _flush(self, error: str) -> None:
        """Settle what is out, send the final delta and the goodbye; once only."""
        if self._flushed:
            return
        self._flushed = True
        self._settle()
        self._cut(final=True)
        if error:
            self.emit(WorkerFinished(self.worker_id, "crashed", error))
        else:
            self.emit(WorkerFinished(self.worker_id, self._finish_reason or "stopped"))
        # Nothing may start after the final delta: every sender is cancelled now, so each
        # gets its CancelledError at its next await, before it could send again.
        for task in self._work():
            task.cancel()

    def _work(self) -> list[asyncio.Task[None]]:
        return [
            *(t for t in (self._pacer, self._ticker, self._drainer) if t is not None),
            *self._user_tasks.values(),
            *self._lanes,
        ]

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> None:
        # The HTTP clients (fast or aiohttp, per endpoint) behind one seam: clients.py.
        # Closed model: the users bound the connections. Open model: the lanes do.
        self._clients = Clients(
            self.plan, connections=self.connections if self.open_model else None
        )
        if self._ready is not None:
            self._ready()
        ticker = self._ticker = asyncio.create_task(self._tick())
        pacer = None
        if self.open_model:
            pacer = self._pacer = asyncio.create_task(self._schedule())
            self._lanes = [asyncio.create_task(self._lane(n)) for n in range(self.connections)]
        error = ""
        try:
            if not self.open_model:
                self._spawn_users()
                if self.budget == 0:  # no user here got a share of the request budget
                    self.finish("requests done")
            error = await self._supervise(ticker, pacer)
        finally:
            # No new arrivals, no more ticks; then everything out is settled at once and the
            # final figures go out before any cleanup that could be slow (aiohttp unwinding
            # hundreds of cancelled requests on a starved CPU can outlast the stop deadline).
            # Already done by a stop; a crash or a cancellation of the worker lands here.
            self._flush(error)
            # What the cancelled tasks record from here on goes into a recorder nobody cuts:
            # _settle counted each of them already.
            await asyncio.gather(*self._work(), return_exceptions=True)
            await self._clients.close()

    async def _supervise(self, ticker: asyncio.Task[None], pacer: asyncio.Task[None] | None) -> str:
        """Wait for the stop; an exception in the ticker or the pacer ends the worker as crashed.

        Left alone, a dead ticker means a worker that sends but never reports, and a dead
        pacer one that reports an idle run: both look like a healthy quiet target.
        """
        stopped = asyncio.ensure_future(self._stopped.wait())
        watched = {stopped, ticker, *([pacer] if pacer else [])}
        try:
            while not stopped.done():
                done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if (
                        task is not stopped
                        and not task.cancelled()
                        and task.exception() is not None
                    ):
                        exc = task.exception()
                        return f"{type(exc).__name__}: {exc}"
        finally:
            stopped.cancel()
        return ""

    def _settle(self) -> None:
        """At stop: a request on the wire is cancelled, one not sent yet is dropped."""
        for slot in self._senders.values():
            if slot.index is not None:
                if slot.on_wire:
                    self.recorder.record_cancelled(slot.index)
                else:
                    self.recorder.record_dropped(slot.index)
                slot.index = None  # so its own CancelledError does not count it again
        for _, index in self.backlog.clear():
            self.recorder.record_dropped(index)
        # Requests that fell due while the pacer was held up (a blocked loop, a stalled
        # process) were never offered: they are dropped too, not forgotten. Those due within
        # the last tick are scheduling jitter at the stop itself (and mostly past the run's
        # end, which the runner decided a moment ago): not counted.
        rate, now = self.rate, time.perf_counter() - self.plan.tick
        if self._next_due is not None and rate > 0 and self._running.is_set():
            while self._next_due <= now and self._take_ticket():
                index = self.plan.flow[0] if self.plan.flow else self._choose()
                self.recorder.record_due(index)
                self.recorder.record_dropped(index)
                self._next_due += 1.0 / rate

    def _cut(self, final: bool = False) -> None:
        if self._flushed and not final:
            return  # after the final delta, nothing: it settled everything
        now = time.monotonic()
        delta = self.recorder.cut(self._last_cut, now, self.worker_id, sparse=True)
        self._last_cut = now
        self.emit(
            IntervalStats(
                worker=delta.worker,
                start=delta.start,
                end=delta.end,
                endpoints=delta.endpoints,
                indexes=delta.indexes,
                in_flight=self.in_flight,
                active_users=self.active_users,
                loop_lag_ms=self._loop_lag_max * 1000,
                send_lag_ms=self._send_lag_max * 1000,
                on_wire=sum(1 for s in self._senders.values() if s.index is not None and s.on_wire),
                sent=self.sent.value,
                final=final,
            )
        )
        self._loop_lag_max = self._send_lag_max = 0.0

    async def _tick(self) -> None:
        self._last_cut = time.monotonic()
        interval = self.plan.tick
        due = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(due - time.monotonic(), 0))
            # How late the timer fired: the event loop's own lag, a sign of a saturated generator.
            self._loop_lag_max = max(self._loop_lag_max, time.monotonic() - due)
            self._cut()
            due += interval
            if due < time.monotonic():
                due = time.monotonic() + interval

    def _choose(self) -> int:
        if len(self._cumulative) == 1:
            return 0
        return min(
            bisect.bisect(self._cumulative, self._random.random()), len(self._cumulative) - 1
        )

    def _take_ticket(self) -> bool:
        """Claim the requests of one iteration; a flow runs whole or not at all."""
        if self.budget is None:
            return True
        if self.budget < self._iteration_cost:
            self.budget = 0
            return False
        self.budget -= self._iteration_cost
        return True

    # -- one iteration: a weighted request, or the whole flow -------------------------------

    def _next_row(self, variables: dict[str, str]) -> bool:
        """Put the next data row into ``variables``; False when the rows ran out (mode "stop")."""
        assert self._feed is not None
        row = self._feed.next_row()
        if row is None:
            if not self._exhausted:
                # Requests already out with the last rows still count: finish once they end.
                self._exhausted = True
                self._drainer = asyncio.create_task(self._finish_when_idle("data exhausted"))
            return False
        row_variables(row, variables)
        return True

    async def _iteration(
        self, variables: dict[str, str], due: float | None, first: int | None = None
    ) -> bool:
        """Run one unit of work for a user (``first``: the endpoint the open model chose);
        False when the request budget or the data ran out."""
        if self._row_per_iteration and not self._next_row(variables):
            return False
        specs, clients = self.plan.requests, self._clients
        steps = self.plan.flow or (self._choose() if first is None else first,)
        for step, endpoint in enumerate(steps):
            spec = specs[endpoint]
            await clients.sender(endpoint)(
                spec, endpoint, self.recorder, due if step == 0 else None, variables
            )
            if spec.think and not self.open_model:
                # A thinking user has nothing in flight (and must not hold up "requests done").
                self._users_in_flight -= 1
                try:
                    await asyncio.sleep(spec.think)
                finally:
                    self._users_in_flight += 1
        return True

    # -- closed model ----------------------------------------------------------------------

    def _spawn_users(self) -> None:
        if self.open_model or self._stopped.is_set():
            return
        for user_id in range(self.users):
            task = self._user_tasks.get(user_id)
            if task is None or task.done():
                self._user_tasks[user_id] = asyncio.create_task(self._user(user_id))

    async def _user(self, user_id: int) -> None:
        self._senders["user", user_id] = slot = sending_slot()
        slot.sent = self.sent
        variables = UserState(self.plan.cookies)
        if self._feed is not None and not self._row_per_iteration and not self._next_row(variables):
            return
        self.active_users += 1
        try:
            if self.plan.setup and not await self._set_up(user_id, variables):
                return
            ran_out = await self._load(user_id, variables)
            if self.plan.teardown:
                # A user retiring, or finding the budget or data spent, logs out; a stop
                # settles at once and sends nothing more.
                await self._steps(self.plan.teardown, variables)
            if ran_out:
                self._user_done()
        finally:
            self.active_users -= 1

    async def _set_up(self, user_id: int, variables: UserState) -> bool:
        """Run the user's setup steps until they all succeed (an answer its endpoint expects,
        every check passed); False when the user retired or the run ended first.

        A user sends no load before its setup worked: the failures are its setup endpoints'
        own, and it tries again a second later, as a person would log in again.
        """
        while user_id < self.users and not self._stopped.is_set():
            if not self._running.is_set():
                await self._running.wait()
                continue
            if await self._steps(self.plan.setup, variables):
                return True
            await asyncio.sleep(SETUP_RETRY_S)
        return False

    async def _steps(self, steps: tuple[int, ...], variables: UserState) -> bool:
        """Send ``steps`` in order, each once; False at the first that did not succeed."""
        specs, clients, recorder = self.plan.requests, self._clients, self.recorder
        self._users_in_flight += 1
        try:
            for index in steps:
                await clients.sender(index)(specs[index], index, recorder, None, variables)
                if not recorder.last_succeeded:
                    return False
            return True
        finally:
            self._users_in_flight -= 1

    async def _load(self, user_id: int, variables: UserState) -> bool:
        """The user's iterations, until it retires (False) or the budget or the data runs
        out (True)."""
        # A user above the current target retires after its iteration: lowering users
        # never cancels work in flight.
        while user_id < self.users:
            if not self._running.is_set():
                await self._running.wait()
                continue
            if not self._take_ticket():
                return True
            self._users_in_flight += 1
            try:
                more = await self._iteration(variables, None)
            finally:
                self._users_in_flight -= 1
            if not more:
                return True
            # An iteration that never suspended (a skip, an error raised at once) must
            # still let the ticker run: a worker that never reports looks idle.
            await asyncio.sleep(0)
        return False

    def _user_done(self) -> None:
        # The request budget is spent: finish once the last user has its answer.
        if self.budget is not None and self.budget <= 0 and self._users_in_flight == 0:
            self.finish("requests done")

    # -- open model ------------------------------------------------------------------------

    def _first_due(self) -> float:
        """When the first request falls due on a start (a resume, a rate after 0): worker k of
        n a k-th of the run's interval later. The n schedules then interleave into one steady
        rate; started together, 2 workers at 1 req/s sent 2 requests every 2 s, and a second
        with nothing due read as a target that answered nothing."""
        now = time.perf_counter()
        if self.rate <= 0 or self._workers == 1:
            return now
        return now + (self.worker_id % self._workers) / (self.rate * self._workers)

    async def _schedule(self) -> None:
        recorder, backlog = self.recorder, self.backlog
        self._next_due = self._first_due()
        while True:
            if not self._running.is_set():
                self._next_due = None  # time paused owes no requests
                await self._running.wait()
                self._next_due = self._first_due()
            rate = self.rate
            if rate <= 0 or self._exhausted:
                self._next_due = None
                await asyncio.sleep(self.plan.tick / 4)
                self._next_due = self._first_due()
                continue
            now = time.perf_counter()
            next_due = self._next_due
            assert next_due is not None
            if next_due <= now:
                self._send_lag_max = max(self._send_lag_max, now - next_due)
                # The pacer woke late: that is this loop's lag, the generator's own (unlike a
                # lane's send lag, which includes waiting for a busy connection).
                self._loop_lag_max = max(self._loop_lag_max, now - next_due)
            # Every request that fell due while this loop was held up (a GC pause, a busy
            # loop) is offered now, late: sent late or counted as dropped, never forgotten.
            while next_due <= now:
                if not self._take_ticket():
                    self._next_due = None
                    await self._drain()
                    self.finish("requests done")
                    return
                index = self.plan.flow[0] if self.plan.flow else self._choose()
                recorder.record_due(index)
                if not backlog.offer(next_due, index):
                    recorder.record_dropped(index)
                next_due += 1.0 / rate
            self._next_due = next_due
            await asyncio.sleep(max(next_due - time.perf_counter(), PACER_MIN_SLEEP))

    async def _lane(self, lane: int) -> None:
        """One connection's worth of sending: one request at a time, oldest due first."""
        backlog = self.backlog
        self._senders["lane", lane] = slot = sending_slot()
        slot.sent = self.sent
        while True:
            due, index = await backlog.take()
            try:
                # How late the request goes out: waiting for this lane counts.
                late = time.perf_counter() - due
                if late > self._send_lag_max:
                    self._send_lag_max = late
                await self._open_iteration(due, index)
            finally:
                backlog.done()

    async def _open_iteration(self, due: float, index: int) -> None:
        # Plain requests (no chaining, no flow) skip the iteration machinery: the hot path.
        if self._chained:
            # A flow instance is a visitor of its own: its own variables and cookies.
            await self._iteration(UserState(self.plan.cookies), due, index)
        else:
            await self._clients.sender(index)(
                self.plan.requests[index], index, self.recorder, due, None
            )

    async def _finish_when_idle(self, reason: str) -> None:
        await asyncio.sleep(0)  # the request that found no row is still counted in flight
        while self.in_flight > 0 and not self._stopped.is_set():
            await asyncio.sleep(0.005)
        self.finish(reason)

    async def _drain(self) -> None:
        while self.backlog.in_flight:
            await asyncio.sleep(0.005)
