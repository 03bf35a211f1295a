"""`stressdeck find-limit`: the highest load a target takes within its SLOs, found by steps."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

from stressdeck.cli.options import (
    add_i_know_option,
    add_processes_option,
    add_save_options,
    add_url_options,
    check_output_paths,
    profile_from_args,
    worker_placement,
)
from stressdeck.core import option_values
from stressdeck.core.errors import InputError
from stressdeck.core.exits import EXIT_FAILED, EXIT_OK
from stressdeck.core.files import WriteError, write_atomic
from stressdeck.core.signals import check_stop, exit_code, record_stops
from stressdeck.core.text import printable
from stressdeck.engine.limit import (
    CLOSED_START,
    DEFAULT_PRECISION,
    MAX_WARMUP,
    OPEN_START,
    DeadTarget,
    LimitResult,
    Search,
    Step,
    StepsEnded,
    default_warmup,
    precision_of,
    search_profile,
    slo_problem,
)
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import MAX_RATE, MAX_USERS, build_plan, remote_hosts
from stressdeck.engine.snapshot import SEARCH_ENDED
from stressdeck.profiles.thresholds import parse_threshold

if TYPE_CHECKING:
    from stressdeck.engine.plan import Plan
    from stressdeck.engine.runner import RunHandle

DEFAULT_STEP = 10.0


def add_find_limit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "find-limit",
        help="find the highest load the target takes within its SLOs",
        description="Step the load (open model: the rate doubles, then is bisected; closed "
        "model: users 1, 2, 5, 10, 20, 50...) until an SLO breaks; print the limit, what "
        "broke it, the bottleneck there and every step.",
    )
    parser.add_argument("profile", metavar="PROFILE|URL", help="a profile file, or a URL")
    parser.add_argument(
        "--slo",
        action="append",
        required=True,
        metavar="EXPR",
        help='an SLO every step must hold, e.g. "p95 < 200ms", "error_rate < 1%%"; repeatable',
    )
    parser.add_argument("--model", choices=("open", "closed"), default="open")
    parser.add_argument(
        "--start",
        type=option_values.positive_float,
        help=f"the first step's load (default {OPEN_START:g} req/s; {CLOSED_START:g} user)",
    )
    parser.add_argument(
        "--max",
        dest="maximum",
        type=option_values.positive_float,
        help=f"the highest load tried (default the safety cap: {MAX_RATE:g} req/s, "
        f"{MAX_USERS} users)",
    )
    parser.add_argument(
        "--step",
        type=option_values.duration,
        default=DEFAULT_STEP,
        help="how long each step is measured (default 10s)",
    )
    parser.add_argument(
        "--warmup",
        type=option_values.duration,
        help="discarded at the start of each step (default a quarter of --step, at most "
        f"{MAX_WARMUP:g}s)",
    )
    parser.add_argument(
        "--precision",
        type=_fraction,
        default=DEFAULT_PRECISION,
        help="bisect until the bracket is this close (default 5%%)",
    )
    parser.add_argument("--base-url", help="send to this base URL instead of the profile's")
    parser.add_argument(
        "--connections",
        type=option_values.positive_int,
        help="open model: keep-alive connections, all processes together (default 64)",
    )
    add_processes_option(parser)
    add_i_know_option(parser)
    add_url_options(parser)
    parser.add_argument("--json", dest="json_file", metavar="FILE", help="write the answer as JSON")
    add_save_options(parser, repeat=False)


def _fraction(text: str) -> float:
    value = precision_of(text)
    if value is None:
        raise argparse.ArgumentTypeError(
            f'expected a percentage between 0 and 100% like "5%", got {text!r}'
        )
    return value


def cmd_find_limit(args: argparse.Namespace) -> int:
    slos = tuple(parse_threshold(text, "--slo", "") for text in args.slo)
    for slo in slos:
        if (problem := slo_problem(slo)) is not None:
            raise InputError("--slo", "", problem)
    profile = profile_from_args(args, args.profile)
    profile = search_profile(profile)
    model = args.model
    step = args.step
    if step is None or step <= 0:
        raise InputError("--step", "", "expected a duration above 0")
    warmup = args.warmup if args.warmup is not None else default_warmup(step)
    cap = MAX_RATE if model == "open" else float(MAX_USERS)
    search = Search(
        model=model,
        slos=slos,
        start=args.start or (OPEN_START if model == "open" else CLOSED_START),
        maximum=args.maximum or cap,
        step=step,
        warmup=warmup,
        precision=args.precision,
    )
    if search.start > search.maximum:
        raise InputError("--start", "", f"expected at most --max ({search.maximum:g})")
    if search.maximum > cap and not args.i_know:
        # Refused now, not mid-search, and named as the option the user gave.
        unit = " requests/s" if model == "open" else " users"
        raise InputError(
            "--max",
            "",
            f"{search.maximum:g}{unit} is above the safety cap of {cap:g}{unit} "
            "(pass --i-know to lift the cap)",
        )
    # One run for the whole search, its load stepped live.
    overrides = Overrides(
        base_url=args.base_url, connections=args.connections, **search.load_overrides()
    )
    plan = build_plan(profile, overrides, max_duration=search.budget + 60, i_know=args.i_know)
    check_output_paths(args)
    return _search(args, search, plan)


def _search(args: argparse.Namespace, search: Search, plan: Plan) -> int:
    remote = remote_hosts(plan)
    if remote:
        print(
            f"warning: sending load to a host that is not this machine: "
            f"{printable(', '.join(remote))}",
            file=sys.stderr,
            flush=True,
        )
    slos = ", ".join(slo.expr for slo in search.slos)
    print(
        f"find-limit: {printable(plan.name)} -> {printable(plan.target)} ({search.model} "
        f"model; SLOs {printable(slos)}; steps of {search.warmup:g}s warm-up + "
        f"{search.step:g}s measured)",
        flush=True,
    )
    print(STEP_HEADER.format(unit=search.unit), flush=True)
    # Here, not at the top: `stressdeck --help` and the other commands need none of it.
    from stressdeck.cli.run import run_headless
    from stressdeck.engine.limit_search import LiveSteps, find_limit
    from stressdeck.sessions.session import save_session

    answer: list[LimitResult] = []
    partial: list[LimitResult] = []  # the steps' answer so far, when the run ended first
    dead: list[DeadTarget] = []

    async def steer(handle: RunHandle) -> None:
        try:
            answer.append(
                await find_limit(
                    search,
                    plan.target,
                    LiveSteps(handle, search),
                    on_step=lambda step: print(step_line(step, search.unit), flush=True),
                )
            )
        except DeadTarget as exc:
            dead.append(exc)
        except StepsEnded as ended:
            # A signal or a cap ended the run (run_headless says which): what the steps
            # measured is still a floor under the limit, kept and saved.
            if ended.partial is not None:
                partial.append(ended.partial)
            return
        await handle.stop(SEARCH_ENDED)

    check_stop()
    with worker_placement(args) as (processes, factory):
        final, stopped_by = asyncio.run(
            run_headless(plan, quiet=True, steer=steer, processes=processes, worker_factory=factory)
        )
    record_stops()
    if dead:
        print(f"error: {printable(str(dead[0]))}", file=sys.stderr)
        return EXIT_FAILED
    code = EXIT_OK
    result = answer[0] if answer else (partial[0] if partial else None)
    if not answer:
        why = "a signal" if stopped_by is not None else printable(final.stop_reason)
        print(f"find-limit stopped by {why} before it found the limit", file=sys.stderr)
        code = exit_code(stopped_by) if stopped_by is not None else EXIT_FAILED
    if result is not None and result.steps:
        print(limit_text(result))
    try:
        if args.json_file and result is not None:
            text = json.dumps(result.to_dict(), indent=2) + "\n"
            write_atomic(args.json_file, text, overwrite=bool(args.force))
        if args.save and final.total.requests:
            # The whole search, one run: its control log replays every step.
            written = save_session(args.save, plan, final, overwrite=bool(args.force), limit=result)
            kind = "session" if answer else "partial session"
            print(f"{kind} saved: {printable(written)}")
    except WriteError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        code = EXIT_FAILED
    return code


STEP_HEADER = "{unit:>9}  achieved   p50 ms   p95 ms   p99 ms   errors  bottleneck   SLOs"


def step_line(step: Step, unit: str) -> str:
    """One row of the steps table."""
    asked = f"{step.asked:.0f}" if unit == "users" else f"{step.asked:g}"
    verdict = "held" if step.held else "broke: " + "; ".join(step.broken)
    if step.recheck:
        verdict += " (measured again)"
    return (
        f"{asked:>9}  {step.achieved:8.1f} {step.latency.p50:8.1f} {step.latency.p95:8.1f} "
        f"{step.latency.p99:8.1f} {step.errors:8d}  {step.bottleneck.kind:<11}  "
        f"{printable(verdict, 200)}"
    )


def limit_text(result: LimitResult) -> str:
    """The answer, after the table: the limit, what broke it and why, the fit."""
    from stressdeck.sessions.summary import bottleneck_line

    unit = result.search.unit
    lines = []
    if result.limit is None:
        lines.append(f"limit: none found ({printable(result.why)})")
    else:
        figure = f"{result.limit:.0f} {unit}" if unit == "users" else f"{result.limit:g} {unit}"
        lines.append(f"limit: {'at least ' if result.at_least else ''}{figure}")
        lines.append(f"  {printable(result.why)}")
    if result.broken_by is not None and result.broken_at is not None:
        lines.append(f"  first broke at {result.broken_at:g} {unit}: {printable(result.broken_by)}")
    if result.bottleneck.kind != "none":
        lines.append("  at the break, " + bottleneck_line(result.bottleneck))
    if result.usl is not None:
        lines.append(result.usl.text())
    return "\n".join(lines)
