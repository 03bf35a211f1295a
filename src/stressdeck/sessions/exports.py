"""Exporters of a saved session: HTML report, CSV timeline, JUnit XML thresholds.

One function per format, each writing to a file-like object; the CLI writes the result
atomically. Every value that came from outside (names, reasons, targets) is escaped.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import IO

from stressdeck.engine.bottleneck import GENERATOR, Bottleneck
from stressdeck.engine.hdr import decode_histogram, log_buckets
from stressdeck.engine.snapshot import (
    LATENCY_KEYS,
    ControlEvent,
    EndpointPoint,
    EndpointSummary,
    TimelinePoint,
)
from stressdeck.profiles.checks import parse_check
from stressdeck.sessions.limit_html import LIMIT_STYLE, limit_section
from stressdeck.sessions.session import Session
from stressdeck.sessions.summary import NO_DATA, SATURATED_WARNING_SECONDS, format_metric, ms_text
from stressdeck.sessions.svg import Marker, Series, bar_chart, line_chart, safe_text

# The CSV's columns are the timeline point's own fields, in order: one list, the model's.
TIMELINE_COLUMNS = tuple(item.name for item in dataclasses.fields(TimelinePoint))
# The CSV header: each column with its unit, so a spreadsheet reader needs no documentation.
_COLUMN_UNITS = {
    "t": "t_s",
    "span": "span_s",
    "rps": "rps_per_s",
    "p50": "p50_ms",
    "p95": "p95_ms",
    "p99": "p99_ms",
    "rate": "rate_per_s",
}
CSV_HEADER = tuple(_COLUMN_UNITS.get(name, name) for name in TIMELINE_COLUMNS)
# XML 1.0 cannot hold these at all, escaped or not.
_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# -- CSV -----------------------------------------------------------------------------------


def write_csv(session: Session, out: IO[str]) -> None:
    """The per-second timeline, one row a point; the unit in each column's name (t_s, p95_ms,
    rate_per_s...); latencies n/a in a second nothing answered (spreadsheets and pandas read
    it as no value), an empty rate when unset."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for point in session.results.timeline:
        values = (getattr(point, name) for name in TIMELINE_COLUMNS)
        writer.writerow(
            _csv_cell(value, name in LATENCY_KEYS)
            for name, value in zip(TIMELINE_COLUMNS, values, strict=True)
        )


def _csv_cell(value: object, latency: bool = False) -> object:
    """A CSV cell: n/a for a latency nothing answered, empty for an unset rate, the kind
    alone for a second's bottleneck."""
    if value is None:
        return NO_DATA if latency else ""
    return value.kind if isinstance(value, Bottleneck) else value


# -- JUnit ---------------------------------------------------------------------------------


def _xml_text(value: object) -> str:
    return _XML_INVALID.sub("\N{REPLACEMENT CHARACTER}", str(value))


def check_rows(session: Session) -> list[tuple[str, str, int, int]]:
    """(endpoint, check, passed, failed) for every check of the run, failing or not.

    The saved profile names each endpoint's checks; each of them judged every response the
    endpoint's ``checked`` counts.
    """
    checks: dict[str, list[str]] = {}
    for endpoint in session.plan.document.get("endpoints", []):
        if isinstance(endpoint, dict) and isinstance(endpoint.get("checks"), list):
            texts = [text for text in endpoint["checks"] if isinstance(text, str)]
            checks[str(endpoint.get("name"))] = [_check_expr(text) for text in texts]
    rows = []
    for ep in session.results.endpoints:
        judged = ep.checked
        names = checks.get(ep.name, [])
        names += [expr for expr in ep.check_failures if expr not in names]
        for expr in names:
            failed = ep.check_failures.get(expr, 0)
            rows.append((ep.name, expr, judged - failed, failed))
    return rows


def _check_expr(text: str) -> str:
    try:
        return parse_check(text).expr  # as the counters name it
    except ValueError:
        return text


