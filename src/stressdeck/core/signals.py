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

And when none of that happens (something hangs: a library blocked on a dead terminal, a
worker that never answers), a watchdog ends the process anyway: ``GRACE_S`` after the first
stop signal (``UNHEARD_S`` when the main thread did not even run its handler: blocked in C),
or at once on a second one (SIGINT or SIGTERM), it writes what was measured (``keep_on_forced_exit``)
and exits with the signal's code. It is a thread woken through a pipe, so it needs nothing
from the main thread, which may be the one that hangs.

That pipe is the interpreter's wakeup fd (``signal.set_wakeup_fd``): the signal's number is
written to it by CPython's C-level handler, in whichever thread the kernel delivered the
signal to, at once. The Python-level handler would not do: it runs only on the main thread,
between two bytecodes, so a main thread blocked in C (a library call that retries on EINTR,
as glibc's ``system()`` does, or a lock wait while the signal went to another thread) never
runs it, and the watchdog would never hear of the stop. An event loop's
``add_signal_handler`` takes the wakeup fd for its own self-pipe; ``record_stops``, called
right after, takes it back, and the watchdog passes every byte on to the loop's pipe, so the
loop still hears of each signal (its handlers run as before).
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from stressdeck.core.exits import EXIT_HANGUP, EXIT_INTERRUPTED

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A clean stop (final figures from the workers, the session written) takes about a second;
# one not done after this long is not going to be. A signal while worker processes start
# waits for them to be up (2-5 s on a busy two-core machine) before the stop begins.
GRACE_S = 10.0
# A main thread that has not run its Python-level handler this long after a stop signal is
# blocked in C (the handler runs at its next bytecode): no clean stop will come from it.
UNHEARD_S = 3.0
# What is written when the watchdog ends the process gets this long (a full disk, a stalled
# terminal must not hold the exit either).
LAST_WORDS_S = 3.0


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
    _WATCHDOG.heard(signum)


class Watchdog:
    """Ends the process when a stop signal was not obeyed in time (see the module's doc).

    The interpreter writes each signal's number to the watchdog's pipe (the wakeup fd; no
    lock is taken in a handler: it may have interrupted the very code holding it); the
    watchdog thread reads it. Armed for the length of a command (``stop_signals``), so a
    test that calls ``main`` in its own process never has that process ended by it
    afterwards."""

    def __init__(self) -> None:
        self._pipe: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._last_words: Callable[[], str | None] | None = None
        # The wakeup fd before ours (an event loop's self-pipe), duplicated so that it stays
        # the same pipe even once its owner closed its own descriptor: signals are passed on
        # to it. The lock keeps it from being closed while the watchdog writes to it.
        self._forward: int | None = None
        self._forward_lock = threading.Lock()
        self._before: tuple[int, tuple[int, int] | None] = (-1, None)  # wakeup fd at arm()

    def arm(self) -> None:
        if self._pipe is not None:
            return
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)  # set_wakeup_fd's rule: a signal never blocks
        self._pipe = (read_end, write_end)
        found = signal.set_wakeup_fd(write_end)
        self._adopt(found)
        self._before = (found, self._forward_identity())
        self._thread = threading.Thread(
            target=self._watch, args=(read_end,), name="stop-watchdog", daemon=True
        )
        self._thread.start()

    def disarm(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is None:
            return
        # Give the wakeup fd back before the pipe is closed: a signal must never be written
        # to a descriptor number reused by some file. What was there at arm() comes back
        # only if it is still the same pipe (its owner may have closed it meanwhile).
        found, identity = self._before
        restore = found if found >= 0 and identity == self._forward_identity() else -1
        current = signal.set_wakeup_fd(restore)
        if current != pipe[1]:  # not ours any more: leave its new owner in place
            signal.set_wakeup_fd(current)
        self._adopt(-1)
        try:
            os.write(pipe[1], b"\0")  # 0: no signal, the command is over
        except OSError:  # the watchdog is gone already
            pass
        os.close(pipe[1])
        self._last_words = None

    def reclaim(self) -> None:
        """Take the wakeup fd back after an event loop took it (``add_signal_handler``) or
        let it go (``remove_signal_handler``); signals are passed on to the loop's pipe."""
        pipe = self._pipe
        if pipe is None:
            return
        found = signal.set_wakeup_fd(pipe[1])
        if found != pipe[1]:
            self._adopt(found)

    def keep(self, last_words: Callable[[], str | None] | None) -> None:
        self._last_words = last_words

    def heard(self, signum: int) -> None:
        """The Python-level handler ran (on the main thread). The interpreter wrote the
        signal to the wakeup fd already, unless something took it from us since the last
        ``reclaim``: then say it here, so the watchdog hears of it all the same."""
        pipe = self._pipe
        if pipe is None:
            return
        current = signal.set_wakeup_fd(pipe[1])
        if current == pipe[1]:
            return
        signal.set_wakeup_fd(current)  # its owner keeps it until the next reclaim
        try:
            os.write(pipe[1], bytes((signum,)))
        except OSError:  # disarmed meanwhile, or the pipe full of unread signals
            pass

    def _adopt(self, found: int) -> None:
        with self._forward_lock:
            previous, self._forward = self._forward, None
            if previous is not None:
                os.close(previous)
            if found >= 0:
                try:
                    self._forward = os.dup(found)
                except OSError:  # closed already: nothing to pass signals on to
                    pass

    def _forward_identity(self) -> tuple[int, int] | None:
        with self._forward_lock:
            if self._forward is None:
                return None
            info = os.fstat(self._forward)
            return (info.st_dev, info.st_ino)

    def _pass_on(self, byte: bytes) -> None:
        with self._forward_lock:
            if self._forward is None:
                return
            try:
                os.write(self._forward, byte)
            except OSError:  # the loop is gone, or its pipe full: it has a wakeup pending
                pass

    def _next_stop(self, read_end: int, timeout: float | None) -> int | None:
        """The next stop signal's number (each other signal passed on to the event loop's
        pipe on the way), 0 when the command is over, None at the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                ready, _, _ = select.select([read_end], [], [], left)
                if not ready:
                    continue
            byte = os.read(read_end, 1)
            if byte in (b"", b"\0"):
                return 0
            self._pass_on(byte)
            if byte[0] in STOP_SIGNALS:
                return byte[0]

    def _watch(self, read_end: int) -> None:
        # A signal the kernel hands to this thread would interrupt only this thread's read,
        # and Python runs handlers on the main thread alone: it must go to another thread.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            first = self._next_stop(read_end, None)
            if not first:
                return
            # The clean stop's time, or until a second signal (or the end of the command).
            # A repeated SIGHUP is no second signal: a hang-up often comes twice (the kernel's,
            # and tmux's or the shell's), while a second Ctrl+C is a person insisting.
            name = signal.Signals(first).name
            now = time.monotonic()
            deadline, heard_by = now + GRACE_S, now + UNHEARD_S
            reason = f"not stopped {GRACE_S:g} s after {name}"
            while (left := deadline - time.monotonic()) > 0:
                if _RECEIVED.signum is None:  # not heard yet: look again at heard_by
                    left = min(left, max(heard_by - time.monotonic(), 0.0))
                again = self._next_stop(read_end, left)
                if again == 0:
                    return
                if again is not None and again != signal.SIGHUP:
                    reason = f"a second stop signal ({signal.Signals(again).name})"
                    break
                if _RECEIVED.signum is None and time.monotonic() >= heard_by:
                    # The main thread ran no Python since the signal (its handler runs
                    # between two bytecodes): blocked in a C call, it can stop nothing.
                    reason = f"{name} not heard in {UNHEARD_S:g} s (blocked outside Python)"
                    break
            self._end(first, reason)
        finally:
            os.close(read_end)

    def _end(self, signum: int, reason: str) -> None:
        if _RECEIVED.signum is None:  # unheard on the main thread: the last words ask for it
            _RECEIVED.signum = signum
        _say(f"stressdeck: {reason}: ending now")
        words = self._last_words
        if words is not None:
            writer = threading.Thread(target=_quietly, args=(words,), daemon=True)
            writer.start()
            writer.join(LAST_WORDS_S)
        os._exit(exit_code(signum))


def _quietly(words: Callable[[], str | None]) -> None:
    try:
        line = words()
        if line:
            _say(line)
    except Exception as exc:  # the process is ending: say it, in one line, and go on
        _say(f"error: {type(exc).__name__}: {exc}")


def _say(line: str) -> None:
    """One line to stderr without Python's buffers (their lock may be held by the code that
    hangs), from a thread waited on briefly: a stalled terminal must not hold the exit."""

    def write() -> None:
        try:
            os.write(2, (line + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(0.5)


_WATCHDOG = Watchdog()


def keep_on_forced_exit(last_words: Callable[[], str | None] | None) -> None:
    """What the watchdog writes when it has to end the process (the run's partial session,
    saved from its latest snapshot), returning the line to print (where it went); None
    once it is written the normal way."""
    _WATCHDOG.keep(last_words)


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
    nested = previous[signal.SIGINT] is _record  # python -m: keep what came already
    if not nested:
        _RECEIVED.signum = None
        _WATCHDOG.arm()
    record_stops()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if not nested:
            _WATCHDOG.disarm()


def record_stops() -> None:
    """(Again) record stop signals: after an event loop's own handlers were removed, which
    leaves the defaults behind (SIGTERM and SIGHUP would kill at once, mid-write); or after
    they were added (``loop.add_signal_handler``), so the watchdog hears of a signal even
    when the loop is blocked: the loop still hears of it through its wakeup fd."""
    if _main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _record)
        _WATCHDOG.reclaim()


def pending_stop() -> int | None:
    """The first stop signal recorded, if any."""
    return _RECEIVED.signum


def check_stop() -> None:
    """A safe point before the run: raise ``Stopped`` if a stop signal came."""
    if _RECEIVED.signum is not None:
        raise Stopped(_RECEIVED.signum)
