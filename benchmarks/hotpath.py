"""Where a 1-process headless run spends its CPU: py-spy on the engine against the fast target.

Not a test (issue #8 item 3). Starts the same target as bench.py (nginx if installed, else
the aiohttp one) on 127.0.0.1, runs ``probes.py api`` (1 process, the worker on a thread)
under ``py-spy record`` for ``-d`` seconds, keeps the collapsed stacks and prints the top
functions by self and inclusive time, for the whole process and for the worker thread alone.

    /work/venv/bin/python benchmarks/hotpath.py                 # 10 s at c=50, ~15 s in all
    /work/venv/bin/python benchmarks/hotpath.py -d 20 --out /tmp/spy

py-spy needs ptrace rights over its child (root, or kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import HERE, Target, pinned
from spy_top import summarise


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-d", "--duration", type=float, default=10.0, help="seconds of load (default 10)"
    )
    parser.add_argument(
        "-c", "--connections", type=int, default=50, help="virtual users (default 50)"
    )
    parser.add_argument(
        "-r", "--rate", type=int, default=200, help="py-spy samples per second (default 200)"
    )
    parser.add_argument(
        "--factory",
        choices=("auto", "process"),
        default="auto",
        help="auto: the worker on a thread (default); process: as the console runs it",
    )
    parser.add_argument(
        "--what",
        choices=("api", "raw", "raw-tuned", "rawfast"),
        default="api",
        help="api: stressdeck (default); raw / raw-tuned: the reference loops, to compare",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "fast", "aiohttp"),
        default="auto",
        help="api: the HTTP client stressdeck sends with (auto: the fast one here)",
    )
    parser.add_argument(
        "--native", action="store_true", help="py-spy --native: C frames too (uvloop, the parser)"
    )
    parser.add_argument(
        "--gil", action="store_true", help="py-spy --gil: only samples holding the GIL"
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="folder for the raw stacks (default: a new temporary folder)")
    args = parser.parse_args(argv)
    spy = find_py_spy()
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    out = Path(args.out or tempfile.mkdtemp(prefix="stressdeck-hotpath-"))
    out.mkdir(parents=True, exist_ok=True)
    pin = (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {0})
    target = Target(out, 0 if pin else None)
    stacks = out / "stacks.txt"
    probe = [
        sys.executable,
        str(HERE / "probes.py"),
        args.what.split("-")[0],
        "--url",
        target.url,
        "-c",
        str(args.connections),
        "-d",
        f"{args.duration:g}",
    ]
    probe += (
        ["--factory", args.factory, "--client", args.client]
        if args.what == "api"
        else ["--tuned"]
        if args.what == "raw-tuned"
        else []
    )
    # --subprocesses follows a spawned worker process too; -t names the threads.
    argv_spy = [
        spy,
        "record",
        "-r",
        str(args.rate),
        "-t",
        "--subprocesses",
        "-f",
        "raw",
        "-o",
        str(stacks),
        "--",
        *probe,
    ]
    if args.native:
        argv_spy.insert(2, "--native")
    if args.gil:
        argv_spy.insert(2, "--gil")
    argv_spy = pinned(argv_spy, 1 if pin else None)
    print("$ " + " ".join(argv_spy), flush=True)
    try:
        done = subprocess.run(argv_spy, capture_output=True, text=True, timeout=args.duration + 60)
    finally:
        target.stop()
    result = [line for line in done.stdout.splitlines() if line.startswith("{")]
    print(result[-1] if result else done.stdout[-2000:] + done.stderr[-2000:])
    if not stacks.exists():
        print(done.stderr, file=sys.stderr)
        return 1
    text = stacks.read_text()
    print(
        f"\n## whole process ({target.kind} target, c={args.connections}, {args.duration:g} s; stacks in {stacks})\n"
    )
    print(summarise(text, args.top))
    if args.what == "api":
        print("\n## the worker alone (the load loop: aiohttp, send(), recording)\n")
        print(
            summarise(
                text,
                args.top,
                "stressdeck-worker" if args.factory == "auto" else "multiprocessing.spawn",
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
