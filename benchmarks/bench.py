"""bench.py: how fast and how lean stressdeck is, measured beside the raw loop and the peers.

Not a test (issue #8 item 4). Starts a fast target on 127.0.0.1 (nginx if installed, else a
minimal aiohttp server), then runs each generator for ``--duration`` seconds at ``-c``
connections and prints markdown tables and the goals, met or not:

* stressdeck headless (engine API), 1 process and N processes; the raw aiohttp loop (and the
  same loop with the session set up as stressdeck's); wrk, hey and locust (FastHttpUser) when
  installed: requests/s, CPU-s per 1000 requests (whole process, and for the Python probes
  also over the load window alone), peak RSS, ratios to the raw loop;
* the console (Textual, headless test harness) against the same run headless;
* RSS after 100k requests and at the end of a long bounded run (1M by default, time-capped);
* the time from ``stop()`` to every worker process gone.

    /work/venv/bin/python benchmarks/bench.py            # 8 s rows, 3 passes, a 1M-request RSS run: ~12 min
    /work/venv/bin/python benchmarks/bench.py --quick    # a smoke check: about 1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import (
    HERE,
    LOCUSTFILE,
    Measured,
    Target,
    bombardier_http,
    busy_cpu_seconds,
    find_locust,
    measure,
    new_workdir,
    parse_bombardier,
    parse_hey,
    parse_json_line,
    parse_locust,
    parse_stressdeck_json,
    parse_wrk,
)
from tables import (
    CLI,
    CONSOLE,
    LOCUST,
    ONE,
    ONE_AIOHTTP,
    ONE_PROC,
    RAW,
    RAW_FAST,
    RSS,
    STOP,
    TUNED,
    Row,
    fmt,
    further_table,
    generators_table,
    goals_table,
    many,
)

PY = sys.executable
PROBES = str(HERE / "probes.py")
PROFILE = """\
name = "bench"
base_url = "{base}"

[load]
model = "closed"
users = {c}

