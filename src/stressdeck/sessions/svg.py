"""Small inline SVG charts for the HTML report: no scripts, no fonts, nothing fetched.

Inline ``<svg>`` in HTML5 needs no ``xmlns``; leaving it out keeps the report free of URLs.
Every piece of outside text goes through ``safe_text``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from stressdeck.core.text import printable

WIDTH, HEIGHT = 760, 260
_TEXT_WIDTH = 6.5  # pixels a character of an 11 px label takes, about
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 30, 36


def safe_text(value: object) -> str:
    """HTML-escaped, control characters shown as escapes, and "://" written as entities.

    The entities render as "://" but keep any URL a target or endpoint name holds from
    appearing literally, so "no http(s):// in the report" stays checkable by a plain grep.
    """
    return html.escape(printable(value), quote=True).replace("://", ":&#47;&#47;")


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A vertical line at ``x``, e.g. a live change from the control log."""

    x: float
    label: str


def nice_step(span: float, count: int = 5) -> float:
    """A 1, 2 or 5 times a power of ten step giving about ``count`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def ticks(high: float, count: int = 5) -> list[float]:
    """Ticks from 0 to at least ``high``."""
    step = nice_step(high, count)
    top = max(step, math.ceil(high / step) * step)
    return [i * step for i in range(int(round(top / step)) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e15:
        # Past what a float prints as digits (a tick of a huge, hostile figure may be an int
        # no float can hold): in exponent form, exactly.
        return format(Decimal(value), ".3e")
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.3g}"
    return f"{value:.2g}"


def _frame(
    title: str,
    y_ticks: list[float],
    y_unit: str,
    x_labels: list[tuple[float, str]],
    plot: tuple[float, float, float, float],
) -> list[str]:
    left, top, right, bottom = plot
    y_top = y_ticks[-1] or 1.0
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{safe_text(title)}">',
        f'<text x="{left}" y="16" class="title">{safe_text(title)}</text>',
    ]
    for value in y_ticks:
        y = bottom - (bottom - top) * value / y_top
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_fmt(value)}</text>'
        )
    out.append(f'<text x="12" y="{top - 8}" class="axis">{safe_text(y_unit)}</text>')
    for x, label in x_labels:
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" class="axis" text-anchor="middle">{safe_text(label)}</text>'
        )
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axisline"/>')
    return out


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    y_unit: str = "",
    x_max: float | None = None,
    markers: Sequence[Marker] = (),
) -> str:
    """Lines over time (x in seconds), with optional vertical markers and a legend."""
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    x_top = max([x_max or 0.0, *xs, 1.0])
    y_ticks = ticks(max([*ys, 0.0]) or 1.0)
    y_top = y_ticks[-1]

    def px(x: float) -> float:
        return left + (right - left) * x / x_top

    def py(y: float) -> float:
        return bottom - (bottom - top) * y / y_top

    x_labels = [(px(x), f"{_fmt(x)}s") for x in ticks(x_top, 8) if x <= x_top]
    out = _frame(title, y_ticks, y_unit, x_labels, (left, top, right, bottom))
    for marker in markers:
        x = px(min(max(marker.x, 0.0), x_top))
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" class="marker">'
            f"<title>{safe_text(marker.label)}</title></line>"
        )
        out.append(
            f'<text x="{x + 3:.1f}" y="{top + 10}" class="marker-label">{safe_text(marker.label)}</text>'
        )
    out += _polylines(series, px, py)
    out += _legend(series, right)
    out.append("</svg>")
    return "\n".join(out)


def _legend(series: Sequence[Series], right: float, gap: float = 16) -> list[str]:
    out = []
    legend_x = right
    for s in reversed(series):
        legend_x -= gap + 7 * len(s.label)
        out.append(
            f'<rect x="{legend_x}" y="8" width="10" height="10" fill="{s.color}"/>'
            f'<text x="{legend_x + 14}" y="17" class="axis">{safe_text(s.label)}</text>'
        )
    return out


@dataclass(frozen=True)
class Dot:
    """One measured point drawn on its own: a circle when ``held``, a cross when not, with a
    ring around it when ``ringed`` (a load measured again), pale when ``faded`` (a verdict
    that did not stand); ``label`` is its tooltip."""

    x: float
    y: float
    color: str
    held: bool
    label: str
    ringed: bool = False
    faded: bool = False


@dataclass(frozen=True)
class Rule:
    """A straight line across the plot at ``at`` (x for a vertical rule, y for a horizontal
    one), named by ``label``; ``css`` is its class (its colour and dash)."""

    at: float
    label: str
    css: str = "marker"


def load_chart(
    title: str,
    series: Sequence[Series],
    *,
    dots: Sequence[Dot] = (),
    y_unit: str = "",
    verticals: Sequence[Rule] = (),
    horizontals: Sequence[Rule] = (),
) -> str:
    """Figures against a load (x: the rate or users asked, from 0), each measured point a
    dot, with named vertical rules (the limit) and horizontal ones (an SLO's bound)."""
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    xs = [x for s in series for x, _ in s.points] + [d.x for d in dots]
    xs += [r.at for r in verticals]
    ys = [y for s in series for _, y in s.points] + [d.y for d in dots]
    ys += [r.at for r in horizontals]
    x_ticks = ticks(max([*xs, 0.0]) or 1.0, 8)
    x_top = x_ticks[-1]
    y_ticks = ticks(max([*ys, 0.0]) or 1.0)
    y_top = y_ticks[-1]

    def px(x: float) -> float:
        return left + (right - left) * min(max(x, 0.0), x_top) / x_top

    def py(y: float) -> float:
        return bottom - (bottom - top) * min(max(y, 0.0), y_top) / y_top

    x_labels = [(px(x), _fmt(x)) for x in x_ticks]
    out = _frame(title, y_ticks, y_unit, x_labels, (left, top, right, bottom))
    for rule in horizontals:
        y = py(rule.at)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="{rule.css}">'
            f"<title>{safe_text(rule.label)}</title></line>"
        )
        out.append(
            f'<text x="{left + 4}" y="{y - 3:.1f}" class="{rule.css}-label">'
            f"{safe_text(rule.label)}</text>"
        )
    for i, rule in enumerate(verticals):
        x = px(rule.at)
        # Named beside its line, a row lower than the rule before: the first to the left of
        # its line, the others to the right (the limit, then the load that broke, stay apart),
        # each on the other side when its own has no room for the label.
        wide = _TEXT_WIDTH * len(rule.label) + 6
        room_left, room_right = x - left >= wide, right - x >= wide
        leftwards = (i == 0 and room_left) or not room_right
        anchor, shift = ("end", -3) if leftwards else ("start", 3)
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" class="{rule.css}">'
            f"<title>{safe_text(rule.label)}</title></line>"
        )
        out.append(
            f'<text x="{x + shift:.1f}" y="{top + 10 + 12 * i}" text-anchor="{anchor}" '
            f'class="{rule.css}-label">{safe_text(rule.label)}</text>'
        )
    out += _polylines(series, px, py)
    for dot in dots:
        out.append(_dot(px(dot.x), py(dot.y), dot))
    out += _legend(series, right, gap=22)
    out.append("</svg>")
    return "\n".join(out)


