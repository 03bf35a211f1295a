"""What the runner knows of each of its workers: when it last spoke, what it last reported,
whether it finished, and what of its requests is still unsettled.

One record per worker, kept by ``WorkerBook``: the runner asks it questions (who is stalled,
how long the quietest has been silent, did every worker finish) instead of walking several
dictionaries keyed by the same worker id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from stressdeck.engine.stats import IntervalStats
from stressdeck.engine.worker import WorkerFinished


class WorkerReport(NamedTuple):
    """A worker's newest figures: its counts now, its lags the worst since the last tick."""

    in_flight: int
    active_users: int
    loop_lag_ms: float
    send_lag_ms: float


@dataclass
class WorkerRecord:
    last_heard: float  # time.monotonic() of its last message
    report: WorkerReport | None = None
    finished: WorkerFinished | None = None
    unsettled: int = 0  # due or sent, not yet settled, at its last report
    sent: int = 0  # requests it had handed to a connection, as of its last delta
    on_wire: int = 0  # of those, still on the wire then
    settled: bool = False  # its final delta arrived
    stalled_ever: bool = False


class WorkerBook:
    """The records of a run's workers, by worker id."""

    def __init__(self) -> None:
        self.records: dict[int, WorkerRecord] = {}

    def start(self, workers: int, now: float) -> None:
        """Every worker starts heard from at ``now``: the run's clock and theirs begin together."""
        self.records = {worker: WorkerRecord(now) for worker in range(workers)}

    def _record(self, worker: int, now: float) -> WorkerRecord:
        record = self.records.get(worker)
        if record is None:
            record = self.records[worker] = WorkerRecord(now)
        record.last_heard = now
        return record

    def finish(self, message: WorkerFinished, now: float) -> None:
        self._record(message.worker, now).finished = message

    def note(self, message: IntervalStats, now: float, lags: tuple[float, float]) -> None:
        """A delta arrived: its counts are the worker's newest, ``lags`` the worst since the tick."""
        record = self._record(message.worker, now)
        record.report = WorkerReport(message.in_flight, message.active_users, *lags)
        record.unsettled = message.in_flight
        record.sent, record.on_wire = message.sent, message.on_wire
        record.settled = record.settled or message.final

    def finished(self) -> list[WorkerFinished]:
        return [r.finished for r in self.records.values() if r.finished is not None]

    def all_finished(self, workers: int) -> bool:
        return len(self.finished()) == workers

    def running(self) -> Iterable[tuple[int, WorkerRecord]]:
        return ((worker, r) for worker, r in self.records.items() if r.finished is None)

    def reports(self) -> list[WorkerReport]:
        return [r.report for r in self.records.values() if r.report is not None]

    def stalled(self, now: float, silent_for: float) -> tuple[int, ...]:
        """Running workers silent for ``silent_for`` seconds; remembered as stalled ever."""
        found = tuple(sorted(w for w, r in self.running() if now - r.last_heard >= silent_for))
        for worker in found:
            self.records[worker].stalled_ever = True
        return found

    def stalled_ever(self) -> set[int]:
        return {worker for worker, r in self.records.items() if r.stalled_ever}

    def quietest(self, now: float) -> float:
        """How long the quietest running worker has gone without a message, in seconds."""
        return max((now - r.last_heard for _, r in self.running()), default=0.0)

    def unfinished(self, workers: int) -> list[int]:
        return [
            w for w in range(workers) if self.records.get(w, WorkerRecord(0.0)).finished is None
        ]

    def record(self, worker: int) -> WorkerRecord:
        return self.records.get(worker) or WorkerRecord(0.0)
