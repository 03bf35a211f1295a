"""A comparison as one self-contained HTML page: the verdict, the warnings, the table, and the
two sides' timelines second by second on the same charts (``compare --html FILE``).

First the total (p95, p50, requests and errors per second), then each endpoint's own
timeline (p95, requests and errors per second; ``results.endpoint_timeline`` of the
sessions), one chart per figure with both sides on its axis. Every run of a side is one line
(the base solid, the new dashed). Endpoints are bounded (``ENDPOINT_CHARTS``): the ones the
comparison found most changed are drawn, regressions first, and the page names the ones it
left out. Every name from a session is escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence

from stressdeck.core.text import printable
from stressdeck.engine.snapshot import EndpointPoint, EndpointSeries
from stressdeck.sessions.compare import (
    IMPROVEMENT,
    INCONCLUSIVE,
    REGRESSION,
    TOTAL,
    Comparison,
    Row,
)
from stressdeck.sessions.compare_report import HEADERS, VERDICT_WORDS, table_rows, verdict_lines
from stressdeck.sessions.session import Session
from stressdeck.sessions.svg import Series, line_chart, safe_text

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2937; background: #fff; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 24px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #e5e7eb; }
td:nth-child(n+3) { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: 600; } .warn { color: #92400e; } .note { color: #4b5563; }
svg { max-width: 100%; height: auto; } .grid { stroke: #e5e7eb; } .axis { fill: #6b7280; }
"""
_BASE, _NEW = "#2563eb", "#ea580c"
# Endpoints drawn second by second: three charts each; a page for a thousand endpoints would
# be unreadable and heavy. The names of the others are listed, up to LEFT_OUT_NAMES of them.
ENDPOINT_CHARTS = 6
LEFT_OUT_NAMES = 30
NAME_WIDTH = 80  # an endpoint's name in a heading or a chart title, cut beyond
# The order endpoints are drawn in: what a tester looks for first.
_RANK = {REGRESSION: 0, INCONCLUSIVE: 1, IMPROVEMENT: 2}
_SCALE_FIGURES = ("p95", "p50", "p99", "rps")


def _series(label: str, color: str, sessions: Sequence[Session], figure: str) -> list[Series]:
    return [
        Series(
            f"{label} {i + 1}" if len(sessions) > 1 else label,
            color,
            [(point.t, float(getattr(point, figure))) for point in session.results.timeline],
            dashed=label == "new",
        )
        for i, session in enumerate(sessions)
    ]


def _endpoint_series(
    label: str, color: str, sessions: Sequence[Session], name: str, figure: str
) -> list[Series]:
    """One line per run of the side: the endpoint's figure in each second it did something
    (a point covers the ``span`` seconds ending at ``t``: drawn in their middle)."""
    out = []
    for i, session in enumerate(sessions):
        series = _find(session, name)
        out.append(
            Series(
                f"{label} {i + 1}" if len(sessions) > 1 else label,
                color,
                []
                if series is None
                else [(p.t - p.span / 2, _figure(p, figure)) for p in series.points],
                dashed=label == "new",
            )
        )
    return out


def _find(session: Session, name: str) -> EndpointSeries | None:
    return next((s for s in session.results.endpoint_timeline if s.name == name), None)


def _figure(point: EndpointPoint, figure: str) -> float:
    if figure == "rps":
        return point.rps
    if figure == "errors":
        return point.errors / point.span if point.span else 0.0
    return float(getattr(point, figure))


def _how_changed(row: Row) -> tuple[int, float]:
    """Sort key, most changed first: the worst verdict of the row, then the largest change of
    a timed figure (on the log scale: a halving weighs as a doubling) or of the error rate
    (in points, times ten: +2 points weighs about as +20 %)."""
    rank = min((_RANK.get(c.verdict, 3) for c in row.changes), default=4)
    size = 0.0
    for change in row.changes:
        if change.metric in _SCALE_FIGURES and change.base > 0 and change.new > 0:
            size = max(size, abs(math.log(change.new / change.base)))
        elif change.metric == "error_rate" and math.isfinite(change.delta):
            size = max(size, 10 * abs(change.delta))
    if row.base is None or row.new is None:
        rank = min(rank, 1)  # an endpoint only one side has: as telling as an inconclusive
    return rank, -size


