"""Modal dialogs: yes/no, preset list, session file name, an exact number, a duration and target metrics. Each dismisses
with its answer."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from stressdeck.core.errors import InputError
from stressdeck.core.units import format_duration, parse_duration
from stressdeck.profiles.presets import PRESET_HELP
from stressdeck.profiles.profile import SUFFIXES
from stressdeck.ui.format import safe

NO_PRESET = "(profile)"  # option id: back to the profile's own load shape


class ConfirmScreen(ModalScreen[bool]):
    """A question answered with y/n (or the buttons); escape means no."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="dialog")
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(safe(self.question), id="question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default one

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PresetScreen(ModalScreen[str | None]):
    """Pick one of the named presets (or the profile's own load); escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str | None, base: str) -> None:
        super().__init__(classes="dialog")
        self.current, self.base = current, base

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(Text(f"Load preset, relative to the base load ({self.base})", style="bold"))
            options = [
                Option(Text.assemble(("profile ", "bold"), "the profile's own load"), id=NO_PRESET)
            ]
            for name, meaning in PRESET_HELP.items():
                options.append(Option(Text.assemble((f"{name:7}", "bold"), " ", meaning), id=name))
            yield OptionList(*options, id="presets")
            yield Static(
                Text("enter: choose   escape: cancel   applies from the next start", style="dim")
            )

    def on_mount(self) -> None:
        presets = self.query_one(OptionList)
        presets.highlighted = presets.get_option_index(self.current or NO_PRESET)
        presets.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def check_session_name(text: str, sessions_dir: Path) -> Path:
    """The path a typed name means: bare names go under ``sessions_dir``; raises ValueError."""
    name = text.strip()
    if not name:
        raise ValueError("type a file name, e.g. baseline.toml")
    path = Path(name).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError("the name must end in .toml or .json")
    if not path.is_absolute() and path.parent == Path("."):
        path = sessions_dir / path
    return path


class SaveScreen(ModalScreen[Path | None]):
    """Ask for a session file name; TOML or JSON by extension. Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str, sessions_dir: Path) -> None:
        super().__init__(classes="dialog")
        self.default, self.sessions_dir = default, sessions_dir

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(Text("Save session", style="bold"))
            yield Input(self.default, id="session-name")
            yield Static(
                Text(f"a bare name goes under {self.sessions_dir}/; .toml or .json", style="dim")
            )
            yield Static("", id="save-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            path = check_session_name(event.value, self.sessions_dir)
        except ValueError as exc:
            self.query_one("#save-error", Static).update(Text(str(exc), style="bold red"))
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)


def parse_number(text: str, whole: bool, minimum: float) -> float:
    """A typed users count or rate ("1,000" and "1000" alike); raises ValueError with why."""
    cleaned = text.strip().replace(",", "").replace("_", "").removesuffix("/s").strip()
    what = "a whole number" if whole else "a number"
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"expected {what}, got {text.strip()!r}") from None
    if whole and value != int(value):
        raise ValueError(f"expected {what}, got {text.strip()!r}")
    if not value >= minimum or value == float("inf"):
        raise ValueError(f"expected {what} of at least {minimum:g}")
    return value


class NumberScreen(ModalScreen[float | None]):
    """Ask for one exact number (users, or a rate); enter applies, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    HINT = "enter applies (live during a run, else to the next one)   escape: cancel"

    def __init__(
        self, title: str, unit: str, current: float, *, whole: bool, minimum: float
    ) -> None:
        super().__init__(classes="dialog")
        self.title_text, self.unit, self.current = title, unit, current
        self.whole, self.minimum = whole, minimum

    def shown(self, value: float) -> str:
        """The current value as the field first holds it."""
        return f"{value:g}"

    def parse(self, text: str) -> float:
        """The typed value; raises ValueError with why."""
        return parse_number(text, self.whole, self.minimum)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(Text(f"{self.title_text} ({self.unit})", style="bold"))
            yield Input(self.shown(self.current), id="number", select_on_focus=True)
            yield Static(Text(self.HINT, style="dim"))
            yield Static("", id="number-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = self.parse(event.value)
        except ValueError as exc:
            self.query_one("#number-error", Static).update(safe(exc, "bold red"))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


MIN_DURATION_S = 1.0


def parse_run_duration(text: str) -> float:
    """A typed run duration in seconds: "90s", "2m", "1h", "1:30" (as the header shows it)
    or a bare number of seconds; raises ValueError with why."""
    typed = text.strip()
    seconds: float | None
    if ":" in typed:
        minutes, _, rest = typed.partition(":")
        try:
            seconds = int(minutes) * 60 + float(rest) if rest and int(minutes) >= 0 else None
        except ValueError:
            seconds = None
    else:
        seconds = parse_duration(typed)
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f'expected a duration such as "90s", "2m", "1h" or "1:30", got {typed!r}')
    if seconds < MIN_DURATION_S:
        raise ValueError(f"expected at least {MIN_DURATION_S:g} s")
    return seconds


class DurationScreen(NumberScreen):
    """Ask how long the next run lasts; enter applies, escape cancels."""

    HINT = "enter applies to the next run (s starts it)   escape: cancel"

    def __init__(self, current: float) -> None:
        super().__init__("Run duration", "30s, 2m, 1h or 1:30", current, whole=False, minimum=1)

    def shown(self, value: float) -> str:
        return format_duration(value)

    def parse(self, text: str) -> float:
        return parse_run_duration(text)


def split_series(text: str) -> tuple[str, ...]:
    """Series typed on one line, separated by commas or semicolons; a comma inside a label
    set (``p95(x{a="1",b="2"})``) or a quoted value does not split."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "{(":
            depth += 1
        elif char in "})":
            depth = max(depth - 1, 0)
        elif char in ",;" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return tuple(part.strip() for part in parts if part.strip())


MetricsAnswer = tuple[str | None, tuple[str, ...]]


class MetricsScreen(ModalScreen[MetricsAnswer | None]):
    """The target's metrics URL and the series to follow. ``check`` is the same validation a
    profile gets (it raises InputError); its one line shows under the fields. Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        url: str,
        series: tuple[str, ...],
        check: Callable[[str | None, tuple[str, ...]], None],
    ) -> None:
        super().__init__(classes="dialog")
        self.url, self.series, self.check = url, series, check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(Text("Target metrics (Prometheus text), from the next start", style="bold"))
            yield Label("URL (/path: on the target)")
            yield Input(self.url, placeholder="/metrics", id="metrics-url")
            yield Label("series, comma separated")
            yield Input(
                ", ".join(self.series),
                placeholder="http_requests_total, p95(http_request_duration_seconds)",
                id="metrics-series",
            )
            yield Static(
                Text(
                    "enter: next field / apply   escape: cancel   empty URL: no scraping",
                    style="dim",
                )
            )
            yield Static("", id="metrics-error")

    def on_mount(self) -> None:
        self.query_one("#metrics-url", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "metrics-url":
            self.query_one("#metrics-series", Input).focus()
            return
        url = self.query_one("#metrics-url", Input).value.strip() or None
        series = split_series(self.query_one("#metrics-series", Input).value)
        try:
            self.check(url, series)
        except InputError as exc:
            self.query_one("#metrics-error", Static).update(safe(exc.line(), "bold red"))
            return
        self.dismiss((url, series))

    def action_cancel(self) -> None:
        self.dismiss(None)