def write_junit(session: Session, out: IO[str]) -> None:
    """One test case per threshold and one per response check of each endpoint, with a
    ``failure`` element for each that did not hold; a run with neither still gives one
    (passing) test case per endpoint with its requests and errors, not an empty suite."""
    results = session.results
    checks = check_rows(session)
    failures = sum(1 for r in results.thresholds if not r.ok) + sum(1 for c in checks if c[3])
    endpoints = results.endpoints if not results.thresholds and not checks else ()
    tests = len(results.thresholds) + len(checks) + len(endpoints)
    suites = ET.Element(
        "testsuites",
        name="stressdeck",
        tests=str(tests),
        failures=str(failures),
        time=f"{results.elapsed:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=_xml_text(f"stressdeck thresholds: {results.name}"),
        tests=str(tests),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{results.elapsed:.3f}",
        timestamp=session.created,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", results.target),
        ("model", results.model),
        ("stop_reason", results.stop_reason),
        ("replay_of", session.replay_of or ""),
    ):
        ET.SubElement(properties, "property", name=name, value=_xml_text(value))
    for result in results.thresholds:
        scope = result.endpoint or "total"
        measured = (
            "no data: nothing measured"
            if result.value is None
            else f"measured {format_metric(result.metric, result.value)}"
        )
        if result.breach_text():
            measured += f" over the whole run; {result.breach_text()}"
        _junit_case(
            suite,
            f"profiles.thresholds.{scope}",
            result.expr,
            "threshold",
            scope,
            measured,
            result.ok,
        )
    for endpoint, expr, passed, failed in checks:
        counted = f"{passed} passed, {failed} failed of {passed + failed} responses"
        _junit_case(suite, f"checks.{endpoint}", expr, "check", endpoint, counted, not failed)
    for ep in endpoints:
        figures = (
            f"{ep.requests} requests, {ep.errors} errors ({ep.error_rate:.2%}), "
            f"{ep.rps:.1f} rps, p95 {ep.latency_ms.p95:.2f} ms"
        )
        _junit_case(suite, "endpoints", ep.name, "endpoint", ep.name, figures, True)
    ET.indent(suites)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(suites, encoding="unicode"))
    out.write("\n")


