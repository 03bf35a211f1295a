"""What bench.py runs in child processes, so each is measured as a process tree of its own.

    python benchmarks/probes.py serve --port 0           # minimal aiohttp target (no nginx)
    python benchmarks/probes.py raw --url URL -c 50 -d 8  # raw aiohttp loop, no statistics
    python benchmarks/probes.py api --url URL -c 50 -d 8 --processes 2
    python benchmarks/probes.py api --url URL -c 50 -d 8 --factory process   # 1 worker process
    python benchmarks/probes.py console --url URL -c 50 -d 8
    python benchmarks/probes.py rss --url URL -c 50 --requests 1000000 --processes 2
    python benchmarks/probes.py stop --url URL -c 50 --processes 2

Every probe prints one JSON object as its last stdout line. URLs must be on 127.0.0.1.
Besides whole-process figures (measured from outside by bench.py), the load probes report
the *load window*: CPU seconds of this process tree and requests done between the moment
the load started and its last tick, so interpreter start-up and imports are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any

import psutil

MIB = 1024 * 1024


def tree_cpu(procs: list[psutil.Process]) -> float:
    """user + system CPU seconds of these processes (all their threads); gone ones count 0."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class Window:
    """(time, tree CPU, requests) at the start of the load and at its latest mark.

    The process tree is listed once, at the first mark (workers are up by then): listing it
    scans all of /proc, which would cost more than the thing measured if done every tick.
    """

    def __init__(self) -> None:
        self.procs: list[psutil.Process] = []
        self.first: tuple[float, float, int] | None = None
        self.last: tuple[float, float, int] | None = None

    def mark(self, requests: int) -> None:
        if self.first is None:
            me = psutil.Process()
            self.procs = [me, *me.children(recursive=True)]
        point = (time.perf_counter(), tree_cpu(self.procs), requests)
        if self.first is None:
            self.first = point
        else:
            self.last = point

    def result(self) -> dict[str, Any]:
        if self.first is None or self.last is None or self.last[2] <= self.first[2]:
            return {}
        seconds, cpu, requests = (b - a for a, b in zip(self.first, self.last, strict=False))
        return {
            "window_s": seconds,
            "window_cpu_s": cpu,
            "window_requests": requests,
            "window_rps": requests / seconds,
            "window_cpu_s_per_1k": cpu / requests * 1000,
        }


def track_window(handle: Any, window: Window) -> None:
    """Mark the window at the start and at every tick while workers are all still up."""
    window.mark(handle.latest.total.requests)
    handle.add_listener(lambda snap: None if snap.finished else window.mark(snap.total.requests))


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def check_loopback(url: str) -> None:
    from stressdeck.core.hosts import is_loopback_url

    if not is_loopback_url(url):
        raise SystemExit(
            f"probes only send to this machine (127.0.0.1, ::1, localhost), not {url!r}"
        )


# -- target -------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """GET anything -> 200 "ok"; /__stats -> the request count (the fallback when nginx is missing)."""
    from aiohttp import web

    count = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal count
        if request.path == "/__stats":
            return web.json_response({"requests": count})
        count += 1
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- reference: raw aiohttp -------------------------------------------------------------------


async def raw_loop(
    url: str, connections: int, seconds: float, tuned: bool = False
) -> dict[str, Any]:
    """c tasks on one ClientSession, each GET and read in a loop; only a count is kept.

    ``tuned`` sets up the session as stressdeck's worker does (no connector limit, no cookie
    jar, no decompression) and main() runs it on stressdeck's event loop (uvloop when
    installed): what aiohttp itself can do at best, with no statistics.
    """
    import aiohttp

    requests = errors = 0
    window = Window()
    if tuned:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )
    else:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))
    async with session:
        window.mark(0)
        began = time.perf_counter()
        deadline = began + seconds

        async def user() -> None:
            nonlocal requests, errors
            clock = time.perf_counter
            while clock() < deadline:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status >= 400:
                            errors += 1
                except Exception:
                    errors += 1
                    continue
                requests += 1

        await asyncio.gather(*(user() for _ in range(connections)))
        elapsed = time.perf_counter() - began
        window.mark(requests)
    return {
        "requests": requests,
        "errors": errors,
        "elapsed": elapsed,
        "rps": requests / elapsed,
        **window.result(),
    }


