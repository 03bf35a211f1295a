"""Waiting on a condition instead of sleeping for a guessed time.

A test that needs something to have happened (requests to have landed, a request to be in
flight, a stop to have begun) waits on that condition itself, on a wall-clock deadline, and
fails with a message naming what did not happen. ``eventually`` lets the test's event loop
run while it polls; ``until`` is for a test without one (a thread, a child process).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import IO

POLL_S = 0.01


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, what: str = ""
) -> None:
    """Poll ``condition`` every ~10 ms until it holds; fail after ``timeout`` s of wall time.
    ``condition`` may be a coroutine function (asking a server over HTTP, say)."""
    deadline = time.monotonic() + timeout
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert time.monotonic() < deadline, f"{what or 'condition'}: not within {timeout} s"
        await asyncio.sleep(POLL_S)


def until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """``eventually`` for synchronous code: blocks the calling thread while it polls."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what or 'condition'}: not within {timeout} s"
        time.sleep(POLL_S)


class OutputLines:
    """A child's output read line by line on a thread, so that waiting for a line has a
    deadline (a bare ``readline()`` waits for ever on a child that hangs)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self._stream = stream
        self.lines: list[str] = []
        self._ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)
        self._ended.set()

    def wait_for(self, pattern: str, timeout: float = 10.0, after: int = 0) -> int:
        """The index of the first line from ``after`` on that matches ``pattern``."""

        def found() -> int | None:
            return next(
                (i for i in range(after, len(self.lines)) if re.search(pattern, self.lines[i])),
                None,
            )

        until(
            lambda: found() is not None or self._ended.is_set(),
            timeout,
            f"a line matching {pattern!r}",
        )
        index = found()
        assert index is not None, (
            f"the output ended with no line matching {pattern!r}: {self.text()}"
        )
        return index

    def text(self, timeout: float = 10.0) -> str:
        """All of the output, once it has ended."""
        until(self._ended.is_set, timeout, "the end of the output")
        return "".join(self.lines)
