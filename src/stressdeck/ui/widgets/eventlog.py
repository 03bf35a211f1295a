"""The recent-events log: controls, first sight of status codes and error classes,
threshold flips, saturation and the stop reason. Every line is a literal Text."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

from stressdeck.ui.events import ERROR, WARN, LogEvent
from stressdeck.ui.format import safe

MAX_LINES = 500  # a long run keeps its most recent events, never an unbounded log
LEVEL_STYLES = {ERROR: "bold red", WARN: "yellow"}


def event_line(event: LogEvent) -> Text:
    line = Text(f"{event.offset:7.1f}s ", style="dim")
    line.append_text(safe(event.text, LEVEL_STYLES.get(event.level, "")))
    return line


class EventLog(RichLog):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_LINES, wrap=True, markup=False, highlight=False, **kwargs)  # type: ignore[arg-type]
        self.lines_text: list[str] = []  # plain copies of what was written (bounded like the log)

    def add(self, events: Iterable[LogEvent]) -> None:
        # Only what the log keeps is drawn: a session's 100,000 changes, written one by one
        # only to be dropped, took a minute to show the Log pane.
        for event in list(events)[-MAX_LINES:]:
            line = event_line(event)
            self.write(line)
            self.lines_text.append(line.plain)
        del self.lines_text[:-MAX_LINES]
