"""The open model at the generator's limit, against nginx, beside ``hey -q`` at the same rates.

    .venv/bin/python benchmarks/open_model.py [--rates 1000,5000,9000,14000] [--duration 5]
        [--processes 2] [--connections 64] [--sweep 16,64,256]

Starts its own nginx on 127.0.0.1 (a temporary config: ``return 200``, ``stub_status``,
keep-alive connections never recycled, so "accepted" counts every connection a client
opened). For each asked rate it runs ``stressdeck run --model open`` and ``hey -z -c -q``,
and prints what each achieved, its latency (from when a request was due, for stressdeck)
and service time (from when it was sent) at p50/p99, dropped, errors, the connections
nginx accepted, and nginx's own request count beside the client's. The reference rate is
what the closed model reaches with the same processes and connections, measured first.

Read the ratios to hey in the same run more than the absolutes: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness import Target

HERE = Path(__file__).resolve().parent
STRESSDECK = [sys.executable, "-m", "stressdeck"]
PROFILE = """\
name = "open model bench"
base_url = "{base}"

[defaults]
timeout = "5s"

[[endpoints]]
name = "root"
path = "/"
"""


@dataclass
class Row:
    rate: str
    tool: str
    achieved: float
    p50: float | None
    p99: float | None
    svc_p50: float | None
    svc_p99: float | None
    dropped: int | None
    errors: int
    accepted: int
    server: int
    ours: int
    note: str = ""


def stub_status(target: Target) -> tuple[int, int]:
    """(connections accepted, requests) as nginx counts them, this reading included."""
    with urllib.request.urlopen(target.base + "/__stats", timeout=5) as response:
        text = response.read().decode()
    accepts, _handled, requests = (int(n) for n in text.splitlines()[2].split())
    return accepts, requests


class Counted:
    """nginx's counts over a block, less the two stub_status readings themselves."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def __enter__(self) -> Counted:
        self.before = stub_status(self.target)
        return self

    def __exit__(self, *exc: object) -> None:
        after = stub_status(self.target)
        # The closing reading is one connection and one request of its own.
        self.accepted = after[0] - self.before[0] - 1
        self.requests = after[1] - self.before[1] - 1


