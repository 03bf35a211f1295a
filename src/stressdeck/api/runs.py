"""Runs from Python: ``run`` and ``run_async`` to the end, ``start`` and ``start_async`` to steer."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, Unpack

from stressdeck.api.options import (
    ProfileLike,
    RunOptions,
    RunOverrides,
    check_outputs,
    check_overrides,
    plan_for,
)
from stressdeck.api.results import RunResults
from stressdeck.core.files import write_atomic
from stressdeck.engine import Plan, RunHandle, Snapshot
from stressdeck.engine import start as start_engine
from stressdeck.engine.processes import resolve_processes
from stressdeck.engine.serve_metrics import MetricsServer, parse_listen
from stressdeck.engine.snapshot import INTERRUPTED
from stressdeck.sessions.session import save_session
from stressdeck.sessions.summary import write_json


def _finish(plan: Plan, snapshot: Snapshot, options: RunOptions) -> RunResults:
    """Write --json and --save as the CLI does; a write that fails raises WriteError."""
    if options.get("json"):
        buffer = io.StringIO()
        write_json(snapshot, buffer, plan.name)
        write_atomic(options.get("json"), buffer.getvalue())
    session = None
    if options.get("save"):
        session = save_session(
            options.get("save"),
            plan,
            snapshot,
            overwrite=bool(options.get("force")),
            keep_secrets=bool(options.get("keep_secrets")),
        )
    return RunResults.from_run(plan, snapshot, session)


def _serve(options: RunOptions) -> MetricsServer | None:
    listen = options.get("serve_metrics")
    if listen is None:
        return None
    return MetricsServer(*parse_listen(listen)).start()


async def start_async(profile: ProfileLike, **overrides: Unpack[RunOverrides]) -> AsyncRun:
    """Start a run on the running event loop and return its handle."""
    options = check_overrides(overrides)
    plan = plan_for(profile, options)
    check_outputs(options)
    server = _serve(options)
    try:
        # One worker thread unless asked: spawned worker processes re-import the caller's
        # main module, which a script without the `if __name__ == "__main__":` guard cannot take.
        processes = resolve_processes(options.get("processes", 1))
        handle = await start_engine(plan, processes)
    except BaseException:
        if server is not None:
            await server.aclose()
        raise
    if server is not None:
        server.attach(handle)
    return AsyncRun(plan, handle, options, server)


async def run_async(profile: ProfileLike, **overrides: Unpack[RunOverrides]) -> RunResults:
    """Run a profile to its end inside a running event loop; returns its RunResults."""
    async with await start_async(profile, **overrides) as live:
        return await live.wait()


def run(profile: ProfileLike, **overrides: Unpack[RunOverrides]) -> RunResults:
    """Run a profile headless to its end and return its RunResults (not inside an event loop)."""
    return asyncio.run(run_async(profile, **overrides))


class AsyncRun:
    """A run going on this event loop: steer it, read it, wait for its RunResults.

    The metrics server (``serve_metrics``), when there is one, serves until ``close``:
    after the run it still answers with the final figures, so the last scrape can see them.
    """

    def __init__(
        self, plan: Plan, handle: RunHandle, options: RunOptions, server: MetricsServer | None
    ) -> None:
        self.plan, self.handle, self._options, self._server = plan, handle, options, server
        self._results: RunResults | None = None
        self._on_results: list[Callable[[RunResults], object]] = []

    @property
    def metrics_url(self) -> str | None:
        return self._server.url if self._server is not None else None

    @property
    def latest(self) -> Snapshot:
        return self.handle.latest

    @property
    def users(self) -> int:
        return self.handle.users

    @property
    def rate(self) -> float | None:
        return self.handle.rate

    def set_users(self, users: int) -> None:
        self.handle.set_users(users)

    def set_rate(self, rate: float) -> None:
        self.handle.set_rate(rate)

    def pause(self) -> None:
        self.handle.pause()

    def resume(self) -> None:
        self.handle.resume()

    def snapshots(self) -> AsyncIterator[Snapshot]:
        """Every snapshot from now on; a slow reader skips, never queues."""
        return self.handle.snapshots()

    async def stop(self, reason: str = "stopped by user") -> RunResults:
        return self._done(await self.handle.stop(reason))

    async def wait(self) -> RunResults:
        """Wait for the run to end by itself (duration, request count, a cap or abort)."""
        try:
            final = await self.handle.wait()
        except asyncio.CancelledError:
            # Ctrl+C in asyncio.run, or a cancelled caller: stop the workers, keep the figures.
            await self.handle.stop(INTERRUPTED)
            raise
        return self._done(final)

    def on_results(self, callback: Callable[[RunResults], object]) -> None:
        """Call ``callback`` once with the RunResults, when the run has ended."""
        self._on_results.append(callback)

    def _done(self, final: Snapshot) -> RunResults:
        if self._results is None:
            self._results = _finish(self.plan, final, self._options)
            for callback in self._on_results:
                callback(self._results)
        return self._results

    async def close(self) -> None:
        """Stop the run if it still goes (its RunResults are made as by ``stop``), then the
        metrics server."""
        try:
            if self._results is None:
                await self.stop()
        finally:
            if self._server is not None:
                await self._server.aclose()

    async def __aenter__(self) -> AsyncRun:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class LiveRun:
    """A run steered from ordinary (non-async) code; the engine runs on a thread of its own.

    Use it as a context manager, or call ``close()``: the run stops, then the metrics server.
    """

    def __init__(self, profile: ProfileLike, overrides: RunOverrides) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stressdeck-run")
        self._thread.daemon = True
        self._thread.start()
        try:
            self._run: AsyncRun = self._call(start_async(profile, **overrides))
        except BaseException:
            self._shutdown()
            raise

    def _call(self, coroutine: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _on_loop(self, action: Callable[[], Any]) -> Any:
        async def call() -> Any:
            return action()

        return self._call(call())

    @property
    def plan(self) -> Plan:
        return self._run.plan

    @property
    def metrics_url(self) -> str | None:
        return self._run.metrics_url

    @property
    def latest(self) -> Snapshot:
        return self._run.latest  # an immutable snapshot: safe to read from any thread

    @property
    def users(self) -> int:
        return int(self._on_loop(lambda: self._run.users))

    @property
    def rate(self) -> float | None:
        return self._on_loop(lambda: self._run.rate)  # type: ignore[no-any-return]

    def set_users(self, users: int) -> None:
        self._on_loop(lambda: self._run.set_users(users))

    def set_rate(self, rate: float) -> None:
        self._on_loop(lambda: self._run.set_rate(rate))

    def pause(self) -> None:
        self._on_loop(self._run.pause)

    def resume(self) -> None:
        self._on_loop(self._run.resume)

    def snapshots(self) -> Iterator[Snapshot]:
        """Each new snapshot as it is published, until the final one."""
        iterator = self._run.snapshots()
        while True:
            try:
                snapshot = self._call(iterator.__anext__())
            except StopAsyncIteration:
                return
            yield snapshot

    def stop(self, reason: str = "stopped by user") -> RunResults:
        return self._call(self._run.stop(reason))  # type: ignore[no-any-return]

    def on_results(self, callback: Callable[[RunResults], object]) -> None:
        """Call ``callback`` once with the RunResults when the run has ended (on the run's thread)."""
        self._on_loop(lambda: self._run.on_results(callback))

    def wait(self, timeout: float | None = None) -> RunResults:
        """Block until the run ends by itself; TimeoutError after ``timeout`` seconds."""
        return self._call(self._run.wait(), timeout)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._run.close())
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def start(profile: ProfileLike, **overrides: Unpack[RunOverrides]) -> LiveRun:
    """Start a run from ordinary code and return its live handle (steer it, then ``wait``)."""
    return LiveRun(profile, overrides)
