"""How long the console takes to appear, and a run to show its first figures.

    PYTHONPATH=src python benchmarks/startup.py [--runs 7] [--only demo|profile|imports]
        [--read 2] [--tree before=/tmp/old/src --tree after=src]

Each repetition opens the console in a real terminal (a tmux pane, 80x24, the size the
issue measured in), polls what the pane shows every 10 ms, and times:

- ``console``: from launching ``python -m stressdeck ...`` until the dashboard is on
  screen (its header shows ``IDLE``);
- ``first figures``: from pressing ``s`` until the pane shows a request count above zero.

Two ways in: ``demo`` (the console starts the built-in demo target itself) and
``profile`` (a one-endpoint profile file pointed at a demo target this script starts
once, as ``stressdeck demo-server``). The pane is then closed (``tmux kill-session``: the
on-call engineer's dropped SSH) and the process waited for. Finally ``python -X importtime
-m stressdeck --help`` gives the import time of the command line, the slowest modules first.

The user reads the screen ``--read`` seconds before pressing ``s`` (the console starts its
worker processes meanwhile). The machine is shared: every figure is the median of ``--runs``
repetitions (min and max beside it), and the ways in (and the source trees given with
``--tree``, to compare before and after a change) alternate run by run, so that a burst of
load hits all of them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TMUX_SOCKET = "stressdeck-startup-bench"
POLL_S = 0.01
LIMIT_S = 60.0  # a hang, not a slow start
FIRST_FIGURES = re.compile(r"requests ([1-9][\d,]*)")


def tmux(*args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", TMUX_SOCKET, *args], capture_output=True, text=True, check=False
    )
    return done.stdout


def pane_text(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, found: re.Pattern[str], since: float) -> float:
    while time.perf_counter() - since < LIMIT_S:
        if found.search(pane_text(session)):
            return time.perf_counter() - since
        time.sleep(POLL_S)
    raise TimeoutError(
        f"{found.pattern!r} not on screen after {LIMIT_S:g} s:\n{pane_text(session)}"
    )


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def one_run(
    command: list[str], cwd: Path, env: dict[str, str], read_s: float
) -> tuple[float, float]:
    """(seconds to the console, seconds from ``s`` to the first figures)."""
    session = "bench"
    line = " ".join(f"'{part}'" for part in command)
    started = time.perf_counter()
    subprocess.run(
        [
            "tmux",
            "-L",
            TMUX_SOCKET,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "24",
            "-c",
            str(cwd),
            "-e",
            f"PYTHONPATH={env['PYTHONPATH']}",
            line,
        ],
        check=True,
    )
    pid = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
    try:
        console = wait_for(session, re.compile(r"\bIDLE\b"), started)
        time.sleep(read_s)  # the user reads the screen
        pressed = time.perf_counter()
        tmux("send-keys", "-t", session, "s")
        figures = wait_for(session, FIRST_FIGURES, pressed)
    finally:
        tmux("kill-session", "-t", session)
        deadline = time.perf_counter() + LIMIT_S
        while not process_gone(pid) and time.perf_counter() < deadline:
            time.sleep(0.05)
    return console, figures


def import_time(env: dict[str, str]) -> tuple[float, list[tuple[int, str]]]:
    """Seconds of ``python -m stressdeck --help``, and the slowest imports (µs, module)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "stressdeck", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    wall = time.perf_counter() - started
    rows = []
    for row in done.stderr.splitlines():
        parts = row.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return wall, sorted(rows, reverse=True)[:15]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def describe(name: str, values: list[float]) -> str:
    return (
        f"{name:<28} median {statistics.median(values):5.2f} s   "
        f"min {min(values):5.2f}   max {max(values):5.2f}   (n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", choices=("demo", "profile", "imports"))
    parser.add_argument("--read", type=float, default=2.0, help="seconds before s (default 2)")
    parser.add_argument(
        "--tree", action="append", default=[], metavar="NAME=SRC", help="a source tree to time"
    )
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is needed", file=sys.stderr)
        return 2
    default_src = os.environ.get("PYTHONPATH") or str(Path(__file__).resolve().parents[1] / "src")
    trees = dict(tree.split("=", 1) for tree in args.tree) or {"src": default_src}
    envs = {
        name: dict(os.environ, PYTHONPATH=str(Path(src).resolve())) for name, src in trees.items()
    }
    print(
        f"python {sys.version.split()[0]}, trees {trees}, read {args.read:g} s, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if args.only in (None, "imports"):
        walls: dict[str, list[float]] = {name: [] for name in envs}
        slowest: dict[str, list[tuple[int, str]]] = {}
        for _ in range(args.runs):
            for name, env in envs.items():
                wall, slowest[name] = import_time(env)
                walls[name].append(wall)
        for name in envs:
            print(describe(f"[{name}] stressdeck --help", walls[name]))
            print("  slowest imports of the last --help (cumulative µs):")
            for micros, module in slowest[name][:10]:
                print(f"    {micros:>9,}  {module}")
    if args.only == "imports":
        return 0
    env = next(iter(envs.values()))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "stressdeck", "demo-server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory(prefix="stressdeck-startup-") as tmp:
        cwd = Path(tmp)
        profile = cwd / "probe.toml"
        profile.write_text(
            f'name = "probe"\nbase_url = "http://127.0.0.1:{port}"\n\n'
            '[load]\nusers = 10\nduration = "30s"\n\n'
            '[[endpoints]]\nname = "items"\npath = "/items"\n',
            encoding="utf-8",
        )
        commands = {
            "demo": [sys.executable, "-m", "stressdeck", "demo"],
            "profile": [sys.executable, "-m", "stressdeck", str(profile)],
        }
        chosen = [args.only] if args.only else list(commands)
        ways = [(tree, way) for way in chosen for tree in envs]
        figures: dict[str, tuple[list[float], list[float]]] = {
            f"[{tree}] {way}": ([], []) for tree, way in ways
        }
        try:
            for _ in range(args.runs):
                for tree, way in ways:  # alternate, so a burst of load hits every one
                    console, first = one_run(commands[way], cwd, envs[tree], args.read)
                    figures[f"[{tree}] {way}"][0].append(console)
                    figures[f"[{tree}] {way}"][1].append(first)
        finally:
            server.terminate()
            server.wait(10)
            tmux("kill-server")
    for name, (consoles, firsts) in figures.items():
        print(describe(f"{name}: launch → console", consoles))
        print(describe(f"{name}: s → first figures", firsts))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
