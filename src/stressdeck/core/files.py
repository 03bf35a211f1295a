"""Atomic file writes: a reader never sees a half-written file, whatever happens mid-write."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from stressdeck.core.errors import InputError
from stressdeck.core.text import printable


class WriteError(Exception):
    """A file could not be written; the message is one line naming the file."""


def write_atomic(path: str | Path, data: str | bytes, *, overwrite: bool = True) -> Path:
    """Write to a temporary file beside ``path``, fsync, then rename over it.

    A symlink stays a link: the file it points to is the one replaced. A path that is a
    device or a pipe (``/dev/stdout``, ``/dev/null``) is written in place, since it cannot
    be renamed over; renaming over ``/dev/stdout`` as root would replace the device link.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise WriteError(f"{target}: already exists (use --force to overwrite)")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    real = Path(os.path.realpath(target))
    try:
        mode = real.stat().st_mode
    except OSError:
        mode = None  # not there yet (or a dangling link): created beside where it points
    if mode is not None and stat.S_ISDIR(mode):
        raise WriteError(f"{target}: cannot write (is a directory)")
    if mode is not None and not stat.S_ISREG(mode):
        return _write_in_place(target, real, payload)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    except OSError as exc:
        # mkdir says "File exists" for a parent that is a file: name the part in the way instead.
        raise WriteError(
            f"{target}: cannot write ({unwritable_reason(real) or _reason(exc)})"
        ) from None
    try:
        # mkstemp makes the file 0600; a report or session is shared like any file the user
        # writes, so give it what open() would have: the old file's mode, else 0666 - umask.
        os.fchmod(fd, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, real)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise WriteError(f"{target}: cannot write ({_reason(exc)})") from None
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_in_place(target: Path, real: Path, payload: bytes) -> Path:
    try:
        with open(real, "wb") as handle:
            handle.write(payload)
            handle.flush()  # /dev/full reports "no space" here, not at write()
    except OSError as exc:
        raise WriteError(f"{target}: cannot write ({_reason(exc)})") from None
    return target


def unwritable_reason(path: str | Path) -> str | None:
    """Why a file could not be written at ``path``, as far as can be told without writing.

    None when it looks writable. Catches what is already true before a run (a parent that
    is a file, a read-only directory, a directory in the way); a disk that fills up during
    the run is only found when writing.
    """
    target = Path(os.path.realpath(path))
    if target.is_dir():
        return "is a directory"
    if target.exists() and not target.is_file():  # a device or a pipe: written in place
        return None if os.access(target, os.W_OK) else "permission denied"
    # A file is created (or replaced) by a rename in its directory: that is what must be writable.
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def refuse_unwritable(option: str, path: str | None) -> None:
    """Raise InputError naming ``option`` when ``path`` cannot be written: before a run, not after it."""
    if not path:
        return
    reason = unwritable_reason(path)
    if reason is not None:
        raise InputError(option, "", f"{printable(path)}: cannot write ({printable(reason)})")
