"""How busy the machine was during a run, besides the load generator itself.

A run on a machine where other processes took the CPU measures the machine as much as the
backend: compare says so when one side ran on a busy host. Measured from the system's CPU
times at the start and the end of the run, less the generator's own (this process and its
worker processes): the share of all cores that other processes used. The generator's own is
this process's CPU time, its live descendants' and that of the children it has waited for
(the kernel adds a reaped child's seconds to its parent's ``children_*`` times, so a worker
process that ended during the run still counts as ours). Seconds of a descendant that ended
without being waited for are lost to "other": the figure errs towards a busy host, never
towards a quiet one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

# Other processes using this share of all cores make a host "busy" in compare's warning.
BUSY_SHARE_PERCENT = 25.0


@dataclass(frozen=True)
class HostNoise:
    other_cpu_percent: float  # other processes' CPU during the run, % of all the host's cores
    load_average: float  # the 1-minute load average at the end of the run
    seconds: float  # how long the measure spanned

    def busy(self) -> bool:
        return self.other_cpu_percent >= BUSY_SHARE_PERCENT


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _own_seconds() -> float:
    process = psutil.Process()
    times = process.cpu_times()
    # user and system, then children_user and children_system: the waited-for children's
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except (psutil.Error, OSError):
            continue  # gone between the listing and the reading
    return total


class HostMeter:
    """Started when a run starts (the runner does: every session gets it, from the command
    line, the Python API, pytest or the console); ``read`` gives the HostNoise so far."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        try:
            self._busy, self._own = _busy_seconds(), _own_seconds()
        except (psutil.Error, OSError):
            self._busy = self._own = float("nan")

    def read(self) -> HostNoise | None:
        """None when the system's figures cannot be read (or no time passed)."""
        seconds = time.monotonic() - self._started
        cores = os.cpu_count() or 1
        try:
            busy, own = _busy_seconds() - self._busy, _own_seconds() - self._own
            load = os.getloadavg()[0]
        except (psutil.Error, OSError):
            return None
        if seconds <= 0 or busy != busy:  # NaN: the start could not be read
            return None
        other = max(0.0, min(100.0, 100 * (busy - own) / (seconds * cores)))
        return HostNoise(round(other, 1), round(load, 2), round(seconds, 3))
