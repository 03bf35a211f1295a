"""The Overview's figures beside the histogram: the percentiles of the window it shows,
requests and RPS, status codes and error classes; and below both, the top error messages
with their counts (locust's failures table), wrapped, never cut.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from stressdeck.engine.snapshot import Percentiles, Snapshot
from stressdeck.ui.format import count, percent, safe
from stressdeck.ui.format import latency as latency_text
from stressdeck.ui.widgets.charts import PERCENTILE_COLORS, rgb

TOP_ERRORS = 5  # rows of the errors table: the Overview must fit 24 lines


def window_latency(snap: Snapshot, recent: bool) -> Percentiles:
    """The percentiles of the window the histogram shows (the whole run, or the last 10 s)."""
    return snap.recent_latency_ms if recent else snap.total.latency_ms


def stats_text(snap: Snapshot, recent: bool) -> Text:
    """Percentiles of the histogram's window, then status codes and error classes with
    their counts and shares of all completed requests (fits 30 columns)."""
    latency = window_latency(snap, recent)
    total = snap.total
    text = Text()
    window = "last 10 s" if recent else "whole run"
    text.append(f"latency, {window}\n", "bold")
    marks = (("p50", latency.p50), ("p95", latency.p95), ("p99", latency.p99))
    for (name, value), color in zip(marks, PERCENTILE_COLORS, strict=True):
        text.append("━", rgb(color))  # the colour of its line on the histogram
        text.append(f" {name} ")
        text.append(f"{latency_text(value, latency.measured, total.requests):>9}", "bold")
        text.append("\n")
    text.append(f"  max {latency_text(latency.max, latency.measured, total.requests):>9}\n")
    text.append("requests ", "bold")
    text.append(f"{count(total.requests)}\n")
    n = total.requests
    rows: list[tuple[Text, int]] = []
    for code, k in sorted(total.status_counts.items()):
        style = "red" if code >= 500 else "yellow" if code >= 400 else "green"
        rows.append((Text(str(code), style), k))
    for name, k in sorted(total.error_counts.items(), key=lambda item: -item[1]):
        rows.append((safe(name, "bold red", limit=10), k))
    for label, k in rows:
        text.append(" ")
        text.append_text(label)
        text.append(" " * max(9 - label.cell_len, 1))
        text.append(f"{count(k):>7} {percent(k / n if n else 0):>6}\n")
    text.rstrip()
    return text


def top_errors(snap: Snapshot, limit: int = TOP_ERRORS) -> list[tuple[int, str]]:
    """The most frequent error texts of the run: transport errors' messages and unexpected
    HTTP statuses (with the endpoints that got them), as (count, text), most first."""
    rows: list[tuple[int, str]] = list(
        (k, message) for message, k in snap.total.error_messages.items()
    )
    for code in sorted(snap.total.status_counts):
        if code < 400:
            continue
        where = [e.name for e in snap.endpoints if e.status_counts.get(code)]
        names = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        rows.append((snap.total.status_counts[code], f"HTTP {code} from {names}"))
    rows.sort(key=lambda row: -row[0])
    return rows[:limit]


def errors_text(snap: Snapshot) -> Text:
    rows = top_errors(snap)
    if not rows:
        return Text("no errors" if snap.total.requests else "errors: none yet", "dim")
    text = Text()
    text.append("top errors", "bold")
    text.append(f"  (of {count(snap.total.errors)} in the whole run)", "dim")
    width = max(len(count(k)) for k, _ in rows)
    for k, message in rows:
        text.append("\n")
        text.append(count(k).rjust(width), "bold red")
        text.append("  ")
        text.append_text(safe(message))
    return text


class OverviewStats(Static):
    """Pushed each snapshot and which window the histogram shows; redrawn only on change."""

    # What the pane last drew: redrawn only when it changes.
    _key: object = None

    def show(self, snap: Snapshot, recent: bool) -> None:
        key = (
            recent,
            window_latency(snap, recent),
            snap.total.requests,
            tuple(snap.total.status_counts.items()),
            tuple(snap.total.error_counts.items()),
        )
        if key != self._key:
            self._key = key
            self.update(stats_text(snap, recent), layout=False)  # its size is fixed


class TopErrors(Static):
    """The most frequent error texts, wrapped to the pane's width (never cut)."""

    _shape: object = None  # the layout it last drew

    # What the pane last drew: redrawn only when it changes.
    _key: object = None

    def show(self, snap: Snapshot) -> None:
        key = (
            snap.total.requests > 0,
            snap.total.errors,
            tuple(snap.total.error_messages.items()),
            tuple(snap.total.status_counts.items()),
        )
        if key != self._key:
            self._key = key
            text = errors_text(snap)
            # Laid out again only when it may take another number of lines.
            shape = (text.plain.count("\n"), max(len(line) for line in text.plain.split("\n")))
            self.update(text, layout=shape != self._shape)
            self._shape = shape
