"""What a headless run prints: the progress line, the final summary tables, and the
``--json`` results file (its shape is the results model's, engine/results.py).

Files for other tools (HTML, CSV, JUnit) are sessions/exports.py: they read a saved session.
"""

from __future__ import annotations

import json
from typing import IO

from stressdeck.core.text import printable
from stressdeck.core.units import format_quantity, format_rate
from stressdeck.engine.bottleneck import GENERATOR, NONE, Bottleneck
from stressdeck.engine.limit import LimitResult
from stressdeck.engine.results import Results
from stressdeck.engine.snapshot import EndpointSummary, Snapshot, TimelinePoint
from stressdeck.engine.tls import client_certificate_hint
from stressdeck.profiles.thresholds import RATE_METRICS

# A tick or two of lag (a GC pause, the run's start) is not a saturated generator.
SATURATED_WARNING_SECONDS = 1.0


def write_json(snapshot: Snapshot, out: IO[str], name: str = "") -> None:
    """The results document (``--json``), as ``Results.to_dict`` shapes it."""
    json.dump(Results.from_snapshot(snapshot, name).to_dict(), out, indent=2)
    out.write("\n")


def progress_line(snapshot: Snapshot, point: TimelinePoint | None = None) -> str:
    """The line of a headless run for one closed second (the last one by default),
    labelled with that second.

    A second closes a little after it ends (every worker's figures must be in), so the line
    for second N is printed during second N+1, but it says N and shows N's figures: its
    requests per second, percentiles, errors and dropped requests are all that second's.
    Before the first second closes (a run shorter than one), the run's own totals stand in.
    """
    total = snapshot.total
    last = point or (snapshot.timeline[-1] if snapshot.timeline else None)
    load = (
        f"rate {format_rate(snapshot.rate)}/s"
        if snapshot.model == "open" and snapshot.rate is not None
        else f"users {snapshot.active_users}/{snapshot.users}"
    )
    if last is not None:
        at, rps, errors, requests, dropped = (
            last.t,
            last.rps,
            last.errors,
            last.requests,
            last.dropped,
        )
        latencies = (last.p50, last.p95, last.p99)
    else:
        at, rps, errors, requests = (
            snapshot.elapsed,
            total.interval_rps,
            total.errors,
            total.requests,
        )
        dropped = total.dropped
        lat = total.latency_ms
        latencies = (lat.p50, lat.p95, lat.p99) if lat.measured else (None, None, None)
    p50, p95, p99 = (f"{ms_text(value):>7}" for value in latencies)
    p = f"p50 {p50}  p95 {p95}  p99 {p99} ms"
    error_rate = f"{errors / requests:.2%}" if requests else NO_DATA
    extra = f"  dropped {dropped}" if dropped else ""
    if snapshot.stalled:
        extra += "  STALLED worker " + ", ".join(str(w) for w in snapshot.stalled)
    paused = "  PAUSED" if snapshot.state == "paused" else ""
    return (
        f"[{at:6.{2 if last is not None and last.span < 1 else 1}f}s] {load}  rps {rps:8.1f}  {p}  "
        f"errors {errors} ({error_rate}){extra}{paused}"
    )


NO_DATA = "n/a"  # a figure nothing was measured for: never 0, which would be a lie


def ms_text(value: float | None, measured: bool = True) -> str:
    """A latency, or n/a when nothing was measured (all failed): 0.00 would be a lie."""
    return f"{value:.2f}" if measured and value is not None else NO_DATA


def _row(summary: EndpointSummary, name: str) -> list[str]:
    lat = summary.latency_ms
    measured = lat.measured
    return [
        printable(name, 28),
        str(summary.requests),
        f"{summary.rps:.1f}",
        f"{summary.error_rate:.2%}",
        ms_text(lat.p50, measured),
        ms_text(lat.p95, measured),
        ms_text(lat.p99, measured),
        ms_text(lat.max, measured),
        ms_text(summary.ttfb_ms.p95, summary.ttfb_ms.count > 0),
    ]


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=False))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )
    return "\n".join(lines)


def _clients_text(snapshot: Snapshot) -> str:
    """Which HTTP client sent: one name, or the endpoints of each when they differ."""
    names = {ep.client for ep in snapshot.endpoints}
    if len(names) == 1:
        return snapshot.total.client
    return "; ".join(
        f"{client} ({', '.join(printable(ep.name, 28) for ep in snapshot.endpoints if ep.client == client)})"
        for client in sorted(names)
    )


