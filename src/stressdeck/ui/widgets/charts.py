"""plotext charts: the latency histogram and the per-second timelines.

Each chart is a textual-plotext ``PlotextPlot``: its own plotext figure (no global plot
state), sized from the widget on every render, so a resize re-renders it. Data is pushed
in with ``show``; the figure is rebuilt only when the data changed, and drawn only when
Textual renders, so a chart costs at most one build per refresh and nothing while hidden.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import RenderResult
from textual.widgets import Static
from textual_plotext import PlotextPlot

from stressdeck.engine.snapshot import HistogramBucket, Percentiles, Snapshot, TimelinePoint

BLUE, RED, GREEN, ORANGE, PURPLE = (
    (0, 130, 200),
    (230, 25, 75),
    (60, 180, 75),
    (245, 130, 48),
    (145, 30, 180),
)
PERCENTILE_COLORS = (GREEN, ORANGE, RED)  # p50, p95, p99 wherever they are drawn
MAX_POINTS = 300
REDRAW_SECONDS = 1.0  # the histogram's pace during a run (the timelines move once a second)  # seconds shown on a timeline: the last five minutes keep lines readable


def bucket_position(buckets: Sequence[HistogramBucket], value: float) -> float | None:
    """Where ``value`` ms falls on a bar axis of ``buckets`` (bar i spans i-0.5 .. i+0.5)."""
    for index, bucket in enumerate(buckets):
        if bucket.low_ms <= value <= bucket.high_ms:
            span = math.log(bucket.high_ms) - math.log(bucket.low_ms) if bucket.low_ms > 0 else 0
            into = (math.log(value) - math.log(bucket.low_ms)) / span if span > 0 else 0.5
            return index - 0.5 + into
    return None


def tick_label(value_ms: float) -> str:
    """A latency tick with its unit: 0.40ms, 4ms, 13ms, 1.2s."""
    if value_ms < 1:
        return f"{value_ms:.2f}ms"
    if value_ms < 10:
        return f"{value_ms:.1f}ms"
    if value_ms < 1000:
        return f"{value_ms:.0f}ms"
    return f"{value_ms / 1000:.1f}s"


def nice_ticks(top: float, most: int = 4) -> list[float]:
    """Round axis values from 0 up to at least ``top``: steps of 1, 2 or 5 times a power of
    ten, at most ``most`` + 1 of them, so labels read 0, 100, 200 instead of 144.6."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / most
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def number_label(value: float, unit: str = "") -> str:
    """An axis value without needless decimals, with its unit: 200/s, 1.5k/s, 12ms, 0.5."""
    if abs(value) >= 10_000:
        text = f"{value / 1000:g}k"
    elif value == int(value):
        text = f"{value:.0f}"
    else:
        text = f"{value:g}"
    return text + unit


