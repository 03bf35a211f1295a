"""Response checks per endpoint in the Endpoints pane: passed, failed, and which ones fail.

Apart from the endpoint table, like the streaming figures: the table is already 80 columns
wide, and checks mean nothing for endpoints that have none.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from stressdeck.engine.snapshot import EndpointSummary, Snapshot
from stressdeck.ui.format import count, percent, safe

NAME_LIMIT = 40
CHECK_LIMIT = 50  # characters of a check expression shown; the summary and reports keep it whole


def checked(summary: EndpointSummary) -> bool:
    return summary.checks_rate is not None


def checks_table(endpoints: tuple[EndpointSummary, ...]) -> RenderableType:
    """One row per endpoint with checks, then one per check that failed on it."""
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("checks", no_wrap=True)
    for label in ("passed", "failed", "share"):
        table.add_column(label, justify="right", no_wrap=True)
    for summary in endpoints:
        rate = summary.checks_rate
        if rate is None:
            continue
        table.add_row(
            safe(summary.name, limit=NAME_LIMIT),
            count(summary.checks_passed),
            Text(count(summary.checks_failed), style="bold red" if summary.checks_failed else ""),
            percent(rate),
        )
        for expr, failed in summary.check_failures.items():
            table.add_row(
                Text("  ✗ ", style="red") + safe(expr, limit=CHECK_LIMIT),
                "",
                Text(count(failed), style="red"),
                "",
            )
    return table


class ChecksPane(Static):
    """Check figures per endpoint; hidden until some endpoint had a response checked."""

    # What the pane last drew: redrawn only when it changes.
    _key: object = None

    def on_mount(self) -> None:
        self.display = False

    def show(self, snap: Snapshot) -> None:
        key = tuple(
            (s.name, s.checks_passed, s.checks_failed, tuple(s.check_failures.items()))
            for s in snap.endpoints
            if checked(s)
        )
        if key == self._key:
            return
        self._key = key
        self.display = bool(key)
        if key:
            self.update(checks_table(snap.endpoints))
