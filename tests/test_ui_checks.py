"""The console with response checks and --serve-metrics: what the Endpoints pane shows, and
what a scrape reads while the console runs the load."""

from __future__ import annotations

from pathlib import Path

from conftest import ServerThread
from test_serve_metrics import by, scrape
from test_ui_support import FixedMonitor, screen_text, wait_for, write_profile

from stressdeck.engine.serve_metrics import MetricsServer
from stressdeck.engine.snapshot import STOPPED
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource
from stressdeck.ui.widgets.checks import ChecksPane

CHECKS = '\n[[endpoints]]\nname = "checked"\npath = "/ok"\nthink = "5ms"\n' + (
    'checks = ["status == 200", "body contains \'nope\'"]\n'
)


async def test_the_endpoints_pane_shows_checks_and_a_scrape_sees_the_console_run(
    tmp_path: Path, target: ServerThread
) -> None:
    path = write_profile(tmp_path, target.url, duration="20s")
    path.write_text(path.read_text() + CHECKS)
    server = MetricsServer("127.0.0.1", 0).start()
    app = StressDeckApp(
        PlanSource.from_file(path, max_duration=30.0),
        ConsoleOptions(
            monitor=FixedMonitor(),
            sessions_dir=tmp_path / "sessions",
            profiles_dir=tmp_path,
            metrics_server=server,
        ),
    )
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.renders > 0)
            await pilot.press("2")
            pane = app.screen.query_one(ChecksPane)
            assert not pane.display  # nothing checked yet: no room taken
            await pilot.press("s")
            await wait_for(pilot, lambda: app.controller.latest().endpoints[2].requests > 3)
            during = scrape(server.url)
            assert sum(during["stressdeck_requests_total"].values()) > 0
            await pilot.press("s")
            await wait_for(pilot, lambda: app.controller.state == STOPPED)
            final = app.controller.latest()
            checked = final.endpoints[2]
            await wait_for(pilot, lambda: pane.display and "STOPPED" in screen_text(app))
            lines = [line.split() for line in screen_text(app).splitlines()]
            rows = {
                line[0]: line for line in lines if line and line[0] in ("checks", "checked", "✗")
            }
            assert rows["checks"] == ["checks", "passed", "failed", "share"]
            assert rows["checked"][1:] == [
                f"{checked.requests:,}",
                f"{checked.requests:,}",
                "50.0%",
            ]
            assert rows["✗"][1:] == ["body", "contains", "'nope'", f"{checked.requests:,}"]
            assert max(len(" ".join(line)) for line in lines) <= 80
            # After the run the server still answers, with the run's final figures.
            end = scrape(server.url)
            assert by(end["stressdeck_checks_total"], "endpoint", "result") == {
                ("checked", "passed"): checked.checks_passed,
                ("checked", "failed"): checked.checks_failed,
            }
            assert sum(end["stressdeck_requests_total"].values()) == final.total.requests
    finally:
        server.close()
