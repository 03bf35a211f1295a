"""The console's window key ``h`` on a real run: the Endpoints table and the header's p95 and
err follow the histogram's window (whole run / last 10 s), and after a live change of the
server's behaviour the last 10 s show it while the whole run still holds the past."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import web
from conftest import ServerThread
from test_ui_support import console, screen_text, start, wait_for

from stressdeck.engine.snapshot import STOPPED
from stressdeck.ui.widgets.tables import RECENT_LABEL, EndpointTable

SIZE = (100, 30)
BEHAVIOUR = web.AppKey("behaviour", dict)
SLOW_MS = 400


def switching_app() -> web.Application:
    """/api answers 500 after SLOW_MS until the test switches it to a quick 200; /fast is
    always quick. Counts what it received."""
    app = web.Application()
    app[BEHAVIOUR] = {"ms": SLOW_MS, "status": 500, "received": 0, "answered_500": 0}

    async def api(request: web.Request) -> web.Response:
        state = request.app[BEHAVIOUR]
        state["received"] += 1
        status = state["status"]
        if state["ms"]:
            await asyncio.sleep(state["ms"] / 1000)
        if status == 500:
            state["answered_500"] += 1
        return web.Response(status=status, text="api")

    async def fast(request: web.Request) -> web.Response:
        request.app[BEHAVIOUR]["received"] += 1
        return web.Response(text="fast")

    app.router.add_get("/api", api)
    app.router.add_get("/fast", fast)
    return app


def header(app: object) -> str:
    return "\n".join(screen_text(app).splitlines()[:3])  # type: ignore[arg-type]


def latency_ms(cell: str) -> float:
    """A latency cell ("412ms", "1.2s", "3.4ms") in ms."""
    value = float(re.sub(r"[a-z]+$", "", cell))
    return value * 1000 if cell.endswith("s") and not cell.endswith("ms") else value


async def test_h_switches_endpoints_and_header_to_the_last_10_s(tmp_path: Path) -> None:
    with ServerThread(switching_app()) as server:
        state = server.app[BEHAVIOUR]
        profile = tmp_path / "window.toml"
        profile.write_text(
            f'name = "window"\nbase_url = "{server.url}"\n'
            '[load]\nusers = 2\nduration = "40s"\n\n'
            '[[endpoints]]\nname = "api"\npath = "/api"\nthink = "50ms"\n\n'
            '[[endpoints]]\nname = "fast"\npath = "/fast"\nthink = "50ms"\n',
            encoding="utf-8",
        )
        app = console(profile, tmp_path, max_duration=45)
        async with app.run_test(size=SIZE) as pilot:
            await start(app, pilot)
            await wait_for(pilot, lambda: state["answered_500"] >= 4, 15)
            state["ms"], state["status"] = 0, 200  # the server recovers, live
            switched = app.controller.handle.elapsed()
            # Ten closed seconds after the change, the window holds the recovered server only.
            await wait_for(
                pilot,
                lambda: (
                    (recent := app.controller.latest().recent_total) is not None
                    and app.controller.latest().timeline[-1].t >= switched + 11
                    and recent.errors == 0
                ),
                40,
            )
            await pilot.press("2")  # the Endpoints tab
            await pilot.pause()
            table = app.screen.query_one(EndpointTable)
            # Whole run: the errors and slow answers of the start are in every figure.
            whole = app.controller.latest()
            # Whole run: a share of errors above zero, whatever it comes to (0.80 %, 2.1 %).
            assert re.search(r"err (?!0%)[\d.]*[1-9][\d.]*%", header(app)), header(app)
            assert "·10s" not in header(app)
            assert latency_ms(table.cell_text("ep0", "max")) >= SLOW_MS
            assert table.cell_text("ep0", "err") != "0%"
            assert RECENT_LABEL not in screen_text(app)
            await pilot.press("h")
            await pilot.pause()
            # The last 10 s: the recovered server, as the user sees it.
            assert "err·10s 0%" in header(app), header(app)
            # The header's figures are the table's TOTAL row, figure for figure.
            shown = header(app)
            assert f"p95·10s {table.cell_text('total', 'p95')}" in shown, shown
            assert f"err·10s {table.cell_text('total', 'err')}" in shown, shown
            assert RECENT_LABEL in screen_text(app)
            # (errors are exact; a quick answer's latency on a busy machine is not asserted)
            assert table.cell_text("ep0", "err") == "0%"
            recent_requests = int(table.cell_text("ep0", "requests").replace(",", ""))
            assert 0 < recent_requests < whole.endpoints[0].requests
            await pilot.press("h")  # and back
            await pilot.pause()
            assert "·10s" not in header(app) and RECENT_LABEL not in screen_text(app)
            assert latency_ms(table.cell_text("ep0", "max")) >= SLOW_MS
            await pilot.press("s")
            await wait_for(pilot, lambda: app.controller.state == STOPPED)
            final = app.controller.latest()
        assert state["received"] == final.total.requests + final.total.cancelled
