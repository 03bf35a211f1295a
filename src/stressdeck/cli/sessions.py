"""The session subcommands: `replay`, `compare` and `report` (parsing lives in cli/main.py)."""

from __future__ import annotations

import argparse
import glob
import io
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO

from stressdeck.cli.options import check_output_paths, refuse_output
from stressdeck.cli.run import run_repeated
from stressdeck.core.errors import InputError
from stressdeck.core.exits import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_THRESHOLDS
from stressdeck.core.files import write_atomic
from stressdeck.core.redact import redacted_fields
from stressdeck.core.text import printable
from stressdeck.sessions.compare import (
    INCONCLUSIVE,
    REGRESSION,
    Comparison,
    compare_sides,
    comparison_dict,
    host_warnings,
    load_differences,
    parse_tolerance,
    setup_differences,
)
from stressdeck.sessions.compare_html import compare_html
from stressdeck.sessions.compare_report import compare_markdown, compare_text
from stressdeck.sessions.exports import write_csv, write_html, write_junit
from stressdeck.sessions.replay import plan_for_replay, replay_events, steer, stop_offset
from stressdeck.sessions.session import Session, load_session
from stressdeck.sessions.summary import limit_line

# -- replay --------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    session = load_session(args.session)
    check_output_paths(args)
    if args.ui and args.repeat > 1:
        raise InputError("--repeat", "", "expected a headless replay (without --ui)")
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
    if not args.quiet and session.limit is not None:
        # The replay asks the search's loads again; the answer below is the saved one's.
        print(limit_line(session.limit, "saved find-limit"), flush=True)
    driver = partial(steer, events=events, stop_at=stop_offset(session))
    return run_repeated(args, plan, steer=driver, replay_of=args.session)


# -- compare -------------------------------------------------------------------------------

# main() puts this in place of a "--" after `compare`: argparse would drop the "--" itself.
SIDE_SEPARATOR = "\x00--"
_SESSION_SUFFIXES = (".toml", ".json")


def expand_side(items: list[str], what: str) -> list[str]:
    """Session files from files, directories (their .toml and .json files, sorted) and globs."""
    paths: list[str] = []
    for item in items:
        if any(char in item for char in "*?["):
            matched = sorted(glob.glob(item))
            if not matched:
                raise InputError(item, "", f"no {what} session matches this pattern")
            paths += matched
        elif Path(item).is_dir():
            found = sorted(
                str(p) for p in Path(item).iterdir() if p.suffix.lower() in _SESSION_SUFFIXES
            )
            if not found:
                raise InputError(
                    item, "", "expected .toml or .json session files in this directory"
                )
            paths += found
        else:
            paths.append(item)
    return paths


def compare_plan(args: argparse.Namespace) -> list[tuple[list[str], list[str]]]:
    """The comparisons asked for: (base paths, new paths) each."""
    items = list(args.sessions)
    if args.baseline:
        if SIDE_SEPARATOR in items:
            raise InputError("--baseline", "", "expected the new sessions only, without --")
        news = expand_side(items, "new")
        if not news:
            raise InputError("--baseline", "", "expected the sessions to compare with the baseline")
        pairs = []
        for path in news:
            namesake = Path(args.baseline) / Path(path).name
            if not namesake.is_file():
                raise InputError(
                    str(namesake), "", f"no baseline session named like {Path(path).name}"
                )
            pairs.append(([str(namesake)], [path]))
        return pairs
    if SIDE_SEPARATOR in items:
        cut = items.index(SIDE_SEPARATOR)
        base, new = expand_side(items[:cut], "base"), expand_side(items[cut + 1 :], "new")
    elif len(items) == 2:
        base, new = expand_side(items[:1], "base"), expand_side(items[1:], "new")
    else:
        raise InputError(
            "compare",
            "",
            "expected BASE NEW, or BASE... -- NEW... for several runs a side, "
            "or --baseline DIR NEW...",
        )
    if not base or not new:
        raise InputError("compare", "", "expected at least one session on each side of --")
    return [(base, new)]


