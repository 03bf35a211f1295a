"""``stressdeck [PROFILE | demo] [load options] [--target-pid PID] [--baseline SESSION]``:
open the console. ``stressdeck view SESSION``: look at a saved run.

No profile opens the picker over profiles/; a profile opens straight onto it; ``demo``
starts the embedded demo target on a free loopback port for the life of the console and
opens the demo profile pointed at it. ``--baseline`` shows a saved run's figures under the
live ones; ``view`` opens a saved session's final figures read-only.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from stressdeck.cli.options import (
    add_load_options,
    add_url_options,
    metrics_server_from,
    profile_from_args,
    worker_placement,
)
from stressdeck.core.errors import InputError
from stressdeck.core.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from stressdeck.core.files import WriteError, write_atomic
from stressdeck.core.redact import redacted_fields
from stressdeck.core.signals import check_stop
from stressdeck.core.text import printable
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.processes import ProcessWorker, resolve_processes
from stressdeck.observe.monitor import check_pid
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.format import size
from stressdeck.ui.keys import CONTROLS
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource

if TYPE_CHECKING:
    from stressdeck.engine.runner import WorkerFactory
    from stressdeck.engine.snapshot import Snapshot
    from stressdeck.sessions.session import Session

# The sessions, the runner and the demo target are imported where they are used: a console
# on a profile shows its first screen without them (ui.controller.preload_run brings the
# runner in once it is up).

DEMO = "demo"


def build_parser() -> argparse.ArgumentParser:

    keys = "\n".join(f"  {c.help}" for c in CONTROLS)
    parser = argparse.ArgumentParser(
        prog="stressdeck",
        description="Open the load-testing console (no profile: pick one).",
        epilog=f"keys in the console:\n{keys}\n  1-6: Overview, Endpoints, Charts, Host, Log, Target; ctrl+p: command palette",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "profile",
        nargs="?",
        metavar="PROFILE|URL",
        help='a profile file (.toml or .json), a URL to test at once, or "demo"',
    )
    add_load_options(parser)
    add_url_options(parser)
    parser.add_argument(
        "--target-pid",
        type=int,
        metavar="PID",
        help="also watch this process's CPU and memory (the backend under test)",
    )
    parser.add_argument(
        "--baseline",
        metavar="SESSION",
        help="a saved session whose per-endpoint figures are shown under the live ones",
    )
    parser.add_argument(
        "--profiles-dir", type=Path, default=Path("profiles"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--sessions-dir", type=Path, default=Path("sessions"), help=argparse.SUPPRESS
    )
    return parser


@contextmanager
def demo_profile() -> Iterator[Path]:
    """The packaged demo profile as a real file, wherever the package is installed."""
    with resources.as_file(resources.files("stressdeck") / "profiles" / "demo.toml") as path:
        yield path


def build_view_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stressdeck view", description="Open a saved session in the console, read-only."
    )
    parser.add_argument("session", help="a session file (.toml or .json)")
    parser.add_argument("--baseline", metavar="SESSION", help="another session to show under it")
    return parser


def console_main(argv: list[str]) -> int:
    """Run the console; 0 when it was closed normally, 2 on bad input (one line on stderr)."""
    argv = list(argv)
    if argv[:1] == ["console"]:
        argv = argv[1:]
    if argv[:1] == ["view"]:
        view_args = build_view_parser().parse_args(argv[1:])
        try:
            app = view_app(view_args.session, baseline=view_args.baseline)
        except InputError as exc:
            print(f"error: {printable(exc.line())}", file=sys.stderr)
            return EXIT_USAGE
        app.handle_signals = True  # a stop signal closes it (nothing runs: nothing to save)
        app.run()
        return app.return_code or EXIT_OK
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on a usage error
    try:
        if args.target_pid is not None:
            try:
                check_pid(args.target_pid)
            except ValueError as exc:
                raise InputError("--target-pid", "", str(exc)) from None
        if args.profile == DEMO:
            return _run_demo(args)
        return _run(args, args.profile, Overrides.from_args(args))
    except InputError as exc:
        print(f"error: {printable(exc.line())}", file=sys.stderr)
        return EXIT_USAGE


def _run_demo(args: argparse.Namespace) -> int:
    from stressdeck.observe.demo import DemoServerThread

    overrides = Overrides.from_args(args)
    with DemoServerThread() as server, demo_profile() as profile:
        # The demo target only ever listens on loopback; the profile follows wherever it is.
        overrides = overrides.changed(base_url=server.url)
        return _run(args, str(profile), overrides)


def load_baseline(path: str) -> tuple[Snapshot, str]:
    """A saved session's final snapshot and its title (the file name); raises InputError."""
    from stressdeck.sessions.session import load_session, snapshot_from_session

    return snapshot_from_session(load_session(path)), Path(path).name


