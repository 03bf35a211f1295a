"""compare_noise.py: does `compare` tell a real regression from noise on a busy machine?

Not a test (issue 24 §1). Starts, each in its own process on 127.0.0.1, three servers and a
process that burns one core for the whole benchmark (the "busy host"):

* A: answers after a fixed service time (5 ms by default);
* B: the same, 30 % slower (6.5 ms): a real regression;
* C: answers at once, with a 500 for 2 % of requests at random.

Then it makes short runs (3 s, 10 users, closed model, engine API in this process),
interleaved A, A, B, C, C so drifting host load touches every pool alike, and compares:

* 1-run sides: A/A pairs (two fresh A runs each), A/B pairs, C/C pairs;
* 3-run sides: the same kinds of pairs, each side 3 runs drawn without replacement from the
  pools (seeded), so one pair never holds a run twice but pairs share runs.

It prints, per kind, how many pairs said regression, inconclusive (and why) and no change,
against the goals: A/A at most 1 of 20 regression; A/B at least 19 of 20 regression
(inconclusive is a miss); C/C at most 1 of 20 regression. Each run keeps its host noise
(other processes' CPU: the burner and the three servers are started outside this process's
tree, so they count as other processes, as a neighbour and a target on the same machine do),
so a host busier than "one core burnt" shows in the figures, and in the verdicts when the
sides' hosts differed by 25 points or more. ``--keep DIR`` saves the runs; ``--judge DIR``
judges saved runs again without running (the method may have changed since). Last, every
pair of kept runs is judged with 1-run sides (hundreds of pairs, including runs made minutes
apart): the false-alarm and detection rates to a point or two.

    PYTHONPATH=src .venv/bin/python benchmarks/compare_noise.py --keep /tmp/noise-runs  # ~5 min
    PYTHONPATH=src .venv/bin/python benchmarks/compare_noise.py --judge /tmp/noise-runs
    PYTHONPATH=src .venv/bin/python benchmarks/compare_noise.py --pairs 4   # a smoke check
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.compare import INCONCLUSIVE, REGRESSION, Comparison, compare_sides
from stressdeck.sessions.session import Session, build_session, load_session, write_session


def _serve(sock: socket.socket, delay: float, error_share: float, seed: int) -> None:
    chance = random.Random(seed)

    async def handle(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        if error_share and chance.random() < error_share:
            return web.Response(status=500, text="boom")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handle)
    web.run_app(app, sock=sock, print=None, handle_signals=True)


def _burn(until: float) -> None:
    """Keep one core busy until ``until`` (monotonic): another tenant of the machine."""
    while time.monotonic() < until:
        pass


def detached(target: Callable[..., None], *args: Any) -> int:
    """Run ``target(*args)`` in a process that is not a descendant of this one; its pid.

    The servers and the burner are other tenants of the machine, as a target and a neighbour
    are in real use: the run's host meter counts this process's descendants as the
    generator's own CPU, so a child burning a core would hide from it. A middle process forks
    the worker and exits at once: the worker is re-parented away from us."""
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read)
        worker = os.fork()
        if worker == 0:
            os.close(write)
            os.setsid()  # its own session: a ctrl-c here reaches it only through terminate
            try:
                target(*args)
            finally:
                os._exit(0)
        os.write(write, str(worker).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        pid = int(pipe.read())
    os.waitpid(middle, 0)
    return pid


def terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # already gone


def start_server(delay: float, error_share: float, seed: int) -> tuple[int, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    pid = detached(_serve, sock, delay, error_share, seed)
    sock.close()
    return pid, f"http://127.0.0.1:{port}"


def run_once(base_url: str, seconds: float, users: int) -> Session:
    document = {
        "name": "compare noise",
        "base_url": base_url,
        "load": {"model": "closed", "users": users, "duration": f"{seconds}s"},
        "endpoints": [{"name": "work", "path": "/"}],
    }
    plan = build_plan(parse_profile(document, "compare_noise.toml"), Overrides())

    async def go() -> Any:
        handle = await start(plan)
        return await handle.wait()

    return build_session(plan, asyncio.run(go()))  # the engine reads the host's noise


def tally(comparisons: Sequence[Comparison]) -> tuple[Counter[str], Counter[str]]:
    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for comparison in comparisons:
        verdicts[comparison.verdict or "no change"] += 1
        if comparison.verdict == REGRESSION:
            for name, change in comparison.regressions:
                reasons[f"regressed {name} {change.metric}"] += 1
        elif comparison.verdict == INCONCLUSIVE:
            for _name, change in comparison.inconclusive[:1]:
                reasons[":".join(change.reason.split(":")[:2]).strip()] += 1
    return verdicts, reasons


def pairs_of(
    base: Sequence[Session], new: Sequence[Session], runs: int, pairs: int, same_pool: bool
) -> list[tuple[list[Session], list[Session]]]:
    """``pairs`` pairs of ``runs`` runs a side; A/A pairs draw both sides from one pool."""
    chooser = random.Random(24)
    out = []
    for i in range(pairs):
        if runs == 1:
            if same_pool:
                out.append(([base[2 * i]], [base[2 * i + 1]]))
            else:
                out.append(([base[2 * i]], [new[i]]))
            continue
        if same_pool and len(base) >= 2 * runs:
            drawn = chooser.sample(range(len(base)), 2 * runs)
            out.append(([base[j] for j in drawn[:runs]], [base[j] for j in drawn[runs:]]))
        else:
            out.append(
                (
                    [base[j] for j in chooser.sample(range(len(base)), runs)],
                    [new[j] for j in chooser.sample(range(len(new)), runs)],
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--service-ms", type=float, default=5.0)
    parser.add_argument("--no-burn", action="store_true", help="leave the extra core idle")
    parser.add_argument("--keep", metavar="DIR", help="also save every run's session in DIR")
    parser.add_argument(
        "--judge", metavar="DIR", help="no new runs: judge the sessions a --keep run saved"
    )
    args = parser.parse_args()
    if args.judge:
        pools = {
            kind: [load_session(p) for p in sorted(Path(args.judge).glob(f"{kind}-*.json"))]
            for kind in "ABC"
        }
        args.pairs = min(len(pools["A"]) // 2, len(pools["B"]), len(pools["C"]) // 2)
        report(args, pools, burnt=None)
        return

    per_run = args.seconds + 1.0
    budget = per_run * args.pairs * 5 + 120
    burner = None
    if not args.no_burn:
        # CLOCK_MONOTONIC is one clock for the whole machine: the deadline holds in the burner
        burner = detached(_burn, time.monotonic() + budget)
    servers = {
        "A": start_server(args.service_ms / 1000, 0.0, 1),
        "B": start_server(args.service_ms * 1.3 / 1000, 0.0, 2),
        "C": start_server(0.0, 0.02, 3),
    }
    time.sleep(1.0)  # the servers' processes start listening
    pools: dict[str, list[Session]] = {"A": [], "B": [], "C": []}
    began = time.monotonic()
    try:
        for i in range(args.pairs):
            for kind in ("A", "A", "B", "C", "C"):
                session = run_once(servers[kind][1], args.seconds, args.users)
                if args.keep:
                    index = len(pools[kind])
                    write_session(Path(args.keep) / f"{kind}-{index:03}.json", session)
                pools[kind].append(session)
            print(f"round {i + 1}/{args.pairs} done, {time.monotonic() - began:.0f} s", flush=True)
    finally:
        for pid, _url in servers.values():
            terminate(pid)
        if burner is not None:
            terminate(burner)
    report(args, pools, burnt=burner is not None)


def report(args: argparse.Namespace, pools: dict[str, list[Session]], burnt: bool | None) -> None:
    busy = {True: "one burnt by another process", False: "no burner", None: "saved runs"}[burnt]
    print(f"\ncommand: {' '.join(sys.argv)} (nice {os.nice(0)})")
    print(
        f"{os.cpu_count()} cores, {busy}; "
        f"{args.seconds:g} s runs at {args.users} users; A {args.service_ms:g} ms, "
        f"B {args.service_ms * 1.3:g} ms, C sub-ms with 2 % 500s; {args.pairs} pairs a kind\n"
    )
    a, b, c = pools["A"], pools["B"], pools["C"]
    median_rps = sorted(s.results.total.rps for s in a)[len(a) // 2]
    median_p95 = sorted(s.results.total.latency_ms.p95 for s in a)[len(a) // 2]
    saturated = sum(s.results.generator.saturated_seconds > 0 for s in a + b + c)
    print(f"A runs: median {median_rps:.0f} rps, median p95 {median_p95:.2f} ms")
    print(f"runs with any saturated second: {saturated} of {len(a + b + c)}")
    others = sorted(s.host.noise.other_cpu_percent for s in a + b + c if s.host.noise)
    loads = sorted(s.host.noise.load_average for s in a + b + c if s.host.noise)
    if others:
        print(
            f"other processes' CPU during the runs (% of all cores): median "
            f"{others[len(others) // 2]:.0f}, min {others[0]:.0f}, max {others[-1]:.0f}; "
            f"load average median {loads[len(loads) // 2]:.1f}"
        )
        for kind, pool in pools.items():
            shares = sorted(s.host.noise.other_cpu_percent for s in pool if s.host.noise)
            if shares:
                print(
                    f"  {kind} runs: median {shares[len(shares) // 2]:.0f}, "
                    f"min {shares[0]:.0f}, max {shares[-1]:.0f}"
                )
    print()
    print("| sides | kind | regression | inconclusive | no change | goal | met | why |")
    print("|---|---|--:|--:|--:|---|---|---|")
    goals: dict[str, tuple[str, Callable[[Counter[str]], bool]]] = {
        "A/A": ("≤1 regression", lambda v: v[REGRESSION] <= args.pairs // 20),
        "A/B +30 %": ("≥19 of 20 regression", lambda v: v[REGRESSION] >= args.pairs * 19 / 20),
        "C/C 2 % 500s": ("≤1 regression", lambda v: v[REGRESSION] <= args.pairs // 20),
    }
    error_verdicts: dict[int, Counter[str]] = {}
    for runs in (1, 3):
        if len(pools["A"]) < 2 * runs or len(pools["C"]) < 2 * runs:
            continue
        kinds = {
            "A/A": pairs_of(a, a, runs, args.pairs, same_pool=True),
            "A/B +30 %": pairs_of(a, b, runs, args.pairs, same_pool=False),
            "C/C 2 % 500s": pairs_of(c, c, runs, args.pairs, same_pool=True),
        }
        for kind, pairs in kinds.items():
            comparisons = [compare_sides(base, new) for base, new in pairs]
            if kind.startswith("C/C"):
                error_verdicts[runs] = Counter(
                    next(
                        c.verdict or "no change"
                        for c in cmp.rows[-1].changes
                        if c.metric == "error_rate"
                    )
                    for cmp in comparisons
                )
            verdicts, reasons = tally(comparisons)
            goal, met = goals[kind]
            why = "; ".join(f"{reason} ×{n}" for reason, n in reasons.most_common(3))
            print(
                f"| {runs} run | {kind} | {verdicts[REGRESSION]} | {verdicts[INCONCLUSIVE]} | "
                f"{verdicts['no change']} | {goal} | {'yes' if met(verdicts) else 'NO'} | {why} |"
            )
    _error_lines(error_verdicts)
    _every_pair(a, b, c)


def _every_pair(a: Sequence[Session], b: Sequence[Session], c: Sequence[Session]) -> None:
    """1-run sides over every pair of kept runs, not only consecutive ones: a baseline is
    compared with a run made later, on a host that may have changed in between. Hundreds of
    pairs: the rates are measured to a point or two, where 20 pairs tell 5 % from 25 %."""
    kinds = {
        "A/A": [(x, y) for i, x in enumerate(a) for y in a[i + 1 :]],
        "A/B +30 %": [(x, y) for x in a for y in b],
        "C/C 2 % 500s": [(x, y) for i, x in enumerate(c) for y in c[i + 1 :]],
    }
    print("\nevery pair of kept runs, 1-run sides (% of pairs):")
    print("| kind | pairs | regression | inconclusive | no change |")
    print("|---|--:|--:|--:|--:|")
    for kind, pairs in kinds.items():
        if not pairs:
            continue
        verdicts = Counter(compare_sides([x], [y]).verdict or "no change" for x, y in pairs)
        share = {v: 100 * n / len(pairs) for v, n in verdicts.items()}
        print(
            f"| {kind} | {len(pairs)} | {share.get(REGRESSION, 0):.1f} | "
            f"{share.get(INCONCLUSIVE, 0):.1f} | {share.get('no change', 0):.1f} |"
        )


def _error_lines(error_verdicts: dict[int, Counter[str]]) -> None:
    for runs, verdicts in error_verdicts.items():
        print(f"C/C error rate alone, {runs}-run sides: {dict(verdicts)}")


if __name__ == "__main__":
    main()
