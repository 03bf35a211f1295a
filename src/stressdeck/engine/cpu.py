"""The load generator's own CPU use: this process and its worker processes."""

from __future__ import annotations

import time
from collections import deque

import psutil

WINDOW = 1.0  # seconds: one tick alone (0.25 s, or a short last one) is too noisy to judge by
# Listing children reads every process in /proc: do it now and then, not every tick.
RELIST_EVERY = 2.0
# CPU times advance in clock ticks (10 ms): over a few milliseconds, one tick per process
# reads as hundreds of percent (605 % with 2 workers). Shorter spans repeat the last figure.
MIN_SPAN = 0.5


class CpuMeter:
    """CPU of this process and its children, in % of one core over about the last second."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._samples: deque[tuple[float, float]] = deque()
        self._children: list[psutil.Process] = []
        self._listed = float("-inf")
        self._last = 0.0
        self.sample()

    def sample(self) -> float:
        now, used = time.monotonic(), self._cpu_seconds()
        self._samples.append((now, used))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()
        since, used_then = self._samples[0]
        if now - since < MIN_SPAN:
            return self._last
        # A child that exited takes its CPU seconds with it: never report a negative share.
        self._last = max(0.0, 100.0 * (used - used_then) / (now - since))
        return self._last

    def _cpu_seconds(self) -> float:
        now = time.monotonic()
        if now - self._listed >= RELIST_EVERY:
            self._listed = now
            try:
                self._children = self._process.children()
            except psutil.Error:
                self._children = []
        total = 0.0
        for process in (self._process, *self._children):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue  # exited between the listing and the reading
            total += times.user + times.system
        return total