def cmd_compare(args: argparse.Namespace) -> int:
    tolerance = parse_tolerance(args.tolerance)
    documents = []
    codes = []
    pairs = compare_plan(args)
    for base_paths, new_paths in pairs:
        base = [load_session(p) for p in base_paths]
        new = [load_session(p) for p in new_paths]
        comparison = compare_sides(base, new, tolerance, args.latency_floor)
        warnings = side_warnings(base, new)
        described = describe_sides(base_paths, base, new_paths, new)
        if args.format == "json":
            documents.append(comparison_dict(comparison, base_paths, new_paths, warnings))
        elif args.format == "markdown":
            print(compare_markdown(comparison, described, warnings))
        else:
            print(compare_text(comparison, described, warnings))
        if args.json_file:
            documents.append(comparison_dict(comparison, base_paths, new_paths, warnings))
        if args.html:
            page = compare_html(comparison, described, warnings, base, new)
            written = write_atomic(
                _html_path(args.html, new_paths, len(pairs)), page, overwrite=args.force
            )
            if args.format != "json":
                print(f"html comparison written: {printable(written)}")
        codes.append(verdict_exit_code(comparison))
    if documents:
        text = json.dumps(documents[0] if len(documents) == 1 else documents, indent=2) + "\n"
        if args.format == "json":
            print(text, end="")
        if args.json_file:
            write_atomic(args.json_file, text, overwrite=args.force)
    return max(codes, key=lambda code: _EXIT_RANK[code])


def _html_path(wanted: str, new_paths: list[str], comparisons: int) -> str:
    """--html FILE; with several comparisons (--baseline), FILE's stem + each session's."""
    if comparisons == 1:
        return wanted
    path = Path(wanted)
    return str(path.with_name(f"{path.stem}-{Path(new_paths[0]).stem}{path.suffix or '.html'}"))


_EXIT_RANK = {EXIT_OK: 0, EXIT_INCONCLUSIVE: 1, EXIT_THRESHOLDS: 2}


def verdict_exit_code(comparison: Comparison) -> int:
    """3 on a regression, 4 when the runs cannot tell, else 0."""
    verdict = comparison.verdict
    if verdict == REGRESSION:
        return EXIT_THRESHOLDS
    return EXIT_INCONCLUSIVE if verdict == INCONCLUSIVE else EXIT_OK


def side_warnings(base: list[Session], new: list[Session]) -> list[str]:
    """What may explain a change besides the backend: a different load or setup between the
    sides, or a side run on a busy host."""
    warnings = []
    differences = load_differences(base[0], new[0])
    if differences:
        warnings.append(
            "the runs had different loads ("
            + ", ".join(differences)
            + "): a change below may come from that, not from the backend"
        )
    setup = setup_differences(base[0], new[0])
    if setup:
        warnings.append("the runs differ in " + ", ".join(setup))
    return warnings + host_warnings("base", base) + host_warnings("new", new)


def _describe(path: str, session: Session) -> str:
    r = session.results
    return (
        f"{printable(path)}: {printable(r.name)}, {session.created}, {r.elapsed:.1f} s, "
        f"{r.total.requests} requests"
    )


def describe_sides(
    base_paths: list[str], base: list[Session], new_paths: list[str], new: list[Session]
) -> list[str]:
    lines = []
    for label, paths, sessions in (("base", base_paths, base), ("new", new_paths, new)):
        for i, (path, session) in enumerate(zip(paths, sessions, strict=True)):
            prefix = f"{label}:" if i == 0 else ""
            lines.append(f"{prefix:5} {_describe(path, session)}")
    return lines


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
    for kind, path in wanted:  # refused before anything is written, as run's --save is
        refuse_output(f"--{kind}", path, force=bool(args.force))
    for kind, path in wanted:
        buffer = io.StringIO()
        _EXPORTERS[kind](session, buffer)
        written = write_atomic(path, buffer.getvalue(), overwrite=bool(args.force))
        print(f"{kind} report written: {printable(written)}")
    if session.limit is not None:
        print(limit_line(session.limit))
    return EXIT_OK
