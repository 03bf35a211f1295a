"""Small pure formatters shared by the widgets: numbers, durations and safe text.

Every string that comes from outside (profile names, URLs, error classes, stop reasons)
goes through ``safe`` into a ``rich.text.Text``: Text never parses markup, and
``printable`` turns escape characters into visible ``\\x1b`` sequences.
"""

from __future__ import annotations

from rich.text import Text

from stressdeck.core.text import printable

SPARK = "▁▂▃▄▅▆▇█"


def safe(value: object, style: str = "", limit: int | None = None) -> Text:
    """Outside text as a literal Text: no markup, no terminal escapes."""
    return Text(printable(value, limit), style=style)


def latency(value: float, measured: bool, sent: int) -> str:
    """A latency figure: n/a once requests were sent and none was answered (0 ms would be
    a lie), "-" before anything was sent."""
    if measured:
        return ms(value)
    return "n/a" if sent else "-"


def ms(value: float) -> str:
    """A latency in milliseconds, at a precision that fits a table cell."""
    if value <= 0:
        return "-"
    if value < 1:
        return f"{value:.2f}ms"
    if value < 100:
        return f"{value:.1f}ms"
    if value < 10_000:
        return f"{value:.0f}ms"
    return f"{value / 1000:.1f}s"


def count(value: float) -> str:
    """A count shortened with k/M past five digits so columns stay narrow."""
    if value < 100_000:
        return f"{value:,.0f}"
    if value < 10_000_000:
        return f"{value / 1000:.0f}k"
    return f"{value / 1_000_000:.1f}M"


def rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def percent(fraction: float) -> str:
    """A fraction (0.0123) as a percentage ("1.2%")."""
    value = fraction * 100
    if value == 0:
        return "0%"
    return f"{value:.2f}%" if value < 1 else f"{value:.1f}%"


def clock(seconds: float) -> str:
    """Elapsed time as m:ss, or h:mm:ss past the hour."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size(value: float) -> str:
    """Bytes in binary units."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"  # unreachable; keeps type checkers happy


def sparkline(values: list[float], width: int, top: float | None = None) -> str:
    """The last ``width`` values as block characters scaled to ``top`` (default: their max)."""
    shown = values[-width:] if width > 0 else []
    if not shown:
        return ""
    peak = top if top is not None else max(shown)
    if peak <= 0:
        return SPARK[0] * len(shown)
    steps = len(SPARK) - 1
    return "".join(SPARK[min(max(int(round(v / peak * steps)), 0), steps)] for v in shown)


def bar(fraction: float, width: int) -> str:
    """A horizontal bar ``width`` cells wide, filled to ``fraction`` (0..1)."""
    filled = min(max(int(round(fraction * width)), 0), width)
    return "█" * filled + "░" * (width - filled)