def time_label(seconds: float) -> str:
    """A run offset on the time axis: 45s, 2m30s, 1h05m."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m"


def time_ticks(start: float, end: float, most: int = 5) -> list[float]:
    """Round run offsets across [start, end]: every 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10 min..."""
    span = max(end - start, 1.0)
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    step = next((s for s in steps if span / s <= most), steps[-1])
    first = math.ceil(start / step) * step
    ticks = []
    value = float(first)
    while value <= end + 1e-9:
        ticks.append(value)
        value += step
    return ticks


def rgb(color: tuple[int, int, int]) -> str:
    return f"rgb({color[0]},{color[1]},{color[2]})"


class Chart(PlotextPlot):
    """A plotext chart that shows a one-line hint instead of empty axes until it has data."""

    empty_hint = "no data yet"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._key: object = None
        self.empty = True
        self._drawn_with: tuple[Any, ...] | None = None  # what the figure was last built from

    def _draw(self, *data: Any) -> None:
        raise NotImplementedError

    def on_resize(self) -> None:
        # Ticks and labels are chosen for the size: build the figure again for the new one.
        if self._drawn_with is not None:
            self._draw(*self._drawn_with)
            self.refresh()

    def render(self) -> RenderResult:
        if self.empty:
            return Text(self.empty_hint, style="dim", justify="center")
        return super().render()


class LatencyHistogram(Chart):
    """Log-spaced latency buckets as bars, with p50/p95/p99 marked; cumulative or last 10 s."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.recent = False
        self.failed_only = 0
        self._drawn_at = 0.0  # requests completed without an answer while none had one

    @property
    def empty_hint(self) -> str:  # type: ignore[override]
        if self.failed_only:
            # No count: this redraws once a second, the figures beside it every tick.
            return "no latencies: every request so far failed without an answer (see the errors)"
        window = "in the last 10 s" if self.recent else "yet"
        return f"latency histogram: no samples {window} (s starts a run, h switches window)"

    def show(self, snap: Snapshot) -> None:
        buckets = snap.recent_latency_buckets if self.recent else snap.latency_buckets
        # Percentiles of the window shown: the whole run's, or the last ten seconds'.
        marks = _marks(snap.recent_latency_ms if self.recent else snap.total.latency_ms)
        failed_only = snap.total.requests if not snap.total.latency_ms.count else 0
        key = (self.recent, buckets, marks, failed_only, self.size)
        if key == self._key:
            return
        now = time.monotonic()
        # During a run the buckets change every tick; redrawn at most once a second (the
        # console's own cost: plotext and the compositor's repaint). A window switch, a
        # resize and a run's last snapshot are drawn at once.
        if (
            not snap.finished
            and isinstance(self._key, tuple)
            and self._key[0] == self.recent
            and self._key[4] == self.size
            and now - self._drawn_at < REDRAW_SECONDS
        ):
            return
        self._drawn_at = now
        self.failed_only = failed_only
        self._key = key
        self._drawn_with = (buckets, marks)
        self._draw(buckets, marks)
        self.refresh()

    def _draw(self, buckets: Sequence[HistogramBucket], marks: Sequence[tuple[str, float]]) -> None:
        plt = self.plt
        plt.clear_figure()
        window = "last 10 s" if self.recent else "whole run"
        title = f"requests by latency, {window} (h: switch)"
        plt.title(title if len(title) < self.size.width - 6 else f"by latency, {window}")
        self.empty = not any(b.count for b in buckets)
        if self.empty:
            return
        xs = list(range(len(buckets)))
        peak = max(b.count for b in buckets)
        plt.bar(xs, [b.count for b in buckets], width=0.9, color=BLUE)
        # One x label every few bars, each wide enough for "0.40ms" and a space.
        step = max(len(buckets) * 8 // max(self.size.width - 8, 16), 1)
        ticks = xs[::step]
        plt.xticks([float(i) for i in ticks], [tick_label(buckets[i].low_ms) for i in ticks])
        yticks = nice_ticks(peak, most=max(min((self.size.height - 4) // 2, 4), 1))
        plt.yticks(yticks, [number_label(v) for v in yticks])
        plt.ylim(0, yticks[-1])
        # The percentiles are lines in their colour; their names and values are in the
        # legend beside the chart (OverviewStats), off the data, so close lines never
        # print "p95p99" over each other.
        for (_, value), color in zip(marks, PERCENTILE_COLORS, strict=False):
            where = bucket_position(buckets, value)
            if where is not None:
                plt.vline(where, color)


def _marks(latency: Percentiles) -> tuple[tuple[str, float], ...]:
    if not latency.count:
        return ()
    return (("p50", latency.p50), ("p95", latency.p95), ("p99", latency.p99))


# What each timeline chart draws: (label, color, axis) in legend order.
SERIES = {
    "load": (("requests/s", BLUE, "left"), ("errors/s", RED, "left")),
    "latency": (("p50", GREEN, "left"), ("p95", ORANGE, "left"), ("p99", RED, "left")),
}
CHANGE_COLOR = (150, 150, 150)


def load_series(points: Sequence[TimelinePoint], model: str) -> tuple[str, list[float]]:
    """The load asked for, second by second: users (closed model) or the rate (open)."""
    if model == "open":
        return "rate asked (right)", [p.rate or 0.0 for p in points]
    return "users (right)", [float(p.users) for p in points]


class ChartLegend(Static):
    """The chart's title and legend on one line above it, off the data."""

    def __init__(self, kind: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.kind = kind
        self._model = ""

    def show(self, snap: Snapshot) -> None:
        if snap.model == self._model:
            return
        self._model = snap.model
        text = Text()
        if self.kind == "load":
            text.append("per second ", "bold")
            entries = [*SERIES["load"], (load_series((), snap.model)[0], PURPLE, "right")]
        else:
            text.append("latency by second ", "bold")
            entries = list(SERIES["latency"])
        for label, color, _ in entries:
            text.append(" ━", rgb(color))
            text.append(f" {label}")
        if self.kind == "load":
            text.append("  ┆", rgb(CHANGE_COLOR))
            text.append(" live change")
        self.update(text)


class TimelineChart(Chart):
    """Per-second lines from the snapshot's timeline, on the run's clock: ``kind`` "load"
    (requests/s and errors/s, and users or the asked rate on the right axis, with every
    live change marked) or "latency" (p50/p95/p99 in ms). The legend is a ChartLegend."""

    def __init__(self, kind: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        what = "requests/s, errors/s and load" if kind == "load" else "latency percentiles"
        self.empty_hint = f"{what} by second: waiting for the first second of a run"

    def show(self, snap: Snapshot) -> None:
        points = snap.timeline[-MAX_POINTS:]
        key = (points[-1] if points else None, len(snap.timeline), len(snap.control_log), self.size)
        if key == self._key:
            return
        self._key = key
        self._drawn_with = (points, snap)
        self._draw(points, snap)
        self.refresh()

    def _draw(self, points: Sequence[TimelinePoint], snap: Snapshot) -> None:
        plt = self.plt
        plt.clear_figure()
        self.empty = not points
        if self.empty:
            return
        xs = [p.t for p in points]
        lines: list[list[float]] = []
        if self.kind == "load":
            lines = [
                [p.rps for p in points],
                [p.errors / p.span if p.span else 0.0 for p in points],
            ]
            unit = "/s"
        else:
            lines = [[p.p50 for p in points], [p.p95 for p in points], [p.p99 for p in points]]
            unit = "ms"
        for values, (_, color, _) in zip(lines, SERIES[self.kind], strict=False):
            plt.plot(xs, values, color=color)
        rows = max(self.size.height - 2, 2)  # the plot's rows, less the x axis and labels
        yticks = nice_ticks(max(max(v) for v in lines), most=max(min(rows // 2, 4), 2))
        plt.yticks(yticks, [number_label(v, unit) for v in yticks])
        plt.ylim(0, yticks[-1])
        xticks = time_ticks(xs[0], xs[-1], most=max(self.size.width // 16, 2))
        plt.xticks(xticks, [time_label(t) for t in xticks])
        plt.xlim(xs[0], xs[-1])
        if self.kind == "load":
            _, load = load_series(points, snap.model)
            plt.plot(xs, load, color=PURPLE, yside="right")
            right = nice_ticks(max(load), most=max(min(rows // 2, 4), 2))
            suffix = "/s" if snap.model == "open" else ""
            plt.yticks(
                right, [number_label(v, suffix) for v in right], yside=2
            )  # plotext: 2 is the right axis
            plt.ylim(0, right[-1], yside=2)  # plotext: 2 is the right axis
            for event in snap.control_log:
                if xs[0] <= event.offset <= xs[-1] and event.command in ("users", "rate"):
                    plt.vline(event.offset, CHANGE_COLOR)
