"""The target pane: the backend's own Prometheus series (``metrics_url``), latest values and
a small chart of them over the run, on the same time axis as our requests/s.

The scrape runs in the engine beside the run; this only renders ``Snapshot.target_metrics``.
A failed scrape is shown (never hidden behind the last good value) and never stops the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from stressdeck.core.redact import redact_url
from stressdeck.engine.snapshot import Snapshot
from stressdeck.observe.metrics import MetricsSnapshot, SeriesHistory
from stressdeck.ui.format import ms, rate, safe, size
from stressdeck.ui.widgets.charts import (
    BLUE,
    GREEN,
    MAX_POINTS,
    ORANGE,
    PURPLE,
    RED,
    Chart,
    nice_ticks,
    number_label,
    time_label,
    time_ticks,
)

SERIES_COLORS = (ORANGE, GREEN, PURPLE)
MAX_CHARTED = len(SERIES_COLORS)  # more lines than this on a few rows is only noise
SPEC_LIMIT = 48


def metric_value(value: float | None, unit: str) -> str:
    """A target series' value in its own unit: seconds as ms, bytes binary, rates per second."""
    if value is None:
        return "-"
    if unit == "s":
        return ms(value * 1000) if value > 0 else "0"
    if unit == "B":
        return size(value)
    if unit == "/s":
        return f"{rate(value)}/s"
    return f"{value:.4g}{unit}"


def scrape_failed(metrics: MetricsSnapshot) -> str | None:
    """Why the latest scrape failed, or None when it worked (or none happened yet)."""
    last = metrics.scrape_points[-1] if metrics.scrape_points else None
    if last is None or last.ok:
        return None
    return last.error or metrics.last_error or "unknown error"


def charted_series(metrics: MetricsSnapshot | None) -> list[SeriesHistory]:
    """The series drawn on the chart's one right axis: those in the first one's unit, or a
    latency in seconds would lie flat under a requests/s line. The rest are listed only."""
    if metrics is None or not metrics.series:
        return []
    unit = metrics.series[0].unit
    return [s for s in metrics.series if s.unit == unit][:MAX_CHARTED]


def target_text(
    metrics: MetricsSnapshot | None, url: str | None, wanted: Sequence[str], editable: bool = True
) -> Text:
    """Status line and one line per followed series (latest value, or why there is none)."""
    text = Text()
    if metrics is None and url is None:
        text.append(
            "no metrics URL: press m to follow the target's Prometheus series"
            if editable
            else "no target metrics: the run had no metrics URL",
            "dim",
        )
        return text
    failure = scrape_failed(metrics) if metrics is not None else None
    text.append("metrics ", "bold")
    text.append_text(
        safe(redact_url(metrics.url if metrics is not None else url or ""), "cyan", limit=60)
    )
    if metrics is None:
        text.append("  scraped every second once a run starts", "dim")
    else:
        text.append(f"  {metrics.scrapes} scrapes", "dim")
        if metrics.failures:
            text.append(f", {metrics.failures} failed", "yellow")
        if failure is not None:
            text.append("\n")
            text.append_text(safe(f"⚠ scrape failed: {failure}", "bold red", limit=120))
    histories = {s.spec: s for s in metrics.series} if metrics is not None else {}
    names = list(dict.fromkeys([*wanted, *histories]))
    if not names:
        text.append("\nno series followed: press m to add some", "dim")
    colors = {
        s.spec: color for s, color in zip(charted_series(metrics), SERIES_COLORS, strict=False)
    }
    for name in names:
        text.append("\n")
        color = colors.get(name)
        text.append(
            "━ " if color else "  ", f"rgb({color[0]},{color[1]},{color[2]})" if color else ""
        )
        text.append_text(safe(name, "bold", limit=SPEC_LIMIT))
        history = histories.get(name)
        last = history.last if history is not None else None
        if last is None:
            # A rate or a quantile needs two scrapes before it has a first value.
            text.append("  no value yet" if metrics is not None else "  -", "dim")
        elif not last.ok and last.error == failure:
            text.append("  failed", "red")  # why is on the line above; one reason, said once
        elif not last.ok:
            text.append("  ")
            text.append_text(safe(f"failed: {last.error}", "red", limit=60))
        else:
            assert history is not None
            text.append(f"  {metric_value(last.value, history.unit)}")
            text.append(f"  ({history.kind})", "dim")
    return text


