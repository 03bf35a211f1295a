"""HTTP/2 against HTTP/1.1: requests per CPU-second of our own process, same nginx, same load.

Not a test. Starts nginx on 127.0.0.1 with two listeners (HTTP/1.1 and h2c), then runs the
closed model for ``--duration`` seconds with ``--users`` users on one worker thread, with the
fast HTTP/1.1 client and with the HTTP/2 client, alternately, ``--passes`` times; h2load
(Debian's nghttp2-client) runs beside as the reference where installed. Counts are checked
against nginx's access log. Prints a table; the ratio is ours over the fast client's.

    python benchmarks/http2.py --duration 3 --users 16 --passes 2
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from nginx import Nginx

from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def ours(url: str, http2: bool, users: int, duration: float) -> tuple[int, float, float]:
    document = {
        "name": "bench",
        "base_url": url,
        "load": {"users": users, "duration": f"{duration}s"},
        "endpoints": [{"name": "ok", "path": "/ok", "http2": http2}],
    }
    plan = build_plan(parse_profile(document, "bench.toml"), Overrides())
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    final = await (await start(plan)).wait()
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    assert final.total.errors == 0, final.total.error_messages
    return final.total.requests + final.total.cancelled, cpu, wall


def h2load(url: str, users: int, duration: float) -> tuple[int, float, float] | None:
    tool = shutil.which("h2load")
    if tool is None:
        return None
    command = [tool, "-c", "1", "-m", str(users), "-D", str(int(duration)), f"{url}/ok"]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    done = next(line for line in out.splitlines() if line.startswith("requests:"))
    succeeded = int(done.split("succeeded")[0].split(",")[-2].split()[0])
    return succeeded, cpu, time.perf_counter() - wall0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    rows: list[tuple[str, int, float, float, int]] = []
    with tempfile.TemporaryDirectory() as h1_dir, tempfile.TemporaryDirectory() as h2_dir:
        with Nginx(Path(h1_dir), http2=False) as h1, Nginx(Path(h2_dir)) as h2:
            for _ in range(args.passes):
                for name, url, http2 in (("fast HTTP/1.1", h1.url, False), ("http2", h2.url, True)):
                    before = len((h2 if http2 else h1).log())
                    sent, cpu, wall = asyncio.run(ours(url, http2, args.users, args.duration))
                    time.sleep(0.5)  # nginx writes a line once the answer went out
                    logged = len((h2 if http2 else h1).log()) - before
                    rows.append((name, sent, cpu, wall, logged))
                reference = h2load(h2.url, args.users, args.duration)
                if reference is not None:
                    sent, cpu, wall = reference
                    rows.append(("h2load (-c1 -m users)", sent, cpu, wall, -1))
    fast = [r for r in rows if r[0] == "fast HTTP/1.1"]
    fast_rate = sum(r[1] for r in fast) / sum(r[2] for r in fast)
    print(f"users {args.users}, {args.duration:.0f} s per run, one worker thread\n")
    print("| client | requests | req/s | req per CPU-s | vs fast | nginx count |")
    print("|---|---|---|---|---|---|")
    for name, sent, cpu, wall, logged in rows:
        per_cpu = sent / cpu if cpu else float("nan")
        count = "n/a" if logged < 0 else f"{logged:,}"
        print(
            f"| {name} | {sent:,} | {sent / wall:,.0f} | {per_cpu:,.0f} | "
            f"{per_cpu / fast_rate:.2f}x | {count} |"
        )


if __name__ == "__main__":
    main()
