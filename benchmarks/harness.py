"""The parts of bench.py that are not stressdeck: the target, process-tree measurement, parsers.

Everything is on 127.0.0.1; every child runs in its own process group and is SIGKILLed
(that group only) if it outlives its time limit.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

HOST = "127.0.0.1"
MIB = 1024 * 1024
GNU_TIME = "/usr/bin/time"
HERE = Path(__file__).resolve().parent

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{port};
        location = /__stats {{ stub_status; }}
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(argv: list[str], cpu: int | str | None) -> list[str]:
    """``cpu`` is a taskset list ("1", "0-1"). Children inherit this process's affinity, so a
    row meant to use every core must say so when bench.py has pinned itself."""
    return (
        ["taskset", "-c", str(cpu), *argv] if cpu is not None and shutil.which("taskset") else argv
    )


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (every process, every core) since boot."""
    times = psutil.cpu_times()
    return (
        times.user
        + times.nice
        + times.system
        + getattr(times, "irq", 0.0)
        + getattr(times, "softirq", 0.0)
    )


class Target:
    """nginx (worker_processes 1, return 200 "ok") if installed, else probes.py serve (aiohttp)."""

    def __init__(self, workdir: Path, cpu: int | None, prefer_nginx: bool = True) -> None:
        self.workdir = workdir
        self.kind = "nginx" if prefer_nginx and shutil.which("nginx") else "aiohttp"
        if self.kind == "nginx":
            self.port = free_port()
            conf = workdir / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=workdir, host=HOST, port=self.port))
            argv = ["nginx", "-c", str(conf), "-p", str(workdir)]
            self.proc = subprocess.Popen(
                pinned(argv, cpu),
                stdout=subprocess.DEVNULL,
                stderr=open(workdir / "nginx.stderr", "w"),
                start_new_session=True,
            )
        else:
            argv = [sys.executable, str(HERE / "probes.py"), "serve", "--port", "0"]
            self.proc = subprocess.Popen(
                pinned(argv, cpu), stdout=subprocess.PIPE, text=True, start_new_session=True
            )
            assert self.proc.stdout is not None
            self.port = int(self.proc.stdout.readline())
        self.base = f"http://{HOST}:{self.port}"
        self.url = self.base + "/"
        deadline = time.monotonic() + 10
        while True:
            try:
                self.requests()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise SystemExit(
                        f"the {self.kind} target did not start (see {workdir})"
                    ) from None
                time.sleep(0.05)

    def requests(self) -> int:
        """Requests the target has served (nginx counts this stats request too)."""
        with urllib.request.urlopen(self.base + "/__stats", timeout=5) as response:
            text = response.read().decode()
        if self.kind == "nginx":
            return int(text.splitlines()[2].split()[2])
        return int(json.loads(text)["requests"])

    def cpu_seconds(self) -> float:
        total = 0.0
        try:
            root = psutil.Process(self.proc.pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            with _suppress():
                os.killpg(self.proc.pid, signal.SIGTERM)  # its own group: nginx master and worker
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, *rest: Any) -> bool:
        return kind is not None and issubclass(kind, (ProcessLookupError, PermissionError))


@dataclass
class Measured:
    rc: int
    killed: bool
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    processes: int
    stdout: str
    stderr: str
    notes: list[str] = field(default_factory=list)


