"""The one error type users see for bad input: one line naming file, field and expectation."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from a file or the command line.

    Rendered as ``FILE: FIELD: MESSAGE`` on one line; the CLI prints it and exits 2.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        text = ": ".join([*parts, self.message])
        # One line, always: a multi-line message from a parser would break the contract.
        return " ".join(text.split())


def describe(value: object) -> str:
    """Short, safe rendering of a bad value for an error message."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return '"' + shown.encode("unicode_escape").decode("ascii") + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)[:40]
