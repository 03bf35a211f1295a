"""The command line: `stressdeck [PROFILE]` opens the console; subcommands run headless."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from stressdeck import __version__
from stressdeck.engine import Plan, RunHandle, Snapshot, build_plan, start
from stressdeck.engine.load import PRESET_HELP, PRESETS
from stressdeck.engine.plan import DEFAULT_MAX_DURATION, MAX_RATE, MAX_USERS
from stressdeck.engine.procs import resolve_processes
from stressdeck.engine.snapshot import INTERRUPTED
from stressdeck.errors import InputError
from stressdeck.files import WriteError, refuse_unwritable, write_atomic
from stressdeck.profile import SUFFIXES, load_profile
from stressdeck.report import progress_line, summary_text, write_json
from stressdeck.session import save_session
from stressdeck.text import printable
from stressdeck.units import parse_duration

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_THRESHOLDS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
SUBCOMMANDS = ("run", "replay", "compare", "report", "import", "demo-server", "presets")
CONSOLE_COMMANDS = ("demo", "console", "view")  # parsed by the console's own parser
AUTOSAVE_DIR = "sessions"
# Runs beside a headless run with its handle, e.g. a replay applying its control log.
Steer = Callable[[RunHandle], Coroutine[Any, Any, None]]


def _duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(
            f'expected a duration like "500ms", "30s" or "2m", got {text!r}'
        )
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _processes(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f'expected "auto" or a positive whole number, got {text!r}'
        ) from None


def add_processes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processes",
        type=_processes,
        default="auto",
        metavar="N|auto",
        help="worker processes sending the load (default auto: one per core)",
    )


def add_i_know_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--i-know",
        action="store_true",
        help=f"lift the safety caps ({MAX_USERS:,} users, {MAX_RATE:,.0f} requests/s)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Options that override a profile's load, shared by `run` and the console."""
    parser.add_argument("--base-url", help="send to this base URL instead of the profile's")
    parser.add_argument("--users", type=_positive_int, help="virtual users (closed model)")
    parser.add_argument("--rate", type=_positive_float, help="requests per second (open model)")
    parser.add_argument("--model", choices=("closed", "open"), help="load model")
    parser.add_argument("--duration", type=_duration, help='how long to run, e.g. "30s", "2m"')
    parser.add_argument("--requests", type=_positive_int, help="stop after this many requests")
    parser.add_argument(
        "--preset", choices=PRESETS, help="a named load shape (see `stressdeck presets`)"
    )
    parser.add_argument(
        "--max-duration",
        type=_duration,
        default=DEFAULT_MAX_DURATION,
        help="safety cap on any run (default 10m)",
    )
    add_processes_option(parser)
    add_i_know_option(parser)
    parser.add_argument(
        "--metrics-url",
        help="the target's Prometheus endpoint, scraped every second (/path: on the target)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="SERIES",
        help='a target series to follow, e.g. "p95(http_request_duration_seconds)"; repeatable',
    )


