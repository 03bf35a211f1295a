"""Host CPU/RAM (and optionally one target process) sampled with psutil, never blocking.

``cpu_percent(interval=None)`` compares against the previous call instead of sleeping, so
a sample costs microseconds and can run on a UI timer; the first sample after start is
primed and reads as zero. History is a bounded deque: a long session keeps the last
``history`` samples, never more.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import psutil

DEFAULT_HISTORY = 120  # samples; at one a second, the last two minutes


@dataclass(frozen=True)
class ProcessSample:
    """One look at the target process; ``alive`` False once it has gone (or cannot be read)."""

    pid: int
    name: str
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    alive: bool = True
    note: str = ""


@dataclass(frozen=True)
class HostSample:
    cpu_per_core: tuple[float, ...]
    memory_percent: float
    memory_used: int
    memory_total: int
    target: ProcessSample | None = None

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu_per_core) / len(self.cpu_per_core) if self.cpu_per_core else 0.0


class Monitor(Protocol):
    """What the console needs from a host sampler (tests pass a fixed one)."""

    history: deque[HostSample]

    def sample(self) -> HostSample: ...


def check_pid(pid: int) -> str:
    """The name of process ``pid``; raises ValueError when there is no such process."""
    try:
        return psutil.Process(pid).name()
    except psutil.NoSuchProcess:
        raise ValueError(f"no process with id {pid}") from None
    except psutil.AccessDenied:
        return "?"


class HostMonitor:
    """Samples this machine and, when given, one target process (``--target-pid``)."""

    def __init__(self, target_pid: int | None = None, history: int = DEFAULT_HISTORY) -> None:
        self.history: deque[HostSample] = deque(maxlen=history)
        self._target: psutil.Process | None = None
        self._target_pid = target_pid
        self._target_name = ""
        psutil.cpu_percent(interval=None, percpu=True)  # prime: the next call measures from here
        if target_pid is not None:
            self._attach(target_pid)

    def _attach(self, pid: int) -> None:
        try:
            self._target = psutil.Process(pid)
            self._target_name = self._target.name()
            self._target.cpu_percent(None)
        except psutil.Error:
            self._target = None

    def sample(self) -> HostSample:
        """Take one sample (non-blocking) and append it to ``history``."""
        cores = tuple(float(c) for c in psutil.cpu_percent(interval=None, percpu=True))
        memory = psutil.virtual_memory()
        sample = HostSample(
            cpu_per_core=cores,
            memory_percent=float(memory.percent),
            memory_used=int(memory.total - memory.available),
            memory_total=int(memory.total),
            target=self._sample_target(),
        )
        self.history.append(sample)
        return sample

    def _sample_target(self) -> ProcessSample | None:
        if self._target_pid is None:
            return None
        process = self._target
        if process is None:
            return ProcessSample(self._target_pid, self._target_name, alive=False, note="not found")
        try:
            with process.oneshot():
                return ProcessSample(
                    process.pid,
                    self._target_name,
                    float(process.cpu_percent(None)),
                    int(process.memory_info().rss),
                )
        except psutil.NoSuchProcess:
            return ProcessSample(process.pid, self._target_name, alive=False, note="exited")
        except psutil.AccessDenied:
            return ProcessSample(process.pid, self._target_name, alive=False, note="access denied")
