"""The command line: `stressdeck [PROFILE]` opens the console; subcommands run headless."""

from __future__ import annotations

import argparse
import asyncio
import io
import signal
import sys
from collections.abc import Sequence

from stressdeck import __version__
from stressdeck.engine import Plan, Snapshot, build_plan, start
from stressdeck.engine.load import PRESET_HELP, PRESETS
from stressdeck.engine.plan import DEFAULT_MAX_DURATION
from stressdeck.errors import InputError
from stressdeck.files import WriteError, write_atomic
from stressdeck.profile import load_profile
from stressdeck.report import progress_line, summary_text, write_json
from stressdeck.text import printable
from stressdeck.units import parse_duration

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_THRESHOLDS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
SUBCOMMANDS = ("run", "demo", "demo-server", "presets", "console")


def _duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(f'expected a duration like "500ms", "30s" or "2m", got {text!r}')
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


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
    parser.add_argument("--preset", choices=PRESETS, help="a named load shape (see `stressdeck presets`)")
    parser.add_argument("--max-duration", type=_duration, default=DEFAULT_MAX_DURATION,
                        help="safety cap on any run (default 10m)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stressdeck", description="Load and stress test HTTP backends.")
    parser.add_argument("--version", action="version", version=f"stressdeck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a profile headless and print a summary")
    run.add_argument("profile", help="a profile file (.toml or .json)")
    add_load_options(run)
    run.add_argument("--json", dest="json_file", metavar="FILE", help="write the results as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")

    server = sub.add_parser("demo-server", help="serve the built-in demo target on 127.0.0.1")
    server.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")

    sub.add_parser("presets", help="list the named load presets")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0] not in SUBCOMMANDS and not args_list[0].startswith("-")):
        return _console(args_list)
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "demo-server":
            return cmd_demo_server(args)
        if args.command == "presets":
            for name, meaning in PRESET_HELP.items():
                print(f"{name:7} {meaning}")
            return EXIT_OK
        if args.command in ("demo", "console"):
            return _console(args_list)
    except InputError as exc:
        print(f"error: {printable(exc.line())}", file=sys.stderr)
        return EXIT_USAGE
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
        profile, base_url=args.base_url, users=args.users, rate=args.rate, model=args.model,
        duration=args.duration, requests=args.requests, preset=args.preset, max_duration=args.max_duration,
    )


def cmd_run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args, args.profile)
    final, interrupted = asyncio.run(run_headless(plan, quiet=args.quiet))
    print(summary_text(final))
    code = EXIT_OK
    if args.json_file:
        buffer = io.StringIO()
        write_json(final, buffer, plan.name)
        try:
            write_atomic(args.json_file, buffer.getvalue())
        except WriteError as exc:
            print(f"error: {printable(exc)}", file=sys.stderr)
            code = EXIT_FAILED
    if interrupted:
        return EXIT_INTERRUPTED
    if final.stop_reason.startswith("worker") or final.stop_reason.startswith("internal error"):
        return EXIT_FAILED
    if not final.thresholds_ok:
        return EXIT_THRESHOLDS
    return code


async def run_headless(plan: Plan, *, quiet: bool = False) -> tuple[Snapshot, bool]:
    """Run a plan to its end, printing a progress line a second; Ctrl+C/SIGTERM stop it cleanly."""
    handle = await start(plan)
    interrupted = False
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        nonlocal interrupted
        interrupted = True
        loop.create_task(handle.stop("interrupted"))

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        if not quiet:
            print(f"stressdeck {__version__}: {printable(plan.name)} -> {printable(plan.target)} "
                  f"({plan.load.model} model, Ctrl+C stops and keeps the results)", flush=True)
        last_second = 0
        async for snapshot in handle.snapshots():
            if not quiet and (int(snapshot.elapsed) > last_second or snapshot.finished):
                last_second = int(snapshot.elapsed)
                print(progress_line(snapshot), flush=True)
        return handle.latest, interrupted
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def cmd_demo_server(args: argparse.Namespace) -> int:
    from stressdeck.demo import serve_forever

    serve_forever(args.port)
    return EXIT_OK