def _endpoint_section(
    comparison: Comparison, base: Sequence[Session], new: Sequence[Session]
) -> list[str]:
    """Each endpoint's own timeline, both sides on one axis per figure, for the
    ``ENDPOINT_CHARTS`` most changed endpoints; the others named."""
    timed = {s.name for session in (*base, *new) for s in session.results.endpoint_timeline}
    rows = [row for row in comparison.rows if row.name != TOTAL and row.name in timed]
    parts = ["<h2>Second by second, by endpoint</h2>"]
    if not rows:
        parts.append(
            '<p class="note">These sessions keep no per-endpoint timeline (saved by an older '
            "version): only the total is drawn.</p>"
        )
        return parts
    ordered = sorted(rows, key=_how_changed)  # stable: the table's order among equals
    shown, left_out = ordered[:ENDPOINT_CHARTS], ordered[ENDPOINT_CHARTS:]
    untimed = [row.name for row in comparison.rows if row.name != TOTAL and row.name not in timed]
    x_max = max(s.results.elapsed for s in (*base, *new))
    note = (
        f"The {len(shown)} most changed of {len(rows)} endpoints (regressions first, then "
        "inconclusive, better, then the largest change); seconds in which an endpoint did "
        "nothing are left out of its line."
        if left_out
        else "Seconds in which an endpoint did nothing are left out of its line."
    )
    parts.append(f'<p class="note">{safe_text(note)}</p>')
    for row in shown:
        verdicts = sorted(
            {c.verdict for c in row.changes if c.verdict}, key=lambda v: _RANK.get(v, 3)
        )
        words = ", ".join(VERDICT_WORDS[v] for v in verdicts) or (
            "no change" if row.changes else "in one side only"
        )
        name = printable(row.name, NAME_WIDTH)
        parts.append(f'<h3 class="endpoint">{safe_text(name)}: {safe_text(words)}</h3>')
        for title, figure, unit in (
            ("p95 latency", "p95", "ms"),
            ("requests per second", "rps", "/s"),
            ("errors per second", "errors", "/s"),
        ):
            series = _endpoint_series("base", _BASE, base, row.name, figure)
            series += _endpoint_series("new", _NEW, new, row.name, figure)
            parts.append(line_chart(f"{name}: {title}", series, y_unit=unit, x_max=x_max))
    if left_out:
        parts.append(
            f'<p class="note left-out">Not drawn ({len(left_out)}, less changed): '
            f"{safe_text(_names([row.name for row in left_out]))}.</p>"
        )
    if untimed:
        parts.append(
            f'<p class="note">No per-endpoint timeline in these sessions for {len(untimed)}: '
            f"{safe_text(_names(untimed))}.</p>"
        )
    return parts


def _names(names: Sequence[str]) -> str:
    """ "a, b, c" up to LEFT_OUT_NAMES names, then how many more."""
    listed = ", ".join(printable(name, NAME_WIDTH) for name in names[:LEFT_OUT_NAMES])
    more = len(names) - LEFT_OUT_NAMES
    return listed + (f" and {more} more" if more > 0 else "")


def compare_html(
    comparison: Comparison,
    described: Sequence[str],
    warnings: Sequence[str],
    base: Sequence[Session],
    new: Sequence[Session],
) -> str:
    verdict, *reasons = verdict_lines(comparison)
    rows, notes = table_rows(comparison)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>stressdeck comparison</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>stressdeck comparison</h1>",
        f'<p class="verdict">{safe_text(verdict)}</p>',
    ]
    parts += [f'<p class="note">{safe_text(line.strip())}</p>' for line in reasons]
    parts += [f'<p class="warn">⚠ {safe_text(w)}</p>' for w in warnings]
    parts.append("<table><tr>" + "".join(f"<th>{safe_text(h)}</th>" for h in HEADERS) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{safe_text(cell)}</td>" for cell in row) + "</tr>")
    parts.append("</table>")
    parts += [f'<p class="note">{safe_text(n)}</p>' for n in notes]
    parts.append("<h2>Second by second (total)</h2>")
    for title, figure, unit in (
        ("p95 latency", "p95", "ms"),
        ("p50 latency", "p50", "ms"),
        ("requests per second", "rps", "/s"),
        ("errors per second", "errors", ""),
    ):
        series = _series("base", _BASE, base, figure) + _series("new", _NEW, new, figure)
        parts.append(line_chart(title, series, y_unit=unit))
    parts += _endpoint_section(comparison, base, new)
    parts += [f'<p class="note">{safe_text(d)}</p>' for d in described]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
