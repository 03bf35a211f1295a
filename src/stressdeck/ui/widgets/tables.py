"""The per-endpoint results table, its streaming figures and the status-code / error-class
breakdown.

Every cell is a ``rich.text.Text``: DataTable parses plain ``str`` cells as markup, and an
endpoint may be named ``[bold red]boom[/]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, Static

from stressdeck.engine.snapshot import EndpointSummary, Snapshot
from stressdeck.ui.format import count, percent, rate, safe, size
from stressdeck.ui.format import latency as latency_text

COLUMNS = (
    ("endpoint", "Endpoint"),
    ("requests", "Requests"),
    ("rps", "RPS"),
    ("err", "Err %"),
    ("p50", "p50"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("max", "max"),
    ("ttfb", "TTFB p95"),
)
RECENT_LABEL = "Endpoint · last 10 s"  # the first column's label while the window is the last 10 s
TOTAL_KEY = "total"
BASELINE_SUFFIX = "-baseline"  # a baseline row's key: its live row's key plus this
NAME_LIMIT = 40  # characters: a long endpoint name must not push the numbers off screen
# On a narrow screen the name gives way first (the figures are what is read), down to this.
NAME_MINIMUM = 8


def name_width(width: int, rows: list[list[Text]], padding: int = 1) -> int:
    """How wide the name column may be in ``width`` cells so that every figure stays on
    screen: what the figure columns need (their widest cell or label, and padding) comes
    first; the name keeps at least NAME_MINIMUM and never more than NAME_LIMIT."""
    figures = sum(
        max(len(label), *(len(cells[i].plain) for cells in rows)) + 2 * padding
        for i, (_, label) in enumerate(COLUMNS)
        if i > 0
    )
    # One cell spare for a vertical scrollbar's gutter when the rows outgrow the pane.
    room = width - figures - 2 * padding - 1
    return max(NAME_MINIMUM, min(NAME_LIMIT, room))


def endpoint_row(summary: EndpointSummary, name: str | None = None) -> list[Text]:
    """The cells of one row, in COLUMNS order."""
    latency = summary.latency_ms
    error_style = "bold red" if summary.errors else ""
    cells = [
        safe(name if name is not None else summary.name, limit=NAME_LIMIT),
        Text(count(summary.requests), justify="right"),
        Text(rate(summary.rps), justify="right"),
        Text(percent(summary.error_rate), style=error_style, justify="right"),
        *(
            Text(latency_text(value, latency.measured, summary.requests), justify="right")
            for value in (latency.p50, latency.p95, latency.p99, latency.max)
        ),
        Text(
            latency_text(summary.ttfb_ms.p95, summary.ttfb_ms.measured, summary.requests),
            justify="right",
        ),
    ]
    return cells


def baseline_row(summary: EndpointSummary) -> list[Text]:
    """A baseline session's figures for the row above, dimmed, in COLUMNS order."""
    cells = endpoint_row(summary, "  ↳ baseline")
    for cell in cells:
        cell.stylize("dim")
    cells[0].stylize("italic")
    return cells


def window_rows(
    snap: Snapshot, recent: bool
) -> tuple[tuple[EndpointSummary, ...], EndpointSummary, bool]:
    """The endpoints and total of the window shown (``h``: the whole run or the last 10 s),
    and whether that is the last 10 s: a snapshot without them (a saved session, the first
    second of a run) shows the whole run."""
    if (
        recent
        and snap.recent_total is not None
        and len(snap.recent_endpoints) == len(snap.endpoints)
    ):
        return snap.recent_endpoints, snap.recent_total, True
    return snap.endpoints, snap.total, False


