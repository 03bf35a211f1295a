"""The session subcommands: `replay`, `compare` and `report` (parsing lives in cli/main.py)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from functools import partial
from typing import IO

from stressdeck.cli.options import check_output_paths
from stressdeck.cli.run import run_and_keep
from stressdeck.core.errors import InputError
from stressdeck.core.exits import EXIT_OK, EXIT_THRESHOLDS
from stressdeck.core.files import write_atomic
from stressdeck.core.redact import redacted_fields
from stressdeck.core.text import printable
from stressdeck.sessions.compare import (
    TOTAL,
    Change,
    Comparison,
    compare_sessions,
    comparison_dict,
    load_differences,
    parse_tolerance,
)
from stressdeck.sessions.exports import write_csv, write_html, write_junit
from stressdeck.sessions.replay import plan_for_replay, replay_events, steer, stop_offset
from stressdeck.sessions.session import Session, load_session
from stressdeck.sessions.summary import format_table

# -- replay --------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    session = load_session(args.session)
    check_output_paths(args)
    if args.ui:
        # Imported here so a headless replay never loads Textual.
        from stressdeck.cli.console import replay

        return replay(args, session)
    plan = plan_for_replay(session, args.session, base_url=args.base_url, i_know=args.i_know)
    redacted = redacted_fields(session.plan.document)
    if redacted:
        print(
            f"warning: {printable(args.session)}: {', '.join(redacted)} were redacted when saved; "
            'the replay sends "<redacted>" (save with ${VAR} references or --keep-secrets)',
            file=sys.stderr,
        )
    events = replay_events(session)
    if not args.quiet and events:
        print(f"replaying {len(events)} live change(s) from {printable(args.session)}", flush=True)
    driver = partial(steer, events=events, stop_at=stop_offset(session))
    return run_and_keep(args, plan, steer=driver, replay_of=args.session)


# -- compare -------------------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    tolerance = parse_tolerance(args.tolerance)
    base, new = load_session(args.base), load_session(args.new)
    comparison = compare_sessions(base, new, tolerance, args.latency_floor)
    print(compare_text(comparison, (args.base, base), (args.new, new)))
    if args.json_file:
        text = json.dumps(comparison_dict(comparison, args.base, args.new), indent=2) + "\n"
        write_atomic(args.json_file, text, overwrite=args.force)
    return EXIT_THRESHOLDS if comparison.regressed else EXIT_OK


_LABELS = {
    "requests": "requests",
    "rps": "rps",
    "error_rate": "err %",
    "p50": "p50 ms",
    "p95": "p95 ms",
    "p99": "p99 ms",
}


def _value(metric: str, value: float, measured: bool = True) -> str:
    if not measured:
        return "n/a"
    if metric == "requests":
        return f"{value:.0f}"
    if metric == "error_rate":
        return f"{value:.2%}"
    if metric == "rps":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _delta(change: Change) -> tuple[str, str]:
    if not change.measured:
        return "n/a", "n/a"
    if change.metric == "error_rate":
        absolute = f"{change.delta * 100:+.2f} pt"
    elif change.metric == "requests":
        absolute = f"{change.delta:+.0f}"
    else:
        absolute = f"{change.delta:+.2f}"
    percent = "n/a" if change.percent is None else f"{change.percent:+.1f}%"
    return absolute, percent


def _describe(path: str, session: Session) -> str:
    r = session.results
    return (
        f"{printable(path)}: {printable(r.name)}, {session.created}, {r.elapsed:.1f} s, "
        f"{r.total.requests} requests"
    )


def compare_text(
    comparison: Comparison, base: tuple[str, Session], new: tuple[str, Session]
) -> str:
    """Per endpoint and total, one line a metric: base, new, deltas and the verdict."""
    lines = [
        f"base: {_describe(*base)}",
        f"new:  {_describe(*new)}",
        f"tolerance {comparison.tolerance:.0%}; latency changes under {comparison.latency_floor_ms:g} ms "
        "and error-rate rises under tolerance x max(base, 1%) are not counted",
    ]
    differences = load_differences(base[1], new[1])
    if differences:
        lines.append(
            "warning: the runs had different loads ("
            + ", ".join(differences)
            + "): a change below may come from that, not from the backend"
        )
    lines.append("")
    rows: list[list[str]] = []
    notes = []
    for row in comparison.rows:
        if row.base is None or row.new is None:
            notes.append(
                f"{printable(row.name)}: only in the {'new' if row.base is None else 'base'} session"
            )
            continue
        for i, change in enumerate(row.changes):
            absolute, percent = _delta(change)
            verdict = {"regression": "REGRESSION", "improvement": "better"}.get(change.verdict, "")
            rows.append(
                [
                    printable(row.name, 28) if i == 0 else "",
                    _LABELS[change.metric],
                    _value(change.metric, change.base, change.base_measured),
                    _value(change.metric, change.new, change.new_measured),
                    absolute,
                    percent,
                    verdict,
                ]
            )
    lines.append(
        format_table(["endpoint", "metric", "base", "new", "delta", "change", "verdict"], rows)
    )
    lines += [""] + notes if notes else []
    regressions = comparison.regressions
    lines.append("")
    if regressions:
        listed = ", ".join(
            f"{printable(name) if name != TOTAL else 'total'} {_LABELS[c.metric]}"
            for name, c in regressions
        )
        lines.append(
            f"{len(regressions)} regression(s) beyond {comparison.tolerance:.0%}: {listed}"
        )
    else:
        lines.append(f"no regressions beyond {comparison.tolerance:.0%}")
    return "\n".join(lines)


# -- report --------------------------------------------------------------------------------

_EXPORTERS: dict[str, Callable[[Session, IO[str]], None]] = {
    "html": write_html,
    "csv": write_csv,
    "junit": write_junit,
}


def cmd_report(args: argparse.Namespace) -> int:
    wanted = [(kind, getattr(args, kind)) for kind in _EXPORTERS if getattr(args, kind)]
    if not wanted:
        raise InputError(
            "report", "", "expected at least one of --html FILE, --csv FILE, --junit FILE"
        )
    session = load_session(args.session)
    for kind, path in wanted:
        buffer = io.StringIO()
        _EXPORTERS[kind](session, buffer)
        written = write_atomic(path, buffer.getvalue())
        print(f"{kind} report written: {printable(written)}")
    return EXIT_OK
