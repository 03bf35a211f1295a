"""Is the target answering? Judged from the last few seconds of snapshots, so a dead or
failing backend is said in words at once instead of read off an error rate.

Pure: fed one snapshot at a time; it keeps only the few seconds it looks back over.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from stressdeck.engine.snapshot import RUNNING, Snapshot

WINDOW = 3.0  # seconds looked back over: long enough not to flap, short enough to be "now"
# Error classes that mean no HTTP answer came at all.
NO_ANSWER = ("connect", "dns", "tls", "timeout")


def error_kind(error_class: str) -> str:
    """The class an error class names before its reason: ``tls: expired`` is ``tls``."""
    return error_class.partition(":")[0].strip()


@dataclass(frozen=True)
class _Mark:
    elapsed: float
    requests: int
    errors: dict[str, int]
    messages: dict[str, int]


def verdict(first: _Mark, last: _Mark, in_flight: int, span: float) -> str | None:
    """Why the target is not answering between two marks, or None when it answers."""
    requests = last.requests - first.requests
    if requests == 0:
        # Nothing completed: requests hang (or none were sent at all).
        if in_flight and span >= WINDOW:
            return f"no answer for {span:.0f} s ({in_flight} requests waiting)"
        return None
    # By class: "tls: unknown issuer" is a tls error, as "connect" is a connect one.
    failed: dict[str, int] = {}
    for name, n in last.errors.items():
        kind = error_kind(name)
        failed[kind] = failed.get(kind, 0) + n - first.errors.get(name, 0)
    unanswered = sum(failed.get(kind, 0) for kind in NO_ANSWER)
    if unanswered < requests:
        return None
    messages = {k: n - first.messages.get(k, 0) for k, n in last.messages.items()}
    reason = max(messages, key=lambda k: messages[k]) if any(messages.values()) else ""
    if not reason:
        reason = max(NO_ANSWER, key=lambda kind: failed.get(kind, 0))
    return f"{reason} (every request for {span:.0f} s)"


class AnsweringWatch:
    """Feed it snapshots; ``update`` returns why the target is not answering, or None."""

    def __init__(self) -> None:
        self._marks: deque[_Mark] = deque()

    def update(self, snap: Snapshot) -> str | None:
        if snap.state != RUNNING:
            self._marks.clear()  # paused or over: nothing is asked of the target
            return None
        total = snap.total
        mark = _Mark(
            snap.elapsed, total.requests, dict(total.error_counts), dict(total.error_messages)
        )
        if self._marks and mark.elapsed < self._marks[-1].elapsed:
            self._marks.clear()  # a new run
        self._marks.append(mark)
        while len(self._marks) > 1 and mark.elapsed - self._marks[1].elapsed >= WINDOW:
            self._marks.popleft()
        first = self._marks[0]
        span = mark.elapsed - first.elapsed
        if span < 1.0:
            return None
        return verdict(first, mark, snap.in_flight, span)