def summary_text(snapshot: Snapshot) -> str:
    """The final summary of a headless run: per endpoint, codes, errors and thresholds."""
    total = snapshot.total
    headers = [
        "endpoint",
        "requests",
        "rps",
        "err %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "ttfb p95",
    ]
    rows = [_row(ep, ep.name) for ep in snapshot.endpoints] + [_row(total, "TOTAL")]
    parts = [format_table(headers, rows), ""]
    codes = ", ".join(f"{code}: {n}" for code, n in total.status_counts.items()) or "none"
    errors = ", ".join(f"{kind}: {n}" for kind, n in total.error_counts.items()) or "none"
    if total.client:
        parts.append(f"client: {_clients_text(snapshot)}")
    parts.append(f"status codes: {codes}")
    # Transport errors (no answer) apart from answers with an error status, both named, so
    # "none" here never reads against an err % of 100 that came from 4xx answers.
    parts.append(f"transport errors: {errors}; {http_errors_text(total)}")
    hint = client_certificate_hint(snapshot.target, total.status_counts)
    if hint is not None:
        parts.append(hint)
    counted = sum(total.status_counts.values()) + sum(total.error_counts.values())
    health = snapshot.health
    unaccounted = f", {health.unaccounted} unaccounted" if health.unaccounted else ""
    parts.append(
        f"requests: {total.requests} completed (= {counted} by status and error class), "
        f"{total.cancelled} cancelled at stop, {total.dropped} dropped, {total.skipped} skipped"
        f"{unaccounted}"
    )
    if total.stale_resends or total.unasked:
        # Neither is an error: the server closed an idle connection as a request went out
        # (sent again on a fresh one), or sent bytes nobody asked for (the connection closed).
        parts.append(
            f"keep-alive: {total.stale_resends} resent after the server closed an idle "
            f"connection; {total.unasked} answers nobody asked for (connection closed)"
        )
    if total.extract_failures:
        failures = ", ".join(
            f"{printable(reason, 80)}: {n}" for reason, n in total.extract_failures.items()
        )
        parts.append(f"extraction failed: {failures}")
    if total.skip_reasons:
        reasons = ", ".join(
            f"{printable(reason, 60)}: {n}" for reason, n in total.skip_reasons.items()
        )
        parts.append(f"skipped: {reasons}")
    parts.extend(checks_lines(snapshot))
    streams = [ep for ep in snapshot.endpoints if ep.chunks or ep.events]
    for ep in streams:
        parts.append(
            f"stream {printable(ep.name, 28)}: ttfb p50 {ep.ttfb_ms.p50:.2f} ms, last byte p50 "
            f"{ep.service_ms.p50:.2f} ms, {ep.chunks} chunks, {ep.events} events, {ep.bytes} bytes"
        )
    if snapshot.target_metrics is not None:
        parts.append(target_metrics_text(snapshot))
    if snapshot.model == "open":
        s = total.service_ms
        measured = s.count > 0
        parts.append(
            f"service time (from actual send): p50 {ms_text(s.p50, measured)}  "
            f"p95 {ms_text(s.p95, measured)}  p99 {ms_text(s.p99, measured)} ms"
        )
    if snapshot.bottleneck.kind != "none":
        parts.append(bottleneck_line(snapshot.bottleneck))
    # Rounded as the results document keeps it first, so a run's summary and its saved
    # session's never differ in the last digit (1.5251 s printed 1.53, read back 1.52).
    elapsed = round(snapshot.elapsed, 3)
    parts.append(f"elapsed {elapsed:.2f}s, {printable(snapshot.stop_reason)}")
    if snapshot.nodes:
        parts.append(cluster_text(snapshot))
    # Only when the generator is what limited the load: a request late for a busy connection
    # or a slow target is not the generator's (the bottleneck line says whose it is).
    if (
        health.saturated_seconds >= SATURATED_WARNING_SECONDS
        and snapshot.bottleneck.kind == GENERATOR
    ):
        due = total.requests + total.cancelled + total.dropped
        behind = (
            f"; {total.dropped} of {due} due requests dropped ({total.dropped / due:.1%}), "
            "never sent"
            if snapshot.model == "open" and total.dropped and due
            else ""
        )
        parts.append(
            f"warning: the load generator was saturated for {health.saturated_seconds:.1f} s of "
            f"{snapshot.elapsed:.1f} s (peaks: loop lag {health.peak_loop_lag_ms:.0f} ms, send lag "
            f"{health.peak_send_lag_ms:.0f} ms, CPU {health.peak_cpu_percent:.0f}% over "
            f"{health.processes} process(es)){behind}: late requests are stressdeck's, "
            "not the target's"
        )
    if health.stalled_seconds or health.unaccounted:
        parts.append(
            f"warning: worker(s) stopped reporting for {health.stalled_seconds:.1f} s"
            + (
                f"; {health.unaccounted} requests unaccounted (their outcome never reached the runner)"
                if health.unaccounted
                else ""
            )
        )
    if snapshot.thresholds:
        parts.append("")
        parts.append(thresholds_text(snapshot))
    return "\n".join(parts)


def http_errors_text(summary: EndpointSummary) -> str:
    """The answers with an HTTP error status (4xx, 5xx), and how many answers the run counted
    as errors (a status the endpoint did not expect; an expected 404 is not one)."""
    statuses = ", ".join(
        f"{code}: {n}" for code, n in sorted(summary.status_counts.items()) if code >= 400
    )
    unexpected = summary.errors - sum(summary.error_counts.values())
    return f"HTTP error statuses: {statuses or 'none'} ({unexpected} answers counted as errors)"


def nothing_answered(snapshot: Snapshot) -> bool:
    """Requests went out and not one got an HTTP answer (refused, timed out, TLS failed...)."""
    total = snapshot.total
    sent = total.requests + total.cancelled
    return sent > 0 and not total.status_counts


