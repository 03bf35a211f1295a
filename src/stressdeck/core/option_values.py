"""Option values read as the command line reads them, for the CLI and the Python API alike.

Each raises ``argparse.ArgumentTypeError`` saying what was expected: argparse prints it as a
usage error, the API turns it into the same one-line ``InputError``.
"""

from __future__ import annotations

import argparse

from stressdeck.core.fields import MAX_SECONDS
from stressdeck.core.units import parse_duration


def duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(
            f'expected a duration like "500ms", "30s" or "2m", got {text!r}'
        )
    if seconds > MAX_SECONDS:  # as a session reads it back: a year at most
        raise argparse.ArgumentTypeError(
            f"expected a duration up to {MAX_SECONDS / 86400:.0f} days, got {text!r}"
        )
    return seconds


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def processes(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f'expected "auto" or a positive whole number, got {text!r}'
        ) from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value
