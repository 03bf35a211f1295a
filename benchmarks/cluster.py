"""cluster.py: 2 Ray actors against 2 worker processes, same target, same machine (issue #14).

Not a test. Runs inside a network namespace of its own (it re-runs itself under
``unshare -n`` with loopback up when it is not in one already: a local Ray cluster talks to
the machine's non-loopback address otherwise). Starts nginx on 127.0.0.1 (the aiohttp probe
without nginx), a one-node Ray cluster with 2 CPUs and a small object store, then runs the
same closed-model load, alternately with 2 worker processes and 2 Ray actors:

* requests/s, and the target's own count beside stressdeck's;
* generator CPU-s per 1000 requests: this process and its worker processes, or this process
  and the two actor processes (Ray's own daemons apart, in the next column);
* Ray's daemons (GCS, raylet, ...) CPU over the run: the overhead a cluster adds here;
* start-up: from ``start()`` to every worker ready and released, and joining the cluster.

    python benchmarks/cluster.py                   # 5 passes of 6 s each way: ~3 min
    python benchmarks/cluster.py --quick           # 1 pass of 3 s
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from harness import Target

from stressdeck.engine import build_plan, start
from stressdeck.engine.cluster import RayPlacement, connect
from stressdeck.profiles.profile import parse_profile

MB = 1024 * 1024


@dataclass
class Row:
    kind: str
    requests: int
    cancelled: int
    target_requests: int
    seconds: float
    generator_cpu_s: float
    ray_daemons_cpu_s: float
    start_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.generator_cpu_s / max(self.requests, 1)


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _ray_daemons(ours: set[int]) -> list[psutil.Process]:
    """Ray's own processes in this namespace (they are ours: we started the cluster)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if process.pid not in ours and ("ray" in line and "/ray/" in line or "raylet" in line):
            found.append(process)
    return found


def _actor_processes() -> list[psutil.Process]:
    from ray._private.state import actors

    found = []
    for actor in actors().values():
        if actor["State"] == "ALIVE" and actor.get("Pid"):
            try:
                found.append(psutil.Process(actor["Pid"]))
            except psutil.Error:
                pass
    return found


