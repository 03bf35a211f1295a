"""Summarise a py-spy ``--format raw`` (collapsed stacks) file: where the samples went.

    py-spy record -r 250 -t -f raw -o /tmp/spy.txt -- python benchmarks/probes.py api --url URL -d 8
    python benchmarks/spy_top.py /tmp/spy.txt [--top 25] [--thread stressdeck-worker]

Prints samples per thread, then the top functions by self time (the leaf frame) and by
inclusive time (anywhere on the stack, counted once per sample), as % of all samples, and
the samples grouped by what the leaf frame belongs to (``GROUPS``).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def split_stack(stack: str) -> list[str]:
    """Frames of one collapsed stack. A process label quotes its command line, which can hold
    a ';' itself (multiprocessing's ``import spawn_main; spawn_main(...)``): keep it whole."""
    frames: list[str] = []
    for piece in stack.split(";"):
        if frames and frames[-1].count('"') % 2 == 1:
            frames[-1] += ";" + piece
        else:
            frames.append(piece)
    return frames


def short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``: lines merged per function."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    parts = path.split("/")
    where = "/".join(parts[-2:]) if "site-packages" in path or "stressdeck" in path else parts[-1]
    return f"{match.group('func')} ({where})"


# (group, substrings of the leaf frame's file or function). First match wins; the order matters
# (stressdeck's recorder before the rest of its engine; parsing before the rest of aiohttp).
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("start-up: imports, compiling", ("<frozen importlib", "importlib/", "_compile_bytecode")),
    # uvloop runs in C: py-spy (without --native) books its own time (polling, socket reads,
    # callbacks' C parts) to the Python frame that called run_until_complete.
    (
        "event loop (asyncio / uvloop, timers, sockets)",
        ("ThreadWorker._main (", "_child_main (", "run_until_complete (", "main (probes.py"),
    ),
    (
        "other threads: waits, queues, pipes",
        ("concurrent/futures/thread.py", "threading.py", "multiprocessing/", "queue.py"),
    ),
    (
        "stressdeck: recording (stats, HDR histograms)",
        ("engine/stats.py", "engine/hdr.py", "hdrh/", "histogram.py"),
    ),
    ("the raw reference loop's own code", ("raw_loop.<locals>.user",)),
    (
        "stressdeck: runner, snapshots, timeline (parent side)",
        (
            "engine/runner.py",
            "engine/snapshot.py",
            "engine/timeline.py",
            "engine/cpu.py",
            "engine/transport.py",
        ),
    ),
    ("stressdeck: load loop and send()", ("stressdeck/", "engine/")),
    (
        "HTTP parsing (aiohttp parser, headers)",
        ("http_parser", "_http_parser", "multidict", "client_proto.py", "ResponseHandler"),
    ),
    ("URLs (yarl)", ("yarl/",)),
    ("aiohttp: writing the request", ("http_writer.py", "payload.py", "base_protocol.py")),
    (
        "aiohttp: client, request/response objects, connector",
        ("aiohttp/", "aiohappyeyeballs/", "aiosignal/", "frozenlist/", "attr/"),
    ),
    (
        "event loop (asyncio / uvloop, timers, sockets)",
        (
            "asyncio/",
            "uvloop",
            "selectors.py",
            "socket.py",
            "libuv",
            "uv__",
            "epoll",
            "libc.so",
            "__libc",
            "send",
            "recv",
        ),
    ),
    ("psutil (our own health sampling)", ("psutil/",)),
    ("Textual / rendering", ("textual/", "rich/", "plotext/")),
]


STARTUP_AND_IDLE = ("start-up: imports, compiling", "other threads: waits, queues, pipes")


# Groups decided by what is anywhere on the stack, before the leaf frame is looked at: the
# parent's per-tick work and the recorder call into shared helpers (stats.py, hdrh).
CONTEXT: list[tuple[str, tuple[str, ...]]] = [
    ("start-up: imports, compiling", ("_find_and_load",)),
    (
        "stressdeck: runner, snapshots, timeline (parent side)",
        ("RunHandle.", "CpuMeter.", "Timeline."),
    ),
    ("stressdeck: recording (stats, HDR histograms)", ("Recorder.",)),
    ("the probe's own measuring (bench only)", ("Window.", "track_window", "tree_cpu (")),
]


def context_group(frames: list[str]) -> str | None:
    for name, needles in CONTEXT:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return None


def group_of(frame: str) -> str:
    for name, needles in GROUPS:
        if any(needle in frame for needle in needles):
            return name
    return "other"


def samples(
    text: str, thread_filter: str | None = None
) -> Iterator[tuple[int, list[str], list[str]]]:
    """(count, labels, code frames) per stack line of the kept threads. Labels are the process
    chain, then the thread; every report reads the file through here, so they agree."""
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        frames = split_stack(stack)
        labels = [f for f in frames if f.startswith(("thread", "process"))]
        if thread_filter and not any(thread_filter in label for label in labels):
            continue
        code = [f for f in frames if not f.startswith(("thread", "process"))]
        if code:
            yield int(count_text), labels, code


def groups(text: str, thread_filter: str | None = None) -> list[tuple[str, int, float]]:
    """(group, samples, share) by the leaf frame; samples under an import count as start-up."""
    counts: Counter[str] = Counter()
    total = 0
    for count, _, code in samples(text, thread_filter):
        total += count
        counts[context_group(code) or group_of(code[-1])] += count
    return [(name, n, n / total) for name, n in counts.most_common()] if total else []


def summarise(text: str, top: int = 25, thread_filter: str | None = None) -> str:
    """The report for one collapsed-stacks file, as text."""
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for count, labels, code in samples(text, thread_filter):
        names = [short(f) for f in code]
        threads[labels[-1] if labels else "?"] += count
        total += count
        self_time[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    if not total:
        return "no samples"
    out = [f"{total} samples" + (f" (threads matching {thread_filter!r})" if thread_filter else "")]
    out += [f"  {count / total:6.1%}  {thread}" for thread, count in threads.most_common()]
    out += ["", "self time (leaf frame):"]
    out += [f"  {count / total:6.1%}  {name}" for name, count in self_time.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {count / total:6.1%}  {name}" for name, count in inclusive.most_common(top)]
    grouped = groups(text, thread_filter)
    out += ["", "grouped by the leaf frame:"]
    out += [f"  {share:6.1%}  {name}" for name, _, share in grouped]
    steady = [(name, n) for name, n, _ in grouped if name not in STARTUP_AND_IDLE]
    steady_total = sum(n for _, n in steady)
    if steady_total:
        out += ["", "grouped, the load alone (start-up and other threads' waits left out):"]
        out += [f"  {n / steady_total:6.1%}  {name}" for name, n in steady]
    own = [
        (name, count)
        for name, count in inclusive.most_common()
        if "(engine/" in name or "stressdeck" in name
    ]
    out += ["", "inclusive time, stressdeck's own functions:"]
    out += [f"  {count / total:6.1%}  {name}" for name, count in own[:top]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only stacks whose thread name contains this")
    args = parser.parse_args()
    print(summarise(Path(args.file).read_text(), args.top, args.thread))


if __name__ == "__main__":
    main()
