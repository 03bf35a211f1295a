"""The console's terminal driver: Textual's own, made safe for a terminal that goes away.

An SSH connection drops, tmux kills the session: the terminal is gone while the console
runs. Textual's driver then hangs the process for ever: its writer thread dies on the first
write that fails (EIO), its queue of 30 writes fills, and the next write (restoring the
terminal at exit: ``WriterThread.stop``) waits on that queue with the event loop blocked,
so not even SIGTERM is obeyed any more. Its input thread meets the same EIO and panics
(exit 1, a traceback on a terminal nobody sees) instead of stopping the run.

Here, a write never waits longer than ``WRITE_WAIT_S``: a terminal that fails a write, or
takes nothing for that long, is *gone*, and everything written to it from then on is
dropped. Input that fails the same way tells the app its terminal hung up, which it treats
as SIGHUP: stop the run, keep what it measured, exit 129.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from contextlib import suppress
from typing import IO, Any

from textual.drivers import linux_driver
from textual.drivers._writer_thread import WriterThread
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

# A live terminal takes a screenful in milliseconds; one that takes nothing for this long
# (an SSH connection stalled before it drops) is treated as gone. After a SIGHUP, which
# says the terminal is going, a write waits much less.
WRITE_WAIT_S = 5.0
HUNG_UP_WAIT_S = 0.5


class TerminalWriter(WriterThread):
    """Textual's writer thread, except that no write can block its caller for ever."""

    def __init__(self, file: IO[str]) -> None:
        super().__init__(file)
        self.gone = threading.Event()
        self.patience = WRITE_WAIT_S

    def write(self, text: str) -> None:
        if self.gone.is_set():
            return
        try:
            self._queue.put(text, timeout=self.patience)
        except queue.Full:
            self._lose()

    def run(self) -> None:
        get, qsize = self._queue.get, self._queue.qsize
        while True:
            text = get()
            if text is None:
                break
            if self.gone.is_set():
                continue  # keep taking writes, so that no writer waits on a full queue
            try:
                self._file.write(text)
                if qsize() == 0:
                    self._file.flush()
            except (OSError, ValueError):  # EIO: the terminal hung up; ValueError: closed
                self._lose()
        with suppress(OSError, ValueError):
            if not self.gone.is_set():
                self._file.flush()

    def _lose(self) -> None:
        if not self.gone.is_set():
            self.gone.set()
            silence_terminal()

    def stop(self) -> None:
        with suppress(queue.Full):
            self._queue.put(None, timeout=0 if self.gone.is_set() else self.patience)
        if self.gone.is_set():
            # The thread may be blocked in a write to a stalled terminal: do not wait on it
            # (it is a daemon thread), but let it end by itself if it can.
            with suppress(queue.Full):
                self._queue.put_nowait(None)
            self.join(0.1)
            return
        self.join(self.patience)


class ConsoleDriver(LinuxDriver):
    """LinuxDriver with a ``TerminalWriter``, and a hang-up posted to the app (once, as a
    ``HungUp`` message) rather than a panic."""

    class HungUp(Message):
        """The terminal went away (its input or output failed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hung_up = False

    def start_application_mode(self) -> None:
        # LinuxDriver makes its writer from the module's name ``WriterThread``; this swap,
        # for the length of the call on the event loop's thread, makes it ours.
        original = linux_driver.WriterThread
        linux_driver.WriterThread = TerminalWriter  # type: ignore[misc]
        try:
            super().start_application_mode()
        finally:
            linux_driver.WriterThread = original  # type: ignore[misc]

    def hanging_up(self) -> None:
        """A SIGHUP came: the terminal is (probably) going, so do not wait long on it."""
        writer = self._writer_thread
        if isinstance(writer, TerminalWriter):
            writer.patience = HUNG_UP_WAIT_S

    @property
    def terminal_gone(self) -> bool:
        writer = self._writer_thread
        return self._hung_up or (isinstance(writer, TerminalWriter) and writer.gone.is_set())

    def write(self, data: str) -> None:
        writer = self._writer_thread
        if writer is None:
            return
        writer.write(data)
        if isinstance(writer, TerminalWriter) and writer.gone.is_set():
            self._report_hangup()

    def _run_input_thread(self) -> None:
        try:
            self.run_input_thread()
        except OSError:  # EIO: the terminal hung up
            self._report_hangup()
        except BaseException:  # anything else: Textual's own handling, a panic
            import rich.traceback

            self._app.call_later(self._app.panic, rich.traceback.Traceback())

    def _report_hangup(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        silence_terminal()
        loop = self._loop
        message = self.HungUp()
        with suppress(RuntimeError):  # the loop closed already: the app is gone too
            if threading.current_thread() is threading.main_thread():
                loop.call_soon(self._app.post_message, message)
            else:
                asyncio.run_coroutine_threadsafe(self._app._post_message(message), loop=loop)


def silence_terminal() -> None:
    """Point stdout and stderr at /dev/null: the terminal is gone, and a write to it would
    fail (a traceback, exit 120 when Python flushes stdout at exit) or block for ever (a
    stalled connection). What the console prints after it closes (the autosave's path) is
    lost either way; the session itself is on disk."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with suppress(OSError):
                os.dup2(devnull, fd)
    finally:
        os.close(devnull)
