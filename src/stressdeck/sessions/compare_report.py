"""A comparison as text for the terminal or as markdown for a pull-request comment."""

from __future__ import annotations

import math
from collections.abc import Sequence

from stressdeck.core.text import printable
from stressdeck.sessions.compare import (
    IMPROVEMENT,
    INCONCLUSIVE,
    REGRESSION,
    TOTAL,
    Change,
    Comparison,
    status_differences,
)
from stressdeck.sessions.compare_limit import HIGHER, LOWER, UNCHANGED, UNSURE
from stressdeck.sessions.noise import Interval
from stressdeck.sessions.summary import format_table

LABELS = {
    "requests": "requests",
    "rps": "rps",
    "error_rate": "err %",
    "p50": "p50",
    "p95": "p95",
    "p99": "p99",
}
HEADERS = ["endpoint", "metric", "base [95 % interval]", "new [95 % interval]", "change", "verdict"]
VERDICT_WORDS = {
    REGRESSION: "REGRESSION",
    IMPROVEMENT: "better",
    INCONCLUSIVE: "inconclusive",
}


def _number(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:.2f}"
    if metric == "requests":
        return f"{value:.0f}"
    if metric == "rps":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _unit(metric: str) -> str:
    return {"error_rate": " %", "rps": "/s", "requests": ""}.get(metric, " ms")


def figure_text(metric: str, value: float, interval: Interval | None) -> str:
    """``5.10 ms [4.90–5.40]``; without an interval, the value alone; n/a for no data."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{_number(metric, value)}{_unit(metric)}"
    if interval is not None:
        text += f" [{_number(metric, interval.low)}–{_number(metric, interval.high)}]"
    return text


def change_text(change: Change) -> str:
    if change.metric == "error_rate":
        return f"{change.delta * 100:+.2f} pt"
    if change.percent is None or not math.isfinite(change.percent):
        return f"{change.delta:+.0f}" if change.metric == "requests" else "n/a"
    return f"{change.percent:+.1f} %"


def verdict_text(change: Change) -> str:
    word = VERDICT_WORDS.get(change.verdict, "")
    if not word and change.reason:
        return change.reason  # "within noise": beyond the tolerance but not beyond the noise
    return word


def _endpoint(name: str) -> str:
    return "total" if name == TOTAL else printable(name, 28)


def table_rows(comparison: Comparison) -> tuple[list[list[str]], list[str]]:
    """The table's rows and the notes below it (endpoints on one side only)."""
    rows: list[list[str]] = []
    notes = []
    for row in comparison.rows:
        if row.base is None or row.new is None:
            side = "new" if row.base is None else "base"
            notes.append(f"{_endpoint(row.name)}: only in the {side} session")
            continue
        for i, change in enumerate(row.changes):
            rows.append(
                [
                    _endpoint(row.name) if i == 0 else "",
                    LABELS[change.metric],
                    figure_text(change.metric, change.base, change.base_interval),
                    figure_text(change.metric, change.new, change.new_interval),
                    change_text(change),
                    verdict_text(change),
                ]
            )
        statuses = status_differences(row)
        if statuses:
            notes.append(f"{_endpoint(row.name)}: status codes " + ", ".join(statuses))
    return rows, notes


# Two find-limit searches: the verdict is their limits' (sessions/compare_limit.py).
LIMIT_VERDICTS = {
    LOWER: "verdict: regression: the limit is lower",
    HIGHER: "verdict: no regression: the limit is higher",
    UNCHANGED: "verdict: no change in the limit",
    UNSURE: "verdict: inconclusive: these searches cannot tell",
}


def verdict_lines(comparison: Comparison) -> list[str]:
    """The verdict, then each figure that could not be told and why."""
    limit = comparison.limit
    if limit is not None and limit.compared:
        return [
            LIMIT_VERDICTS[limit.outcome],
            *limit.lines(),
            "  the table's figures mix every step's load: shown, not judged",
        ]
    lines = []
    regressions = comparison.regressions
    tolerance = f"{comparison.tolerance:.0%}"
    if regressions:
        listed = ", ".join(f"{_endpoint(name)} {LABELS[c.metric]}" for name, c in regressions)
        lines.append(
            f"verdict: regression: {len(regressions)} figure(s) beyond {tolerance} "
            f"and beyond the noise: {listed}"
        )
    elif comparison.inconclusive:
        lines.append("verdict: inconclusive: these runs cannot tell (see below)")
    else:
        lines.append(f"verdict: no change beyond {tolerance} and the noise")
    for name, change in comparison.inconclusive:
        lines.append(
            f"  inconclusive {_endpoint(name)} {LABELS[change.metric]}: {printable(change.reason)}"
        )
    if limit is not None:
        lines += limit.lines()  # not compared: said why
    return lines


def method_line(comparison: Comparison) -> str:
    runs = f"{comparison.base_runs} vs {comparison.new_runs} run(s)"
    return (
        f"{runs}; tolerance {comparison.tolerance:.0%} (latency at least "
        f"{comparison.latency_floor_ms:g} ms); a change counts only beyond the tolerance and "
        "the noise of the change at one-sided 0.1 % a figure (per-second spread and sampling "
        "within a run, spread between runs); intervals 95 %"
    )


def compare_text(comparison: Comparison, described: Sequence[str], warnings: Sequence[str]) -> str:
    """The terminal report: the runs, the warnings, the table, the notes and the verdict."""
    lines = [*described, method_line(comparison)]
    lines += [f"warning: {printable(w)}" for w in warnings]
    rows, notes = table_rows(comparison)
    lines += ["", format_table(HEADERS, rows)]
    if notes:
        lines += ["", *notes]
    lines += ["", *verdict_lines(comparison)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def compare_markdown(
    comparison: Comparison, described: Sequence[str], warnings: Sequence[str]
) -> str:
    """The same report as GitHub-flavoured markdown: the verdict first, then the table."""
    verdict, *reasons = verdict_lines(comparison)
    lines = [f"**{_cell(verdict)}**", ""]
    lines += [f"- {_cell(line.strip())}" for line in reasons]
    lines += [f"- ⚠ {_cell(printable(w))}" for w in warnings]
    if reasons or warnings:
        lines.append("")
    rows, notes = table_rows(comparison)
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "|".join(["---", "---", "--:", "--:", "--:", "---"]) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    if notes:
        lines += ["", *[f"- {_cell(n)}" for n in notes]]
    lines += ["", *[f"<sub>{_cell(d)}</sub><br>" for d in described]]
    lines.append(f"<sub>{_cell(method_line(comparison))}</sub>")
    return "\n".join(lines)
