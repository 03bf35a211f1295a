"""Summarise a py-spy ``--format raw`` (collapsed stacks) file: where the samples went.

    py-spy record -r 250 -t -f raw -o /tmp/spy.txt -- python benchmarks/probes.py api --url URL -d 8
    python benchmarks/spy_top.py /tmp/spy.txt [--top 25] [--thread stressdeck-worker]

Prints samples per thread, then the top functions by self time (the leaf frame) and by
inclusive time (anywhere on the stack, counted once per sample), as % of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``: lines merged per function."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    parts = path.split("/")
    where = "/".join(parts[-2:]) if "site-packages" in path or "stressdeck" in path else parts[-1]
    return f"{match.group('func')} ({where})"


def summarise(text: str, top: int = 25, thread_filter: str | None = None) -> str:
    """The report for one collapsed-stacks file, as text."""
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith(("thread", "process")) else "?"
        if frames[0].startswith("process"):
            thread = frames[1] if len(frames) > 1 and frames[1].startswith("thread") else frames[0]
        if thread_filter and thread_filter not in thread:
            continue
        names = [short(f) for f in frames if not f.startswith(("thread", "process"))]
        if not names:
            continue
        threads[thread] += count
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
    own = [(name, count) for name, count in inclusive.most_common() if "(engine/" in name or "stressdeck" in name]
    out += ["", "inclusive time, stressdeck's own functions:"]
    out += [f"  {count / total:6.1%}  {name}" for name, count in own[:top]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only stacks whose thread name contains this")
    args = parser.parse_args()
    print(summarise(Path(args.file).read_text(), args.top, args.thread))


if __name__ == "__main__":
    main()
