"""The profile picker: profiles/ listed with name, endpoints and load, a preview, an
ad-hoc entry (method + URL) for a quick test without writing a profile, and a field to
paste a curl command, imported into a profile under profiles/ and opened.

It posts ``PickerScreen.Chosen`` (what to run, and an optional target PID to watch); the
app decides what to open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from stressdeck.core.errors import InputError
from stressdeck.core.files import WriteError
from stressdeck.core.redact import redact_url
from stressdeck.core.text import printable
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import DEFAULT_MAX_DURATION
from stressdeck.observe.monitor import check_pid
from stressdeck.profiles.profile import METHODS, SUFFIXES
from stressdeck.ui.format import safe
from stressdeck.ui.planning import PlanSource, adhoc_profile, describe_load

_CONTINUATION = re.compile(r"\\\r?\n")  # a backslash ending a line: the command goes on


class CommandInput(Input):
    """An Input that keeps a pasted multi-line shell command whole: a plain Input keeps only
    the first line, and "Copy as cURL" puts every option on a line of its own."""

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # instead of Input's own paste, which cuts at the first newline
        event.stop()
        line = " ".join(_CONTINUATION.sub(" ", event.text).splitlines()).strip()
        if not line:
            return
        if self.selection.is_empty:
            self.insert_text_at_cursor(line)
        else:
            self.replace(line, *self.selection)


def import_curl(command: str, directory: Path) -> tuple[Path, list[str]]:
    """Write a profile for a curl command under ``directory``, as `stressdeck import curl` does;
    raises InputError (or WriteError) with one line."""
    from stressdeck.profiles.importers import import_command  # only for a pasted curl line

    return import_command("curl", command, directory=directory, free_name=True)


@dataclass(frozen=True)
class ProfileEntry:
    path: Path
    source: PlanSource | None = None
    error: str = ""


@dataclass(frozen=True)
class Picked:
    source: PlanSource
    target_pid: int | None = None


def scan_profiles(
    directory: Path,
    overrides: Overrides,
    max_duration: float = DEFAULT_MAX_DURATION,
    *,
    i_know: bool = False,
) -> list[ProfileEntry]:
    """Every profile file in ``directory``, loaded; a broken one carries its error line."""
    if not directory.is_dir():
        return []
    entries = []
    for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES):
        try:
            entries.append(
                ProfileEntry(
                    path, PlanSource.from_file(path, overrides, max_duration, i_know=i_know)
                )
            )
        except InputError as exc:
            entries.append(ProfileEntry(path, error=exc.line()))
    return entries


def entry_label(entry: ProfileEntry) -> Text:
    if entry.source is None:
        return Text.assemble(
            safe(entry.path.name, "bold"), "  ", safe(entry.error, "red", limit=60)
        )
    plan = entry.source.build()
    count = len(plan.requests)
    # Two lines, so a narrow list never wraps mid-phrase: what it is, then how hard it pushes.
    return Text.assemble(
        safe(plan.name, "bold", limit=30),
        "  ",
        (f"{count} endpoint{'s' if count != 1 else ''}", "cyan"),
        "\n  ",
        (describe_load(plan), "dim"),
    )


def preview(entry: ProfileEntry) -> Text:
    """A profile's details: file, target, load, thresholds and endpoints."""
    text = Text()
    text.append_text(safe(entry.path, "dim"))
    text.append("\n")
    if entry.source is None:
        text.append_text(safe(entry.error, "bold red"))
        return text
    plan = entry.source.build()
    profile = entry.source.profile
    text.append_text(safe(plan.name, "bold"))
    if profile.description:
        text.append("\n")
        text.append_text(safe(profile.description, "italic"))
    text.append("\n\ntarget  ")
    text.append_text(safe(plan.target, "cyan"))
    text.append(f"\nload    {describe_load(plan)}")
    if plan.thresholds:
        text.append("\nchecks  ")
        text.append_text(safe(", ".join(t.expr for t in plan.thresholds)))
    text.append("\n\nendpoints\n", "bold")
    for spec, weight in zip(plan.requests, plan.weights, strict=False):
        text.append(f"  {spec.method:<6} ", "bold")
        text.append_text(safe(spec.name, limit=30))
        text.append("  ")
        text.append_text(safe(redact_url(spec.url), "dim", limit=60))
        if weight != 1:
            text.append(f"  ×{weight:g}", "dim")
        text.append("\n")
    return text


