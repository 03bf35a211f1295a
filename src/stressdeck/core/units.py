"""Parsing of human-friendly units: durations ("500ms", "30s", "2m") and percentages."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$")
_SECONDS_PER_UNIT = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    None: 1.0,
}


def is_finite(value: float) -> bool:
    """``math.isfinite``, but False (not OverflowError) for an integer past float range."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_duration(value: object) -> float | None:
    """Seconds from "500ms" / "30s" / "2m" / a bare number of seconds; None if not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value) if is_finite(value) else math.nan
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            return None
        seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
    else:
        return None
    return seconds if math.isfinite(seconds) else None


def format_duration(seconds: float) -> str:
    """Inverse of parse_duration for display and for writing files back."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds >= 1 or seconds == 0:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


def format_quantity(value: float, unit: str) -> str:
    """A measured value in words a person reads at once: seconds as ms or s, bytes in kB,
    MB, GB (decimal, as disks and dashboards count), rates per second; else 4 figures."""
    if unit == "s":
        if value == 0:
            return "0 s"
        return f"{value * 1000:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"
    if unit == "B":
        for name, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if abs(value) >= size:
                return f"{value / size:.3g} {name}"
        return f"{value:.0f} B"
    if unit == "/s":
        return f"{value:.4g}/s"
    return f"{value:.4g}{(' ' + unit) if unit else ''}"


def format_rate(value: float) -> str:
    """A request rate as a person reads it: "7.51", "138.8", "1000" (a ramp's rate is
    fractional; five decimals of it say nothing)."""
    text = f"{value:.{2 if abs(value) < 10 else 1}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
