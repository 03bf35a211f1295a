"""A target with a known shape, run in its own process so its CPU is never the generator's.

    python tests/capacity_server.py [--concurrency N] [--service-ms MS] [--freeze-every S]
                                    [--freeze-for S] [--body-kb KB]

prints its URL on the first line of stdout, then serves on 127.0.0.1 until killed:

- ``/`` answers after holding one of ``--concurrency`` slots (0: unlimited) for
  ``--service-ms``; a request whose client went away while it waited for a slot is not served.
- ``--freeze-every S --freeze-for F``: the whole process stops (a blocking sleep on its event
  loop, as a stop-the-world pause does) for F seconds every S seconds.
- ``--body-kb``: the answer is a JSON document of about this size.
- ``/stats`` is the server's own measure: requests answered, the mean time a slot was held,
  and the capacity that makes (slots / mean hold time, requests per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web


def make_app(args: argparse.Namespace) -> web.Application:
    slots = asyncio.Semaphore(args.concurrency) if args.concurrency else None
    figures = {"answered": 0, "held_seconds": 0.0}
    item = {"id": 1, "name": "widget", "tags": ["a", "b", "c"], "price": 3.5}
    body = json.dumps({"items": [item] * max(args.body_kb * 1024 // 70, 1)}).encode()

    async def serve(request: web.Request) -> web.Response:
        if slots is not None:
            await slots.acquire()
        try:
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # its client left while it waited
            start = time.perf_counter()
            await asyncio.sleep(args.service_ms / 1000)
            figures["held_seconds"] += time.perf_counter() - start
            figures["answered"] += 1
        finally:
            if slots is not None:
                slots.release()
        return web.Response(body=body, content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        answered = figures["answered"]
        hold = figures["held_seconds"] / answered if answered else 0.0
        capacity = args.concurrency / hold if args.concurrency and hold else None
        return web.json_response(
            {"answered": answered, "mean_hold_ms": hold * 1000, "capacity": capacity}
        )

    app = web.Application()
    app.router.add_get("/", serve)
    app.router.add_get("/stats", stats)
    return app


async def main(args: argparse.Namespace) -> None:
    runner = web.AppRunner(make_app(args), handle_signals=True, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    if args.freeze_every:
        while True:
            await asyncio.sleep(args.freeze_every)
            time.sleep(args.freeze_for)  # the whole process stops: nothing is answered
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=0)
    parser.add_argument("--service-ms", type=float, default=0.0)
    parser.add_argument("--freeze-every", type=float, default=0.0)
    parser.add_argument("--freeze-for", type=float, default=0.0)
    parser.add_argument("--body-kb", type=int, default=0)
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