# -- HTML ----------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2937; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #4b5563; } .meta span { margin-right: 18px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.card { border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.card b { display: block; font-size: 20px; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: bold; }
.pass { color: #047857; } .fail { color: #b91c1c; font-weight: bold; }
svg.chart { display: block; margin: 8px 0; max-width: 100%; height: auto; }
svg .title { font-size: 13px; font-weight: bold; fill: #111827; }
svg .axis { font-size: 11px; fill: #4b5563; }
svg .grid { stroke: #e5e7eb; } svg .axisline { stroke: #9ca3af; }
svg .marker { stroke: #f59e0b; stroke-dasharray: 3 3; } svg .marker-label { font-size: 10px; fill: #b45309; }
"""


def _junit_case(
    suite: ET.Element, group: str, expr: str, kind: str, scope: str, outcome: str, ok: bool
) -> None:
    """One testcase: a threshold or a check, passed (its figure as output) or failed."""
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_xml_text(f"stressdeck.{group}"),
        name=_xml_text(expr),
        time="0",
    )
    if ok:
        ET.SubElement(case, "system-out").text = _xml_text(outcome)
        return
    failure = ET.SubElement(
        case, "failure", type=kind, message=_xml_text(f"{expr} failed for {scope}: {outcome}")
    )
    failure.text = _xml_text(f"{expr} ({scope}): {outcome}")


def _cell(value: object) -> str:
    return f"<td>{safe_text(value)}</td>"


def _table(
    headers: Iterable[str], rows: Iterable[Iterable[object]], total_last: bool = False
) -> str:
    rows = list(rows)
    out = ["<table>", "<tr>" + "".join(f"<th>{safe_text(h)}</th>" for h in headers) + "</tr>"]
    for i, row in enumerate(rows):
        css = ' class="total"' if total_last and i == len(rows) - 1 else ""
        out.append(f"<tr{css}>" + "".join(_cell(v) for v in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _endpoint_row(name: str, ep: EndpointSummary) -> list[object]:
    lat = ep.latency_ms
    codes = ", ".join(f"{code}: {n}" for code, n in ep.status_counts.items())
    errors = ", ".join(f"{kind}: {n}" for kind, n in ep.error_counts.items())
    return [
        name,
        ep.requests,
        f"{ep.rps:.1f}",
        f"{ep.error_rate:.2%}",
        ms_text(lat.p50, lat.measured),
        ms_text(lat.p95, lat.measured),
        ms_text(lat.p99, lat.measured),
        ms_text(lat.max, lat.measured),
        codes or "-",
        errors or "-",
    ]


def _latency_histogram(session: Session) -> str:
    encoded = session.histograms.get("total/latency")
    if not encoded:
        return "<p>No latency histogram was saved (nothing completed).</p>"
    buckets = log_buckets(decode_histogram(encoded), 30)
    bars = [(f"{b.low_ms:.3g}-{b.high_ms:.3g} ms", float(b.count)) for b in buckets]
    return bar_chart("Latency distribution (all requests)", bars, y_unit="requests", label_every=5)


# Live changes marked on each chart: past this many the lines hide the figures (and a session
# may hold 100,000: 34 MB of HTML), so the control log's table alone lists them.
MAX_CHART_MARKERS = 200


def _markers(log: Sequence[ControlEvent]) -> list[Marker]:
    if len(log) > MAX_CHART_MARKERS:
        return []
    return [
        Marker(e.offset, e.command if e.value is None else f"{e.command} {e.value:g}") for e in log
    ]


def _charts(session: Session) -> str:
    results = session.results
    timeline = results.timeline
    # A point covers the ``span`` seconds ending at ``t``: draw it in the middle of them.
    at = [p.t - p.span / 2 for p in timeline]
    markers = _markers(results.control_log)
    answered = list(zip(at, timeline, strict=True))
    latency = line_chart(
        "Latency over time"
        + ("" if any(p.measured for p in timeline) else " (no answers: no data)"),
        [
            # A second nothing answered has no latency: no point, not one at 0 ms.
            Series("p50", "#10b981", [(x, p.p50) for x, p in answered if p.p50 is not None]),
            Series("p95", "#3b82f6", [(x, p.p95) for x, p in answered if p.p95 is not None]),
            Series("p99", "#ef4444", [(x, p.p99) for x, p in answered if p.p99 is not None]),
        ],
        y_unit="ms",
        x_max=results.elapsed,
        markers=markers,
    )
    throughput = line_chart(
        "Requests and errors per second",
        [
            Series("rps", "#3b82f6", [(x, p.rps) for x, p in zip(at, timeline, strict=True)]),
            Series(
                "errors/s",
                "#ef4444",
                [
                    (x, p.errors / p.span if p.span else 0.0)
                    for x, p in zip(at, timeline, strict=True)
                ],
            ),
        ],
        y_unit="per s",
        x_max=results.elapsed,
        markers=markers,
    )
    return "\n".join([latency, throughput, _latency_histogram(session)])


_SERIES_COLOURS = ("#8b5cf6", "#0ea5e9", "#f97316", "#14b8a6", "#e11d48", "#64748b")
# Endpoints drawn over time: more lines than colours no one can tell apart.
ENDPOINT_LINES = len(_SERIES_COLOURS)


def _endpoint_charts(session: Session) -> str:
    """p95 and requests per second of the endpoints whose p95 peaked highest: which endpoint
    degraded, and when. Every endpoint's timeline stays in the session file."""
    results = session.results
    kept = [s for s in results.endpoint_timeline if s.points]
    if not kept:
        return "<p>No per-endpoint timeline was saved (a session from an older version).</p>"
    shown = sorted(kept, key=lambda s: -max(p.p95 for p in s.points))[:ENDPOINT_LINES]
    markers = [
        Marker(e.offset, e.command if e.value is None else f"{e.command} {e.value:g}")
        for e in results.control_log
    ]

    def lines(figure: str) -> list[Series]:
        return [
            Series(
                series.name,
                colour,
                # A point covers the span seconds ending at t: drawn in their middle.
                [(p.t - p.span / 2, _endpoint_figure(p, figure)) for p in series.points],
            )
            for series, colour in zip(shown, _SERIES_COLOURS, strict=False)
        ]

    note = (
        f"<p>The {len(shown)} endpoints whose p95 peaked highest, of {len(kept)}; "
        "seconds in which an endpoint did nothing are left out of its line.</p>"
        if len(kept) > len(shown)
        else "<p>Seconds in which an endpoint did nothing are left out of its line.</p>"
    )
    return "\n".join(
        [
            note,
            line_chart(
                "p95 per second by endpoint",
                lines("p95"),
                y_unit="ms",
                x_max=results.elapsed,
                markers=markers,
            ),
            line_chart(
                "Requests per second by endpoint",
                lines("rps"),
                y_unit="per s",
                x_max=results.elapsed,
                markers=markers,
            ),
            line_chart(
                "Errors per second by endpoint",
                lines("errors"),
                y_unit="per s",
                x_max=results.elapsed,
                markers=markers,
            ),
        ]
    )


def _endpoint_figure(point: EndpointPoint, figure: str) -> float:
    if figure == "rps":
        return point.rps
    if figure == "errors":
        return point.errors / point.span if point.span else 0.0
    return point.p95


def _target_metrics(session: Session) -> str:
    """One chart per followed series (their units differ), then the scrape figures per series.

    A failed scrape has no value: it is left out of the line and counted in the table, so a
    gap in the chart lines up with a failure count, never with a made-up zero.
    """
    metrics = session.results.target_metrics
    if metrics is None:
        return "<p>No target metrics were scraped (no metrics URL).</p>"
    summary = (
        f"{metrics.scrapes} scrapes of {safe_text(metrics.url)}, {metrics.failures} failed"
        + (f"; last error: {safe_text(metrics.last_error)}" if metrics.last_error else "")
    )
    parts = [f"<p>{summary}</p>"]
    markers = _markers(session.results.control_log)
    rows = []
    for index, series in enumerate(metrics.series):
        points = [(p.t, p.value) for p in series.points if p.value is not None]
        values = [value for _, value in points]
        unit = series.unit or ""
        if points:
            colour = _SERIES_COLOURS[index % len(_SERIES_COLOURS)]
            parts.append(
                line_chart(
                    f"Target: {series.spec}",
                    [Series(series.kind, colour, points)],
                    y_unit=unit,
                    x_max=session.results.elapsed,
                    markers=markers,
                )
            )
        failed = sum(1 for p in series.points if not p.ok)
        rows.append(
            [
                series.spec,
                series.kind,
                unit or "-",
                len(series.points),
                failed,
                f"{values[-1]:.4g}" if values else "-",
                f"{min(values):.4g}" if values else "-",
                f"{max(values):.4g}" if values else "-",
            ]
        )
    if rows:
        parts.append(
            _table(["series", "kind", "unit", "points", "failed", "last", "min", "max"], rows)
        )
    else:
        parts.append("<p>No series were followed.</p>")
    return "\n".join(parts)


def _health(session: Session) -> str:
    health = session.results.generator
    limited = session.results.bottleneck
    rows: list[list[object]] = [
        ["bottleneck", f"{limited.kind}: {limited.evidence}" if limited.evidence else limited.kind],
        ["processes", health.processes],
    ]
    if session.format_version >= 2:
        rows += [
            ["saturated", f"{health.saturated_seconds:.1f} s of {session.results.elapsed:.1f} s"],
            ["peak loop lag", f"{health.peak_loop_lag_ms:.1f} ms"],
            ["peak send lag", f"{health.peak_send_lag_ms:.1f} ms"],
            ["peak CPU", f"{health.peak_cpu_percent:.0f}%"],
        ]
    rows += [
        ["last loop lag", f"{health.loop_lag_ms:.1f} ms"],
        ["last send lag", f"{health.send_lag_ms:.1f} ms"],
        ["last CPU", f"{health.cpu_percent:.0f}%"],
    ]
    note = (
        "<p>Saved by an older stressdeck (session format 1): the whole-run peaks were not recorded.</p>"
        if session.format_version < 2
        else ""
    )
    warning = (
        '<p class="fail">The load generator was saturated: figures may measure stressdeck, '
        "not the target.</p>"
        if health.saturated_seconds >= SATURATED_WARNING_SECONDS and limited.kind == GENERATOR
        else ""
    )
    return warning + _table(["generator", "value"], rows) + note


def _card_ms(value: float, measured: bool) -> str:
    return f"{value:.2f} ms" if measured else NO_DATA


def write_html(session: Session, out: IO[str]) -> None:
    """One self-contained page: inline CSS and SVG, no scripts, nothing loaded from anywhere."""
    results, plan, host = session.results, session.plan, session.host
    total = results.total
    scheme, _, address = results.target.partition("://")
    target = f"{address} ({scheme})" if address else results.target
    meta = [
        ("target", target),
        ("model", results.model),
        ("elapsed", f"{results.elapsed:.2f} s"),
        ("stopped", results.stop_reason),
        ("created", session.created),
        ("stressdeck", session.stressdeck_version),
        (
            "host",
            f"{host.cores} cores, {host.ram_bytes / 2**30:.1f} GiB, {host.os}, Python {host.python}",
        ),
    ]
    if session.replay_of:
        meta.append(("replay of", session.replay_of))
    cards = [
        ("requests", f"{total.requests}"),
        ("rps", f"{total.rps:.1f}"),
        ("errors", f"{total.error_rate:.2%}"),
        ("p50", _card_ms(total.latency_ms.p50, total.latency_ms.measured)),
        ("p95", _card_ms(total.latency_ms.p95, total.latency_ms.measured)),
        ("p99", _card_ms(total.latency_ms.p99, total.latency_ms.measured)),
    ]
    load = plan.load
    settings = [
        ("model", load.model),
        ("users", load.users),
        ("rate", load.rate),
        ("duration", load.duration),
        ("requests", load.requests),
        ("preset", load.preset),
        ("stages", len(load.stages) or None),
    ]
    overrides = ", ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in plan.overrides.to_dict().items()
    )
    thresholds = [
        [
            r.expr,
            r.endpoint or "total",
            ("no data" if r.value is None else format_metric(r.metric, r.value))
            + (f" (whole run); {r.breach_text()}" if r.breach_text() else ""),
            "pass" if r.ok else "FAIL",
        ]
        for r in results.thresholds
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>stressdeck: {safe_text(results.name)}</title>",
        f"<style>{_STYLE}{LIMIT_STYLE if session.limit else ''}</style></head><body>",
        f"<h1>{safe_text(results.name)}</h1>",
        '<p class="meta">'
        + "".join(f"<span>{safe_text(k)}: {safe_text(v)}</span>" for k, v in meta)
        + "</p>",
        '<div class="cards">'
        + "".join(f'<div class="card">{safe_text(k)}<b>{safe_text(v)}</b></div>' for k, v in cards)
        + "</div>",
        *([limit_section(session.limit)] if session.limit is not None else []),
        "<h2>Charts</h2>",
        _charts(session),
        "<h2>Per endpoint over time</h2>",
        _endpoint_charts(session),
        "<h2>Target metrics</h2>",
        _target_metrics(session),
        "<h2>Endpoints</h2>",
        _table(
            [
                "endpoint",
                "requests",
                "rps",
                "err %",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "status codes",
                "errors",
            ],
            [_endpoint_row(ep.name, ep) for ep in results.endpoints]
            + [_endpoint_row("TOTAL", total)],
            total_last=True,
        ),
        *_checks_section(session),
        "<h2>Thresholds</h2>",
        _threshold_table(thresholds) if thresholds else "<p>No thresholds were set.</p>",
        "<h2>Control log</h2>",
        f"<p>{len(results.control_log):,} live changes: too many to mark on the charts.</p>"
        if len(results.control_log) > MAX_CHART_MARKERS
        else "",
        _table(
            ["offset s", "command", "value"],
            [
                [f"{e.offset:.3f}", e.command, "" if e.value is None else f"{e.value:g}"]
                for e in results.control_log
            ],
        )
        if results.control_log
        else "<p>No live changes were made.</p>",
        "<h2>Load generator</h2>",
        _health(session),
        "<h2>Load</h2>",
        _table(["setting", "value"], [[k, v] for k, v in settings if v is not None]),
        f"<p>Overrides: {safe_text(overrides or 'none')}</p>",
        "</body></html>",
    ]
    out.write("\n".join(parts) + "\n")


def _checks_section(session: Session) -> list[str]:
    rows = check_rows(session)
    if not rows:
        return []
    out = ["<h2>Checks</h2>", "<table>"]
    out.append("<tr><th>endpoint</th><th>check</th><th>passed</th><th>failed</th></tr>")
    for endpoint, expr, passed, failed in rows:
        css = "fail" if failed else "pass"
        out.append(
            f"<tr>{_cell(endpoint)}{_cell(expr)}{_cell(passed)}"
            f'<td class="{css}">{safe_text(failed)}</td></tr>'
        )
    out.append("</table>")
    total = session.results.total
    judged = total.checks_passed + total.checks_failed
    share = f" ({total.checks_passed / judged:.2%})" if judged else ""
    out.append(
        f"<p>{total.checks_passed} of {judged} checks passed{share}; "
        "a failed check is not counted as an error.</p>"
    )
    return out


def _threshold_table(rows: list[list[str]]) -> str:
    out = ["<table>", "<tr><th>threshold</th><th>scope</th><th>measured</th><th>result</th></tr>"]
    for expr, scope, value, verdict in rows:
        css = "pass" if verdict == "pass" else "fail"
        out.append(
            f'<tr>{_cell(expr)}{_cell(scope)}{_cell(value)}<td class="{css}">{verdict}</td></tr>'
        )
    out.append("</table>")
    return "\n".join(out)
