"""Atomic file writes: a reader never sees a half-written file, whatever happens mid-write."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class WriteError(Exception):
    """A file could not be written; the message is one line naming the file."""


def write_atomic(path: str | Path, data: str | bytes, *, overwrite: bool = True) -> Path:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    target = Path(path)
    if not overwrite and target.exists():
        raise WriteError(f"{target}: already exists (use --force to overwrite)")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from None
    return target