[[endpoints]]
name = "ok"
method = "GET"
path = "/"
"""
KEYS = (
    "raw",
    "tuned",
    "rawfast",
    "sd1",
    "sd1a",
    "sd1p",
    "sdN",
    "cli",
    "wrk",
    "hey",
    "bombardier",
    "locust",
    "console",
    "stop",
    "rss",
)
DEFAULT_KEYS = tuple(
    k for k in KEYS if k != "cli"
)  # the CLI row repeats sd1 plus start-up; ask for it


class Bench:
    def __init__(self, args: argparse.Namespace, target: Target, workdir: Path) -> None:
        self.args, self.target, self.workdir = args, target, workdir
        self.rows: dict[str, Row] = {}
        self.jobs: list[
            tuple[str, list[str], Callable[[Measured, Path], dict[str, Any]], int, int | None]
        ] = []

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def run(
        self,
        name: str,
        argv: list[str],
        parse: Callable[[Measured, Path], dict[str, Any]],
        *,
        processes: int = 1,
        cpu: int | None = None,
        timeout: float | None = None,
    ) -> Row:
        """One trial of one row."""
        row = self._trial(name, argv, parse, processes=processes, cpu=cpu, timeout=timeout)
        self.rows[name] = row
        return row

    def queue(
        self,
        name: str,
        argv: list[str],
        parse: Callable[[Measured, Path], dict[str, Any]],
        *,
        processes: int = 1,
        cpu: int | None = None,
    ) -> None:
        self.rows[name] = Row(
            name, status="not run"
        )  # keeps the table in the order rows were asked for
        self.jobs.append((name, argv, parse, processes, cpu))

    def run_queued(self, repeat: int) -> None:
        """Every queued row, ``repeat`` passes over all of them, keeping each row's fastest trial.

        Passes, not back-to-back trials: other work on a shared machine comes and goes, and
        interleaving spreads it over every row instead of loading it onto one.
        """
        trials: dict[str, list[Row]] = {name: [] for name, *_ in self.jobs}
        for number in range(max(repeat, 1)):
            if repeat > 1:
                self.log(f"pass {number + 1} of {repeat}")
            for name, argv, parse, processes, cpu in self.jobs:
                trials[name].append(
                    self._trial(name, argv, parse, processes=processes, cpu=cpu, timeout=None)
                )
        for name, rows in trials.items():
            best = max(rows, key=lambda r: (r.ok, r.rps or 0.0))
            if len(rows) > 1:
                best.extra["trials_rps"] = [round(r.rps or 0.0) for r in rows]
            self.rows[name] = best
        self.jobs.clear()

    def _trial(
        self,
        name: str,
        argv: list[str],
        parse: Callable[[Measured, Path], dict[str, Any]],
        *,
        processes: int,
        cpu: int | None,
        timeout: float | None,
    ) -> Row:
        workdir = new_workdir(
            self.workdir, name.replace(" ", "_").replace("/", "_").replace(",", "")
        )
        where = (
            cpu if cpu is not None else self.args.all_cpus
        )  # children inherit bench.py's own pinning
        row = Row(name, processes=processes, pinned=f"cpu {cpu}" if cpu is not None else "no")
        srv0, tcpu0, busy0 = self.target.requests(), self.target.cpu_seconds(), busy_cpu_seconds()
        m = measure(
            argv,
            timeout=timeout or self.args.duration + 30,
            cpu=where,
            workdir=workdir,
            cwd=workdir,
        )
        tcpu1, srv1, busy1 = self.target.cpu_seconds(), self.target.requests(), busy_cpu_seconds()
        row.srv_requests = srv1 - srv0 - (1 if self.target.kind == "nginx" else 0)
        row.cpu_s, row.peak_rss_mib = m.cpu_s, m.peak_rss_mib
        row.target_cpu_pct = (tcpu1 - tcpu0) / m.wall_s * 100
        row.gen_cpu_pct = m.cpu_s / m.wall_s * 100
        # Everything else the machine did meanwhile (other users' work, this harness): the noise.
        row.other_cpu_pct = max((busy1 - busy0) - (tcpu1 - tcpu0) - m.cpu_s, 0.0) / m.wall_s * 100
        try:
            parsed = parse(m, workdir)
        except (ValueError, KeyError, IndexError, OSError) as exc:
            row.status = f"parse error: {exc}"
            parsed = {}
        if "error" in parsed:
            row.status = str(parsed.pop("error"))
        for key in ("rps", "requests", "p50_ms", "p99_ms"):
            if parsed.get(key) is not None:
                setattr(row, key, parsed.pop(key))
        row.extra.update(parsed)
        if m.killed:
            row.status = "killed at time limit"
        elif m.rc != 0 and row.ok:
            row.status = f"exit code {m.rc}"
        row.extra["workdir"] = str(workdir)
        self.log(
            f"  {name:38s} {row.status:>8s}  rps={fmt(row.rps)} cpu={fmt(row.cpu_s, 2)}s "
            f"window={fmt(row.window_cpu_s_per_1k, 3)}s/1k rss={fmt(row.peak_rss_mib)}MiB "
            f"tgt={fmt(row.target_cpu_pct)}% other={fmt(row.other_cpu_pct)}%"
        )
        time.sleep(self.args.pause)
        return row

    def skip(self, name: str, why: str) -> None:
        self.rows[name] = Row(name, status=why)
        self.log(f"  {name:38s} {why}")


def probe_parse(m: Measured, workdir: Path) -> dict[str, Any]:
    return parse_json_line(m.stdout, m.stderr)


def cli_has_processes() -> bool:
    out = subprocess.run(
        [PY, "-m", "stressdeck", "run", "--help"], capture_output=True, text=True
    ).stdout
    return "--processes" in out


def run_generators(bench: Bench, args: argparse.Namespace) -> None:
    url, base, c, d = bench.target.url, bench.target.base, args.connections, args.duration
    whole = max(int(round(d)), 1)  # wrk and locust take whole seconds only
    one = args.gen_cpu  # single-process generators share one core, like shared/bench/peers.py
    probe = [PY, PROBES]
    load = ["--url", url, "-c", str(c), "-d", f"{d:g}"]
    fast = [*load, "--client", "fast"]
    wanted = args.keys.__contains__

    if wanted("raw"):
        bench.queue(RAW, [*probe, "raw", *load], probe_parse, cpu=one)
    if wanted("tuned"):
        bench.queue(TUNED, [*probe, "raw", *load, "--tuned"], probe_parse, cpu=one)
    if wanted("rawfast"):
        bench.queue(RAW_FAST, [*probe, "rawfast", *load], probe_parse, cpu=one)
    if wanted("sd1"):
        bench.queue(ONE, [*probe, "api", *fast], probe_parse, cpu=one)
    if wanted("sd1a"):
        aiohttp = [*load, "--client", "aiohttp"]
        bench.queue(ONE_AIOHTTP, [*probe, "api", *aiohttp], probe_parse, cpu=one)
    if wanted("sd1p"):
        bench.queue(ONE_PROC, [*probe, "api", *fast, "--factory", "process"], probe_parse, cpu=one)
    if wanted("console"):
        bench.queue(CONSOLE, [*probe, "console", *fast], probe_parse, cpu=one)
    if wanted("sdN"):
        n = args.processes
        bench.queue(
            many(n), [*probe, "api", *fast, "--processes", str(n)], probe_parse, processes=n
        )
    if wanted("cli"):
        profile = bench.workdir / "bench.toml"
        profile.write_text(PROFILE.format(base=base, c=c))
        argv = [
            PY,
            "-m",
            "stressdeck",
            "run",
            str(profile),
            "--users",
            str(c),
            "--duration",
            f"{d:g}s",
            "--json",
            "result.json",
            "--quiet",
        ]
        if cli_has_processes():  # the default is "auto" (one per core): ask for one
            argv += ["--processes", "1"]
        bench.queue(CLI, argv, lambda m, w: parse_stressdeck_json(w / "result.json"), cpu=one)
    if wanted("wrk"):
        if shutil.which("wrk"):
            bench.queue(
                "wrk",
                ["wrk", "-t1", f"-c{c}", f"-d{whole}s", "--latency", url],
                lambda m, w: parse_wrk(m.stdout, m.stderr),
                cpu=one,
            )
        else:
            bench.skip("wrk", "not installed")
    if wanted("hey"):
        if shutil.which("hey"):
            bench.queue(
                "hey",
                ["hey", "-z", f"{whole}s", "-c", str(c), url],
                lambda m, w: parse_hey(m.stdout, m.stderr),
                cpu=one,
            )
        else:
            bench.skip("hey", "not installed")
    if wanted("bombardier"):
        if bombardier_http():
            bench.queue(
                "bombardier",
                ["bombardier", "-c", str(c), "-d", f"{whole}s", "-l", "-o", "json", "-p", "r", url],
                lambda m, w: parse_bombardier(m.stdout, m.stderr),
                cpu=one,
            )
        else:
            bench.skip("bombardier", "not installed (the HTTP one)")
    if wanted("locust"):
        locust = find_locust(args.peers_venv)
        if locust:
            locustfile = bench.workdir / "locustfile.py"
            locustfile.write_text(LOCUSTFILE)
            bench.queue(
                LOCUST,
                [
                    locust,
                    "-f",
                    str(locustfile),
                    "--headless",
                    "-u",
                    str(c),
                    "-r",
                    str(c),
                    "-t",
                    f"{whole}s",
                    "-H",
                    base,
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                ],
                lambda m, w: parse_locust(m.stdout, m.stderr),
                cpu=one,
            )
        else:
            bench.skip(LOCUST, "not installed")
    bench.run_queued(args.repeat)


def run_long(bench: Bench, args: argparse.Namespace, started: float) -> None:
    url, c, n = bench.target.url, args.connections, args.processes
    if "stop" in args.keys:
        bench.run(
            STOP,
            [PY, PROBES, "stop", "--url", url, "-c", str(c), "--processes", str(n)],
            probe_parse,
            processes=n,
            timeout=40,
        )
    if "rss" in args.keys:
        # Whatever the budget leaves, at least 15 s: the run stops at the request count or this cap.
        cap = max(15.0, min(args.rss_seconds, args.budget - (time.monotonic() - started) - 10))
        budget = args.rss_requests
        marks = sorted({m for m in (100_000, 250_000, 500_000) if m < budget} | {budget})
        n = args.rss_processes
        bench.run(
            RSS,
            [
                PY,
                PROBES,
                "rss",
                "--url",
                url,
                "-c",
                str(c),
                "--processes",
                str(n),
                "--requests",
                str(budget),
                "--marks",
                ",".join(map(str, marks)),
                "--max-seconds",
                f"{cap:.0f}",
            ],
            probe_parse,
            processes=n,
            cpu=args.gen_cpu if n == 1 else None,
            timeout=cap + 40,
        )


def code_version() -> str:
    """The commit under test, and whether src/ differs from it: others may be editing it mid-run."""
    root = HERE.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired):
        return "code version unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"stressdeck at {head}" + (
        f"; src/ has uncommitted changes: {', '.join(changed)}" if changed else ""
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
    except ImportError:
        ram = "RAM unknown"
    return f"{os.cpu_count()} cores ({model}), {ram}, Python {sys.version.split()[0]}"


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-d", "--duration", type=float, default=8.0, help="seconds per generator run (default 8)"
    )
    parser.add_argument(
        "-c", "--connections", type=int, default=50, help="connections / users (default 50)"
    )
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="N for the N-process row (cores)"
    )
    parser.add_argument(
        "--rss-requests", type=int, default=1_000_000, help="request budget of the RSS run"
    )
    parser.add_argument(
        "--rss-seconds", type=float, default=300.0, help="time cap of the RSS run (default 300)"
    )
    parser.add_argument(
        "--rss-processes",
        type=int,
        default=1,
        help="worker processes of the RSS run (default 1: the fastest way to 1M here)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=170.0,
        help="whole-bench seconds the RSS run's cap is fitted into (default 170: under 3 minutes)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 s runs, one trial each, RSS run to 150k requests (capped at 30 s): about a minute",
    )
    parser.add_argument(
        "--only", help="comma list of: " + ",".join(KEYS) + " (default: all but cli)"
    )
    parser.add_argument(
        "--aiohttp-target",
        action="store_true",
        help="use the aiohttp target even if nginx is installed",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="no taskset (default: target cpu 0, generators cpu 1)"
    )
    parser.add_argument(
        "--peers-venv", action="append", default=[], help="a venv with locust in it"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="passes over the generator rows, each row's fastest kept (default 1; 3 for a noisy machine)",
    )
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between runs")
    parser.add_argument("--json", help="write every row as JSON here")
    parser.add_argument("--md", help="write the tables here too")
    args = parser.parse_args(argv)
    args.keys = tuple(args.only.split(",")) if args.only else DEFAULT_KEYS
    unknown = set(args.keys) - set(KEYS)
    if unknown:
        parser.error(f"unknown --only keys: {', '.join(sorted(unknown))}")
    if args.quick:
        args.duration, args.rss_seconds = min(args.duration, 3.0), min(args.rss_seconds, 30.0)
        args.repeat, args.rss_requests = 1, min(args.rss_requests, 150_000)
    started = time.monotonic()
    cores = os.cpu_count() or 1
    pin = not args.no_pin and cores >= 2
    args.gen_cpu = 1 if pin else None
    args.all_cpus = f"0-{cores - 1}" if pin else None
    if pin:  # this harness (a 10 Hz sampler) shares the target's core, not the generators'
        os.sched_setaffinity(0, {0})
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    # SIGTERM unwinds like Ctrl+C, so the finally blocks stop the target and the running child.
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="stressdeck-bench-"))
    target = Target(workdir, 0 if pin else None, prefer_nginx=not args.aiohttp_target)
    bench = Bench(args, target, workdir)
    load_before = os.getloadavg()[0]
    version_before = code_version()
    bench.log(
        f"target: {target.kind} at {target.url}; c={args.connections}, {args.duration:g} s per run; "
        f"outputs in {workdir}; load average {load_before:.2f}"
    )
    try:
        run_generators(bench, args)
        run_long(bench, args, started)
    finally:
        target.stop()
    further, facts = further_table(bench.rows, cores)
    pinning = (
        "target on cpu 0, single-process generators on cpu 1, multi-process runs unpinned"
        if pin
        else "none"
    )
    report = "\n\n".join(
        [
            f"### Generators: {target.kind} target, closed loop, c={args.connections}, {args.duration:g} s each, "
            f"the fastest of {args.repeat} interleaved passes",
            f'{machine()}; pinning: {pinning}. The target and the generator share the machine. "other CPU %" is '
            'what the rest of the machine used meanwhile (% of one core): high means a noisy row. "Load-window" '
            "columns leave out interpreter start-up and imports (the Python probes report them; the peers cannot).",
            generators_table(bench.rows),
            "### Further measurements",
            further,
            "### Goals",
            goals_table(bench.rows, facts, args.processes),
            version_before
            + (
                ""
                if code_version() == version_before
                else f" at the start; **the code changed during the run**: {code_version()} at the end"
            ),
            f"whole bench: {time.monotonic() - started:.0f} s; 1-min load average {load_before:.2f} before, "
            f"{os.getloadavg()[0]:.2f} after (other work on this machine skews every row)",
        ]
    )
    print(report)
    if args.md:
        Path(args.md).write_text(report + "\n")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": {k: v for k, v in vars(args).items()},
                    "facts": facts,
                    "rows": [asdict(r) for r in bench.rows.values()],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the target and the running generator were stopped", file=sys.stderr)
        sys.exit(130)
