"""A comparison as one self-contained HTML page: the verdict, the warnings, the table, and the
two sides' timelines second by second on the same charts (``compare --html FILE``).

Sessions keep the per-second timeline of the total only, so the charts show the total; every
run of each side is one line (the base solid, the new dashed)."""

from __future__ import annotations

from collections.abc import Sequence

from stressdeck.sessions.compare import Comparison
from stressdeck.sessions.compare_report import HEADERS, table_rows, verdict_lines
from stressdeck.sessions.session import Session
from stressdeck.sessions.svg import Series, line_chart, safe_text

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2937; background: #fff; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 24px 0 8px; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #e5e7eb; }
td:nth-child(n+3) { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: 600; } .warn { color: #92400e; } .note { color: #4b5563; }
svg { max-width: 100%; height: auto; } .grid { stroke: #e5e7eb; } .axis { fill: #6b7280; }
"""
_BASE, _NEW = "#2563eb", "#ea580c"


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
    parts += [f'<p class="note">{safe_text(d)}</p>' for d in described]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
