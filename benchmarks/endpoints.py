"""Memory per endpoint: a profile with thousands of endpoints (an OpenAPI import) must run.

Not a test. Issue #16 item 5: 1,000 endpoints took 1.7 GB of RSS (three dense 184 KB HDR
histograms per endpoint, in every recorder and every total) and 4,000 sent no request at
all. Each row runs a profile of N endpoints for a few seconds against an aiohttp target on
127.0.0.1 (its own process: its memory is not ours), every endpoint hit, and gives our peak
RSS summed over our process tree, sampled every 100 ms. The growth per endpoint is measured
against the 1-endpoint row of the same run.

    .venv/bin/python benchmarks/endpoints.py             # 1, 1,000, 20,000 and 100,000 endpoints
    .venv/bin/python benchmarks/endpoints.py --counts 1 500 --seconds 3 --processes 2

Issue 27.4: 20,000 endpoints did not finish a 4 s run in 240 s (every tick cut, sent, merged
and summarised every endpoint, sent to or not), and 100,000 took 1.41 GB. A row is ended
after ``--bound`` seconds and says so; "plan built" is the profile read and checked, "run"
from the start of the workers to the final snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import psutil

from stressdeck.core.hosts import is_loopback_url
from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile

MIB = 1024 * 1024

TARGET = """
import asyncio, sys
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/{tail:.*}", ok)
async def main():
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def one_row(url: str, endpoints: int, seconds: float, users: int, processes: int) -> dict:
    """Runs in a fresh interpreter (``--row``): nothing of an earlier row is in its RSS."""
    assert is_loopback_url(url), url
    document = {
        "name": f"{endpoints} endpoints",
        "base_url": url,
        "load": {"users": users, "duration": f"{seconds}s"},
        "endpoints": [{"name": f"e{i}", "path": f"/items/{i}"} for i in range(endpoints)],
    }
    started = time.monotonic()

    async def run() -> tuple[object, float]:
        plan = build_plan(parse_profile(document, "bench"), Overrides())
        built = time.monotonic()
        handle = await start(plan, processes)
        return await handle.wait(), built

    final, built = asyncio.run(run())
    ended = time.monotonic()
    hit = sum(1 for ep in final.endpoints if ep.requests)  # type: ignore[attr-defined]
    return {
        "endpoints": endpoints,
        "requests": final.total.requests,  # type: ignore[attr-defined]
        "endpoints_hit": hit,
        "build_s": built - started,
        "run_s": ended - built,
        "stop_reason": final.stop_reason,  # type: ignore[attr-defined]
    }


def measure(url: str, count: int, args: argparse.Namespace) -> dict:
    """One row in a child, its process tree's RSS sampled from here every 100 ms (so a row
    that never finishes still has its figure), ended after ``--bound`` seconds."""
    command = [sys.executable, __file__, "--row", url, str(count), "--seconds", str(args.seconds),
               "--users", str(args.users), "--processes", str(args.processes)]  # fmt: skip
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    tree = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None and time.monotonic() - started < args.bound:
        peak = max(peak, tree_rss(tree))
        time.sleep(0.1)
    wall = time.monotonic() - started
    if child.poll() is None:
        for member in [*tree.children(recursive=True), tree]:
            member.kill()
        child.wait(10)
        return {"endpoints": count, "peak_rss_mib": peak / MIB, "wall_s": wall, "finished": False}
    assert child.stdout is not None
    row = json.loads(child.stdout.read().splitlines()[-1])
    return {**row, "peak_rss_mib": peak / MIB, "wall_s": wall, "finished": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 1000, 20000, 100000])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--bound", type=float, default=120.0, help="end a row after this long")
    parser.add_argument("--row", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        row = one_row(args.row[0], int(args.row[1]), args.seconds, args.users, args.processes)
        print(json.dumps(row))
        return
    target = subprocess.Popen([sys.executable, "-c", TARGET], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout is not None
        url = f"http://127.0.0.1:{target.stdout.readline().strip()}"
        rows = [measure(url, count, args) for count in args.counts]
    finally:
        target.terminate()
        target.wait(5)
    print(
        f"{args.users} users, a {args.seconds:g} s run, {args.processes} process(es), rows ended "
        f"after {args.bound:g} s; peak RSS of the row's process tree (2-core machine shared "
        "with other sessions)\n"
    )
    print("| endpoints | hit | requests | plan built s | run s | wall s | peak RSS MiB | ended |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        if not row["finished"]:
            print(
                f"| {row['endpoints']:,} | | | | | > {row['wall_s']:.0f} "
                f"| {row['peak_rss_mib']:.0f} | not finished, killed |"
            )
            continue
        print(
            f"| {row['endpoints']:,} | {row['endpoints_hit']:,} | {row['requests']:,} "
            f"| {row['build_s']:.1f} | {row['run_s']:.1f} | {row['wall_s']:.1f} "
            f"| {row['peak_rss_mib']:.0f} | {row['stop_reason']} |"
        )


if __name__ == "__main__":
    main()
