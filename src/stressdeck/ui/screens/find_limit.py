"""The find-limit dialog: the SLOs every step must hold, the load model, the first and the
highest load, and how long each step is measured. Enter starts, escape cancels; bad input
is one line under the fields, naming the field."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static, TextArea

from stressdeck.core.errors import InputError
from stressdeck.core.units import format_duration
from stressdeck.engine.limit import DEFAULT_PRECISION, Search
from stressdeck.ui.format import safe
from stressdeck.ui.search import (
    DEFAULT_STEP_S,
    MODELS,
    default_start,
    parse_search,
    safety_cap,
)


class SloArea(TextArea):
    """The SLOs, one per line; enter starts the search (as in every field), a comma
    separates SLOs typed on one line, and pasted lines stay lines."""

    # A priority binding: checked before the text area would take enter as a new line.
    BINDINGS = [Binding("enter", "submit", "Start", show=False, priority=True)]

    class Submitted(Message):
        pass

    def action_submit(self) -> None:
        self.post_message(self.Submitted())


class FindLimitScreen(ModalScreen[Search | None]):
    """Ask for a search; dismisses with the Search, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    FindLimitScreen #slos {
        height: 4;
    }
    FindLimitScreen #limit-fields {
        height: auto;
    }
    FindLimitScreen .limit-field {
        width: 1fr;
        height: auto;
    }
    FindLimitScreen #limit-error {
        height: auto;
    }
    """

    def __init__(self, slos: tuple[str, ...], model: str, start: float, *, i_know: bool) -> None:
        super().__init__(classes="dialog")
        self.slos, self.model, self.start, self.i_know = slos, model, start, i_know

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(Text("Find the limit: step the load until an SLO breaks", style="bold"))
            yield Label("SLOs every step must hold (one per line, or comma separated)")
            yield SloArea("\n".join(self.slos), id="slos", soft_wrap=False)
            cap = safety_cap(self.model)
            with Horizontal(id="limit-fields"):
                for name, label, value, hint in (
                    ("model", "model", self.model, "open|closed"),
                    ("start", "start", f"{self.start:g}", ""),
                    ("max", "max (cap)", "", f"{cap:g}"),
                    ("step", "step", format_duration(DEFAULT_STEP_S), "10s"),
                    ("precision", "precision", f"{DEFAULT_PRECISION:.0%}", "5%"),
                ):
                    with Vertical(classes="limit-field"):
                        yield Label(label)
                        yield Input(value, placeholder=hint, id=f"limit-{name}")
            yield Static(
                Text(
                    "enter: start a run of this plan   tab: next field   escape: cancel",
                    style="dim",
                )
            )
            yield Static("", id="limit-error")

    def on_mount(self) -> None:
        self.query_one(SloArea).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """A model typed in: the start and the cap follow it, unless the start was typed
        (1 user is no rate to start a search at: it was taken as 1 req/s)."""
        if event.input.id != "limit-model":
            return
        model = event.value.strip().lower()
        if model not in MODELS or model == self.model:
            return
        start = self.query_one("#limit-start", Input)
        if start.value.strip() in ("", f"{self.start:g}"):
            self.start = default_start(model)
            start.value = f"{self.start:g}"
        self.query_one("#limit-max", Input).placeholder = f"{safety_cap(model):g}"
        self.model = model

    def on_slo_area_submitted(self, _: SloArea.Submitted) -> None:
        self._submit()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self._submit()

    def _submit(self) -> None:
        def field(name: str) -> str:
            return self.query_one(f"#limit-{name}", Input).value

        try:
            search = parse_search(
                self.query_one(SloArea).text,
                field("model"),
                field("start"),
                field("max"),
                field("step"),
                field("precision"),
                i_know=self.i_know,
            )
        except InputError as exc:
            self.query_one("#limit-error", Static).update(safe(exc.line(), "bold red"))
            return
        self.dismiss(search)

    def action_cancel(self) -> None:
        self.dismiss(None)
