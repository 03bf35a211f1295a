"""The `?` screen: every key of the console in one list, from the same table as the bindings,
the footer and the command palette (ui.keys), so it cannot go stale."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from stressdeck.ui.keys import CONTROLS, PANE_TITLES

# Keys that are not app actions of ours: tabs, the palette, Textual's own quit.
EXTRA_KEYS = (
    ("1-6", f"tabs, 1 {PANE_TITLES[0]} … 6 {PANE_TITLES[-1]} (also ←/→ on the tab bar)"),
    ("ctrl+p", "command palette: every action by name (try 'pause', 'users')"),
    ("ctrl+q", "quit at once (a run going is stopped cleanly)"),
    ("esc", "close a dialog, this list or the palette"),
)


def key_table() -> Table:
    """Key and meaning, one row each, in the order of the footer."""
    table = Table(box=None, padding=(0, 1), show_header=False, expand=True)
    table.add_column("key", style="bold cyan", no_wrap=True, width=10)
    table.add_column("what it does", ratio=1)
    for control in CONTROLS:
        keys = control.help.split(":", 1)[0]
        meaning = control.help.split(":", 1)[1].strip() if ":" in control.help else control.help
        table.add_row(keys, meaning)
    for keys, meaning in EXTRA_KEYS:
        table.add_row(keys, meaning)
    return table


class HelpScreen(ModalScreen[None]):
    """Every key; any of escape, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="help-box"):
            yield Static(Text("keys (esc closes)", style="bold"), id="help-title")
            yield Static(key_table(), id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