class PickerScreen(Screen[None]):
    class Chosen(Message):
        def __init__(self, picked: Picked) -> None:
            super().__init__()
            self.picked = picked

    BINDINGS = [Binding("escape", "app.quit", "Quit", show=False)]

    def __init__(
        self,
        profiles_dir: Path,
        overrides: Overrides,
        max_duration: float = DEFAULT_MAX_DURATION,
        target_pid: int | None = None,
        *,
        i_know: bool = False,
    ) -> None:
        super().__init__()
        self.profiles_dir, self.overrides, self.max_duration = (
            profiles_dir,
            overrides,
            max_duration,
        )
        self.i_know = i_know
        self.entries = scan_profiles(profiles_dir, overrides, max_duration, i_know=i_know)
        self.target_pid = target_pid

    def compose(self) -> ComposeResult:
        yield Static(
            Text.assemble(
                ("stressdeck", "bold"),
                "  pick a profile (enter), type a URL or paste a curl command",
            ),
            id="picker-title",
        )
        with Horizontal(id="picker-body"):
            with Vertical(id="picker-left"):
                options = [Option(entry_label(e), id=str(i)) for i, e in enumerate(self.entries)]
                if not options:
                    options = [
                        Option(
                            safe(f"no profiles in {self.profiles_dir}/", "dim"),
                            id="none",
                            disabled=True,
                        )
                    ]
                yield OptionList(*options, id="profile-list")
                yield Label(Text("or a URL (enter opens it):", style="bold"), id="adhoc-label")
                with Horizontal(id="adhoc"):
                    yield Select(
                        [(m, m) for m in METHODS],
                        value="GET",
                        allow_blank=False,
                        compact=True,
                        id="adhoc-method",
                    )
                    # Not selected on focus: typing that starts in the list goes on here.
                    yield Input(
                        placeholder="http://127.0.0.1:8080/health",
                        compact=True,
                        id="adhoc-url",
                        select_on_focus=False,
                    )
                with Horizontal(id="curl-row"):
                    yield Label("curl ")
                    yield CommandInput(
                        placeholder=f"paste one; enter saves it in {self.profiles_dir}/",
                        compact=True,
                        id="curl-command",
                        select_on_focus=False,
                    )
                with Horizontal(id="pid-row"):
                    yield Label("watch PID ")
                    yield Input(
                        "" if self.target_pid is None else str(self.target_pid),
                        compact=True,
                        placeholder="optional: the backend's process id",
                        type="integer",
                        id="target-pid",
                    )
                yield Static("", id="picker-error")
            with VerticalScroll(id="preview"):
                yield Static(id="preview-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        profiles = self.query_one(OptionList)
        profiles.focus()
        if self.entries:
            profiles.highlighted = 0

    def on_key(self, event: events.Key) -> None:
        """Typing anywhere but in a field starts a URL: the list's keys are arrows and enter,
        and a letter (a "q" in a URL included) must not be lost or quit the app."""
        if isinstance(self.focused, Input) or not event.is_printable or not event.character:
            return
        event.stop()
        event.prevent_default()
        url = self.query_one("#adhoc-url", Input)
        url.focus()
        url.insert_text_at_cursor(event.character)

    def on_paste(self, event: events.Paste) -> None:
        """A paste outside the fields (a terminal's bracketed paste): a curl command goes to
        the curl field, anything else to the URL field, whatever had the focus."""
        if isinstance(self.focused, Input):
            return
        event.stop()
        event.prevent_default()
        text = event.text.strip()
        if text.startswith("curl ") or text.startswith("curl\t"):
            field: Input = self.query_one("#curl-command", CommandInput)
            field.focus()
            field.post_message(events.Paste(event.text))
        else:
            field = self.query_one("#adhoc-url", Input)
            field.focus()
            field.insert_text_at_cursor(" ".join(text.split()))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id.isdigit():
            self.query_one("#preview-text", Static).update(
                preview(self.entries[int(event.option.id)])
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if not (event.option.id and event.option.id.isdigit()):
            return
        entry = self.entries[int(event.option.id)]
        if entry.source is None:
            self._error(entry.error)
            return
        self._finish(entry.source)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "target-pid":
            self.query_one("#adhoc-url", Input).focus()
            return
        if event.input.id == "curl-command":
            self._import_curl(event.value)
            return
        if event.input.id == "adhoc-url" and event.value.strip().startswith("curl "):
            self._import_curl(event.value)  # a curl command typed where a URL goes
            return
        method = str(self.query_one("#adhoc-method", Select).value)
        try:
            profile = adhoc_profile(method, self.query_one("#adhoc-url", Input).value)
            source = PlanSource(profile, self.overrides, self.max_duration, i_know=self.i_know)
            source = source.with_overrides()  # validates the overrides against this profile
        except InputError as exc:
            self._error(exc.line())
            return
        self._finish(source)

    def _import_curl(self, command: str) -> None:
        try:
            path, warnings = import_curl(command, self.profiles_dir)
            source = PlanSource.from_file(
                path, self.overrides, self.max_duration, i_know=self.i_know
            )
        except InputError as exc:
            self._error(exc.line())
            return
        except WriteError as exc:
            self._error(str(exc))
            return
        for warning in warnings:
            self.app.notify(printable(warning), title="curl import", severity="warning", timeout=10)
        self.app.notify(f"profile written: {printable(path)}", title="curl import", timeout=5)
        self._finish(source)

    def _finish(self, source: PlanSource) -> None:
        raw = self.query_one("#target-pid", Input).value.strip()
        pid = None
        if raw:
            try:
                pid = int(raw)
                check_pid(pid)
            except ValueError as exc:
                self._error(
                    f"watch PID: {exc}" if pid is not None else "watch PID: expected a number"
                )
                return
        self.post_message(self.Chosen(Picked(source, pid)))

    def _error(self, message: str) -> None:
        self.query_one("#picker-error", Static).update(safe(message, "bold red"))