def view_app(session_path: str, *, baseline: str | None = None) -> StressDeckApp:
    """A saved session on the dashboard, read-only; raises InputError (one line) on a bad file."""
    from stressdeck.sessions.session import load_session, snapshot_from_session

    session = load_session(session_path)
    title = Path(session_path).name
    host = session.host
    recorded = (
        f"recorded {session.created} on {host.os}, {host.cores} cores, {size(host.ram_bytes)} RAM "
        "(a saved session: no live host figures)"
    )
    notes = [f"viewing {title} read-only: run controls are off"]
    base, base_title = load_baseline(baseline) if baseline else (None, "")
    return StressDeckApp(
        options=ConsoleOptions(
            static_snapshot=snapshot_from_session(session),
            static_title=f"{title}: {session.plan.name}",
            notes=tuple(notes),
            baseline=base,
            baseline_title=base_title,
            host_note=recorded,
            worker_factory=None,
        )
    )


def replay_app(
    session_path: str,
    session: Session | None = None,
    *,
    base_url: str | None = None,
    processes: int = 1,
    i_know: bool = False,
    worker_factory: WorkerFactory | None = None,
    placement_notes: Sequence[str] = (),
) -> StressDeckApp:
    """The console on a saved session's plan, started at once and steered by its control
    log, as the headless replay does; raises InputError."""
    from stressdeck.sessions.replay import replay_events, replay_inputs, steer, stop_offset
    from stressdeck.sessions.session import load_session

    session = session or load_session(session_path)
    profile, overrides, _ = replay_inputs(session, session_path, base_url=base_url, i_know=i_know)
    load = session.plan.load
    source = PlanSource(profile, overrides, load.max_duration, load.tick, i_know)
    redacted = redacted_fields(session.plan.document)
    notes = (
        [f'{", ".join(redacted)} were redacted when saved; the replay sends "<redacted>"']
        if redacted
        else []
    )
    driver = partial(steer, events=replay_events(session), stop_at=stop_offset(session))
    return StressDeckApp(
        source,
        ConsoleOptions(
            autostart=True,
            steer=driver,
            notes=(*notes, *placement_notes),
            processes=processes,
            i_know=i_know,
            replay_of=session_path,
            worker_factory=worker_factory or ProcessWorker,
        ),
    )


def replay(args: argparse.Namespace, session: Session) -> int:
    """`stressdeck replay SESSION --ui`, its options already checked; ``--save`` is written
    when the console closes (a run still going is stopped first), as the headless replay
    writes it, falling back to sessions/autosave-* when it cannot be."""
    from stressdeck.sessions.autosave import keep_session
    from stressdeck.sessions.summary import write_json

    try:
        with worker_placement(args) as (processes, factory):
            app = replay_app(
                args.session,
                session,
                base_url=args.base_url,
                processes=processes,
                i_know=args.i_know,
                worker_factory=factory,
                placement_notes=_placement_notes(factory),
            )
            _run_with_metrics(app, args)
    except InputError as exc:
        print(f"error: {printable(exc.line())}", file=sys.stderr)
        return EXIT_USAGE
    controller = app.controller
    if (
        getattr(args, "json_file", None)
        and controller is not None
        and controller.handle is not None
        and controller.run_plan is not None
    ):
        buffer = io.StringIO()
        write_json(controller.handle.latest, buffer, controller.run_plan.name)
        try:
            write_atomic(args.json_file, buffer.getvalue())
        except WriteError as exc:
            print(f"error: {printable(exc)}", file=sys.stderr)
            return EXIT_FAILED
    if (
        args.save
        and controller is not None
        and controller.handle is not None
        and controller.run_plan is not None
    ):
        final = controller.handle.latest
        if not keep_session(
            args, controller.run_plan, final, partial=False, replay_of=args.session
        ):
            return EXIT_FAILED
    return app.return_code or EXIT_OK


