"""The command line: `stressdeck [PROFILE]` opens the console; subcommands run headless."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stressdeck.cli.options import (
    _duration_ms,
    add_i_know_option,
    add_load_options,
    add_processes_option,
    add_save_options,
    add_serve_metrics_option,
    add_url_options,
)
from stressdeck.core.errors import InputError
from stressdeck.core.exits import (
    EXIT_FAILED,
    EXIT_HANGUP,
    EXIT_OK,
    EXIT_USAGE,
)
from stressdeck.core.files import WriteError
from stressdeck.core.pipes import reader_may_leave
from stressdeck.core.signals import Stopped, exit_code, pending_stop, stop_signals
from stressdeck.core.text import printable
from stressdeck.profiles.presets import PRESET_HELP

CONSOLE_COMMANDS = ("demo", "console", "view")  # parsed by the console's own parser


CONSOLE_HELP = """the console (keyboard, 80x24 and up; ? in it lists every key):
  stressdeck                        pick a profile under profiles/, type a URL or paste curl
  stressdeck PROFILE|URL [options]  open one (`stressdeck PROFILE --help`: its options)
  stressdeck demo                   the built-in demo target and its profile
  stressdeck view SESSION           a saved run, read-only

examples:
  stressdeck http://127.0.0.1:8080/health --users 20 --duration 1m
  stressdeck run http://127.0.0.1:8080/items -X POST -H "Content-Type: application/json" -d '{}'
  stressdeck run profiles/demo-mix.toml --json results.json --save sessions/base.toml"""


class _Version(argparse.Action):
    """``--version``, read only when asked for: the package metadata it comes from takes
    importlib.metadata, slow to import, which --help and the commands need not pay for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from stressdeck import __version__

        print(f"stressdeck {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stressdeck",
        description="Load and stress test HTTP backends: a console to watch and steer a run, "
        "and the same engine headless for CI.",
        epilog=CONSOLE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a profile (or one URL) headless and print a summary",
        description="Run a profile, or one URL, headless: a progress line a second, then a "
        "summary; exit 3 when a threshold failed, 4 when not one request was answered.",
    )
    run.add_argument("profile", metavar="PROFILE|URL", help="a profile file, or a URL")
    add_load_options(run)
    add_url_options(run)
    run.add_argument("--json", dest="json_file", metavar="FILE", help="write the results as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    add_save_options(run)

    from stressdeck.cli.limit import add_find_limit_parser  # its module: see COMMANDS

    add_find_limit_parser(sub)

    replay = sub.add_parser(
        "replay", help="run a saved session's plan again, with its live changes"
    )
    replay.add_argument("session", help="a session file (.toml or .json)")
    replay.add_argument("--base-url", help="send to this base URL instead of the saved one")
    replay.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    replay.add_argument("--ui", action="store_true", help="replay in the console")
    replay.add_argument(
        "--json", dest="json_file", metavar="FILE", help="write the results as JSON"
    )
    add_processes_option(replay)
    add_i_know_option(replay)
    add_serve_metrics_option(replay)
    add_save_options(replay)

    compare = sub.add_parser(
        "compare",
        help="compare sessions; exit 3 on a regression, 4 when the runs cannot tell",
        usage="stressdeck compare BASE NEW | BASE... -- NEW... | --baseline DIR NEW... [options]",
    )
    compare.add_argument(
        "sessions",
        nargs="*",
        metavar="SESSION",
        help="session files, directories of them or globs; several runs a side: A1 A2 -- B1 B2",
    )
    compare.add_argument(
        "--baseline",
        metavar="DIR",
        help="compare each session with the one of the same file name in DIR",
    )
    compare.add_argument(
        "--html",
        metavar="FILE",
        help="write the comparison as HTML, with both sides' timelines second by second",
    )
    compare.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="what to print: text (default), markdown (a PR comment) or json",
    )
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
    compare.add_argument(
        "--force", action="store_true", help="overwrite an existing --json or --html file"
    )

    report = sub.add_parser("report", help="export a session as HTML, CSV (timeline) or JUnit XML")
    report.add_argument("session", help="a session file (.toml or .json)")
    report.add_argument("--html", metavar="FILE", help="a self-contained HTML report")
    report.add_argument("--csv", metavar="FILE", help="the per-second timeline as CSV")
    report.add_argument("--junit", metavar="FILE", help="thresholds as JUnit XML test cases")
    report.add_argument("--force", action="store_true", help="overwrite existing files")

    imports = sub.add_parser(
        "import", help="write a profile from a curl command, a HAR file or an OpenAPI spec"
    )
    imports.add_argument("kind", choices=("curl", "har", "openapi"), help="what SOURCE is")
    imports.add_argument(
        "source",
        help="the curl command line (one quoted argument), the file, or (openapi) the spec's "
        "URL, e.g. http://127.0.0.1:8000/openapi.json",
    )
    imports.add_argument(
        "--out", metavar="FILE", help="the profile to write (default profiles/NAME.toml)"
    )
    imports.add_argument("--name", help="the profile's name")
    imports.add_argument(
        "--base-url", help="the target's base URL (OpenAPI: instead of the spec's servers)"
    )
    imports.add_argument("--force", action="store_true", help="overwrite an existing profile")
    imports.add_argument(
        "--allow-remote",
        action="store_true",
        help="openapi: fetch the spec from a host that is not this machine",
    )

    server = sub.add_parser("demo-server", help="serve the built-in demo target on 127.0.0.1")
    server.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")

    sub.add_parser("presets", help="list the named load presets")
    # Listed for --help (they are parsed by the console's own parser, see _main).
    sub.add_parser("demo", help="open the console on the built-in demo target", add_help=False)
    sub.add_parser("view", help="open a saved session in the console, read-only", add_help=False)
    return parser


