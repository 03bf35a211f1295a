"""Session size and runner cost of the per-endpoint timeline at 1,000 endpoints (issue 23.4).

Not a test. Runs a profile of N endpoints (every one hit) for a few seconds against an
aiohttp target on 127.0.0.1 (its own process), saves the session as TOML and JSON and gives
their sizes; then gives the same session with each endpoint's timeline at its budget (as a
long run ends: ``ENDPOINT_POINTS_BUDGET`` points over all endpoints), filled by feeding the
real Timeline a synthetic run of that many seconds. Last, the runner's CPU per second of
run spent closing the endpoints' seconds and summing their last 10 s.

    .venv/bin/python benchmarks/endpoint_timeline.py                 # 1,000 endpoints
    .venv/bin/python benchmarks/endpoint_timeline.py --endpoints 200 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from endpoints import TARGET

from stressdeck.core.hosts import is_loopback_url
from stressdeck.engine import build_plan, start
from stressdeck.engine.hdr import Counts
from stressdeck.engine.timeline import EndpointPart, Timeline
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.session import load_session, save_session

MB = 1e6


def filled_timeline(names: list[str], seconds: int) -> tuple[Timeline, float]:
    """A Timeline fed ``seconds`` of every endpoint answering 5 requests a second; and the
    CPU seconds per run second its closes cost."""
    timeline = Timeline(endpoints=names)
    rng = np.random.default_rng(1)
    latencies = [Counts.of_values(list(rng.uniform(1000, 50_000, 5))) for _ in names]
    cpu = 0.0
    for second in range(1, seconds + 1):
        parts = [EndpointPart(i, 5, i % 3 == 0, 0, latencies[i]) for i in range(len(names))]
        started = time.process_time()
        timeline.add(second - 0.5, 5 * len(names), 0, 0, None, parts)
        timeline.advance(second + 0.6, users=1, rate=None)
        cpu += time.process_time() - started
    return timeline, cpu / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    args = parser.parse_args()
    names = [f"e{i}" for i in range(args.endpoints)]
    target = subprocess.Popen([sys.executable, "-c", TARGET], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout is not None
        url = f"http://127.0.0.1:{target.stdout.readline().strip()}"
        assert is_loopback_url(url), url
        document = {
            "name": f"{args.endpoints} endpoints",
            "base_url": url,
            "load": {"model": "open", "rate": args.rate, "duration": f"{args.seconds}s"},
            "endpoints": [{"name": name, "path": f"/items/{i}"} for i, name in enumerate(names)],
        }
        plan = build_plan(parse_profile(document, "bench"), i_know=True)

        async def run() -> object:
            return await (await start(plan)).wait()

        final = asyncio.run(run())
    finally:
        target.terminate()
        target.wait(5)
    timeline, cpu = filled_timeline(names, 3 * timeline_cap(len(names)))
    full = replace(final, endpoint_timeline=timeline.endpoint_series())  # type: ignore[type-var]
    points = sum(len(s.points) for s in full.endpoint_timeline)
    print(f"{args.endpoints:,} endpoints, {final.total.requests:,} requests in {args.seconds:g} s")  # type: ignore[attr-defined]
    print("| session | points kept | TOML MB | JSON MB | load s |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for label, snapshot in (("as run", final), ("timelines at their budget", full)):
            sizes, loaded = [], 0.0
            for suffix in (".toml", ".json"):
                path = save_session(Path(folder) / f"s{suffix}", plan, snapshot, overwrite=True)  # type: ignore[arg-type]
                sizes.append(path.stat().st_size / MB)
                started = time.monotonic()
                load_session(path)
                loaded = max(loaded, time.monotonic() - started)
            kept = sum(len(s.points) for s in snapshot.endpoint_timeline)  # type: ignore[attr-defined]
            print(f"| {label} | {kept:,} | {sizes[0]:.2f} | {sizes[1]:.2f} | {loaded:.1f} |")
    print(
        f"\nbudget {points:,} points ({timeline.max_endpoint_points} per endpoint); the runner "
        f"spends {cpu * 1000:.0f} ms CPU per run second closing {args.endpoints:,} active "
        "endpoints' seconds and their last 10 s"
    )


def timeline_cap(endpoints: int) -> int:
    return Timeline(endpoints=["x"] * endpoints).max_endpoint_points


if __name__ == "__main__":
    main()