def _run_with_metrics(app: StressDeckApp, args: argparse.Namespace) -> None:
    """Run the console; with --serve-metrics, the server follows each run until it closes.

    A stop signal stops a run and autosaves it (exit 130, 129 for SIGHUP); one that came
    while the console was starting is acted on as soon as it is up (``on_mount``).
    """
    app.handle_signals = True
    check_stop()  # the last safe point before the terminal is the console's
    app.metrics_server = metrics_server_from(args)
    try:
        app.run()
    finally:
        if app.metrics_server is not None:
            app.metrics_server.close()


def _placement_notes(factory: WorkerFactory | None) -> list[str]:
    """Where a cluster run's workers go, for the console's log (nothing for one machine)."""
    if factory is None or factory is ProcessWorker:
        return []
    from stressdeck.engine.cluster import RayPlacement  # Ray's side: only with --cluster

    if not isinstance(factory, RayPlacement):
        return []
    layout = ", ".join(f"{node} ×{count}" for node, count in factory.shape().items())
    return [f"cluster: {layout}", *factory.notes]


def console_app(
    args: argparse.Namespace,
    profile: str | None,
    overrides: Overrides,
    *,
    processes: int | None = None,
    worker_factory: WorkerFactory | None = None,
) -> StressDeckApp:
    """The console for parsed options, not yet running; raises InputError. ``processes``
    and ``worker_factory`` come from ``--cluster`` (None: worker processes here)."""

    source = None
    if profile:
        # A URL or a profile file, with the same checks as `stressdeck run` gives them.
        source = PlanSource(
            profile_from_args(args, profile), overrides, args.max_duration, i_know=args.i_know
        )
        source.build()
    baseline, baseline_title = load_baseline(args.baseline) if args.baseline else (None, "")
    notes = (
        [f"baseline {baseline_title}: its figures are the dim ↳ rows in Endpoints (2)"]
        if baseline
        else []
    ) + _placement_notes(worker_factory)
    return StressDeckApp(
        source,
        ConsoleOptions(
            overrides=overrides,
            max_duration=args.max_duration,
            target_pid=args.target_pid,
            profiles_dir=args.profiles_dir,
            sessions_dir=args.sessions_dir,
            processes=processes if processes is not None else resolve_processes(args.processes),
            i_know=args.i_know,
            baseline=baseline,
            baseline_title=baseline_title,
            notes=tuple(notes),
            worker_factory=worker_factory or ProcessWorker,
        ),
    )


def _run(args: argparse.Namespace, profile: str | None, overrides: Overrides) -> int:
    with worker_placement(args) as (processes, factory):
        app = console_app(
            args,
            profile,
            overrides,
            processes=processes if factory else None,
            worker_factory=factory,
        )
        app.handle_signals = True  # this process is the console's: SIGTERM autosaves a run
        _run_with_metrics(app, args)
    # After run(): the terminal is the shell's again, so the line stays on screen.
    if app.autosaved is not None:
        print(f"partial session saved: {printable(app.autosaved)}", flush=True)
    if app.autosave_error is not None:
        print(f"error: {printable(app.autosave_error)}", file=sys.stderr)
        return EXIT_FAILED
    return app.return_code or EXIT_OK  # non-zero when the app itself failed (130: a signal)


if __name__ == "__main__":  # python -m stressdeck.cli.console [...]
    raise SystemExit(console_main(sys.argv[1:]))
