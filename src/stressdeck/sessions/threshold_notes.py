"""What a failing threshold's message needs beside the table: the load it was measured under,
the endpoint behind a failing total, and why a threshold had no data."""

from __future__ import annotations

from stressdeck.core.text import printable
from stressdeck.engine.snapshot import EndpointSummary, Snapshot
from stressdeck.profiles.thresholds import LATENCY_METRICS, ThresholdResult
from stressdeck.sessions.summary import format_metric


def load_line(snapshot: Snapshot) -> str:
    """``load: 10 users, 152.3 rps, 4,570 requests in 30.0 s``."""
    if snapshot.model == "open" and snapshot.rate is not None:
        load = f"open model at {snapshot.rate:g}/s"
    else:
        load = f"{snapshot.users} users"
    total = snapshot.total
    return (
        f"load: {load}, {total.rps:.1f} rps, {total.requests:,} requests "
        f"in {snapshot.elapsed:.1f} s"
    )


def _endpoint_value(summary: EndpointSummary, metric: str) -> float | None:
    if metric == "ttfb_p95":
        return summary.ttfb_ms.p95
    if metric in LATENCY_METRICS:
        return float(getattr(summary.latency_ms, metric))
    if metric == "error_rate":
        return summary.error_rate
    if metric == "checks" and summary.checked:
        return summary.checks_passed / summary.checked
    return None


def worst_endpoint(snapshot: Snapshot, result: ThresholdResult) -> str | None:
    """The endpoint with the worst value of a failing total-scope threshold's metric."""
    metric = result.metric
    measured = [
        (value, ep.name)
        for ep in snapshot.endpoints
        if ep.requests and (value := _endpoint_value(ep, metric)) is not None
    ]
    if len(measured) < 2:
        return None  # one endpoint is the total: nothing to name
    # checks is a pass rate: the lowest is the worst; every other metric here, the highest
    value, name = min(measured) if metric == "checks" else max(measured)
    return f"worst endpoint {printable(name, 40)} at {format_metric(metric, value)}"


def why_no_data(summary: EndpointSummary) -> str:
    """Why a scope measured nothing: its requests' errors, the commonest first."""
    if summary.requests == 0:
        return "no request was sent"
    if summary.errors < summary.requests:
        return "no value for this metric"
    messages = summary.error_messages or summary.error_counts
    common = sorted(messages.items(), key=lambda item: -item[1])[:2]
    said = ", ".join(f"{printable(text, 80)} ×{count:,}" for text, count in common)
    return f"every one of {summary.requests:,} requests failed ({said})"


def failure_notes(snapshot: Snapshot) -> list[str]:
    """One line for the load, then one for each failing threshold that needs explaining."""
    lines = [load_line(snapshot)]
    summaries = {ep.name: ep for ep in snapshot.endpoints}
    for result in snapshot.thresholds:
        if result.ok:
            continue
        scope = result.endpoint or "total"
        if result.value is None:
            summary = summaries.get(result.endpoint or "", snapshot.total)
            lines.append(
                f"{printable(result.expr, 40)} ({printable(scope, 28)}): no data: {why_no_data(summary)}"
            )
        elif result.endpoint is None:
            worst = worst_endpoint(snapshot, result)
            if worst:
                lines.append(f"{printable(result.expr, 40)} (total): {worst}")
    return lines
