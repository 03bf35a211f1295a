"""The charts: the latency histogram, drawn here as text, and the per-second timelines,
drawn by plotext.

Each timeline is a textual-plotext ``PlotextPlot``: its own plotext figure (no global plot
state), sized from the widget on every render, so a resize re-renders it. Data is pushed
in with ``show``; the figure is rebuilt only when the data changed, and drawn only when
Textual renders, so a chart costs at most one build per refresh and nothing while hidden.
The histogram redraws more often (its buckets change every tick), so it is ours: a few
runs of characters per row, built once per change (see ``histogram_rows``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.strip import Strip
from textual.widget import Widget
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


class LatencyHistogram(Widget):
    """Log-spaced latency buckets as bars, with p50/p95/p99 marked; cumulative or last 10 s.

    Drawn by ``histogram_rows``, not plotext: a plotext build, and the compositor's work
    on its one-cell segments, were most of the console's CPU during a run. The strips are
    built when the data or the size changes; painting them again costs a lookup."""

    DEFAULT_CSS = """
    LatencyHistogram {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recent = False
        self.failed_only = 0  # requests completed without an answer while none had one
        self.empty = True
        self._key: object = None
        self._drawn_at = 0.0
        self._drawn_with: tuple[Sequence[HistogramBucket], Sequence[tuple[str, float]]] = ((), ())
        self._strips: list[Strip] | None = None  # None: the empty hint is shown

    @property
    def empty_hint(self) -> str:
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
        # During a run the buckets change every tick; redrawn at most once a second, so
        # the compositor repaints this pane at the timelines' pace. A window switch, a
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
        self._draw()

    def on_resize(self) -> None:
        # Bar widths, ticks and labels are chosen for the size: draw again for the new one.
        self._draw()

    def _draw(self) -> None:
        buckets, marks = self._drawn_with
        self.empty = not any(b.count for b in buckets)
        self._strips = None
        if not self.empty:
            window = "last 10 s" if self.recent else "whole run"
            titles = (f"requests by latency, {window} (h: switch)", f"by latency, {window}")
            width, height = self.size
            rows = histogram_rows(buckets, marks, width, height, titles)
            self._strips = [Strip([Segment(text, style) for text, style in row]) for row in rows]
        self.refresh()

    def render(self) -> RenderResult:
        # Only the empty hint goes through here; it follows ``recent``, which h flips
        # before any snapshot is shown.
        return Text(self.empty_hint, style="dim", justify="center")

    def render_line(self, y: int) -> Strip:
        # Strips, not a Text: Textual would turn a Text into Content and render it again
        # at every refresh. The widget's style (the theme's colours) goes under ours.
        if self._strips is None:
            return super().render_line(y)
        strip = self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)
        return strip.apply_style(self.visual_style.rich_style)


BAR_STYLE = Style(color=Color.from_rgb(*BLUE))
MARK_STYLES = tuple(Style(color=Color.from_rgb(*color)) for color in PERCENTILE_COLORS)
TITLE_STYLE = Style(bold=True)
EIGHTHS = " ▁▂▃▄▅▆▇█"  # a cell filled from the bottom, by eighths

Run = tuple[str, Style | None]  # characters of one style: a segment once drawn