def _duration_ms(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds < 0:
        raise argparse.ArgumentTypeError(f'expected a duration like "1ms" or "500us", got {text!r}')
    return seconds * 1000


def add_save_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save", metavar="FILE", help="save the session (.toml or .json)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --save file")
    parser.add_argument(
        "--keep-secrets",
        action="store_true",
        help="keep literal secret header values in the saved profile (default: redacted)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stressdeck", description="Load and stress test HTTP backends."
    )
    parser.add_argument("--version", action="version", version=f"stressdeck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a profile headless and print a summary")
    run.add_argument("profile", help="a profile file (.toml or .json)")
    add_load_options(run)
    run.add_argument("--json", dest="json_file", metavar="FILE", help="write the results as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    add_save_options(run)

    replay = sub.add_parser(
        "replay", help="run a saved session's plan again, with its live changes"
    )
    replay.add_argument("session", help="a session file (.toml or .json)")
    replay.add_argument("--base-url", help="send to this base URL instead of the saved one")
    replay.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    replay.add_argument("--ui", action="store_true", help="replay in the console")
    add_processes_option(replay)
    add_i_know_option(replay)
    add_save_options(replay)

    compare = sub.add_parser("compare", help="compare two sessions; exit 3 on a regression")
    compare.add_argument("base", help="the baseline session")
    compare.add_argument("new", help="the session to judge")
    compare.add_argument(
        "--tolerance", default="10%", help="allowed change before it counts (default 10%%)"
    )
    compare.add_argument(
        "--latency-floor",
        type=_duration_ms,
        default=1.0,
        metavar="DURATION",
        help="ignore latency changes smaller than this (default 1ms)",
    )
    compare.add_argument(
        "--json", dest="json_file", metavar="FILE", help="write the comparison as JSON"
    )

    report = sub.add_parser("report", help="export a session as HTML, CSV (timeline) or JUnit XML")
    report.add_argument("session", help="a session file (.toml or .json)")
    report.add_argument("--html", metavar="FILE", help="a self-contained HTML report")
    report.add_argument("--csv", metavar="FILE", help="the per-second timeline as CSV")
    report.add_argument("--junit", metavar="FILE", help="thresholds as JUnit XML test cases")

    imports = sub.add_parser(
        "import", help="write a profile from a curl command, a HAR file or an OpenAPI spec"
    )
    imports.add_argument("kind", choices=("curl", "har", "openapi"), help="what SOURCE is")
    imports.add_argument("source", help="the curl command line (one quoted argument), or the file")
    imports.add_argument(
        "--out", metavar="FILE", help="the profile to write (default profiles/NAME.toml)"
    )
    imports.add_argument("--name", help="the profile's name")
    imports.add_argument(
        "--base-url", help="the target's base URL (OpenAPI: instead of the spec's servers)"
    )
    imports.add_argument("--force", action="store_true", help="overwrite an existing profile")

    server = sub.add_parser("demo-server", help="serve the built-in demo target on 127.0.0.1")
    server.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")

    sub.add_parser("presets", help="list the named load presets")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `stressdeck run ... | head`: the reader left; say nothing more, like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The console has its own parser: `stressdeck`, `stressdeck PROFILE`, `stressdeck demo`,
    # `stressdeck view SESSION`.
    if (
        not args_list
        or args_list[0] in CONSOLE_COMMANDS
        or (args_list[0] not in SUBCOMMANDS and not args_list[0].startswith("-"))
    ):
        return _console(args_list)
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command in ("replay", "compare", "report"):
            from stressdeck import cli_sessions

            return int(getattr(cli_sessions, f"cmd_{args.command}")(args))
        if args.command == "import":
            return cmd_import(args)
        if args.command == "demo-server":
            return cmd_demo_server(args)
        if args.command == "presets":
            for name, meaning in PRESET_HELP.items():
                print(f"{name:7} {meaning}")
            return EXIT_OK
    except InputError as exc:
        print(f"error: {printable(exc.line())}", file=sys.stderr)
        return EXIT_USAGE
    except WriteError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    build_parser().print_help()
    return EXIT_USAGE


def _console(argv: list[str]) -> int:
    try:
        from stressdeck.ui.main import console_main
    except ImportError as exc:  # the console ships with the package; this is a broken install
        print(f"error: the console is not available ({exc})", file=sys.stderr)
        return EXIT_FAILED
    return console_main(argv)


def plan_from_args(args: argparse.Namespace, profile_path: str) -> Plan:
    profile = load_profile(profile_path)
    return build_plan(
        profile,
        base_url=args.base_url,
        users=args.users,
        rate=args.rate,
        model=args.model,
        duration=args.duration,
        requests=args.requests,
        preset=args.preset,
        max_duration=args.max_duration,
        metrics_url=args.metrics_url,
        metrics=args.metric,
        i_know=args.i_know,
    )


def check_output_paths(args: argparse.Namespace) -> None:
    """Refuse a --save or --json that cannot be written before the run, not after it."""
    save = getattr(args, "save", None)
    if save:
        path = Path(save)
        if path.suffix.lower() not in SUFFIXES:
            raise InputError(
                "--save", "", f"expected a .toml or .json file name, got {printable(save)}"
            )
        if path.exists() and not args.force:
            raise InputError(
                "--save", "", f"{printable(save)} already exists (use --force to overwrite)"
            )
    refuse_unwritable("--save", save)
    refuse_unwritable("--json", getattr(args, "json_file", None))


def autosave_path(directory: str = AUTOSAVE_DIR) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(directory) / f"autosave-{stamp}.toml"
    counter = 1
    while path.exists():
        path = Path(directory) / f"autosave-{stamp}-{counter}.toml"
        counter += 1
    return path


def keep_session(
    args: argparse.Namespace,
    plan: Plan,
    snapshot: Snapshot,
    *,
    partial: bool,
    replay_of: str | None = None,
) -> bool:
    """Save to --save; a partial run with no usable --save goes to sessions/autosave-*.toml.

    A --save that fails after the run (a full disk, a directory gone) falls back to the
    autosave as well: a measured run should never end up only on the screen. Returns False
    when the session is not where it was asked for (--save, or a partial run's autosave).
    """
    targets: list[tuple[str | Path, bool]] = []
    wanted = getattr(args, "save", None)
    if wanted:
        targets.append((wanted, bool(args.force)))
    if partial or wanted:
        targets.append((autosave_path(), False))
    kind = "partial session" if partial else "session"
    keep_secrets = bool(getattr(args, "keep_secrets", False))
    for attempt, (path, overwrite) in enumerate(targets):
        try:
            written = save_session(
                path,
                plan,
                snapshot,
                overwrite=overwrite,
                keep_secrets=keep_secrets,
                replay_of=replay_of,
            )
        except WriteError as exc:
            print(f"error: {printable(exc)}", file=sys.stderr)
            continue
        instead = " instead" if attempt and wanted else ""
        print(f"{kind} saved{instead}: {printable(written)}", flush=True)
        return attempt == 0
    return not targets


def cmd_import(args: argparse.Namespace) -> int:
    from stressdeck.importers import import_command

    path, warnings = import_command(
        args.kind,
        args.source,
        out=args.out,
        base_url=args.base_url,
        name=args.name,
        overwrite=args.force,
    )
    for warning in warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    print(f"profile written: {printable(path)}")
    print(f"run it with: stressdeck run {printable(path)}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args, args.profile)
    check_output_paths(args)
    return run_and_keep(args, plan)


def run_and_keep(
    args: argparse.Namespace,
    plan: Plan,
    *,
    steer: Steer | None = None,
    replay_of: str | None = None,
) -> int:
    """Run headless, print the summary, write --json and the session; the exit code of the run."""
    handles: list[RunHandle] = []
    try:
        final, interrupted = asyncio.run(
            run_headless(
                plan,
                quiet=args.quiet,
                steer=steer,
                on_start=handles.append,
                processes=resolve_processes(getattr(args, "processes", "auto")),
            )
        )
    except Exception:
        # A crash mid-run: keep what was measured before the traceback.
        if handles:
            keep_session(args, plan, handles[0].latest, partial=True, replay_of=replay_of)
        raise
    print(summary_text(final))
    code = EXIT_OK
    if getattr(args, "json_file", None):
        buffer = io.StringIO()
        write_json(final, buffer, plan.name)
        try:
            write_atomic(args.json_file, buffer.getvalue())
        except WriteError as exc:
            print(f"error: {printable(exc)}", file=sys.stderr)
            code = EXIT_FAILED
    crashed = final.stop_reason.startswith("worker") or final.stop_reason.startswith(
        "internal error"
    )
    if not keep_session(args, plan, final, partial=interrupted or crashed, replay_of=replay_of):
        code = EXIT_FAILED
    if interrupted:
        return EXIT_INTERRUPTED
    if crashed:
        return EXIT_FAILED
    if not final.thresholds_ok:
        return EXIT_THRESHOLDS
    return code


async def run_headless(
    plan: Plan,
    *,
    quiet: bool = False,
    steer: Steer | None = None,
    on_start: Callable[[RunHandle], None] | None = None,
    processes: int = 1,
) -> tuple[Snapshot, bool]:
    """Run a plan to its end, printing a progress line a second; Ctrl+C/SIGTERM stop it cleanly.

    ``steer`` runs beside the run with its handle (a replay applies its control log there).
    """
    handle = await start(plan, processes)
    if on_start is not None:
        on_start(handle)
    interrupted = False
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        nonlocal interrupted
        interrupted = True
        loop.create_task(handle.stop(INTERRUPTED))

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)

    def on_steer_done(task: asyncio.Task[None]) -> None:
        # A failing steer ends the run at once: its changes would be missing from then on.
        if not task.cancelled() and (failure := task.exception()) is not None:
            loop.create_task(handle.stop(f"internal error: {type(failure).__name__}: {failure}"))

    steering: asyncio.Task[None] | None = None
    if steer is not None:
        steering = loop.create_task(steer(handle))
        steering.add_done_callback(on_steer_done)
    try:
        if not quiet:
            print(
                f"stressdeck {__version__}: {printable(plan.name)} -> {printable(plan.target)} "
                f"({plan.load.model} model, Ctrl+C stops and keeps the results)",
                flush=True,
            )
        last_second = 0
        async for snapshot in handle.snapshots():
            if not quiet and (int(snapshot.elapsed) > last_second or snapshot.finished):
                last_second = int(snapshot.elapsed)
                print(progress_line(snapshot), flush=True)
        if steering is not None and steering.done() and not steering.cancelled():
            failure = steering.exception()
            if failure is not None:
                raise failure
        return handle.latest, interrupted
    except Exception as exc:
        # Stop the workers and flush, so whoever saves the partial session gets the final figures.
        if not handle.latest.finished:
            await handle.stop(f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        if steering is not None and not steering.done():
            steering.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def cmd_demo_server(args: argparse.Namespace) -> int:
    from stressdeck.demo import serve_forever

    serve_forever(args.port)
    return EXIT_OK