class TargetChart(Chart):
    """Our requests/s (left axis) and the followed series (right axis) over the run's seconds;
    failed scrapes are red crosses on the time axis."""

    empty_hint = "target series by second: waiting for scrapes"

    def show(self, snap: Snapshot) -> None:
        metrics = snap.target_metrics
        key = (
            len(snap.timeline),
            snap.timeline[-1] if snap.timeline else None,
            metrics.t if metrics is not None else None,
            metrics.scrapes if metrics is not None else 0,
        )
        if key == self._key:
            return
        self._key = key
        self._drawn_with = (snap, metrics)
        self._draw(snap, metrics)
        self.refresh()

    def _draw(self, snap: Snapshot, metrics: MetricsSnapshot | None) -> None:
        plt = self.plt
        plt.clear_figure()
        # No legend inside the plot: the series' colours are on the status lines above.
        plt.title("blue: our requests/s (left); series ━ as above (right); x: failed scrape")
        points = snap.timeline[-MAX_POINTS:]
        series = charted_series(metrics)
        charted = [
            (s, [(p.t, p.value) for p in s.points[-MAX_POINTS:] if p.ok and p.value is not None])
            for s in series
        ]
        self.empty = metrics is None or not (points or any(xy for _, xy in charted))
        if self.empty:
            return
        rows = max(self.size.height - 3, 2)
        most = max(min(rows // 2, 4), 2)
        times: list[float] = []
        if points:
            rps = [p.rps for p in points]
            plt.plot([p.t for p in points], rps, color=BLUE)
            left = nice_ticks(max(rps), most=most)
            plt.yticks(left, [number_label(v, "/s") for v in left])
            plt.ylim(0, left[-1])
            times += [points[0].t, points[-1].t]
        right_top = 0.0
        for (_, xy), color in zip(charted, SERIES_COLORS, strict=False):
            if xy:
                plt.plot([t for t, _ in xy], [v for _, v in xy], yside="right", color=color)
                right_top = max(right_top, max(v for _, v in xy))
                times += [xy[0][0], xy[-1][0]]
        if right_top > 0 and series:
            right = nice_ticks(right_top, most=most)
            unit = series[0].unit
            labels = [metric_value(v, unit) if v else "0" for v in right]
            plt.yticks(right, labels, yside=2)  # plotext: 2 is the right axis
            plt.ylim(0, right[-1], yside=2)  # plotext: 2 is the right axis
        assert metrics is not None
        failed = [p.t for p in metrics.scrape_points[-MAX_POINTS:] if not p.ok]
        if failed:
            plt.scatter(failed, [0.0] * len(failed), marker="x", color=RED)
            times += [failed[0], failed[-1]]
        if times:
            xticks = time_ticks(min(times), max(times), most=max(self.size.width // 16, 2))
            plt.xticks(xticks, [time_label(t) for t in xticks])


class TargetPane(Vertical):
    """Pushed every snapshot, plus the URL and series the next run will follow."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._status = Static(id="target-status")
        self._chart = TargetChart(id="target-chart")
        self._key: tuple[MetricsSnapshot | None, str | None, tuple[str, ...], bool] | None = None

    def compose(self) -> ComposeResult:
        yield self._status
        yield self._chart

    def show(
        self, snap: Snapshot, url: str | None, wanted: Sequence[str], editable: bool = True
    ) -> None:
        metrics = snap.target_metrics
        key = (metrics, url, tuple(wanted), editable)
        if key != self._key:
            self._key = key
            self._status.update(target_text(metrics, url, wanted, editable))
            self._chart.display = (
                metrics is not None or url is not None
            )  # no axes for nothing to scrape
        self._chart.show(snap)

    @property
    def status_text(self) -> str:
        """What the status lines say, as plain text (for tests and tools)."""
        return "" if self._key is None else target_text(*self._key).plain