def histogram_rows(
    buckets: Sequence[HistogramBucket],
    marks: Sequence[tuple[str, float]],
    width: int,
    height: int,
    titles: Sequence[str] = ("",),
) -> list[list[Run]]:
    """``buckets`` as vertical bars in a ``width`` x ``height`` box, row by row: a title
    (the first of ``titles`` that fits), a y axis of round counts, bars in eighths of a
    cell with the tallest full height, an x axis labelled with bucket low edges, and
    ``marks`` (the p50/p95/p99) as lines down their columns in PERCENTILE_COLORS.

    Each row is a few runs of one style (an empty cell takes the bars' style), never a
    run per cell: what Textual costs to paint grows with the number of segments."""
    rows = max(height - 3, 1)  # less the title, the x axis and its labels
    peak = max((b.count for b in buckets), default=0)
    # Counts are whole: 0.5 is no tick. Ticks above the tallest bar would waste rows.
    most = max(min(rows // 2, 4), 1)
    yticks = [v for v in nice_ticks(peak, most) if v <= peak and v == int(v)]
    ylabels = [number_label(v) for v in yticks]
    gutter = max(len(label) for label in ylabels)
    plot = max(width - gutter - 1, 0)  # the columns right of the axis
    if len(buckets) > plot:  # fewer columns than buckets: neighbours are added up
        buckets = _merged(buckets, math.ceil(len(buckets) / max(plot, 1)))
    starts, widths = _bar_columns(len(buckets), plot)
    owner: list[int | None] = [None] * plot  # the bar each plot column belongs to
    for index, (start, span) in enumerate(zip(starts, widths, strict=True)):
        owner[start : start + span] = [index] * span
    mark_at = _mark_columns(buckets, marks, starts, widths, owner)
    # In eighths of a cell; a bucket with any count shows at least one eighth.
    heights = [max(round(b.count / max(peak, 1) * rows * 8), 1) if b.count else 0 for b in buckets]
    # A tick on the row that holds its height; 0 is on the x axis, under the bars.
    tick_rows = {
        math.ceil(v / max(peak, 1) * rows) - 1: label
        for v, label in zip(yticks, ylabels, strict=True)
        if v
    }

    title = next((t for t in titles if len(t) <= plot), titles[-1])
    lines: list[list[Run]] = [
        [(" " * (gutter + 1) + title.center(plot)[:plot].rstrip(), TITLE_STYLE)]
    ]
    for row in range(rows - 1, -1, -1):
        label = tick_rows.get(row)
        axis: Run = ((label or "").rjust(gutter) + ("┤" if label else "│"), None)
        cells = [
            " " if index is None else EIGHTHS[min(max(heights[index] - row * 8, 0), 8)]
            for index in owner
        ]
        lines.append([axis, *_runs(cells, mark_at)])
    ticks, labels = _x_axis(buckets, starts, plot)
    lines.append([(ylabels[0].rjust(gutter) + "└" + ticks, None)])
    lines.append([(" " * (gutter + 1) + labels, None)])
    return lines


def _bar_columns(count: int, plot: int) -> tuple[list[int], list[int]]:
    """Each bar's first column and width, filling ``plot`` columns. While bars can be two
    columns wide they are all one width, with gaps of one or two columns between them;
    narrower, they touch, and the spare columns widen some of them."""
    if not count:
        return [], []
    if plot < 3 * count - 1:
        starts = [i * plot // count for i in range(count)]
        return starts, [end - start for start, end in zip(starts, [*starts[1:], plot], strict=True)]
    width = (plot + 1) // count - 1
    gaps = plot - width * count  # shared out between the count - 1 gaps
    starts = [i * width + i * gaps // max(count - 1, 1) for i in range(count)]
    return starts, [width] * count


def _mark_columns(
    buckets: Sequence[HistogramBucket],
    marks: Sequence[tuple[str, float]],
    starts: Sequence[int],
    widths: Sequence[int],
    owner: Sequence[int | None],
) -> dict[int, int]:
    """The plot column of each mark (its index in ``marks``), within its bucket's bar.
    Lines only: the names and values are in the legend beside the chart (OverviewStats),
    so close marks never print "p95p99" over each other or over the bars."""
    taken: dict[int, int] = {}
    for which, (_, value) in enumerate(marks[: len(MARK_STYLES)]):
        where = bucket_position(buckets, value)
        if where is None:
            continue
        index = min(int(where + 0.5), len(buckets) - 1)  # bar i spans i-0.5 .. i+0.5
        into = where - (index - 0.5)
        column = starts[index] + min(int(into * widths[index]), widths[index] - 1)
        # Close percentiles (p95 and p99, often) would share a column: the later one
        # takes the nearest free bar column, so every line stays in sight.
        free = [c for c, bar in enumerate(owner) if bar is not None and c not in taken]
        if free:
            taken[min(free, key=lambda c: (abs(c - column), c < column))] = which
    return taken


def _runs(cells: Sequence[str], mark_at: dict[int, int]) -> list[Run]:
    """One row of plot cells as runs: the bars' style, broken only by the marks' columns,
    where an empty cell shows the mark's line and a bar cell takes the mark's colour."""
    runs: list[Run] = []
    start = 0
    for column in sorted(mark_at):
        runs.append(("".join(cells[start:column]), BAR_STYLE))
        cell = cells[column]
        runs.append(("│" if cell == " " else cell, MARK_STYLES[mark_at[column]]))
        start = column + 1
    runs.append(("".join(cells[start:]), BAR_STYLE))
    return [run for run in runs if run[0]]


def _x_axis(
    buckets: Sequence[HistogramBucket], starts: Sequence[int], plot: int
) -> tuple[str, str]:
    """The x axis line and its labels: a bucket's low edge under its first column, every
    few buckets, two spaces at least between labels, none cut at the right edge."""
    count = len(buckets)
    room = max((len(tick_label(b.low_ms)) for b in buckets), default=0) + 2
    step = 1
    while step < count and min(starts[i + step] - starts[i] for i in range(count - step)) < room:
        step += 1
    axis, under = ["─"] * plot, [" "] * plot
    for index in range(0, count, step):
        label, start = tick_label(buckets[index].low_ms), starts[index]
        if start + len(label) > plot:
            break
        axis[start] = "┬"
        under[start : start + len(label)] = label
    return "".join(axis), "".join(under).rstrip()


def _merged(buckets: Sequence[HistogramBucket], size: int) -> tuple[HistogramBucket, ...]:
    """Every ``size`` neighbouring buckets as one, for a plot narrower than the buckets."""
    groups = [buckets[i : i + size] for i in range(0, len(buckets), size)]
    return tuple(
        HistogramBucket(group[0].low_ms, group[-1].high_ms, sum(b.count for b in group))
        for group in groups
    )


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
        self._waiting_hint = f"{what} by second: waiting for the first second of a run"
        self.empty_hint = self._waiting_hint

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
        answered = [p for p in points if p.measured]
        # Latency: seconds nothing answered have no point (not one at 0 ms); none at all
        # shows the hint saying so instead of flat zero lines.
        self.empty = not points or (self.kind != "load" and not answered)
        if not points:
            self.empty_hint = self._waiting_hint
        elif self.empty:
            self.empty_hint = "latency percentiles by second: no answers, no data (see the errors)"
        if self.empty:
            return
        xs = [p.t for p in points]
        lines: list[tuple[list[float], list[float]]] = []
        if self.kind == "load":
            lines = [
                (xs, [p.rps for p in points]),
                (xs, [p.errors / p.span if p.span else 0.0 for p in points]),
            ]
            unit = "/s"
        else:
            at = [p.t for p in answered]
            lines = [
                (at, [p.p50 or 0.0 for p in answered]),
                (at, [p.p95 or 0.0 for p in answered]),
                (at, [p.p99 or 0.0 for p in answered]),
            ]
            unit = "ms"
        for (at, values), (_, color, _) in zip(lines, SERIES[self.kind], strict=False):
            plt.plot(at, values, color=color)
        rows = max(self.size.height - 2, 2)  # the plot's rows, less the x axis and labels
        yticks = nice_ticks(max(max(v) for _, v in lines), most=max(min(rows // 2, 4), 1))
        plt.yticks(yticks, [number_label(v, unit) for v in yticks])
        plt.ylim(0, yticks[-1])
        # One second in (a single point) the axis still spans a second: plotext divides by
        # its width, and an empty span raised ZeroDivisionError while the tab was in view.
        last = max(xs[-1], xs[0] + 1.0)
        xticks = time_ticks(xs[0], last, most=max(self.size.width // 16, 2))
        plt.xticks(xticks, [time_label(t) for t in xticks])
        plt.xlim(xs[0], last)
        if self.kind == "load":
            _, load = load_series(points, snap.model)
            plt.plot(xs, load, color=PURPLE, yside="right")
            right = nice_ticks(max(load), most=max(min(rows // 2, 4), 1))
            suffix = "/s" if snap.model == "open" else ""
            plt.yticks(
                right, [number_label(v, suffix) for v in right], yside=2
            )  # plotext: 2 is the right axis
            plt.ylim(0, right[-1], yside=2)  # plotext: 2 is the right axis
            for event in snap.control_log:
                if xs[0] <= event.offset <= xs[-1] and event.command in ("users", "rate"):
                    plt.vline(event.offset, CHANGE_COLOR)