def _dot(x: float, y: float, dot: Dot) -> str:
    tip = f"<title>{safe_text(dot.label)}</title>"
    # The ring has no title of its own: the mark inside it says what the point is (a page's
    # text held each re-measured point's words twice).
    ring = (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="{dot.color}" '
        'class="ring"></circle>'
        if dot.ringed
        else ""
    )
    pale = ' opacity="0.4"' if dot.faded else ""
    if dot.held:
        mark = (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{dot.color}" class="held"{pale}>'
            f"{tip}</circle>"
        )
    else:
        d = 4.0
        mark = (
            f'<path d="M{x - d:.1f},{y - d:.1f}L{x + d:.1f},{y + d:.1f}M{x - d:.1f},{y + d:.1f}'
            f'L{x + d:.1f},{y - d:.1f}" stroke="{dot.color}" stroke-width="2.5" class="broke"'
            f"{pale}>{tip}</path>"
        )
    return ring + mark


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    y_unit: str = "",
    color: str = "#3b82f6",
    label_every: int = 1,
) -> str:
    """Vertical bars with their labels under them (every ``label_every``-th one)."""
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    y_ticks = ticks(max([v for _, v in bars] + [0.0]) or 1.0)
    y_top = y_ticks[-1]
    width = (right - left) / max(len(bars), 1)
    x_labels = [
        (left + width * (i + 0.5), label)
        for i, (label, _) in enumerate(bars)
        if i % label_every == 0
    ]
    out = _frame(title, y_ticks, y_unit, x_labels, (left, top, right, bottom))
    for i, (label, value) in enumerate(bars):
        h = (bottom - top) * value / y_top
        out.append(
            f'<rect x="{left + width * i + 1:.1f}" y="{bottom - h:.1f}" width="{max(width - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{safe_text(label)}: {_fmt(value)}</title></rect>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _polylines(
    series: Sequence[Series], px: Callable[[float], float], py: Callable[[float], float]
) -> list[str]:
    """Each series with points as a line (dashed when it says so), its label as its title."""
    lines = []
    for s in series:
        if not s.points:
            continue
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        lines.append(
            f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"{dash}>'
            f"<title>{safe_text(s.label)}</title></polyline>"
        )
    return lines