# -- reference: raw httptools on uvloop ---------------------------------------------------------


async def raw_httptools_loop(url: str, connections: int, seconds: float) -> dict[str, Any]:
    """c coroutines, each with one keep-alive connection: write a prebuilt GET, parse the
    response with httptools, check the status, count the body; nothing else is kept.

    The floor under the fast client: the same parser and event loop with no engine around.
    """
    import httptools
    from yarl import URL

    parsed = URL(url)
    host, port = parsed.raw_host or "127.0.0.1", parsed.port or 80
    request = f"GET {parsed.raw_path_qs} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    requests = errors = 0

    class Conn(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.waiter: asyncio.Future[int] | None = None
            self.nbytes = 0

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.nbytes += len(body)

        def on_message_complete(self) -> None:
            if self.waiter is not None:
                self.waiter.set_result(self.parser.get_status_code())

        def connection_lost(self, exc: Exception | None) -> None:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ConnectionError("closed"))

    window = Window()
    window.mark(0)
    began = time.perf_counter()
    deadline = began + seconds

    async def user() -> None:
        nonlocal requests, errors
        clock = time.perf_counter
        _, conn = await loop.create_connection(Conn, host, port)
        while clock() < deadline:
            conn.waiter = loop.create_future()
            conn.transport.write(request)
            status = await conn.waiter
            requests += 1
            if status >= 400:
                errors += 1
        conn.transport.close()

    await asyncio.gather(*(user() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    window.mark(requests)
    return {
        "requests": requests,
        "errors": errors,
        "elapsed": elapsed,
        "rps": requests / elapsed,
        **window.result(),
    }


# -- stressdeck through the Python API -----------------------------------------------------


def make_profile(url: str, users: int) -> Any:
    """One GET endpoint, closed model: the same request every peer sends."""
    from stressdeck.profiles.profile import parse_profile

    base, _, path = url.partition("://")[2].partition("/")
    document = {
        "name": "bench",
        "base_url": f"http://{base}",
        "load": {"model": "closed", "users": users},
        "endpoints": [{"name": "ok", "method": "GET", "path": "/" + path}],
    }
    return parse_profile(document, "bench")


def make_plan(
    url: str,
    users: int,
    *,
    duration: float | None = None,
    requests: int | None = None,
    max_duration: float = 600.0,
    rate: float | None = None,
    client: str | None = None,
) -> Any:
    """Closed model with ``users``; with ``rate``, the open model at that many requests/s."""
    from stressdeck.engine import build_plan
    from stressdeck.engine.overrides import Overrides

    if rate:
        return build_plan(
            make_profile(url, users),
            Overrides(model="open", rate=rate, duration=duration, requests=requests, client=client),
            max_duration=max_duration,
        )
    return build_plan(
        make_profile(url, users),
        Overrides(users=users, duration=duration, requests=requests, client=client),
        max_duration=max_duration,
    )


def snapshot_result(final: Any) -> dict[str, Any]:
    total = final.total
    return {
        "requests": total.requests,
        "errors": total.errors,
        "elapsed": final.elapsed,
        "rps": total.requests / final.elapsed if final.elapsed else 0.0,
        "p50_ms": total.latency_ms.p50,
        "p90_ms": total.latency_ms.p90,
        "p99_ms": total.latency_ms.p99,
        "max_ms": total.latency_ms.max,
        "dropped": total.dropped,
        "stop_reason": final.stop_reason,
        "cpu_percent": final.health.cpu_percent,
    }


def worker_factory(name: str) -> Any:
    """None lets the engine choose (a thread for 1 process, processes above); "process"
    forces a worker process even for 1, which is how the console runs its load."""
    if name == "process":
        from stressdeck.engine.processes import ProcessWorker

        return ProcessWorker
    return None


async def api_run(args: argparse.Namespace) -> dict[str, Any]:
    from stressdeck.engine import start

    window = Window()
    handle = await start(
        make_plan(args.url, args.c, duration=args.d, rate=args.rate, client=args.client),
        processes=args.processes,
        worker_factory=worker_factory(args.factory),
    )
    track_window(handle, window)
    result = snapshot_result(await handle.wait())
    result.update(window.result())
    return result


# -- the console, headless ----------------------------------------------------------------------


async def console_run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        from stressdeck.engine.overrides import Overrides
        from stressdeck.ui.app import StressDeckApp
        from stressdeck.ui.planning import PlanSource
    except ImportError as exc:
        return {"error": f"console not available ({exc})"}
    source = PlanSource(
        make_profile(args.url, args.c),
        Overrides(users=args.c, duration=args.d, client=args.client),
    )
    app = StressDeckApp(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.action_toggle_run()
        controller = app.controller
        assert controller is not None and controller.handle is not None
        window = Window()
        track_window(controller.handle, window)
        final = await controller.handle.wait()
        await pilot.pause(
            2 * app.refresh_seconds
        )  # let the last frame render, as a user would see it
        result = snapshot_result(final)
        result["renders"] = app.renders
        result.update(window.result())
    return result


# -- memory over a long run ---------------------------------------------------------------


def tree_rss(me: psutil.Process) -> tuple[float, float, int]:
    """(tree RSS MiB, this process's RSS MiB, processes) for this process and its children."""
    own = me.memory_info().rss
    total, count = own, 1
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
            count += 1
        except psutil.Error:
            continue
    return total / MIB, own / MIB, count


async def rss_run(args: argparse.Namespace) -> dict[str, Any]:
    """RSS of the generator tree at request milestones (``--marks``) of one long closed run."""
    from stressdeck.engine import start

    me = psutil.Process()
    marks_wanted = sorted(int(m) for m in args.marks.split(","))
    traced = None
    if args.trace:  # where the growth is allocated (slows the run; 1 process only: a thread worker)
        import tracemalloc

        tracemalloc.start(args.trace)
    plan = make_plan(
        args.url, args.c, requests=args.requests, max_duration=args.max_seconds, client=args.client
    )
    handle = await start(plan, processes=args.processes)
    marks: list[dict[str, Any]] = []
    series = []
    last = None
    peak = 0.0
    most = 0  # processes in the tree while every worker is up
    async for snap in handle.snapshots():
        if snap.finished:
            break
        tree, own, count = tree_rss(me)
        peak = max(peak, tree)
        series.append((round(snap.elapsed, 2), snap.total.requests, round(tree, 1), round(own, 1)))
        point = {
            "requests": snap.total.requests,
            "tree_mib": tree,
            "parent_mib": own,
            "processes": count,
            "elapsed": snap.elapsed,
        }
        while marks_wanted and snap.total.requests >= marks_wanted[0]:
            marks.append({**point, "mark": marks_wanted.pop(0)})
            if args.trace and traced is None:
                traced = tracemalloc.take_snapshot()
        most = max(most, count)
        if count == most:  # all workers still up: at the very end they exit one by one
            last = point
    final = await handle.wait()
    result = snapshot_result(final)
    result["marks"] = marks
    result["first"] = marks[0] if marks else None
    result["last"] = last
    result["peak_tree_mib"] = peak
    result["series"] = series[:: max(len(series) // 60, 1)]
    if traced is not None:
        growth = tracemalloc.take_snapshot().compare_to(traced, "traceback")
        result["growth_since_first_mark"] = [
            {
                "kib": round(stat.size_diff / 1024, 1),
                "blocks": stat.count_diff,
                "where": [f"{frame.filename}:{frame.lineno}" for frame in stat.traceback][
                    -args.trace :
                ],
            }
            for stat in growth[:12]
        ]
        result["traced_mib"] = tracemalloc.get_traced_memory()[0] / MIB
    return result


# -- stop latency ------------------------------------------------------------------------------


async def stop_run(args: argparse.Namespace) -> dict[str, Any]:
    from stressdeck.engine import start

    me = psutil.Process()
    plan = make_plan(args.url, args.c, duration=60.0, client=args.client)
    handle = await start(plan, processes=args.processes)
    await asyncio.sleep(args.after)
    workers = [
        p for p in me.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())
    ]
    gone_at: list[float] = []

    def watch(began: float) -> None:
        while True:
            alive = [p for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            if not alive:
                gone_at.append(time.perf_counter() - began)
                return
            time.sleep(0.002)

    began = time.perf_counter()
    watcher = threading.Thread(target=watch, args=(began,), daemon=True)
    watcher.start()
    final = await handle.stop()
    stop_returned = time.perf_counter() - began
    await asyncio.to_thread(watcher.join, 10.0)
    result = snapshot_result(final)
    result.update(
        {
            "workers": len(workers),
            "stop_returned_s": stop_returned,
            "workers_gone_s": gone_at[0] if gone_at else None,
        }
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="probe", required=True)
    sub.add_parser("serve").add_argument("--port", type=int, default=0)
    for name in ("raw", "rawfast", "api", "console", "rss", "stop"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True)
        p.add_argument("-c", type=int, default=50, help="connections / virtual users")
        p.add_argument("-d", type=float, default=8.0, help="seconds")
        p.add_argument("--processes", type=int, default=1)
        p.add_argument(
            "--rate", type=float, default=0.0, help="api: open model at this many requests/s"
        )
        p.add_argument(
            "--tuned", action="store_true", help="raw: configure the session as stressdeck does"
        )
        p.add_argument(
            "--factory",
            choices=("auto", "process"),
            default="auto",
            help="api: where 1 worker runs (auto = a thread; process = as the console does)",
        )
        p.add_argument(
            "--client",
            choices=("auto", "fast", "aiohttp"),
            default="auto",
            help="api, console, rss, stop: the HTTP client stressdeck sends with",
        )
        p.add_argument("--requests", type=int, default=1_000_000, help="rss: the request budget")
        p.add_argument(
            "--marks",
            default="100000,250000,500000,1000000",
            help="rss: sample the tree's RSS when these many requests are done",
        )
        p.add_argument(
            "--trace",
            type=int,
            default=0,
            metavar="FRAMES",
            help="rss: tracemalloc with this many frames; the biggest growth after the first mark",
        )
        p.add_argument("--max-seconds", type=float, default=170.0, help="rss: cap on the run")
        p.add_argument(
            "--after", type=float, default=2.0, help="stop: seconds of load before stop()"
        )
    args = parser.parse_args(argv)
    if args.probe == "serve":
        serve(args)
        return
    check_loopback(args.url)
    if args.probe == "raw":
        if args.tuned:  # the same event loop as stressdeck's workers (uvloop when installed)
            from stressdeck.engine.placement import new_worker_loop

            loop = new_worker_loop()
            try:
                emit(loop.run_until_complete(raw_loop(args.url, args.c, args.d, tuned=True)))
            finally:
                loop.close()
        else:
            emit(asyncio.run(raw_loop(args.url, args.c, args.d)))
    elif args.probe == "rawfast":
        from stressdeck.engine.placement import new_worker_loop

        loop = new_worker_loop()
        try:
            emit(loop.run_until_complete(raw_httptools_loop(args.url, args.c, args.d)))
        finally:
            loop.close()
    elif args.probe == "api":
        emit(asyncio.run(api_run(args)))
    elif args.probe == "console":
        emit(asyncio.run(console_run(args)))
    elif args.probe == "rss":
        emit(asyncio.run(rss_run(args)))
    elif args.probe == "stop":
        emit(asyncio.run(stop_run(args)))


if __name__ == "__main__":  # worker processes are spawned: they re-import this file
    sys.exit(main())