def run_stressdeck(
    target: Target, workdir: Path, args: argparse.Namespace, model: str, level: str, conns: int
) -> tuple[dict, Counted]:
    profile = workdir / "bench.toml"
    profile.write_text(PROFILE.format(base=target.base))
    out = workdir / f"{model}-{level}-{conns}.json"
    load = ["--rate", level] if model == "open" else ["--users", level]
    argv = [
        *STRESSDECK,
        "run",
        str(profile),
        "--model",
        model,
        *load,
        "--connections",
        str(conns),
        "--duration",
        f"{args.duration}s",
        "--processes",
        str(args.processes),
        "--quiet",
        # Past the generator's own limit is the point; the target is our own loopback nginx.
        "--i-know",
        "--json",
        str(out),
    ]
    with Counted(target) as counted:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=args.duration + 60, cwd=workdir
        )
    if done.returncode not in (0, 3):
        raise SystemExit(f"stressdeck failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(out.read_text()), counted


def stressdeck_row(rate: str, tool: str, doc: dict, counted: Counted) -> Row:
    total = doc["summary"]["total"]
    lat, svc = total["latency_ms"], total["service_ms"]
    measured = total["requests"] > 0
    health = doc["generator"]
    note = f"saturated {health['saturated_seconds']:.1f}s" if health["saturated_seconds"] else ""
    return Row(
        rate=rate,
        tool=tool,
        achieved=total["requests"] / (doc["elapsed"] or 1e-9),
        p50=lat["p50"] if measured else None,
        p99=lat["p99"] if measured else None,
        svc_p50=svc["p50"] if measured else None,
        svc_p99=svc["p99"] if measured else None,
        dropped=total["dropped"],
        errors=total["errors"],
        accepted=counted.accepted,
        server=counted.requests,
        ours=total["requests"] + total["cancelled"],
        note=note,
    )


def run_hey(target: Target, rate: int, args: argparse.Namespace) -> Row:
    workers = args.hey_workers
    argv = [
        "hey",
        "-z",
        f"{args.duration}s",
        "-c",
        str(workers),
        "-q",
        f"{rate / workers:g}",
        target.base + "/",
    ]
    with Counted(target) as counted:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
    out = done.stdout
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    failures = sum(int(n) for n in re.findall(r"\[(\d+)\]\s+Get ", out))
    p50 = re.search(r"50% in ([\d.]+) secs", out)
    p99 = re.search(r"99% in ([\d.]+) secs", out)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    ok = sum(codes.values())
    return Row(
        rate=str(rate),
        tool=f"hey -c {workers} -q {rate / workers:g}",
        achieved=float(rps.group(1)) if rps else 0.0,
        p50=float(p50.group(1)) * 1e3 if p50 else None,
        p99=float(p99.group(1)) * 1e3 if p99 else None,
        svc_p50=None,  # hey measures from its send only: its latency is a service time
        svc_p99=None,
        dropped=None,  # hey waits instead of dropping: a late request just goes out late
        errors=failures + sum(n for c, n in codes.items() if c >= 400),
        accepted=counted.accepted,
        server=counted.requests,
        ours=ok + failures,
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(rows: list[Row]) -> None:
    headers = [
        "asked/s",
        "tool",
        "achieved/s",
        "p50 ms",
        "p99 ms",
        "svc p50",
        "svc p99",
        "dropped",
        "errors",
        "conns",
        "nginx count",
        "our count",
        "note",
    ]
    table = [
        [
            r.rate,
            r.tool,
            f"{r.achieved:,.0f}",
            _ms(r.p50),
            _ms(r.p99),
            _ms(r.svc_p50),
            _ms(r.svc_p99),
            "-" if r.dropped is None else f"{r.dropped:,}",
            f"{r.errors:,}",
            f"{r.accepted:,}",
            f"{r.server:,}",
            f"{r.ours:,}",
            r.note,
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,5000,9000,14000")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--hey-workers", type=int, default=50)
    parser.add_argument(
        "--sweep", default="", help="connections to try at the highest rate, e.g. 16,64,256"
    )
    args = parser.parse_args()
    if not shutil.which("nginx") or not shutil.which("hey"):
        raise SystemExit("needs nginx and hey on PATH")
    rates = [int(r) for r in args.rates.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="open-model-"))
    target = Target(workdir, None)
    if target.kind != "nginx":
        raise SystemExit("nginx did not start")
    rows: list[Row] = []
    try:
        print(
            f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f}, nginx 1 worker, "
            f"stressdeck --processes {args.processes} --connections {args.connections}, "
            f"{args.duration} s per row",
            flush=True,
        )
        doc, counted = run_stressdeck(
            target, workdir, args, "closed", str(args.connections), args.connections
        )
        reference = stressdeck_row(
            "closed", f"stressdeck closed {args.connections} users", doc, counted
        )
        rows.append(reference)
        print(f"# reference: the closed model reaches {reference.achieved:,.0f} req/s", flush=True)
        for rate in rates:
            doc, counted = run_stressdeck(
                target, workdir, args, "open", str(rate), args.connections
            )
            rows.append(stressdeck_row(str(rate), "stressdeck open", doc, counted))
            rows.append(run_hey(target, rate, args))
            print(f"# {rate}/s done", flush=True)
        for conns in [int(c) for c in args.sweep.split(",") if c]:
            doc, counted = run_stressdeck(target, workdir, args, "open", str(rates[-1]), conns)
            rows.append(
                stressdeck_row(str(rates[-1]), f"stressdeck open, {conns} conns", doc, counted)
            )
    finally:
        target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_table(rows)
    print()
    for rate in rates:
        ours = next(r for r in rows if r.rate == str(rate) and r.tool == "stressdeck open")
        hey = next(r for r in rows if r.rate == str(rate) and r.tool.startswith("hey"))
        ratio = (ours.p99 / hey.p99) if ours.p99 and hey.p99 else float("nan")
        print(
            f"{rate}/s: achieved {ours.achieved / rate:.0%} of asked (hey {hey.achieved / rate:.0%}), "
            f"p99 {ratio:.1f}x hey's, nginx count - ours = {ours.server - ours.ours}, "
            f"conns {ours.accepted} (configured {args.connections})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