class EndpointTable(DataTable):
    """One row per endpoint plus a TOTAL row; updated in place so the cursor stays put.

    ``recent``: the figures of the last 10 closed seconds (``h``, as the Overview's
    histogram), the first column saying so; baseline rows stay whole-run figures.

    With a ``baseline`` (a saved run's final snapshot), each endpoint the baseline also had,
    and the total, get a dimmed row under them: live and saved one above the other, in the
    same columns, so the table stays as narrow as it was.
    """

    def __init__(self, baseline: Snapshot | None = None, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._keys: tuple[str, ...] = ()
        # The baseline never changes: its rows are built once, not on every refresh.
        self._baseline_rows = (
            {s.name: baseline_row(s) for s in baseline.endpoints} if baseline is not None else {}
        )
        self._baseline_total = baseline_row(baseline.total) if baseline is not None else None
        self._name_width = NAME_LIMIT
        self._last: Snapshot | None = None
        self.recent = False  # the window the columns are labelled for

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label in COLUMNS:
            if key == "endpoint" and self.recent:
                label = RECENT_LABEL
            self.add_column(Text(label, justify="left" if key == "endpoint" else "right"), key=key)

    def show(self, snap: Snapshot, recent: bool = False) -> None:
        endpoints, total, recent = window_rows(snap, recent)
        if recent != self.recent:
            self.recent = recent
            self.clear(columns=True)
            self._keys = ()
            self._add_columns()
        rows: list[tuple[str, list[Text]]] = []
        for i, summary in enumerate(endpoints):
            rows.append((f"ep{i}", endpoint_row(summary)))
            if summary.name in self._baseline_rows:
                rows.append((f"ep{i}{BASELINE_SUFFIX}", self._baseline_rows[summary.name]))
        rows.append((TOTAL_KEY, endpoint_row(total, "TOTAL")))
        rows[-1][1][0].stylize("bold")
        if self._baseline_total is not None:
            rows.append((f"{TOTAL_KEY}{BASELINE_SUFFIX}", self._baseline_total))
        self._last = snap
        width = self.size.width
        # Not laid out yet (a tab not shown): NAME_LIMIT until on_resize says how wide it is.
        fitted = (
            name_width(width, [cells for _, cells in rows], self.cell_padding)
            if width
            else NAME_LIMIT
        )
        for _, cells in rows:
            if cells[0].cell_len > fitted:
                cells[0] = cells[0].copy()
                cells[0].truncate(fitted, overflow="ellipsis")
        keys = tuple(key for key, _ in rows)
        if keys != self._keys or fitted != self._name_width:
            if fitted != self._name_width:
                # A column only ever widens in place: a narrower one is a fresh column.
                self.clear(columns=True)
                self._add_columns()
                self._name_width = fitted
            self.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
            self._keys = keys
            return
        for key, cells in rows:
            if key.endswith(BASELINE_SUFFIX):
                continue  # added with the keys above and never changed since
            for (column, _), cell in zip(COLUMNS, cells, strict=False):
                if self.get_cell(key, column) != cell:
                    self.update_cell(key, column, cell, update_width=True)

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(self._last)

    def cell_text(self, row: str, column: str) -> str:
        """The plain text of one cell (row "ep0".., "total", "ep0-baseline"...), for tests and tools."""
        value = self.get_cell(row, column)
        return value.plain if isinstance(value, Text) else str(value)


def codes_table(
    statuses: Mapping[int, int], errors: Mapping[str, int], total: int
) -> RenderableType:
    """Status codes and error classes with counts and shares of all completed requests."""
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("status / error", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    if not statuses and not errors:
        table.add_row(Text("no responses yet", style="dim"), "", "")
    for code, n in sorted(statuses.items()):
        style = "red" if code >= 500 else "yellow" if code >= 400 else "green"
        table.add_row(Text(str(code), style=style), count(n), percent(n / total if total else 0))
    for name, n in sorted(errors.items(), key=lambda item: -item[1]):
        table.add_row(
            safe(name, "bold red", limit=NAME_LIMIT), count(n), percent(n / total if total else 0)
        )
    return table


class CodesPane(Static):
    """Status codes and error classes of the whole run."""

    # What the pane last drew: redrawn only when it changes.
    _key: object = None

    def show(self, snap: Snapshot) -> None:
        total = snap.total
        key = (tuple(total.status_counts.items()), tuple(total.error_counts.items()))
        if key == self._key:
            return
        self._key = key
        self.update(codes_table(total.status_counts, total.error_counts, total.requests))


def streamed(summary: EndpointSummary) -> bool:
    """True when the endpoint's responses came as HTTP chunks or server-sent events."""
    return bool(summary.chunks or summary.events)


def streams_table(endpoints: tuple[EndpointSummary, ...]) -> RenderableType:
    """Events (or chunks, when no events) and bytes of the endpoints that streamed.

    Apart from the main table: two more columns would push it past 80 columns, and
    these figures mean nothing for endpoints that answered in one piece.
    """
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("streamed", no_wrap=True)
    for label in ("events", "chunks", "bytes", "per response"):
        table.add_column(label, justify="right", no_wrap=True)
    for summary in endpoints:
        if not streamed(summary):
            continue
        per_response = size(summary.bytes / summary.requests) if summary.requests else "-"
        table.add_row(
            safe(summary.name, limit=NAME_LIMIT),
            count(summary.events) if summary.events else "-",
            count(summary.chunks) if summary.chunks else "-",
            size(summary.bytes),
            per_response,
        )
    return table


class StreamsPane(Static):
    """Streaming figures per endpoint; hidden until some endpoint streamed."""

    # What the pane last drew: redrawn only when it changes.
    _key: object = None

    def on_mount(self) -> None:
        self.display = False

    def show(self, snap: Snapshot) -> None:
        key = tuple(
            (s.name, s.chunks, s.events, s.bytes, s.requests) for s in snap.endpoints if streamed(s)
        )
        if key == self._key:
            return
        self._key = key
        self.display = bool(key)
        if key:
            self.update(streams_table(snap.endpoints))
