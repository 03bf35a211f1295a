"""`stressdeck run`: a profile headless, a progress line a second, a summary, files kept."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from collections.abc import Callable

from stressdeck import __version__
from stressdeck.cli.options import (
    check_output_paths,
    metrics_server_from,
    plan_from_args,
    repeat_paths,
    worker_placement,
)
from stressdeck.core.exits import (
    EXIT_FAILED,
    EXIT_NOTHING_ANSWERED,
    EXIT_OK,
    EXIT_THRESHOLDS,
)
from stressdeck.core.files import WriteError, write_atomic
from stressdeck.core.signals import (
    STOP_SIGNALS,
    check_stop,
    exit_code,
    keep_on_forced_exit,
    pending_stop,
    record_stops,
)
from stressdeck.core.text import printable
from stressdeck.engine import Plan, RunHandle, Snapshot, start
from stressdeck.engine.plan import remote_hosts
from stressdeck.engine.runner import Steer, WorkerFactory
from stressdeck.engine.snapshot import TimelinePoint, cut_short, interrupted_by
from stressdeck.sessions.autosave import autosave_path, keep_session, sent_anything
from stressdeck.sessions.session import save_session
from stressdeck.sessions.summary import nothing_answered, progress_line, summary_text, write_json


def cmd_run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args, args.profile)
    check_output_paths(args)
    return run_repeated(args, plan)


def run_repeated(
    args: argparse.Namespace,
    plan: Plan,
    *,
    steer: Steer | None = None,
    replay_of: str | None = None,
) -> int:
    """``--repeat N``: N runs one after the other, each saved in the --save directory, so
    ``compare`` can weigh the spread between runs. Stops at the first run that was
    interrupted or failed; else exit 3 if any run failed a threshold."""
    if args.repeat == 1:
        return run_and_keep(args, plan, steer=steer, replay_of=replay_of)
    stem = "replay" if replay_of else "run"
    codes = []
    for index, path in enumerate(repeat_paths(args, stem), start=1):
        print(f"{stem} {index} of {args.repeat}", flush=True)
        one = argparse.Namespace(**{**vars(args), "save": str(path)})
        code = run_and_keep(one, plan, steer=steer, replay_of=replay_of)
        if code not in (EXIT_OK, EXIT_THRESHOLDS):
            return code
        codes.append(code)
    print(
        f"{args.repeat} sessions in {printable(args.save)}: compare them with "
        f"stressdeck compare {printable(args.save)} -- OTHER_DIR",
        flush=True,
    )
    return max(codes)


def run_and_keep(
    args: argparse.Namespace,
    plan: Plan,
    *,
    steer: Steer | None = None,
    replay_of: str | None = None,
) -> int:
    """Run headless, print the summary, write --json and the session; the exit code of the run."""
    remote = remote_hosts(plan)
    if remote:
        # The command is the consent (there is nobody to ask), but where the load goes is
        # said before any of it is sent: a typo in a base URL shows here.
        hosts = ", ".join(remote)
        print(
            f"warning: sending load to a host that is not this machine: {printable(hosts)}",
            file=sys.stderr,
            flush=True,
        )
    handles: list[RunHandle] = []
    check_stop()  # the last safe point before anything starts
    server = metrics_server_from(args)  # before the run: a port in use is refused, not half-run
    if server is not None:
        print(f"live metrics for Prometheus: {server.url}", flush=True)

    def started(handle: RunHandle) -> None:
        handles.append(handle)
        keep_on_forced_exit(lambda: _forced_keep(args, plan, handle, replay_of))
        if server is not None:
            server.attach(handle)

    try:
        with worker_placement(args) as (processes, factory):
            final, stopped_by = asyncio.run(
                run_headless(
                    plan,
                    quiet=args.quiet,
                    steer=steer,
                    on_start=started,
                    processes=processes,
                    worker_factory=factory,
                )
            )
    except Exception:
        # A crash mid-run: keep what was measured before the traceback.
        record_stops()
        if handles:
            keep_session(
                args,
                plan,
                handles[0].latest,
                partial=True,
                replay_of=replay_of,
            )
        raise
    finally:
        if server is not None:
            server.close()  # the metrics stop with the run
    record_stops()  # a signal now is obeyed once the session is written
    interrupted = stopped_by is not None
    print(summary_text(final))
    code = EXIT_OK
    if getattr(args, "json_file", None):
        buffer = io.StringIO()
        write_json(final, buffer, plan.name)
        try:
            write_atomic(args.json_file, buffer.getvalue(), overwrite=bool(args.force))
        except WriteError as exc:
            print(f"error: {printable(exc)}", file=sys.stderr)
            code = EXIT_FAILED
    crashed = final.stop_reason.startswith("worker") or final.stop_reason.startswith(
        "internal error"
    )
    keep_on_forced_exit(None)  # written below, the normal way
    if interrupted and not sent_anything(final):
        print("stopped before the first request: nothing measured, no session kept", flush=True)
    elif not keep_session(
        args,
        plan,
        final,
        partial=interrupted or crashed,
        replay_of=replay_of,
    ):
        code = EXIT_FAILED
    if stopped_by is not None:
        return exit_code(stopped_by)
    if crashed:
        return EXIT_FAILED
    if not final.thresholds_ok:
        return EXIT_THRESHOLDS
    if code == EXIT_OK and nothing_answered(final):
        print(
            "error: nothing answered: not one request got an HTTP response (exit 5)",
            file=sys.stderr,
        )
        return EXIT_NOTHING_ANSWERED
    return code


def _forced_keep(
    args: argparse.Namespace, plan: Plan, handle: RunHandle, replay_of: str | None
) -> str | None:
    """For the watchdog, when the run did not stop in time after a signal: its latest
    figures as a partial session (an autosave, as a run stopped by a signal is kept)."""
    final = cut_short(handle.latest, pending_stop())
    if not sent_anything(final):
        return None
    written = save_session(
        autosave_path(),
        plan,
        final,
        keep_secrets=bool(getattr(args, "keep_secrets", False)),
        replay_of=replay_of,
    )
    return f"partial session saved: {printable(written)}"


STEER_END_S = 0.5  # seconds a steer gets to end once its run has ended


async def run_headless(
    plan: Plan,
    *,
    quiet: bool = False,
    steer: Steer | None = None,
    on_start: Callable[[RunHandle], None] | None = None,
    processes: int = 1,
    worker_factory: WorkerFactory | None = None,
) -> tuple[Snapshot, int | None]:
    """Run a plan to its end, printing a progress line a second; the final snapshot and the
    stop signal that ended it (None: it ended by itself). SIGINT, SIGTERM and SIGHUP stop
    it cleanly at any moment, the workers' start-up included.

    ``steer`` runs beside the run with its handle (a replay applies its control log there).
    """
    loop = asyncio.get_running_loop()
    stopped_by: list[int] = []  # the stop signal, once one came
    started: list[RunHandle] = []

    def on_signal(signum: int) -> None:
        if not stopped_by:
            stopped_by.append(signum)
        if started:
            loop.create_task(started[0].stop(interrupted_by(stopped_by[0])))

    # Before the workers start: a signal while they do stops the run as soon as it exists.
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    record_stops()  # the watchdog hears of a signal too, should this loop block
    early = pending_stop()  # came between reading the profile and here
    if early is not None:
        stopped_by.append(early)
    try:
        handle = await start(plan, processes, worker_factory)
    except BaseException:
        _give_back_signals(loop)
        raise
    started.append(handle)
    if on_start is not None:
        on_start(handle)
    if stopped_by:
        loop.create_task(handle.stop(interrupted_by(stopped_by[0])))

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
        # One line per closed second of the timeline (labelled with it), and the final one.
        printed = 0.0
        async for snapshot in handle.snapshots():
            newest = snapshot.timeline[-1].t if snapshot.timeline else 0.0
            if quiet:
                continue
            # Every second closed since the last line, in order (a tick can close two).
            fresh: list[TimelinePoint] = []
            for point in reversed(snapshot.timeline):
                if point.t <= printed:
                    break
                fresh.append(point)
            for point in reversed(fresh):
                print(progress_line(snapshot, point), flush=True)
            if snapshot.finished and newest == 0.0:
                print(progress_line(snapshot), flush=True)
            printed = max(printed, newest)
        if steering is not None and not steering.done():
            # The run is over: a steer that was waiting on it (find-limit's step) is ending
            # too, with what it measured; a moment lets it, before what is left is cancelled.
            await asyncio.wait({steering}, timeout=STEER_END_S)
        if steering is not None and steering.done() and not steering.cancelled():
            failure = steering.exception()
            if failure is not None:
                raise failure
        return handle.latest, (stopped_by[0] if stopped_by else None)
    except Exception as exc:
        # Stop the workers and flush, so whoever saves the partial session gets the final figures.
        if not handle.latest.finished:
            await handle.stop(f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        if steering is not None and not steering.done():
            steering.cancel()
        _give_back_signals(loop)


def _give_back_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Remove the run's handlers; asyncio would leave the defaults (SIGTERM, SIGHUP: die at
    once), so ours come back at the same moment and record any late signal."""
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)
    record_stops()
