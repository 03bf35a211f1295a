"""The HTML report's find-limit section (a session saved by ``find-limit --save``): the answer
in words, achieved throughput and p50/p95/p99 against the load asked with the limit drawn, and
every step.

A level measured twice (its first try broke with no bottleneck named: ``recheck``) keeps both
points on the charts; the lines go through the verdict that stood, the second one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stressdeck.engine.bottleneck import NONE
from stressdeck.engine.limit import OURS, LimitResult, Step
from stressdeck.profiles.thresholds import LATENCY_METRICS
from stressdeck.sessions.summary import load_text
from stressdeck.sessions.svg import Dot, Rule, Series, load_chart, safe_text

ACHIEVED, ASKED, FIT = "#3b82f6", "#9ca3af", "#8b5cf6"
LATENCY_COLOURS = {"p50": "#10b981", "p95": "#3b82f6", "p99": "#ef4444"}
# An SLO bound this many times above the highest p99 measured would flatten every line
# against the axis: it is named under the chart instead of drawn.
BOUND_SCALE = 4.0
USL_POINTS = 60
# Added to the report's style sheet for a search only: a page without one stays as it was.
LIMIT_STYLE = """.answer { font-size: 16px; margin: 8px 0 4px; } .answer b { font-size: 20px; }
table.steps td:last-child { text-align: left; }
svg .limit { stroke: #047857; stroke-width: 2; }
svg .limit-label { font-size: 11px; font-weight: bold; fill: #047857; }
svg .breakrule { stroke: #b91c1c; stroke-dasharray: 4 3; }
svg .breakrule-label { font-size: 10px; fill: #b91c1c; }
svg .slo { stroke: #7c3aed; stroke-dasharray: 6 3; } svg .slo-label { font-size: 10px; fill: #6d28d9; }
"""


def limit_section(result: LimitResult) -> str:
    """The section, first in the report of a saved search."""
    unit = result.search.unit
    steps = result.steps
    parts = [
        "<h2>find-limit: the answer</h2>",
        _answer(result),
        "<p>The figures above the answer are the whole search's, every step's load together:"
        " each load's own are in the steps below.</p>",
    ]
    if steps:
        parts += [
            _throughput_chart(result),
            _latency_chart(result),
            "<p>● held every SLO &nbsp; ✕ broke one &nbsp; ◯ around a point: a load measured "
            "again (its first try, pale, broke with no bottleneck named); the lines go "
            "through the verdict that stood.</p>",
            _steps_table(steps, unit),
        ]
    else:
        parts.append("<p>No step was measured.</p>")
    return "\n".join(parts)


def _answer(result: LimitResult) -> str:
    unit = result.search.unit
    search = result.search
    if result.limit is None:
        headline = "no load held every SLO"
    else:
        headline = ("at least " if result.at_least else "") + load_text(result.limit, unit)
    lines = [f'<p class="answer">Limit: <b>{safe_text(headline)}</b></p>', "<ul>"]
    lines.append(f"<li>{safe_text(result.why)}</li>")
    if result.broken_by is not None and result.broken_at is not None:
        figure = _broken_figure(result)
        lines.append(
            f"<li>first broke at {safe_text(load_text(result.broken_at, unit))}: "
            f"{safe_text(figure or result.broken_by)}</li>"
        )
    kind = result.bottleneck.kind
    if kind != NONE:
        evidence = result.bottleneck.evidence
        lines.append(
            f"<li>at the break, the bottleneck was the <b>{safe_text(kind)}</b>"
            + (f": {safe_text(evidence)}" if evidence else "")
            + "</li>"
        )
    elif result.broken_at is not None:
        lines.append("<li>at the break, no bottleneck was named</li>")
    if result.usl is not None:
        with np.errstate(all="ignore"):  # a saved fit may be anything finite
            fit = result.usl.text()
        lines.append(f"<li>{safe_text(fit)}</li>")
    slos = ", ".join(slo.expr for slo in search.slos) or "none"
    rechecked = sum(1 for s in result.steps if s.recheck)
    again = f", {rechecked} measured again" if rechecked else ""
    lines.append(
        f"<li>{safe_text(search.model)} model; SLOs {safe_text(slos)}; steps of "
        f"{search.warmup:g} s warm-up + {search.step:g} s measured; precision "
        f"{search.precision:.0%}; {len(result.steps)} steps{again}; target "
        f"{safe_text(result.target)}</li>"
    )
    lines.append("</ul>")
    return "\n".join(lines)


def _broken_figure(result: LimitResult) -> str | None:
    """The first broken SLO with the figure it measured at the break: "p95 < 100ms (p95 333)"."""
    for step in reversed(result.steps):
        if step.asked == result.broken_at and step.broken:
            return step.broken[0]
    return None


def _standing(steps: Sequence[Step]) -> list[Step]:
    """One step a load, the verdict that stood (the last measured there), by load."""
    last: dict[float, Step] = {}
    for step in steps:
        last[step.asked] = step
    return [last[level] for level in sorted(last)]


def _tip(step: Step, unit: str, figure: str, superseded: bool) -> str:
    verdict = "held" if step.held else "broke: " + "; ".join(step.broken)
    if step.recheck:
        verdict += " (measured again: this verdict stands)"
    elif superseded:
        verdict += " (first try: measured again)"
    return f"{load_text(step.asked, unit)}: {figure}; {verdict}"


def _dots(steps: Sequence[Step], unit: str, figure: str, colour: str) -> list[Dot]:
    """A dot a step: the second try of a load measured again ringed, the first one pale."""
    standing = {id(s) for s in _standing(steps)}
    dots = []
    for step in steps:
        value = step.achieved if figure == "achieved" else getattr(step.latency, figure)
        words = (
            f"{value:.1f} req/s achieved" if figure == "achieved" else f"{figure} {value:.1f} ms"
        )
        superseded = id(step) not in standing
        dots.append(
            Dot(
                step.asked,
                value,
                colour,
                step.held,
                _tip(step, unit, words, superseded),
                ringed=step.recheck,
                faded=superseded,
            )
        )
    return dots


def _rules(result: LimitResult) -> list[Rule]:
    unit = result.search.unit
    rules = []
    if result.limit is not None:
        named = ("at least " if result.at_least else "") + load_text(result.limit, unit)
        rules.append(Rule(result.limit, f"limit {named}", "limit"))
    if result.broken_at is not None:
        at = load_text(result.broken_at, unit)
        kind = result.bottleneck.kind
        # At least: where the load tool's own bound gave out, which is no break of the target.
        ours = result.at_least and kind in OURS
        rules.append(
            Rule(
                result.broken_at,
                f"{kind} gave out at {at}" if ours else f"broke at {at}",
                "breakrule",
            )
        )
    return rules


def _throughput_chart(result: LimitResult) -> str:
    unit = result.search.unit
    steps = result.steps
    series = [Series("achieved", ACHIEVED, [(s.asked, s.achieved) for s in _standing(steps)])]
    top = max(s.asked for s in steps)
    if result.search.model == "open":
        # What was asked: a step below this line carried less than it was asked (a shortfall).
        series.append(Series("asked (y = x)", ASKED, [(0.0, 0.0), (top, top)], dashed=True))
    elif result.usl is not None:
        series.append(Series("USL fit", FIT, _usl_curve(result, top), dashed=True))
    dots = _dots(steps, unit, "achieved", ACHIEVED)
    title = "Throughput against " + (
        "the rate asked (req/s)" if unit == "req/s" else "users (closed model)"
    )
    return load_chart(title, series, dots=dots, y_unit="req/s", verticals=_rules(result))


def _usl_curve(result: LimitResult, top: float) -> list[tuple[float, float]]:
    """The fitted law from 1 user to the most tried, where it stays a figure worth drawing
    (a session's coefficients may be anything finite: never a point off the scale)."""
    usl = result.usl
    assert usl is not None
    ceiling = 2 * max(s.achieved for s in result.steps) + 1
    points = []
    for i in range(USL_POINTS + 1):
        users = 1 + (max(top, 1.0) - 1) * i / USL_POINTS
        with np.errstate(all="ignore"):  # an overflow is a point not drawn, not a warning
            value = usl.throughput(users)
        if math.isfinite(value) and 0 <= value <= ceiling:
            points.append((users, float(value)))
    return points


def _latency_chart(result: LimitResult) -> str:
    unit = result.search.unit
    steps = result.steps
    measured = [s for s in steps if s.latency.measured]
    series = [
        Series(name, colour, [(s.asked, getattr(s.latency, name)) for s in _standing(measured)])
        for name, colour in LATENCY_COLOURS.items()
    ]
    dots = [
        dot
        for name, colour in LATENCY_COLOURS.items()
        for dot in _dots(measured, unit, name, colour)
    ]
    highest = max((s.latency.p99 for s in measured), default=0.0)
    bounds, off_scale = [], []
    for slo in result.search.slos:
        if slo.metric not in LATENCY_METRICS:
            continue
        if highest and slo.limit > BOUND_SCALE * highest:
            off_scale.append(slo.expr)
        else:
            bounds.append(Rule(slo.limit, slo.expr, "slo"))
    chart = load_chart(
        "Latency against " + ("the rate asked" if unit == "req/s" else "users"),
        series,
        dots=dots,
        y_unit="ms",
        verticals=_rules(result),
        horizontals=bounds,
    )
    if off_scale:
        chart += (
            f"<p>Not drawn, far above every step's p99 (at most {highest:.1f} ms): "
            f"{safe_text(', '.join(off_scale))}.</p>"
        )
    return chart


def _steps_table(steps: Sequence[Step], unit: str) -> str:
    headers = [
        "#",
        unit,
        "achieved req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "requests",
        "errors",
        "dropped",
        "bottleneck",
        "SLOs",
    ]
    out = [
        '<table class="steps">',
        "<tr>" + "".join(f"<th>{safe_text(h)}</th>" for h in headers) + "</tr>",
    ]
    for i, step in enumerate(steps, 1):
        lat = step.latency
        figures = [
            f"{getattr(lat, p):.1f}" if lat.measured else "n/a" for p in ("p50", "p95", "p99")
        ]
        verdict = "held" if step.held else "broke: " + "; ".join(step.broken)
        if step.recheck:
            verdict += " (measured again)"
        cells = [
            str(i),
            load_text(step.asked, unit).split(" ")[0],
            f"{step.achieved:.1f}",
            *figures,
            str(step.requests),
            str(step.errors),
            str(step.dropped),
            step.bottleneck.kind,
        ]
        css = "pass" if step.held else "fail"
        title = (
            f' title="{safe_text(step.bottleneck.evidence)}"' if step.bottleneck.evidence else ""
        )
        out.append(
            "<tr>"
            + "".join(f"<td>{safe_text(c)}</td>" for c in cells[:-1])
            + f"<td{title}>{safe_text(cells[-1])}</td>"
            + f'<td class="{css}">{safe_text(verdict)}</td></tr>'
        )
    out.append("</table>")
    return "\n".join(out)