def subcommand_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand, to show its own usage with an error."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name, parser)  # type: ignore[no-any-return]
    return parser


def mistyped_command(word: str) -> str | None:
    """The command ``word`` was probably meant to be (``rnu`` → ``run``), or None when it
    reads as a profile or a URL the console should open."""
    if word.startswith("-") or "." in word or "/" in word or ":" in word:
        return None
    if Path(word).exists():
        return None
    close = difflib.get_close_matches(word, [*SUBCOMMANDS, *CONSOLE_COMMANDS], n=1, cutoff=0.6)
    return close[0] if close else None


def main(argv: Sequence[str] | None = None) -> int:
    with stop_signals():
        try:
            code = _main(argv)
        except Stopped as stop:
            # Before the run started (reading the profile, building the plan): nothing was
            # sent, nothing measured, and no traceback for a Ctrl+C.
            print(f"stopped by {stop} before the run started", file=sys.stderr)
            return stop.code
        except BrokenPipeError:
            # Outside a command's run (the console's --help piped to head, say): the reader
            # left; say nothing more, like other tools.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED
        late = pending_stop()  # came while the results were written: obeyed now
        return exit_code(late) if late is not None and code < EXIT_HANGUP else code


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The console has its own parser: `stressdeck`, `stressdeck PROFILE`, `stressdeck demo`,
    # `stressdeck view SESSION`.
    if args_list and args_list[0] not in (*SUBCOMMANDS, *CONSOLE_COMMANDS):
        meant = mistyped_command(args_list[0])
        if meant is not None:
            print(
                f"error: unknown command {printable(args_list[0])!r}; did you mean {meant!r}? "
                "(stressdeck --help lists them)",
                file=sys.stderr,
            )
            return EXIT_USAGE
    if (
        not args_list
        or args_list[0] in CONSOLE_COMMANDS
        or (args_list[0] not in SUBCOMMANDS and not args_list[0].startswith("-"))
    ):
        return _console(args_list)
    if args_list[0] == "compare" and "--" in args_list:
        from stressdeck.cli.sessions import SIDE_SEPARATOR

        # argparse would swallow the "--" between the sides; keep it as a marker.
        at = args_list.index("--")
        args_list = [*args_list[:at], SIDE_SEPARATOR, *args_list[at + 1 :]]
    parser = build_parser()
    args, extra = parser.parse_known_args(args_list)
    if extra:
        # The subcommand's own usage, not the top level's: it names the options that exist.
        subcommand_parser(parser, args.command).error("unrecognized arguments: " + " ".join(extra))
    handler = COMMANDS.get(args.command)
    if handler is None:
        build_parser().print_help()
        return EXIT_USAGE
    try:
        with reader_may_leave():  # `| head`: the run goes on, its files are written
            return handler(args)
    except InputError as exc:
        print(f"error: {printable(exc.line())}", file=sys.stderr)
        return EXIT_USAGE
    except WriteError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _console(argv: list[str]) -> int:
    # Imported here, not at the top, so headless commands never load Textual.
    from stressdeck.cli.console import console_main

    return console_main(argv)


def cmd_presets(args: argparse.Namespace) -> int:
    for name, meaning in PRESET_HELP.items():
        print(f"{name:7} {meaning}")
    return EXIT_OK


# Each command's module is imported when the command runs: the console (the most used
# command, and the one whose start-up is watched) and --help need none of the others'
# imports (the find-limit search, compare's reports, the importers).


def cmd_run(args: argparse.Namespace) -> int:
    from stressdeck.cli.run import cmd_run as command

    return command(args)


def cmd_find_limit(args: argparse.Namespace) -> int:
    from stressdeck.cli.limit import cmd_find_limit as command

    return command(args)


def cmd_replay(args: argparse.Namespace) -> int:
    from stressdeck.cli.sessions import cmd_replay as command

    return command(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from stressdeck.cli.sessions import cmd_compare as command

    return command(args)


def cmd_report(args: argparse.Namespace) -> int:
    from stressdeck.cli.sessions import cmd_report as command

    return command(args)


def cmd_import(args: argparse.Namespace) -> int:
    from stressdeck.cli.tools import cmd_import as command

    return command(args)


def cmd_demo_server(args: argparse.Namespace) -> int:
    from stressdeck.cli.tools import cmd_demo_server as command

    return command(args)


# Explicit dispatch: every subcommand and the function that runs it.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "find-limit": cmd_find_limit,
    "replay": cmd_replay,
    "compare": cmd_compare,
    "report": cmd_report,
    "import": cmd_import,
    "demo-server": cmd_demo_server,
    "presets": cmd_presets,
}
SUBCOMMANDS = tuple(COMMANDS)
