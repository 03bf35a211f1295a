"""Files from and to the outside: atomic writes that never follow a link, bounded reads of
regular files only.

A reader never sees a half-written file, whatever happens mid-write; a link planted at a
path we write is refused; a device, a pipe or a huge file where a profile should be is one
error line naming the file, never a hang or a read that fills memory.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from stressdeck.core.errors import InputError
from stressdeck.core.text import printable


class WriteError(Exception):
    """A file could not be written; the message is one line naming the file."""


def _is_stream_link(path: Path) -> bool:
    """A link to a terminal, a pipe or a character device (``/dev/stdout``, a link to
    ``/dev/full``): writing there replaces no file, so the link may be followed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # dangling: following it would create a file elsewhere
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def write_atomic(path: str | Path, data: str | bytes, *, overwrite: bool = True) -> Path:
    """Write to a temporary file beside ``path``, fsync, then rename it to ``path``.

    Never through a symbolic link at ``path``: a link planted there (even a dangling one)
    would send the file somewhere else while we print this path, so it is refused, unless
    it leads to a stream (``/dev/stdout``, a character device, a pipe) where no file is. Without
    ``overwrite`` the final name is taken with a hard link, which the kernel refuses if
    anything (a file, a link) appeared there meanwhile. A device or a pipe (``/dev/stdout``,
    ``/dev/null``) is written in place, since it cannot be renamed over.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        found = os.lstat(target)
    except FileNotFoundError:
        found = None
    except OSError as exc:  # a parent that is a file: name it
        reason = unwritable_reason(target) or _reason(exc)
        raise WriteError(f"{target}: cannot write ({reason})") from None
    if found is not None and stat.S_ISLNK(found.st_mode):
        if not _is_stream_link(target):
            raise WriteError(f"{target}: cannot write (is a symbolic link; not followed)")
        found = os.stat(target)
    mode = found.st_mode if found is not None else None
    if mode is not None and stat.S_ISDIR(mode):
        raise WriteError(f"{target}: cannot write (is a directory)")
    if mode is not None and not stat.S_ISREG(mode):
        return _write_in_place(target, payload)
    if mode is not None and not overwrite:
        raise WriteError(f"{target}: already exists (use --force to overwrite)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        # mkdir says "File exists" for a parent that is a file: name the part in the way instead.
        raise WriteError(
            f"{target}: cannot write ({unwritable_reason(target) or _reason(exc)})"
        ) from None
    try:
        # mkstemp makes the file 0600; a report or session is shared like any file the user
        # writes, so give it what open() would have: the old file's mode, else 0666 - umask.
        os.fchmod(fd, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, target)  # a link planted meanwhile is replaced, not followed
        else:
            _claim(temp, target)
    except OSError as exc:
        raise WriteError(f"{target}: cannot write ({_reason(exc)})") from None
    finally:
        try:
            os.unlink(temp)
        except OSError:
            pass  # renamed: nothing left to remove
    return target


def _claim(temp: str, target: Path) -> None:
    """Give ``temp`` the name ``target`` only if nothing has it: create-exclusive, atomically."""
    try:
        os.link(temp, target)  # EEXIST for anything there, a dangling link included
        return
    except FileExistsError:
        raise WriteError(f"{target}: already exists (use --force to overwrite)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
    # A file system without hard links: take the name with O_EXCL (never follows a link),
    # then rename over the empty file that is now ours.
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise WriteError(f"{target}: already exists (use --force to overwrite)") from None
    os.close(fd)
    os.replace(temp, target)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_in_place(target: Path, payload: bytes) -> Path:
    try:
        with open(target, "wb") as handle:
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
    if os.path.islink(path) and not _is_stream_link(Path(path)):
        return "is a symbolic link; not followed"
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


MIB = 1024 * 1024
# What each kind of input may weigh. Far above anything real (a 4,000-endpoint profile is
# about 2 MB, its session about 10 MB), far below what would hurt: a file past its cap is
# refused before a byte is read.
LIMITS = {
    "profile": 16 * MIB,
    "session": 64 * MIB,
    "HAR": 512 * MIB,
    "OpenAPI": 64 * MIB,
    "data": 256 * MIB,
    "curl data": 16 * MIB,
}
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _megabytes(size: int) -> str:
    return f"{size / MIB:,.0f} MiB" if size >= MIB else f"{size:,} bytes"


def open_regular(path: str | Path, kind: str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file within the cap for ``kind``.

    Raises InputError (``FILE: not a regular file (a FIFO)``, ``FILE: larger than ...``).
    A FIFO is opened without blocking, so a pipe nobody writes to is refused, not waited on.
    """
    source = str(path)
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(source, "", "file not found") from None
    except OSError as exc:
        raise InputError(source, "", f"cannot read file ({_reason(exc)})") from None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            what = next((name for test, name in _KINDS if test(found.st_mode)), "not a file")
            raise InputError(source, "", f"not a regular file ({what})")
        limit = LIMITS[kind]
        if found.st_size > limit:
            raise InputError(
                source,
                "",
                f"larger than {_megabytes(limit)} ({_megabytes(found.st_size)}); "
                f"expected a {kind} file under that",
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, kind: str) -> bytes:
    """The whole content of a regular file within the cap for ``kind``; raises InputError."""
    limit = LIMITS[kind]
    with open_regular(path, kind) as handle:
        try:
            # read(limit) would allocate the whole cap up front: ask for what fstat said.
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(size + 1)
            if len(data) > size:  # it grew after the check
                data += handle.read(limit + 1 - len(data))
        except OSError as exc:
            raise InputError(str(path), "", f"cannot read file ({_reason(exc)})") from None
    if len(data) > limit:
        raise InputError(str(path), "", f"larger than {_megabytes(limit)}")
    return data