async def one_run(
    target: Target, users: int, seconds: float, placement: RayPlacement | None
) -> Row:
    document = {
        "name": "cluster bench",
        "base_url": target.base,
        "endpoints": [{"name": "root", "path": "/"}],
        "load": {"model": "closed", "users": users, "duration": f"{seconds}s"},
    }
    plan = build_plan(parse_profile(document, "bench.toml"), max_duration=seconds + 30)
    me = psutil.Process()
    before_target = target.requests()
    began = time.perf_counter()
    handle = await start(plan, 2, placement)
    start_s = time.perf_counter() - began
    # Only the worker processes: the Ray cluster's daemons are children of this process too.
    workers = (
        _actor_processes()
        if placement
        else [p for p in me.children() if "spawn_main" in " ".join(p.cmdline())]
    )
    assert len(workers) == 2, workers
    ours = {me.pid, *(w.pid for w in workers)}
    daemons = _ray_daemons(ours) if placement else []
    generator = [me, *workers]
    first = {p.pid: _cpu([p]) for p in [*generator, *daemons]}
    last = dict(first)
    waiting = asyncio.ensure_future(handle.wait())
    while not waiting.done():
        # Workers exit at the end and take their CPU times with them: keep the last seen.
        for process in [*generator, *daemons]:
            try:
                last[process.pid] = _cpu([process]) if process.is_running() else last[process.pid]
            except psutil.Error:
                pass
        await asyncio.wait([waiting], timeout=0.1)
    final = waiting.result()
    target_requests = target.requests() - before_target - 1  # nginx counts the stats request
    return Row(
        kind="2 Ray actors" if placement else "2 worker processes",
        # In flight when the duration ran out: the target saw them, the run cancelled them.
        requests=final.total.requests,
        cancelled=final.total.cancelled,
        target_requests=target_requests,
        seconds=final.elapsed,
        generator_cpu_s=sum(last[p.pid] - first[p.pid] for p in generator),
        ray_daemons_cpu_s=sum(last[p.pid] - first[p.pid] for p in daemons),
        start_s=start_s,
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| generator | passes | requests/s (median) | target saw = counted + cancelled "
        "| CPU-s / 1000 req "
        "| Ray daemons CPU-s / run | start() s (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    kinds = sorted({row.kind for row in rows}, reverse=True)
    medians: dict[str, tuple[float, float]] = {}
    for kind in kinds:
        mine = [row for row in rows if row.kind == kind]
        rps = statistics.median(row.rps for row in mine)
        cpu = statistics.median(row.cpu_per_1000 for row in mine)
        medians[kind] = (rps, cpu)
        exact = all(row.requests + row.cancelled == row.target_requests for row in mine)
        lines.append(
            f"| {kind} | {len(mine)} | {rps:,.0f} | {'yes' if exact else 'NO'} | {cpu:.3f} "
            f"| {statistics.median(row.ray_daemons_cpu_s for row in mine):.2f} "
            f"| {statistics.median(row.start_s for row in mine):.2f} |"
        )
    if len(medians) == 2:
        (p_rps, p_cpu), (r_rps, r_cpu) = medians["2 worker processes"], medians["2 Ray actors"]
        lines.append("")
        lines.append(
            f"Ray actors / processes: throughput {r_rps / p_rps:.2f}x, "
            f"CPU per request {r_cpu / p_cpu:.2f}x"
        )
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> None:
    from ray.cluster_utils import Cluster

    workdir = Path(tempfile.mkdtemp(prefix="stressdeck-cluster-bench-"))
    target = Target(workdir, cpu=None)
    began = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "object_store_memory": 100 * MB,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
        },
    )
    cluster_s = time.perf_counter() - began
    try:
        began = time.perf_counter()
        placement = connect(cluster.address)
        connect_s = time.perf_counter() - began
        placement.plan_workers(2)
        rows: list[Row] = []
        for _ in range(args.passes):
            for use_ray in (False, True):
                row = await one_run(
                    target, args.users, args.duration, placement if use_ray else None
                )
                rows.append(row)
                print(
                    f"  {row.kind}: {row.rps:,.0f} req/s, {row.cpu_per_1000:.3f} CPU-s/1000, "
                    f"start {row.start_s:.2f} s",
                    flush=True,
                )
        placement.close()
    finally:
        cluster.shutdown()
        target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"target {target.kind} on 127.0.0.1, {args.users} users, {args.duration:g} s runs, "
        f"{os.cpu_count()} cores shared with other work; stressdeck in a network namespace"
    )
    print()
    print(table(rows))
    print()
    print(f"start a one-node cluster (ray.cluster_utils, 2 CPUs): {cluster_s:.2f} s")
    print(f"join it (connect(), ray.init): {connect_s:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.passes = 3.0, 1
    if set(psutil.net_if_addrs()) - {"lo"}:
        if os.environ.get("STRESSDECK_IN_NAMESPACE"):
            raise SystemExit("still not alone in a network namespace: refusing to start Ray")
        # Not alone on the network: run again inside a namespace with loopback only.
        inner = [sys.executable, *sys.argv]
        script = 'ip link set lo up && exec "$@"'
        ray_tmp = tempfile.mkdtemp(prefix="stressdeck-ray-")  # Ray's sockets and logs
        env: dict[str, Any] = {**os.environ, "STRESSDECK_IN_NAMESPACE": "1"}
        env.update(RAY_TMPDIR=ray_tmp, RAY_USAGE_STATS_ENABLED="0")
        try:
            return subprocess.call(["unshare", "-n", "sh", "-c", script, "sh", *inner], env=env)
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