def cluster_text(snapshot: Snapshot) -> str:
    """Where the load came from on a cluster run: one line per node."""
    nodes = snapshot.nodes
    workers = sum(node.workers for node in nodes)
    lines = [f"cluster: {workers} workers on {len(nodes)} nodes"]
    for node in nodes:
        crashed = (
            f", {node.crashed} CRASHED (its counts up to then are kept)" if node.crashed else ""
        )
        lines.append(
            f"  {printable(node.node, 60)}: {node.workers} worker{'s' if node.workers != 1 else ''}, "
            f"{node.cpus} CPU(s), {node.requests} requests, workers CPU {node.cpu_percent:.0f}% "
            f"(node {node.node_cpu_percent:.0f}%), loop lag peak {node.peak_loop_lag_ms:.0f} ms"
            f"{crashed}"
        )
    return "\n".join(lines)


def checks_lines(snapshot: Snapshot) -> list[str]:
    """Response checks, apart from errors: the total, then each endpoint's failing checks."""
    total = snapshot.total
    if total.checks_rate is None:
        return []
    lines = [
        f"checks: {total.checks_passed} passed, {total.checks_failed} failed "
        f"({total.checks_rate:.2%} passed)"
    ]
    for ep in snapshot.endpoints:
        for expr, n in ep.check_failures.items():
            lines.append(
                f"  {printable(ep.name, 28)}: {printable(expr, 60)} failed {n} of {ep.checked}"
            )
    return lines


def target_metrics_text(snapshot: Snapshot) -> str:
    """The target's own metrics: the scrape count and each followed series' last and peak value."""
    metrics = snapshot.target_metrics
    assert metrics is not None
    lines = [
        f"target metrics: {metrics.scrapes} scrapes of {printable(metrics.url)}, {metrics.failures} failed"
        + (f" (last error: {printable(metrics.last_error, 80)})" if metrics.last_error else "")
    ]
    for series in metrics.series:
        values = [v for v in series.values() if v is not None]
        if values:
            lines.append(
                f"  {printable(series.spec, 60)}: last "
                f"{printable(format_quantity(values[-1], series.unit))}, "
                f"max {printable(format_quantity(max(values), series.unit))}"
            )
        else:
            lines.append(f"  {printable(series.spec, 60)}: no value")
    return "\n".join(lines)


def thresholds_text(snapshot: Snapshot) -> str:
    rows = []
    for r in snapshot.thresholds:
        value = "no data" if r.value is None else format_metric(r.metric, r.value)
        if r.breach_text():
            value += f" (whole run); {r.breach_text()}"
        rows.append(
            [
                printable(r.expr, 40),
                printable(r.endpoint or "total", 28),
                value,
                "pass" if r.ok else "FAIL",
            ]
        )
    return format_table(["threshold", "scope", "measured", "result"], rows)


def format_metric(metric: str, value: float) -> str:
    """A threshold's measured value in its metric's unit."""
    if metric in RATE_METRICS:
        return f"{value:.2%}"
    if metric in ("rps",):
        return f"{value:.1f}/s"
    if metric == "dropped":
        return f"{value:g}"
    return f"{value:.2f} ms"


def bottleneck_line(bottleneck: Bottleneck) -> str:
    """``bottleneck: target (...)``: what limited the load, with the figures that say so."""
    return f"bottleneck: {bottleneck.kind} ({printable(bottleneck.evidence, 400)})"


# -- a saved find-limit search -----------------------------------------------------------------

COLUMNS = 80  # a saved search's answer is one line when it fits a terminal this wide


def load_text(level: float, unit: str) -> str:
    """A step's load as find-limit names it: "96.9 req/s", "20 users"."""
    return f"{level:.0f} users" if unit == "users" else f"{level:g} {unit}"


def limit_line(result: LimitResult, label: str = "find-limit") -> str:
    """A saved search's answer in one line (two past 80 columns): the limit, what broke first
    and where, and the bottleneck there, e.g. ``find-limit: limit 96.9 req/s (p95 < 100ms
    broke first at 100 req/s; bottleneck target)``."""
    unit = result.search.unit
    broke = printable(result.broken_by, 60) if result.broken_by else None
    at = load_text(result.broken_at, unit) if result.broken_at is not None else None
    kind = result.bottleneck.kind
    if result.limit is None:
        head = f"{label}: no load held every SLO"
        detail = f"{broke or 'an SLO'} broke even at {at}" if at else printable(result.why, 120)
    elif result.at_least:
        head = f"{label}: limit at least {load_text(result.limit, unit)}"
        if at is not None and kind != NONE:
            detail = f"the {kind} gave out at {at}, before the target"
        else:
            detail = "every SLO held up to the highest load tried"
    else:
        head = f"{label}: limit {load_text(result.limit, unit)}"
        detail = f"{broke or 'an SLO'} broke first at {at}" if at else printable(result.why, 120)
        if at:
            detail += f"; bottleneck {kind}"
    line = f"{head} ({detail})"
    return line if len(line) <= COLUMNS else f"{head}\n  {detail}"
