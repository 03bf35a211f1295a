"""Standard output whose reader may leave: `stressdeck run URL --json f.json | head -2`.

When the reader closes the pipe, the next write raises BrokenPipeError wherever it happens
(a progress line in the middle of the run), and a command that let it through lost the run
and its files. Through ``ReaderMayLeave`` the run goes on instead: from the first failed
write on, standard output is /dev/null (the lines nobody reads are dropped), one note says
so on stderr, and the run ends as planned, its --json and session written, with its own
exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class ReaderMayLeave:
    """Wraps a text stream (sys.stdout): a write or flush to a closed pipe is dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_left = False

    def write(self, text: str) -> int:
        if not self.reader_left:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._left()
        return len(text)

    def flush(self) -> None:
        if not self.reader_left:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._left()

    def _left(self) -> None:
        self.reader_left = True
        # Python flushes stdout again at exit: /dev/null takes what is still buffered,
        # where the closed pipe would fail once more (exit 120 and a message).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
            pass
        print(
            "note: standard output was closed (its reader left): the rest of it is dropped; "
            "the run goes on and its files are written",
            file=sys.stderr,
            flush=True,
        )

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding ... as the stream's
        return getattr(self._stream, name)


@contextmanager
def reader_may_leave() -> Iterator[ReaderMayLeave]:
    """sys.stdout wrapped in ``ReaderMayLeave`` for the length of the block."""
    original = sys.stdout
    wrapped = ReaderMayLeave(original)
    sys.stdout = wrapped  # type: ignore[assignment]
    try:
        yield wrapped
    finally:
        if sys.stdout is wrapped:
            sys.stdout = original
