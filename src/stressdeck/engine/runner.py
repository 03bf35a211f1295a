"""The runner: owns a run, folds worker deltas on a fixed tick and publishes Snapshots.

``start(plan)`` returns a ``RunHandle`` on the caller's event loop. Workers run elsewhere
(a thread or child processes), so whatever the caller does between ticks, a slow render
included, costs snapshots, never requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any

from stressdeck.core.units import format_rate
from stressdeck.engine.bottleneck import summarise as summarise_bottleneck
from stressdeck.engine.cpu import CpuMeter
from stressdeck.engine.hdr import Counts, counts_at_or_below, log_buckets
from stressdeck.engine.hostload import HostMeter, HostNoise
from stressdeck.engine.load import split_whole, stage_target
from stressdeck.engine.placement import Share, SpreadsNodes, ThreadWorker, WorkerHandle
from stressdeck.engine.plan import Plan
from stressdeck.engine.processes import ProcessWorker
from stressdeck.engine.snapshot import (
    INTERRUPTED,
    MAX_CONTROL_EVENTS,
    PAUSED,
    REPLAY_ENDED,
    RUNNING,
    SEARCH_ENDED,
    STOPPED,
    STOPPING,
    Control,
    ControlEvent,
    EndpointSummary,
    GeneratorHealth,
    Snapshot,
)
from stressdeck.engine.stats import EndpointTotals, Totals, decode_delta, merge_histograms
from stressdeck.engine.sustained import SustainedThresholds
from stressdeck.engine.timeline import RECENT_SECONDS, EndpointPart, RunShape, Timeline
from stressdeck.engine.worker import Command, WorkerFinished
from stressdeck.engine.workerbook import WorkerBook
from stressdeck.observe.metrics import MetricsScraper
from stressdeck.profiles.thresholds import Threshold, ThresholdResult, evaluate

STOP_DEADLINE = 0.7  # seconds: stop() must return within 1 s, workers cancel what is in flight
# A worker silent for this many ticks is stalled (its loop is blocked, or it was stopped).
STALL_TICKS = 4
WORKER_START_TIMEOUT = 20.0  # a spawned process imports aiohttp first; slow machines take seconds
# Endpoints whose figures did not change in a tick keep their summary; only their run-average
# rps moves (the run's clock does), refreshed for this many of them a tick, in turn, and for
# all of them in the final snapshot. A tick's cost then follows what was sent in it, not
# the number of endpoints (20,000 endpoints: every tick took longer than the tick itself).
RPS_REFRESH_PER_TICK = 2_000
# Seconds between readings of the host's noise while a run goes: each walks /proc (1.5 ms
# with 95 processes, about ten times that with a thousand), on the runner's loop. A save in
# mid-run holds a reading this old at most; the final snapshot's is read at the end.
HOST_READ_EVERY = 5.0

WorkerFactory = Callable[[Plan, Share], WorkerHandle]


def threshold_metrics(summary: EndpointSummary) -> dict[str, float | None]:
    """The flat metric map thresholds are checked against; None where nothing was measured."""
    latency = summary.latency_ms
    measured = latency.count > 0
    return {
        "p50": latency.p50 if measured else None,
        "p90": latency.p90 if measured else None,
        "p95": latency.p95 if measured else None,
        "p99": latency.p99 if measured else None,
        "p999": latency.p999 if measured else None,
        "max": latency.max if measured else None,
        "mean": latency.mean if measured else None,
        "ttfb_p95": summary.ttfb_ms.p95 if summary.ttfb_ms.count else None,
        "error_rate": summary.error_rate if summary.requests else None,
        "checks": summary.checks_rate,
        "rps": summary.rps if summary.requests or summary.dropped else None,
        "dropped": float(summary.dropped),
    }


def check_thresholds(
    plan: Plan,
    total: EndpointSummary,
    endpoints: tuple[EndpointSummary, ...],
    final: bool = False,
    sustained: SustainedThresholds | None = None,
) -> tuple[ThresholdResult, ...]:
    """While the run goes, a metric not measured yet is pending; at the end it fails (no data).
    A sustained threshold (``for 10s``) takes its verdict from ``sustained``."""

    def verdict(
        t: Threshold, position: int, index: int | None, metrics: Mapping[str, float | None]
    ) -> ThresholdResult:
        if t.sustain and sustained is not None:
            value = metrics.get(t.metric)
            return sustained.result(t, position, index, value, final=final)
        return evaluate(t, metrics, None if index is None else endpoints[index].name, final=final)

    metrics = threshold_metrics(total)
    results = [verdict(t, i, None, metrics) for i, t in enumerate(plan.thresholds)]
    for index, (summary, thresholds) in enumerate(
        zip(endpoints, plan.endpoint_thresholds, strict=False)
    ):
        if not thresholds:
            continue  # most endpoints of a large profile have none: cost nothing per tick
        metrics = threshold_metrics(summary)
        results.extend(verdict(t, i, index, metrics) for i, t in enumerate(thresholds))
    return tuple(results)


class RunHandle:
    """A running load test: read ``latest`` or iterate ``snapshots()``; steer it with the controls."""

    def __init__(
        self, plan: Plan, processes: int = 1, worker_factory: WorkerFactory | None = None
    ) -> None:
        self.plan = plan
        self.processes = max(processes, 1)
        if plan.load.model == "open":
            # Every process gets at least one connection: never more processes than those.
            self.processes = min(self.processes, plan.load.connections or self.processes)
        self._factory: WorkerFactory = worker_factory or (
            ThreadWorker if self.processes == 1 else ProcessWorker
        )
        self._workers: list[WorkerHandle] = []
        self._totals = Totals(plan.endpoint_names, plan.clients)
        self._timeline = Timeline(
            grace=2 * plan.tick, endpoints=plan.endpoint_names, shape=self._shape()
        )
        self._sustained = SustainedThresholds(plan)
        self._control_log: list[ControlEvent] = []
        self._state = RUNNING
        self._manual = not plan.load.stages
        self._stage: int | None = 0 if plan.load.stages else None
        self._users = plan.load.users
        self._rate = plan.load.rate
        self._started = 0.0
        # The run's clock stops while it is paused: paused time is not run time (duration,
        # offsets, RPS). _paused_total is every finished pause; _paused_since the current one.
        self._paused_total = 0.0
        self._paused_since: float | None = None
        self._book = WorkerBook()  # each worker's last word: reports, finish, what is unsettled
        # Setup and teardown endpoints are counted as themselves, apart from the load's total:
        # a failed login is the login's error, not the load's.
        self._apart = frozenset((*plan.setup, *plan.teardown))
        self._unaccounted = 0
        self._last_tick = 0.0  # run time of the last snapshot: the next one's interval
        self._run_health = GeneratorHealth()  # the run's peaks and saturated time so far
        self._wake = asyncio.Event()  # set by stop(): the tick loop ends without a tick's wait
        self._stop_reason = ""
        self._tick_task: asyncio.Task[None] | None = None
        self._final: asyncio.Future[Snapshot] | None = None
        self._next = asyncio.Event()
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._cpu = CpuMeter()
        # What other processes take of this machine, from the workers' release on (see
        # engine/hostload.py): read every HOST_READ_EVERY seconds while the run goes, and at
        # its end.
        self._host: HostMeter | None = None
        self._host_noise: HostNoise | None = None
        self._host_read = float("-inf")
        # Each endpoint's last summary, recomputed only when a delta changed it (_changed);
        # _answered lists the endpoints with figures, whose rps is refreshed in turn.
        self._summaries: list[EndpointSummary] = [
            EndpointSummary(name=t.name, client=t.client) for t in self._totals.endpoints
        ]
        self._changed: set[int] = set()
        self._answered: list[int] = []
        self._listed: set[int] = set()  # the same endpoints as _answered, to look up
        # Endpoints with thresholds of their own: their rps is judged, so kept exact every tick.
        self._judged = [i for i, judged in enumerate(plan.endpoint_thresholds) if judged]
        self._refresh_from = 0
        # The target's own Prometheus metrics, scraped beside the run; a failed scrape is a
        # marker in the series, never a reason to stop.
        self.metrics: MetricsScraper | None = None
        self.latest: Snapshot = self._snapshot(0.0, EndpointTotals("interval"), 0.0)

    def _host_reading(self, final: bool) -> HostNoise | None:
        """Other processes' CPU since the run started: a reading lists every process of the
        machine, so at most every HOST_READ_EVERY seconds, and on the final snapshot."""
        now = time.monotonic()
        if self._host is not None and (final or now - self._host_read >= HOST_READ_EVERY):
            self._host_read = now
            self._host_noise = self._host.read()
        return self._host_noise

    def _shape(self) -> RunShape:
        """What each second's bottleneck is judged against (the lanes as ``_start`` splits them)."""
        load = self.plan.load
        if load.model != "open":
            return RunShape("closed", 0, self.processes)
        shares = split_whole(load.connections or self.processes, self.processes)
        return RunShape("open", sum(max(share, 1) for share in shares), self.processes)

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self) -> None:
        if self.plan.load.stages:
            level, _ = stage_target(self.plan.load.stages, 0.0, 0.0)
            self._set_level(level)
        # Split whole iterations: a worker only starts a flow its budget can finish.
        cost = len(self.plan.flow) or 1
        users = split_whole(self._users, self.processes)
        budgets: list[int | None] = [None] * self.processes
        if self.plan.load.requests is not None:
            # Closed model: only a worker with users can spend a budget (1 user on 2 workers
            # used to leave the second one a share it never sent, and the run never ended).
            senders = [
                i for i in range(self.processes) if self.plan.load.model == "open" or users[i] > 0
            ] or list(range(self.processes))
            shares = split_whole(self.plan.load.requests // cost, len(senders))
            budgets = [0] * self.processes
            for worker_id, share in zip(senders, shares, strict=True):
                budgets[worker_id] = share * cost
        rate = self._rate / self.processes if self._rate is not None else None
        load = self.plan.load
        connections = split_whole(load.connections or self.processes, self.processes)
        in_flight = split_whole(load.max_in_flight or self.processes, self.processes)
        self._final = asyncio.get_running_loop().create_future()
        for worker_id in range(self.processes):
            worker = self._factory(
                self.plan,
                Share(
                    worker_id,
                    users[worker_id],
                    rate,
                    budgets[worker_id],
                    self.processes,
                    connections=max(connections[worker_id], 1),
                    max_in_flight=max(in_flight[worker_id], 1),
                ),
            )
            worker.start()
            self._workers.append(worker)
        ready = await asyncio.gather(
            *(asyncio.to_thread(w.wait_ready, WORKER_START_TIMEOUT) for w in self._workers)
        )
        self._cpu = CpuMeter()  # after the workers exist: it lists them as children
        # Workers start held: release them together, now, so the run's clock and its load agree.
        self._host = HostMeter()
        self._started = time.monotonic()
        self._book.start(self.processes, self._started)
        self._send_all(Command(Control.RESUME))
        if self.plan.metrics_url is not None:
            self.metrics = MetricsScraper(
                self.plan.metrics_url,
                series=self.plan.metrics,
                origin=self._started,
                insecure=self.plan.insecure,
            )
            await self.metrics.start()
        if not all(ready):
            self._stop_reason = "a worker did not start"
            self._send_all(Command(Control.STOP))
        self._tick_task = asyncio.create_task(self._tick_loop())

    def elapsed(self) -> float:
        """Run time: seconds since the start, less the time spent paused."""
        return self._run_time(time.monotonic())

    def _run_time(self, instant: float) -> float:
        """``instant`` (this machine's monotonic clock, as workers stamp deltas) on the run's
        clock; an instant inside the current pause is where the pause began."""
        if not self._started:
            return 0.0
        if self._paused_since is not None:
            instant = min(instant, self._paused_since)
        return max(instant - self._started - self._paused_total, 0.0)

    def paused_seconds(self) -> tuple[float, float]:
        """(all pauses so far, the current one) in seconds; the current one is 0 when running."""
        now = time.monotonic() - self._paused_since if self._paused_since is not None else 0.0
        return self._paused_total + now, now

    @property
    def state(self) -> str:
        return self._state

    @property
    def users(self) -> int:
        """The users asked for now; a snapshot shows them only at the next tick, so two
        quick "+1" presses must build on this, not on the snapshot."""
        return self._users

    @property
    def rate(self) -> float | None:
        """The arrival rate asked for now (open model)."""
        return self._rate

    def latency_counts(self, edges_us: Sequence[float]) -> dict[str, list[int]]:
        """Per endpoint, completed requests at or below each latency edge (cumulative); call
        it on the runner's loop, where the histograms are folded."""
        return {
            totals.name: counts_at_or_below(totals.latency, edges_us)
            for totals in self._totals.endpoints
        }

    def total_histograms(self) -> tuple[Counts, Counts]:
        """Copies of the run's latency and service histograms (all endpoints) as folded so
        far; with ``latest``'s counts, a mark to measure a part of the run from (find-limit
        discards a step's warm-up this way). Call it on the runner's loop."""
        total = self._totals.total
        return Counts.merged([total.latency]), Counts.merged([total.service])

    # -- controls --------------------------------------------------------------------------

    def set_users(self, users: int) -> None:
        """Change the number of virtual users (closed model); switches stages to manual."""
        users = max(int(users), 0)
        if self.plan.max_users is not None:
            users = min(users, self.plan.max_users)  # the safety cap holds live too
        self._log(Control.USERS, users)
        self._manual, self._stage = True, None
        self._users = users
        self._broadcast_users()

    def set_rate(self, rate: float) -> None:
        """Change the arrival rate in requests/s (open model); switches stages to manual."""
        rate = max(float(rate), 0.0)
        if self.plan.max_rate is not None:
            rate = min(rate, self.plan.max_rate)
        self._log(Control.RATE, rate)
        self._manual, self._stage = True, None
        self._rate = rate
        self._broadcast_rate()

    def pause(self) -> None:
        if self._state == RUNNING:
            self._log(Control.PAUSE)
            self._state = PAUSED
            self._paused_since = time.monotonic()
            self._send_all(Command(Control.PAUSE))

    def resume(self) -> None:
        """Resume a paused run; the control log's entry holds how long the pause lasted (a
        replay waits as long: on the run's clock, the pause took no time)."""
        if self._state == PAUSED and self._paused_since is not None:
            paused = time.monotonic() - self._paused_since
            self._log(Control.RESUME, round(paused, 3))
            self._paused_total += paused
            self._paused_since = None
            self._state = RUNNING
            self._send_all(Command(Control.RESUME))

    async def stop(self, reason: str = "stopped by user") -> Snapshot:
        """Stop the run, cancelling what is in flight; returns the final snapshot in < 1 s."""
        if self._final is None:
            raise RuntimeError("the run was never started")
        if self._state not in (STOPPING, STOPPED):
            # A replay of this run stops here.
            if reason in ("stopped by user", REPLAY_ENDED, SEARCH_ENDED):
                self._log(Control.STOP)
            self._stop_reason = reason
            self._state = STOPPING
            self._send_all(Command(Control.STOP))
            self._wake.set()
        elif (
            self._state == STOPPING
            and reason.startswith(INTERRUPTED)
            and not self._stop_reason.startswith(INTERRUPTED)
        ):
            # A signal to the whole process group kills the workers too. If their deaths were
            # noticed first, the signal is still why the run ended (a replay stops there).
            self._stop_reason = f"{reason}; {self._stop_reason}"
        return await asyncio.shield(self._final)

    async def wait(self) -> Snapshot:
        """Wait for the run to end by itself (duration, request count, a cap or abort)."""
        assert self._final is not None
        return await asyncio.shield(self._final)

    async def snapshots(self) -> AsyncIterator[Snapshot]:
        """Every snapshot from now on; a slow consumer skips to the latest, never queues."""
        while True:
            event = self._next
            await event.wait()
            snapshot = self.latest
            yield snapshot
            if snapshot.finished:
                return

    # -- internals -------------------------------------------------------------------------

    def _log(self, command: Control, value: float | None = None) -> None:
        # Bounded as a session reads it: past MAX_CONTROL_EVENTS a change of the same kind
        # as the last one replaces it (the level the run ends at is kept); a stop always lands.
        event = ControlEvent(round(self.elapsed(), 3), command, value)
        log = self._control_log
        if len(log) < MAX_CONTROL_EVENTS or command == Control.STOP:
            log.append(event)
        elif log[-1].command == command:
            log[-1] = event

    def _send_all(self, command: Command) -> None:
        for worker in self._workers:
            worker.send(command)

    def _broadcast_users(self) -> None:
        for worker, share in zip(
            self._workers, split_whole(self._users, len(self._workers)), strict=False
        ):
            worker.send(Command(Control.USERS, share))

    def _broadcast_rate(self) -> None:
        if self._rate is not None:
            self._send_all(Command(Control.RATE, self._rate / max(len(self._workers), 1)))

    def _set_level(self, level: float) -> None:
        if self.plan.load.model == "open":
            self._rate = level
        else:
            self._users = int(round(level))

    async def _tick_loop(self) -> None:
        tick = self.plan.tick
        due = self._started + tick
        try:
            while True:
                if not self._wake.is_set():
                    # stop() sets the event: the run ends now, not at the next tick.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(due - time.monotonic(), 0))
                due = max(due + tick, time.monotonic())
                if self._fold_tick():
                    break
        except Exception as exc:  # a bug in folding must still end the run with its reason
            self._stop_reason = f"internal error: {type(exc).__name__}: {exc}"
        await self._finish()

    def _fold_tick(self) -> bool:
        """Fold what workers sent, steer stages, check limits; True when the run should end."""
        elapsed = self.elapsed()
        interval = self._drain()
        if self._state == STOPPING:
            return True
        load = self.plan.load
        if not self._manual and load.stages:
            level, self._stage = stage_target(load.stages, 0.0, elapsed)
            before = (self._users, self._rate)
            self._set_level(level)
            if (self._users, self._rate) != before:
                self._broadcast_rate() if load.model == "open" else self._broadcast_users()
        self._sustained.observe(self._timeline.advance(elapsed, self._users, self._timeline_rate()))
        self.latest = self._snapshot(elapsed, interval, self._interval_seconds(elapsed))
        self._publish()
        reason = self._end_reason(elapsed)
        if reason:
            self._stop_reason = reason
            self._state = STOPPING
            self._send_all(Command(Control.STOP))
            return True
        return False

    def _timeline_rate(self) -> float | None:
        """The rate asked for, which only the open model has (a profile may set one anyway)."""
        return self._rate if self.plan.load.model == "open" else None

    def _interval_seconds(self, elapsed: float) -> float:
        previous, self._last_tick = self._last_tick, elapsed
        return max(elapsed - previous, 1e-6)

    def _end_reason(self, elapsed: float) -> str:
        # A crashed worker ends the run: going on with the others would halve the load
        # silently and save a session that looks complete.
        crashed = [finished for finished in self._book.finished() if finished.error]
        if crashed:
            return f"worker {crashed[0].worker} crashed: {crashed[0].error}"
        load = self.plan.load
        if load.duration is not None and elapsed >= load.duration:
            return "duration reached"
        # The safety cap counts paused time too: it bounds how long the run exists at all.
        if time.monotonic() - self._started >= self.plan.max_duration:
            return f"max-duration cap reached ({self.plan.max_duration:g} s)"
        if self._book.all_finished(len(self._workers)):
            return self._book.finished()[0].reason
        if self.plan.abort_on_fail and elapsed >= self.plan.abort_grace:
            failed = [r for r in self.latest.thresholds if not r.ok]
            if failed:
                scope = f" ({failed[0].endpoint})" if failed[0].endpoint else ""
                return f"threshold {failed[0].expr}{scope} failed at {self._load_now()}"
        return ""

    def _load_now(self) -> str:
        """The load asked for now, as a stop reason names it: "rate 138.8/s", "32 users"."""
        if self.plan.load.model == "open" and self._rate is not None:
            return f"rate {format_rate(self._rate)}/s"
        return f"{self._users} user{'s' if self._users != 1 else ''}"

    def _drain(self) -> EndpointTotals:
        interval = EndpointTotals("interval")
        lags: dict[int, tuple[float, float]] = {}
        for worker in self._workers:
            for message in worker.poll():
                now = time.monotonic()
                if isinstance(message, WorkerFinished):
                    self._book.finish(message, now)  # a crash ends the run: _end_reason
                    continue
                # Counts are the newest; lags the worst of the deltas folded now, or a stall
                # reported in one delta would vanish behind the next one.
                loop_lag, send_lag = lags.get(message.worker, (0.0, 0.0))
                lags[message.worker] = (
                    max(loop_lag, message.loop_lag_ms),
                    max(send_lag, message.send_lag_ms),
                )
                self._book.note(message, now, lags[message.worker])
                decoded = [decode_delta(delta) for delta in message.endpoints]
                parts = []
                load_deltas, load_decoded = [], []
                for (index, delta), histograms in zip(message.by_endpoint(), decoded, strict=True):
                    self._totals.endpoints[index].add(delta, histograms)
                    self._changed.add(index)
                    if index in self._apart:
                        continue  # a user's setup or teardown: its own endpoint, not the load
                    load_deltas.append(delta)
                    load_decoded.append(histograms)
                    if delta.requests or delta.dropped:
                        parts.append(
                            EndpointPart(
                                index, delta.requests, delta.errors, delta.dropped, histograms[0]
                            )
                        )
                # The run's total and this delta's part take every endpoint's histograms
                # summed first: one merge, not one per endpoint (4,000 endpoints made that
                # most of the runner's time).
                part = EndpointTotals("part")
                if load_deltas:  # none when a tick saw only setup or teardown requests
                    merged = merge_histograms(load_decoded)
                    self._totals.total.add_many(load_deltas, merged)
                    part.add_many(load_deltas, merged)
                # Worker clocks are this machine's monotonic clock, the same as ours.
                middle = self._run_time((message.start + message.end) / 2)
                self._timeline.add(
                    middle,
                    part.requests,
                    part.errors,
                    part.dropped,
                    part.latency,
                    endpoints=parts,
                    service=part.service,
                )
                _add_totals(interval, part)
        return interval

    def _snapshot(
        self,
        elapsed: float,
        interval: EndpointTotals,
        seconds: float,
        histograms: Mapping[str, str] | None = None,
    ) -> Snapshot:
        interval_rps = interval.requests / seconds if seconds else 0.0
        endpoints = self._endpoint_summaries(elapsed, every=histograms is not None)
        total = self._totals.total.summary(elapsed, interval_rps)
        reports = self._book.reports()
        spread = self._factory if isinstance(self._factory, SpreadsNodes) else None
        stalled = self._stalled()
        paused_total, paused_now = self.paused_seconds()
        recent_buckets, recent_latency = self._timeline.recent()
        health = self._health(
            GeneratorHealth(
                loop_lag_ms=max(
                    max((r.loop_lag_ms for r in reports), default=0.0), self._silence_ms()
                ),
                send_lag_ms=max((r.send_lag_ms for r in reports), default=0.0),
                cpu_percent=spread.cpu_percent() if spread else self._cpu.sample(),
                processes=self.processes,
                stalled_workers=len(stalled),
                unaccounted=self._unaccounted,
            ),
            seconds,
        )
        if self._state == RUNNING:
            # Not at the stop: settling and joining workers is late by design, not load.
            self._timeline.note_health(elapsed, health.loop_lag_ms, health.cpu_percent)
        points = self._timeline.points
        # Live: the last seconds (what limits the load now); at the end: the whole run.
        window = points if self._state == STOPPED else points[-RECENT_SECONDS:]
        bottleneck = summarise_bottleneck(
            [p.bottleneck for p in window], [p.service_p50 for p in window]
        )
        host_noise = self._host_reading(final=histograms is not None)
        return Snapshot(
            elapsed=elapsed,
            state=self._state,
            model=self.plan.load.model,
            target=self.plan.target,
            users=self._users,
            # Paused users send nothing; what the workers last said may predate the pause.
            active_users=0 if self._state == PAUSED else sum(r.active_users for r in reports),
            rate=self._rate,
            in_flight=sum(r.in_flight for r in reports),
            total=total,
            endpoints=endpoints,
            timeline=tuple(self._timeline.points),
            control_log=tuple(self._control_log),
            thresholds=check_thresholds(
                self.plan, total, endpoints, self._state == STOPPED, self._sustained
            ),
            stalled=stalled,
            latency_buckets=log_buckets(self._totals.total.latency),
            recent_latency_buckets=recent_buckets,
            recent_latency_ms=recent_latency,
            recent_endpoints=self._timeline.recent_endpoints,
            recent_total=self._timeline.recent_total,
            # With the histograms: on the final snapshot only.
            endpoint_timeline=self._timeline.endpoint_series() if histograms else (),
            host_noise=host_noise,
            manual=self._manual and bool(self.plan.load.stages),
            stage=self._stage,
            stop_reason=self._stop_reason,
            health=health,
            histograms=histograms or {},
            target_metrics=self.metrics.snapshot() if self.metrics is not None else None,
            nodes=spread.node_health() if spread else (),
            paused_seconds=paused_total,
            paused_for=paused_now,
            bottleneck=bottleneck,
        )

    def _endpoint_summaries(self, elapsed: float, every: bool) -> tuple[EndpointSummary, ...]:
        """Every endpoint's summary: recomputed where a delta changed it since the last
        snapshot; elsewhere kept, its rps brought up to date for RPS_REFRESH_PER_TICK of
        them in turn (``every``: all of them, for the final snapshot)."""
        totals, summaries = self._totals.endpoints, self._summaries
        for index in self._changed:
            if index not in self._listed:
                self._listed.add(index)
                self._answered.append(index)
            summaries[index] = totals[index].summary(elapsed)
        answered = self._answered
        count = len(answered) if every else min(len(answered), RPS_REFRESH_PER_TICK)
        start = 0 if every else self._refresh_from
        turn = (answered[(start + step) % len(answered)] for step in range(count))
        for index in itertools.chain(turn, self._judged):
            if index in self._listed and index not in self._changed:
                summaries[index] = _with_rps(summaries[index], totals[index].requests, elapsed)
        self._refresh_from = (start + count) % len(answered) if answered else 0
        self._changed.clear()
        return tuple(summaries)

    def _stalled(self) -> tuple[int, ...]:
        """Running workers that have not reported for STALL_TICKS ticks."""
        if self._state not in (RUNNING, PAUSED, STOPPING) or not self._started:
            return ()
        return self._book.stalled(time.monotonic(), STALL_TICKS * self.plan.tick)

    def _silence_ms(self) -> float:
        """How long the quietest running worker has gone without reporting, past two ticks.

        A worker whose loop is blocked reports no lag at all: it reports nothing. Its loop
        is at least this late, and the run must not look like a quiet, healthy target.
        """
        if self._state not in (RUNNING, PAUSED):
            return 0.0
        quiet = self._book.quietest(time.monotonic())
        return max(quiet - 2 * self.plan.tick, 0.0) * 1000

    def _health(self, now: GeneratorHealth, seconds: float) -> GeneratorHealth:
        """This tick's figures plus the run's peaks and time spent saturated."""
        run = self._run_health
        self._run_health = replace(
            now,
            saturated_seconds=run.saturated_seconds + (seconds if now.saturated else 0.0),
            stalled_seconds=run.stalled_seconds + (seconds if now.stalled_workers else 0.0),
            peak_loop_lag_ms=max(run.peak_loop_lag_ms, now.loop_lag_ms),
            peak_send_lag_ms=max(run.peak_send_lag_ms, now.send_lag_ms),
            peak_cpu_percent=max(run.peak_cpu_percent, now.cpu_percent),
        )
        return self._run_health

    def _publish(self) -> None:
        event, self._next = self._next, asyncio.Event()
        event.set()
        for listener in self._listeners:
            listener(self.latest)

    async def _finish(self) -> None:
        self._state = STOPPING
        self._send_all(Command(Control.STOP))
        deadline = time.monotonic() + STOP_DEADLINE
        interval = EndpointTotals("interval")
        while time.monotonic() < deadline:
            part = self._drain()
            _add_totals(interval, part)
            if self._book.all_finished(len(self._workers)):
                break
            await asyncio.sleep(0.01)
        # The run ended when its workers did: joining processes and the scraper is not run time.
        if self._paused_since is not None:  # stopped while paused: the pause ends here
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None
        elapsed = self.elapsed()
        late = self._book.unfinished(len(self._workers))
        stalled = set(self._stalled()) | self._book.stalled_ever()
        # Workers that missed the deadline are ended (a process is killed: a worker that did
        # not stop when asked would not flush on SIGTERM either); the others, whose figures
        # are all in, get a little longer to close their sockets. In parallel: the whole
        # stop stays under a second.
        closing = max(deadline + 0.2 - time.monotonic(), 0.05)
        await asyncio.gather(
            *(
                asyncio.to_thread(worker.join, 0.05 if i in late else closing)
                for i, worker in enumerate(self._workers)
            )
        )
        _add_totals(interval, self._drain())
        self._account_for(late, stalled)
        if self.metrics is not None:
            await self.metrics.stop()
        self._state = STOPPED
        self._sustained.observe(self._timeline.close(elapsed, self._users, self._timeline_rate()))
        histograms = {
            f"{t.name}/{kind}": text
            for t in [self._totals.total, *self._totals.endpoints]
            for kind, text in t.encoded().items()
        }
        self._stop_reason = self._stop_reason or "stopped"
        self.latest = self._snapshot(elapsed, interval, self._interval_seconds(elapsed), histograms)
        self._publish()
        assert self._final is not None
        if not self._final.done():
            self._final.set_result(self.latest)

    def _account_for(self, late: list[int], stalled: set[int]) -> None:
        """Say what workers that never sent their final delta leave unknown.

        Their counts up to their last report are in. ``unaccounted`` is what they sent whose
        outcome never reached us: what was on the wire at their last report, plus everything
        sent since, read from the worker's live count (it travels ahead of the deltas, so a
        worker stuck right after its answers came back still owns up to them). Where that
        count cannot be read (Ray), what was due or on the wire at the last report. The stop
        reason names them.
        """
        notes = []
        for worker_id in late:
            record = self._book.record(worker_id)
            if record.settled:
                continue  # the final delta came; only the goodbye was lost
            unknown = record.unsettled
            sent_now = self._workers[worker_id].sent_so_far()
            if sent_now is not None:
                unknown = record.on_wire + max(sent_now - record.sent, 0)
            self._unaccounted += unknown
            why = "stalled" if worker_id in stalled else "did not stop in time"
            notes.append(
                f"worker {worker_id} {why} and was ended at stop: {unknown} requests unaccounted"
            )
        # A worker that stalled and came back is in generator.stalled_seconds and the
        # summary's warning; the stop reason names only what changed the results.
        if notes:
            self._stop_reason = "; ".join([self._stop_reason or "stopped", *notes])

    def add_listener(self, listener: Callable[[Snapshot], None]) -> None:
        """Call ``listener`` with every snapshot, on the runner's loop (keep it cheap)."""
        self._listeners.append(listener)


def _with_rps(summary: EndpointSummary, requests: int, elapsed: float) -> EndpointSummary:
    """``summary`` with its run-average rps at ``elapsed``: a copy of its fields, 7 times
    cheaper than dataclasses.replace, which runs __init__ again."""
    copy = object.__new__(EndpointSummary)
    copy.__dict__.update(summary.__dict__)
    copy.__dict__["rps"] = requests / elapsed if elapsed > 0 else 0.0
    return copy


def _add_totals(into: EndpointTotals, part: EndpointTotals) -> None:
    """Only what an interval needs: the counts behind RPS and the latency histogram."""
    into.requests += part.requests
    into.errors += part.errors
    into.dropped += part.dropped
    if part.latency.get_total_count():
        into.latency.add(part.latency)


async def start(
    plan: Plan, processes: int = 1, worker_factory: WorkerFactory | None = None
) -> RunHandle:
    """Start a run of ``plan`` on the running event loop and return its handle."""
    handle = RunHandle(plan, processes, worker_factory)
    await handle._start()
    return handle


# Runs beside a run with its handle, e.g. a replay applying its control log.
Steer = Callable[[RunHandle], Coroutine[Any, Any, None]]
