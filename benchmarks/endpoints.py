"""Memory per endpoint: a profile with thousands of endpoints (an OpenAPI import) must run.

Not a test. Issue #16 item 5: 1,000 endpoints took 1.7 GB of RSS (three dense 184 KB HDR
histograms per endpoint, in every recorder and every total) and 4,000 sent no request at
all. Each row runs a profile of N endpoints for a few seconds against an aiohttp target on
127.0.0.1 (its own process: its memory is not ours), every endpoint hit, and gives our peak
RSS summed over our process tree, sampled every 100 ms. The growth per endpoint is measured
against the 1-endpoint row of the same run.

    .venv/bin/python benchmarks/endpoints.py                 # 1, 1,000 and 4,000 endpoints
    .venv/bin/python benchmarks/endpoints.py --counts 1 500 --seconds 3 --processes 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
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
    me = psutil.Process()
    base = tree_rss(me)
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss(me))

    threading.Thread(target=sample, daemon=True).start()
    started = time.monotonic()

    async def run() -> object:
        plan = build_plan(parse_profile(document, "bench"), Overrides())
        handle = await start(plan, processes)
        return await handle.wait()

    final = asyncio.run(run())
    wall = time.monotonic() - started
    done.set()
    peak[0] = max(peak[0], tree_rss(me))
    hit = sum(1 for ep in final.endpoints if ep.requests)  # type: ignore[attr-defined]
    return {
        "endpoints": endpoints,
        "peak_rss_mib": peak[0] / MIB,
        "start_rss_mib": base / MIB,
        "requests": final.total.requests,  # type: ignore[attr-defined]
        "endpoints_hit": hit,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 1000, 4000])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--processes", type=int, default=1)
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
        rows = []
        for count in args.counts:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--row",
                    url,
                    str(count),
                    "--seconds",
                    str(args.seconds),
                    "--users",
                    str(args.users),
                    "--processes",
                    str(args.processes),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows.append(json.loads(out.splitlines()[-1]))
    finally:
        target.terminate()
        target.wait(5)
    reference = rows[0]
    print(
        f"{args.users} users, {args.seconds:g} s, {args.processes} process(es); "
        "peak RSS of our process tree (2-core machine shared with other sessions)\n"
    )
    print(
        "| endpoints | hit | requests | wall s | peak RSS MiB | ÷ 1-endpoint row | KiB per extra endpoint |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        extra = row["endpoints"] - reference["endpoints"]
        per = (row["peak_rss_mib"] - reference["peak_rss_mib"]) * 1024 / extra if extra else 0.0
        print(
            f"| {row['endpoints']:,} | {row['endpoints_hit']:,} | {row['requests']:,} "
            f"| {row['wall_s']:.1f} | {row['peak_rss_mib']:.1f} "
            f"| {row['peak_rss_mib'] / reference['peak_rss_mib']:.2f} "
            f"| {per:.1f} |"
            if extra
            else f"| {row['endpoints']:,} | {row['endpoints_hit']:,} | {row['requests']:,} "
            f"| {row['wall_s']:.1f} | {row['peak_rss_mib']:.1f} | 1.00 | (reference) |"
        )


if __name__ == "__main__":
    main()
