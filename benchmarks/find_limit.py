"""find_limit.py: how close `stressdeck find-limit` comes to a capacity the server measures itself.

Not a test (issue 23.2's precision goal: within ±10 % in at most 3 minutes). For each shape,
starts tests/capacity_server.py (N slots of M ms: its capacity is N / mean hold time, which
it measures itself) in its own process, runs find-limit against it with an SLO the queue
breaks just past capacity, and prints a markdown table: the server's capacity, the limit
found, the error, the time taken, and whether the goal was met.

    /work/venv/bin/python benchmarks/find_limit.py            # three shapes, ~100 to ~800 req/s
    /work/venv/bin/python benchmarks/find_limit.py --quick    # one shape (about 100 req/s)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parent.parent
SERVER = ROOT / "tests" / "capacity_server.py"
GOAL_ERROR = 0.10
GOAL_SECONDS = 180.0
# (slots, service ms, SLO, first rate): an SLO a few service times wide breaks as soon as a
# queue builds, that is just past the capacity. The server's capacity is slots / hold time:
# on a host too busy to give the server the CPU its requests cost, it serves less than that
# (the faster shapes show it first).
SHAPES = [
    (2, 20.0, "p95 < 100ms", 25),
    (8, 10.0, "p95 < 50ms", 100),
    (16, 10.0, "p95 < 50ms", 200),
]


def measure(
    slots: int, service_ms: float, slo: str, start: int, processes: str
) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--concurrency", str(slots), "--service-ms", str(service_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "limit.json"
            began = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "stressdeck",
                    "find-limit",
                    f"{url}/",
                    "--slo",
                    slo,
                    "--start",
                    str(start),
                    "--step",
                    "3s",
                    "--warmup",
                    "1s",
                    "--processes",
                    processes,
                    "--json",
                    str(out),
                ],
                check=True,
                capture_output=True,
                timeout=GOAL_SECONDS * 2,
            )
            took = time.monotonic() - began
            document = json.loads(out.read_text())
        with urllib.request.urlopen(f"{url}/stats", timeout=10) as answer:
            capacity = json.loads(answer.read())["capacity"]
    finally:
        server.kill()
        server.wait(10)
    return {
        "capacity": capacity,
        "limit": document["limit"] or 0.0,
        "seconds": took,
        "steps": len(document["steps"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape only")
    parser.add_argument("--processes", default="1", help="find-limit's --processes (default 1)")
    args = parser.parse_args()
    print("| shape | server capacity (req/s) | limit found | error | steps | time | goal |")
    print("|---|---|---|---|---|---|---|")
    for slots, service_ms, slo, start in SHAPES[:1] if args.quick else SHAPES:
        row = measure(slots, service_ms, slo, start, args.processes)
        error = row["limit"] / row["capacity"] - 1
        met = abs(error) <= GOAL_ERROR and row["seconds"] <= GOAL_SECONDS
        print(
            f"| {slots} x {service_ms:g} ms, {slo} | {row['capacity']:.1f} | {row['limit']:g} | "
            f"{error:+.1%} | {row['steps']:.0f} | {row['seconds']:.0f} s | "
            f"{'met' if met else 'NOT met'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
