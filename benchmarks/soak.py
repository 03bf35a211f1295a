"""Soak: a long, steady open-model run against the demo target, watching our own memory and fds.

Not a test. Issue #7 item 4: a generator that leaks shows it here long before a user's
two-hour run dies of it. The demo target runs in its own process (so its memory is not
ours); every ``--every`` seconds one line gives the RSS and open file descriptors summed
over *our* process tree (this process plus any worker processes, never the target), and
the run ends with first/last/max and a least-squares slope per hour.

    /work/venv/bin/python benchmarks/soak.py                      # 30 min at 200 req/s
    /work/venv/bin/python benchmarks/soak.py --minutes 2 --rate 500 --processes 2
    /work/venv/bin/python benchmarks/soak.py --from-json /tmp/soak.json   # re-summarise a run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from stressdeck.core.hosts import is_loopback_url
from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile

MIB = 1024 * 1024
WARMUP_SECONDS = 60.0  # allocator pools and aiohttp's connection pool settle in the first minute


@dataclass(frozen=True)
class Sample:
    t: float
    rss_mib: float
    fds: int
    processes: int
    requests: int
    errors: int
    dropped: int
    in_flight: int
    p99_ms: float


def tree_usage(root: psutil.Process, exclude: set[int]) -> tuple[int, int, int]:
    """RSS bytes, open fds and process count of ``root`` and its descendants, minus ``exclude``."""
    rss = fds = count = 0
    for proc in [root, *root.children(recursive=True)]:
        if proc.pid in exclude:
            continue
        try:
            rss += proc.memory_info().rss
            fds += proc.num_fds()
            count += 1
        except psutil.Error:  # a child that ended between listing and reading
            continue
    return rss, fds, count


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour; 0 with fewer than two points."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600


def start_demo_target(python: str) -> tuple[subprocess.Popen[str], str]:
    """``stressdeck demo-server --port 0`` in a child process; returns it and its base URL."""
    proc = subprocess.Popen(
        [python, "-m", "stressdeck", "demo-server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # "demo target listening on http://127.0.0.1:PORT"
    url = line.rsplit(" ", 1)[-1]
    if not is_loopback_url(url):
        proc.kill()
        raise SystemExit(f"the demo target did not start: {line!r}")
    return proc, url


def soak_plan(url: str, rate: float, seconds: float, path: str):
    document = {
        "name": "soak",
        "base_url": url,
        "defaults": {"timeout": "5s"},
        "load": {"model": "open", "rate": rate},
        "endpoints": [{"name": "health", "method": "GET", "path": path, "expect": [200]}],
    }
    return build_plan(
        parse_profile(document, "soak.py"),
        Overrides(model="open", rate=rate, duration=seconds),
        max_duration=seconds + 120,
    )


async def soak(args: argparse.Namespace, url: str, target_pid: int) -> tuple[list[Sample], Sample]:
    """The samples taken while the run went on, and one taken after it ended (session closed)."""
    seconds = args.minutes * 60
    plan = soak_plan(url, args.rate, seconds, args.path)
    me = psutil.Process()
    exclude = {target_pid}
    handle = await start(plan, processes=args.processes)
    samples: list[Sample] = []
    began = time.monotonic()
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} req/s (open model), {args.processes} process(es), "
        f"target {url}{args.path} (pid {target_pid}, not counted)",
        flush=True,
    )
    print(
        f"{'t s':>6} {'RSS MiB':>8} {'fds':>5} {'procs':>5} {'requests':>10} {'errors':>7} "
        f"{'dropped':>7} {'inflight':>8} {'p99 ms':>7}",
        flush=True,
    )

    def take() -> Sample:
        rss, fds, count = tree_usage(me, exclude)
        snap = handle.latest
        sample = Sample(
            round(time.monotonic() - began, 1),
            rss / MIB,
            fds,
            count,
            snap.total.requests,
            snap.total.errors,
            snap.total.dropped,
            snap.in_flight,
            snap.total.latency_ms.p99,
        )
        print(
            f"{sample.t:6.0f} {sample.rss_mib:8.1f} {sample.fds:5d} {sample.processes:5d} "
            f"{sample.requests:10,d} {sample.errors:7,d} {sample.dropped:7,d} {sample.in_flight:8d} "
            f"{sample.p99_ms:7.2f}",
            flush=True,
        )
        return sample

    waiter = asyncio.ensure_future(handle.wait())
    try:
        samples.append(take())
        while not waiter.done():
            done, _ = await asyncio.wait({waiter}, timeout=args.every)
            if not done:
                samples.append(take())
        final = waiter.result()
    except (KeyboardInterrupt, asyncio.CancelledError):
        final = await handle.stop("interrupted")
    after = take()
    print(
        f"run ended: {final.stop_reason}; {final.total.requests:,} requests, {final.total.errors:,} errors, "
        f"{final.total.dropped:,} dropped, p50 {final.total.latency_ms.p50:.2f} ms, "
        f"p99 {final.total.latency_ms.p99:.2f} ms, max {final.total.latency_ms.max:.1f} ms; the line above "
        "was sampled after the run ended (not in the figures below)",
        flush=True,
    )
    return samples, after


def summarise(samples: list[Sample]) -> dict[str, float]:
    """First/last/max, and least-squares slopes after the warm-up and over the second half."""
    steady = [s for s in samples if s.t >= WARMUP_SECONDS] or samples
    half = [s for s in samples if s.t >= samples[-1].t / 2] or samples
    summary = {
        "rss_first_mib": samples[0].rss_mib,
        "rss_last_mib": samples[-1].rss_mib,
        "rss_max_mib": max(s.rss_mib for s in samples),
        "rss_slope_mib_per_hour": slope_per_hour([(s.t, s.rss_mib) for s in steady]),
        "rss_slope_second_half_mib_per_hour": slope_per_hour([(s.t, s.rss_mib) for s in half]),
        "fds_first": samples[0].fds,
        "fds_last": samples[-1].fds,
        "fds_max": max(s.fds for s in samples),
        "fds_slope_per_hour": slope_per_hour([(s.t, s.fds) for s in steady]),
        "fds_slope_second_half_per_hour": slope_per_hour([(s.t, s.fds) for s in half]),
        "samples": len(samples),
        "slope_from_s": steady[0].t,
        "second_half_from_s": half[0].t,
    }
    print(
        f"RSS MiB: first {summary['rss_first_mib']:.1f}, last {summary['rss_last_mib']:.1f}, "
        f"max {summary['rss_max_mib']:.1f}, slope {summary['rss_slope_mib_per_hour']:+.2f} MiB/h "
        f"(from t={summary['slope_from_s']:.0f}s), {summary['rss_slope_second_half_mib_per_hour']:+.2f} MiB/h "
        f"(second half, from t={summary['second_half_from_s']:.0f}s)"
    )
    print(
        f"fds: first {summary['fds_first']}, last {summary['fds_last']}, max {summary['fds_max']}, "
        f"slope {summary['fds_slope_per_hour']:+.2f}/h, {summary['fds_slope_second_half_per_hour']:+.2f}/h "
        "(second half)"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="requests/s, open model (default 200)"
    )
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--every", type=float, default=10.0, help="seconds between samples (default 10)"
    )
    parser.add_argument("--path", default="/health", help="demo target path (default /health)")
    parser.add_argument("--json", metavar="FILE", help="also write the samples and summary as JSON")
    parser.add_argument(
        "--from-json", metavar="FILE", help="no run: summarise the samples a --json file holds"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        doc = json.loads(Path(args.from_json).read_text())
        samples = [Sample(**s) for s in doc["samples"]]
        if "after" not in doc:  # the first version of this script kept the after-run sample last
            samples.pop()
        summarise(samples)
        return 0
    target, url = start_demo_target(sys.executable)
    try:
        samples, after = asyncio.run(soak(args, url, target.pid))
    finally:
        target.terminate()
        try:
            target.wait(5)
        except subprocess.TimeoutExpired:
            target.kill()
    summary = summarise(samples)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "summary": summary,
                    "samples": [asdict(s) for s in samples],
                    "after": asdict(after),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