class TreeSampler(threading.Thread):
    """Every 0.1 s: CPU (last seen per pid) and summed RSS of a process tree."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.cpu: dict[int, float] = {}
        self.peak_rss = 0
        self.seen: set[int] = set()
        self._done = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.is_set():
            rss = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for proc in tree:
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        rss += proc.memory_info().rss
                    self.cpu[proc.pid] = times.user + times.system
                    self.seen.add(proc.pid)
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self._done.wait(0.1)

    def stop(self) -> None:
        self._done.set()
        self.join(2)


def measure(
    argv: list[str],
    *,
    timeout: float,
    cpu: int | str | None,
    workdir: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run ``argv`` to its end (or SIGKILL its group after ``timeout``) and measure its tree.

    CPU is the largest of GNU time's user+sys, the wait4 rusage of our reaped children and the
    sampled sum over the tree. RSS is the larger of GNU time's %M (largest single process) and the
    sampled peak of the tree's summed RSS. The child is not exec'd straight from this python:
    Linux carries the pre-exec RSS high-water mark into ru_maxrss, GNU time does not.
    """
    notes = []
    time_file = workdir / "time.txt"
    wrapped = argv
    if os.path.exists(GNU_TIME):
        wrapped = [GNU_TIME, "-o", str(time_file), "-f", "%e %U %S %M", *argv]
    else:
        notes.append("no GNU time: CPU from wait4, RSS sampled")
    wrapped = pinned(wrapped, cpu)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    with open(workdir / "stdout.txt", "w") as out, open(workdir / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            wrapped,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()
        killed = False
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait(5)
        except BaseException:  # Ctrl+C or SIGTERM: the child is in its own session, so tell it
            with _suppress():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            raise
        finally:
            sampler.stop()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wait4_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu_s = max(wait4_cpu, sum(sampler.cpu.values()))
    rss = sampler.peak_rss / MIB
    if time_file.exists():
        fields = time_file.read_text().split()
        try:
            _, user, system, max_kib = fields[-4:]
            cpu_s = max(cpu_s, float(user) + float(system))
            rss = max(rss, int(max_kib) / 1024)
        except ValueError:
            notes.append("GNU time output not parsed")
    return Measured(
        rc=rc,
        killed=killed,
        wall_s=wall,
        cpu_s=cpu_s,
        peak_rss_mib=rss,
        processes=len(sampler.seen),
        notes=notes,
        stdout=(workdir / "stdout.txt").read_text(errors="replace"),
        stderr=(workdir / "stderr.txt").read_text(errors="replace"),
    )


# -- parsers: stdout/stderr -> requests, rps, p50_ms, p99_ms (None when not reported) -------------

_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float | None:
    match = re.match(r"\s*([\d.]+)\s*(us|µs|ms|s|m)\b", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def parse_wrk(out: str, err: str) -> dict[str, Any]:
    requests = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return {
        "requests": int(requests.group(1)) if requests else None,
        "rps": float(rps.group(1)) if rps else None,
        "p50_ms": _ms(p50.group(1)) if p50 else None,
        "p99_ms": _ms(p99.group(1)) if p99 else None,
    }


def parse_hey(out: str, err: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    p50 = re.search(r"50% in ([\d.]+) secs", out)
    p99 = re.search(r"99% in ([\d.]+) secs", out)
    return {
        "requests": sum(int(n) for _, n in codes) or None,
        "rps": float(rps.group(1)) if rps else None,
        "p50_ms": float(p50.group(1)) * 1e3 if p50 else None,
        "p99_ms": float(p99.group(1)) * 1e3 if p99 else None,
    }


def bombardier_http() -> bool:
    """Debian's ``bombardier`` is a game: only the HTTP benchmarking tool counts."""
    path = shutil.which("bombardier")
    if path is None:
        return False
    try:
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--connections" in out.stdout + out.stderr


def parse_bombardier(out: str, err: str) -> dict[str, Any]:
    """``bombardier -l -o json -p r`` (as /work/shared/bench/peers.py runs it); latencies in µs."""
    res = json.loads(out[out.index("{") :])["result"]
    pcts = res["latency"].get("percentiles", {})
    return {
        "requests": sum(
            res.get(k, 0) for k in ("req1xx", "req2xx", "req3xx", "req4xx", "req5xx", "others")
        ),
        "rps": res["rps"]["mean"],
        "p50_ms": pcts["50"] / 1e3 if "50" in pcts else None,
        "p99_ms": pcts["99"] / 1e3 if "99" in pcts else None,
    }


def parse_locust(out: str, err: str) -> dict[str, Any]:
    lines = [ln for ln in (out + "\n" + err).splitlines() if ln.strip().startswith("Aggregated")]
    if len(lines) < 2:
        raise ValueError("no locust summary in its output")
    stats = [
        x for x in lines[-2].split()[1:] if x != "|"
    ]  # reqs fails(%) avg min max med req/s fail/s
    pcts = lines[-1].split()  # Aggregated 50 66 75 80 90 95 98 99 99.9 99.99 100 reqs
    as_ms = lambda x: None if x == "N/A" else float(x)  # noqa: E731
    return {
        "requests": int(stats[0]),
        "rps": float(stats[6]),
        "p50_ms": as_ms(pcts[1]),
        "p99_ms": as_ms(pcts[8]),
    }


def parse_json_line(out: str, err: str) -> dict[str, Any]:
    """The last stdout line that is a JSON object (what probes.py prints)."""
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise ValueError("no JSON line in stdout")


def parse_stressdeck_json(path: Path) -> dict[str, Any]:
    """The documented ``--json`` results file of ``stressdeck run``."""
    doc = json.loads(path.read_text())
    total = doc["summary"]["total"]
    elapsed = doc["elapsed"] or 1e-9
    return {
        "requests": total["requests"],
        "rps": total["requests"] / elapsed,
        "errors": total["errors"],
        "p50_ms": total["latency_ms"]["p50"],
        "p99_ms": total["latency_ms"]["p99"],
        "stop_reason": doc["stop_reason"],
    }


def find_locust(extra: list[str]) -> str | None:
    """locust on PATH, in a venv given with --peers-venv, or in the usual side venvs."""
    candidates = [
        *extra,
        "/work/peers-venv",
        os.path.expanduser("~/.peers-venv"),
        str(Path(sys.executable).parent.parent),
    ]
    found = shutil.which("locust")
    if found:
        return found
    for venv in candidates:
        path = Path(venv) / "bin" / "locust"
        if path.exists():
            return str(path)
    return None


LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Peer(FastHttpUser):
    wait_time = constant(0)

    @task
    def hit(self):
        self.client.get("/")
"""


def new_workdir(root: Path, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    return path
