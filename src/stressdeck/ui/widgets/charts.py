"""plotext charts: the latency histogram and the per-second timelines.

Each chart is a textual-plotext ``PlotextPlot``: its own plotext figure (no global plot
state), sized from the widget on every render, so a resize re-renders it. Data is pushed
in with ``show``; the figure is rebuilt only when the data changed, and drawn only when
Textual renders, so a chart costs at most one build per refresh and nothing while hidden.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from stressdeck.engine.snapshot import HistogramBucket, Percentiles, Snapshot, TimelinePoint

BLUE, RED, GREEN, ORANGE, PURPLE = (
    (0, 130, 200),
    (230, 25, 75),
    (60, 180, 75),
    (245, 130, 48),
    (145, 30, 180),
)
MAX_POINTS = 300  # seconds shown on a timeline: the last five minutes keep lines readable


def bucket_position(buckets: Sequence[HistogramBucket], value: float) -> float | None:
    """Where ``value`` ms falls on a bar axis of ``buckets`` (bar i spans i-0.5 .. i+0.5)."""
    for index, bucket in enumerate(buckets):
        if bucket.low_ms <= value <= bucket.high_ms:
            span = math.log(bucket.high_ms) - math.log(bucket.low_ms) if bucket.low_ms > 0 else 0
            into = (math.log(value) - math.log(bucket.low_ms)) / span if span > 0 else 0.5
            return index - 0.5 + into
    return None


def tick_label(value_ms: float) -> str:
    if value_ms < 1:
        return f"{value_ms:.2f}"
    if value_ms < 10:
        return f"{value_ms:.1f}"
    if value_ms < 10_000:
        return f"{value_ms:.0f}"
    return f"{value_ms / 1000:.0f}s"


class Chart(PlotextPlot):
    """A plotext chart that shows a one-line hint instead of empty axes until it has data."""

    empty_hint = "no data yet"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._key: object = None
        self.empty = True

    def render(self) -> RenderResult:
        if self.empty:
            return Text(self.empty_hint, style="dim", justify="center")
        return super().render()


class LatencyHistogram(Chart):
    """Log-spaced latency buckets as bars, with p50/p95/p99 marked; cumulative or last 10 s."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.recent = False

    @property
    def empty_hint(self) -> str:  # type: ignore[override]
        window = "in the last 10 s" if self.recent else "yet"
        return f"latency histogram: no samples {window} (s starts a run, h switches window)"

    def show(self, snap: Snapshot) -> None:
        buckets = snap.recent_latency_buckets if self.recent else snap.latency_buckets
        # Percentiles of the window shown: cumulative ones, or the last timeline point's.
        marks = _marks(snap.total.latency_ms) if not self.recent else _recent_marks(snap.timeline)
        key = (self.recent, buckets, marks)
        if key == self._key:
            return
        self._key = key
        self._draw(buckets, marks)
        self.refresh()

    def _draw(self, buckets: Sequence[HistogramBucket], marks: Sequence[tuple[str, float]]) -> None:
        plt = self.plt
        plt.clear_figure()
        window = "last 10 s" if self.recent else "whole run"
        plt.title(f"latency ms ({window}; h toggles)")
        self.empty = not any(b.count for b in buckets)
        if self.empty:
            return
        xs = list(range(len(buckets)))
        plt.bar(xs, [b.count for b in buckets], width=0.9, color=BLUE)
        step = max(len(buckets) // 6, 1)
        ticks = xs[::step]
        plt.xticks([float(i) for i in ticks], [tick_label(buckets[i].low_ms) for i in ticks])
        for (name, value), color in zip(marks, (GREEN, ORANGE, RED), strict=False):
            where = bucket_position(buckets, value)
            if where is not None:
                plt.vline(where, color)
                plt.text(name, where, max(b.count for b in buckets), color=color)


def _marks(latency: Percentiles) -> tuple[tuple[str, float], ...]:
    if not latency.count:
        return ()
    return (("p50", latency.p50), ("p95", latency.p95), ("p99", latency.p99))


def _recent_marks(timeline: Sequence[TimelinePoint]) -> tuple[tuple[str, float], ...]:
    if not timeline or not timeline[-1].requests:
        return ()
    point = timeline[-1]
    return (("p50", point.p50), ("p95", point.p95), ("p99", point.p99))


class TimelineChart(Chart):
    """Per-second lines from the snapshot's timeline: ``kind`` "rps" (RPS and errors/s) or
    "latency" (p50/p95/p99)."""

    def __init__(self, kind: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        what = "requests/s and errors/s" if kind == "rps" else "latency percentiles"
        self.empty_hint = f"{what} by second: waiting for the first second of a run"

    def show(self, snap: Snapshot) -> None:
        points = snap.timeline[-MAX_POINTS:]
        key = (points[-1] if points else None, len(snap.timeline))
        if key == self._key:
            return
        self._key = key
        self._draw(points)
        self.refresh()

    def _draw(self, points: Sequence[TimelinePoint]) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(
            "requests/s and errors/s, by second" if self.kind == "rps" else "latency ms by second"
        )
        self.empty = not points
        if self.empty:
            return
        xs = [p.t for p in points]
        if self.kind == "rps":
            plt.plot(xs, [p.rps for p in points], label="rps", color=BLUE)
            plt.plot(
                xs, [p.errors / p.span if p.span else 0.0 for p in points], label="err/s", color=RED
            )
        else:
            plt.plot(xs, [p.p50 for p in points], label="p50", color=GREEN)
            plt.plot(xs, [p.p95 for p in points], label="p95", color=ORANGE)
            plt.plot(xs, [p.p99 for p in points], label="p99", color=RED)
