"""Stop signals for a whole command: SIGINT, SIGTERM and SIGHUP, at any moment of it.

SIGHUP is the SSH connection dropping, the on-call user's everyday accident: it is a stop
like the others, and ends in 129 (128 + 1, as a shell reports it); SIGINT and SIGTERM end
in 130, as documented.

A stop signal is only ever recorded by the handler, never raised from it: raised at an
arbitrary bytecode, an exception can land in a bare ``except:`` of some library being
imported, in a finalizer, or in an event loop callback, and be swallowed there (a SIGHUP
0.3 s into start-up was lost that way). The command acts on it at safe points instead:

- before the run (imports, reading the profile): ``check_stop`` raises ``Stopped`` at the
  next step, which the command turns into its exit code; nothing was sent, nothing is lost;
- while it runs: the run's own loop handlers stop it cleanly, and a signal recorded just
  before they were installed is read by them (``pending_stop``);
- after it, while the summary and the session are written: the signal is obeyed at the
  end, so the session is never cut half-written.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from stressdeck.core.exits import EXIT_HANGUP, EXIT_INTERRUPTED

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_code(signum: int) -> int:
    return EXIT_HANGUP if signum == signal.SIGHUP else EXIT_INTERRUPTED


class Stopped(BaseException):
    """A stop signal before the run started. A BaseException, as KeyboardInterrupt is, so
    no ``except Exception`` on the way takes it for an error."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = exit_code(signum)


class _Received:
    """Signals are process-wide, so is the record of the first stop signal."""

    signum: int | None = None


_RECEIVED = _Received()


def _record(signum: int, frame: FrameType | None) -> None:
    if _RECEIVED.signum is None:
        _RECEIVED.signum = signum


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_signals() -> Iterator[None]:
    """Around a whole command: stop signals are recorded from now on; the handlers that were
    there before come back afterwards (a test calling ``main`` keeps pytest's own). Only
    the main thread may handle signals: elsewhere this does nothing."""
    if not _main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    if previous[signal.SIGINT] is not _record:  # nested (python -m): keep what came already
        _RECEIVED.signum = None
    record_stops()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def record_stops() -> None:
    """(Again) record stop signals: after an event loop's own handlers, which leave the
    defaults behind (SIGTERM and SIGHUP would kill at once, mid-write)."""
    if _main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _record)


def pending_stop() -> int | None:
    """The first stop signal recorded, if any."""
    return _RECEIVED.signum


def check_stop() -> None:
    """A safe point before the run: raise ``Stopped`` if a stop signal came."""
    if _RECEIVED.signum is not None:
        raise Stopped(_RECEIVED.signum)
