"""find-limit in the console: L opens the form, Enter starts a run of the plan whose load the
search steps; the steps come live on the Charts tab, one log line each, the header says what
the search does, and the answer is shown and saved. Real runs against a server on 127.0.0.1
with a known capacity (one slot held 20 ms: under 50 requests/s), at 80x24, keyboard only."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from conftest import COUNTER, ServerThread
from test_ui_support import (
    FixedMonitor,
    console,
    sample_snapshot,
    screen_text,
    wait_for,
    write_profile,
)
from textual.pilot import Pilot
from textual.widgets import Input

from stressdeck.core.errors import InputError
from stressdeck.core.text import printable
from stressdeck.engine.bottleneck import Bottleneck
from stressdeck.engine.limit import DEFAULT_PRECISION, LimitResult, Search, Step
from stressdeck.engine.snapshot import SEARCH_ENDED, STOPPED, Percentiles
from stressdeck.sessions.session import load_session
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.known_hosts import KnownHosts
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource
from stressdeck.ui.screens.dialogs import ConfirmScreen, SaveScreen
from stressdeck.ui.screens.find_limit import FindLimitScreen, SloArea
from stressdeck.ui.search import ConsoleSearch, answer_text, parse_search, step_text
from stressdeck.ui.widgets.charts import TimelineChart
from stressdeck.ui.widgets.eventlog import EventLog
from stressdeck.ui.widgets.header import RunInfo, header_text
from stressdeck.ui.widgets.limit_chart import BROKE, HELD, LimitChart

SIZE = (80, 24)
SERVICE_S = 0.02  # the one slot is held this long: the server takes under 50 requests/s
SEARCH_S = 200.0  # a search of a dozen 1.25 s steps; bounded generously for a busy machine


def capacity_app() -> web.Application:
    """One request served at a time, for SERVICE_S each; every request that arrives is
    counted, whatever becomes of it (its client may leave while it waits for the slot)."""
    app = web.Application()
    slot = asyncio.Semaphore(1)
    counter = {"count": 0}

    @web.middleware
    async def count(request: web.Request, handler: Callable) -> web.StreamResponse:
        counter["count"] += 1
        return await handler(request)

    async def serve(request: web.Request) -> web.Response:
        async with slot:
            await asyncio.sleep(SERVICE_S)
        return web.Response(text="ok")

    app.middlewares.append(count)
    app.router.add_get("/ok", serve)
    app.router.add_post("/ok", serve)
    app[COUNTER] = counter
    return app


@pytest.fixture
def capped() -> Iterator[ServerThread]:
    with ServerThread(capacity_app()) as server:
        yield server


def open_profile(tmp_path: Path, url: str) -> Path:
    """The UI tests' profile in the open model (its steps are rates)."""
    profile = write_profile(tmp_path, url, duration="30s")
    text = profile.read_text().replace("[load]\n", '[load]\nmodel = "open"\nrate = 5\n')
    profile.write_text(text)
    return profile


def flat(text: str) -> str:
    """Text as read, wrapped lines joined: single spaces between words."""
    return " ".join(text.split())


def log_lines(app: StressDeckApp) -> list[str]:
    return app.screen.query_one(EventLog).lines_text


def chart_text(app: StressDeckApp) -> str:
    """The steps chart as drawn on screen."""
    chart = app.screen.query_one(LimitChart)
    region = chart.region
    rows = screen_text(app).splitlines()[region.y : region.y + region.height]
    return "\n".join(row[region.x : region.x + region.width] for row in rows)


async def fill_form(
    app: StressDeckApp,
    pilot: Pilot,
    slos: str,
    start: str,
    maximum: str,
    step: str,
    precision: str | None = None,
) -> None:
    """Open the form with L and type into it as a person does: the SLOs over the prefilled
    ones, then tab from field to field, each typed over (the model stays the plan's)."""
    await pilot.press("L")
    await wait_for(pilot, lambda: isinstance(app.screen, FindLimitScreen))
    area = app.screen.query_one(SloArea)
    assert area.has_focus
    await pilot.press("f7", *slos)  # the text area's select-all; typing replaces it
    for value in (None, start, maximum, step, precision):
        await pilot.press("tab")
        if value is not None:
            await pilot.press("ctrl+a", "ctrl+k", *value)


async def stopped(app: StressDeckApp, pilot: Pilot) -> None:
    await wait_for(
        pilot,
        lambda: app.controller is not None and app.controller.state == STOPPED,
        timeout=SEARCH_S,
    )


async def save(app: StressDeckApp, pilot: Pilot, name: str) -> Path:
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen))
    await pilot.press("ctrl+a", "ctrl+k", *name, "enter")
    path = app.sessions_dir / name
    await wait_for(pilot, lambda: path.exists(), timeout=20)
    return path


@pytest.mark.timeout(400)
async def test_a_search_shows_its_steps_live_and_its_answer(tmp_path: Path, capped) -> None:
    app = console(open_profile(tmp_path, capped.url), tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await fill_form(app, pilot, "p95 < 100ms, error_rate < 1%", "10", "80", "1s", "30%")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.search is not None, timeout=20)
        assert app.search is not None
        search = app.search.search
        assert [slo.expr for slo in search.slos] == ["p95 < 100ms", "error_rate < 1%"]
        assert (search.model, search.start, search.maximum) == ("open", 10, 80)
        assert (search.step, search.warmup, search.precision) == (1.0, 0.25, 0.3)
        await pilot.press("3")

        # Live: the header says which step is measured, the chart has the first step held.
        # Any step from the second on: each lasts 1.25 s, which a busy machine's screen
        # polls can miss (CI once waited out 200 s for "step 2" alone).
        def live_step() -> bool:
            found = re.search(r"find-limit step (\d+): (\d+(?:\.\d+)?) req/s", screen_text(app))
            return found is not None and int(found.group(1)) >= 2

        await wait_for(pilot, live_step, timeout=SEARCH_S)
        assert HELD in chart_text(app)
        # + would move the load under a step: refused, said so.
        await pilot.press("plus")
        await wait_for(pilot, lambda: "find-limit sets the load" in screen_text(app))
        await stopped(app, pilot)
        await wait_for(pilot, lambda: app.search is not None and not app.search.running)
        result = app.search.result
        assert result is not None, app.search.ended
        assert result.steps == tuple(app.search.steps)
        assert result.limit is not None and not result.at_least
        # A load that held, under the server's capacity; what broke is a step that broke.
        assert result.limit in {s.asked for s in result.steps if s.held}, result.to_dict()
        assert result.limit < 1 / SERVICE_S, result.to_dict()
        assert result.broken_at in {s.asked for s in result.steps if not s.held}
        assert any(not step.held for step in result.steps)
        final = app.controller.latest()
        assert final.stop_reason == SEARCH_ENDED
        # The rate was only ever what the steps asked (or 0 while a queue drained): + did nothing.
        asked = {step.asked for step in result.steps} | {0.0}
        rates = [e.value for e in final.control_log if e.command == "rate"]
        assert set(rates) <= asked, rates

        await wait_for(pilot, lambda: "find-limit: limit" in screen_text(app))
        text = screen_text(app)
        figure = f"limit {result.limit:g} req/s"
        header = "\n".join(text.splitlines()[:4])
        assert f"find-limit: {figure}" in header, header
        # The Charts tab: the answer in words, every step's marker, the limit marked.
        assert figure + ": every SLO held" in text, text
        drawn = chart_text(app)
        assert HELD in drawn and BROKE in drawn, drawn
        chart = app.screen.query_one(LimitChart)
        assert chart.shown is not None and chart.shown.limit == result.limit
        assert "┃ limit" in text or "┃ lim" in text
        # The log: one line per step, then the answer.
        logged = log_lines(app)
        for number, step in enumerate(result.steps, start=1):
            line = printable(step_text(step, number, "req/s"), 400)
            assert any(entry.endswith(line) for entry in logged), (line, logged)
        assert any(entry.endswith(printable(answer_text(result), 400)) for entry in logged)
        assert len([e for e in logged if "find-limit step " in e]) == len(result.steps)

        assert flat(figure + ": every SLO held") in flat(screen_text(app))  # and in the toast
        path = await save(app, pilot, "search.toml")
        session = load_session(path)
        assert session.limit is not None
        assert session.limit.to_dict() == result.to_dict()
        assert session.results.stop_reason == SEARCH_ENDED
        total = final.total
        await wait_for(pilot, lambda: capped.count == total.requests + total.cancelled, timeout=10)


@pytest.mark.timeout(400)
async def test_s_stops_a_search_and_keeps_what_it_measured(tmp_path: Path, capped) -> None:
    app = console(open_profile(tmp_path, capped.url), tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await fill_form(app, pilot, "p95 < 5s", "5", "40", "1s")
        await pilot.press("enter", "3")
        await wait_for(
            pilot,
            lambda: app.search is not None and len(app.search.steps) == 2,
            timeout=SEARCH_S,
        )
        await pilot.press("L")  # one search at a time, on no other run
        await wait_for(pilot, lambda: "a run is going: stop it with s" in screen_text(app))
        assert not isinstance(app.screen, FindLimitScreen)
        await pilot.press("s")
        await stopped(app, pilot)
        await wait_for(pilot, lambda: app.search is not None and not app.search.running)
        search = app.search
        assert search is not None and search.result is not None
        assert search.ended == "the run ended first (stopped by user)"
        kept = len(search.steps)
        assert kept >= 2 and all(step.held for step in search.steps)
        # What the steps measured is a floor under the limit: "at least", never the limit.
        floor = max(step.asked for step in search.steps)
        assert search.result.at_least and search.result.limit == floor
        assert search.result.why.startswith("stopped before the search was done (stopped by")
        final = app.controller.latest()
        assert final.stop_reason == "stopped by user"
        figure = f"limit at least {floor:g} req/s"
        await wait_for(pilot, lambda: figure in screen_text(app))
        assert HELD in chart_text(app)
        assert any(
            f"find-limit stopped before it found the limit: {kept} steps measured" in line
            for line in log_lines(app)
        )
        # Saved: what was measured, with the floor it gives (a replay asks the same steps).
        session = load_session(await save(app, pilot, "stopped.toml"))
        assert session.limit is not None
        assert session.limit.to_dict() == search.result.to_dict()
        assert session.results.total.requests == final.total.requests > 0
        total = final.total
        await wait_for(pilot, lambda: capped.count == total.requests + total.cancelled, timeout=10)
        # The next s is an ordinary run of the plan: the search is gone from the header.
        await pilot.press("s")
        await wait_for(pilot, lambda: app.search is None)
        await wait_for(
            pilot, lambda: "find-limit" not in "\n".join(screen_text(app).splitlines()[:4])
        )
        assert app.controller.run_plan is app.controller.plan
        await pilot.press("s")
        await stopped(app, pilot)


@pytest.mark.timeout(300)
async def test_the_closed_model_steps_users(tmp_path: Path, capped) -> None:
    # The UI tests' profile is the closed model: 50 ms think, so 5 users ask ~70 req/s.
    app = console(write_profile(tmp_path, capped.url, duration="30s"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await fill_form(app, pilot, "p95 < 5s", "1", "5", "1s")
        await pilot.press("enter", "3")
        await wait_for(pilot, lambda: "find-limit step 3: 5 users" in screen_text(app), SEARCH_S)
        await stopped(app, pilot)
        await wait_for(pilot, lambda: app.search is not None and not app.search.running)
        result = app.search.result
        assert result is not None, app.search.ended
        assert [step.asked for step in result.steps] == [1, 2, 5]
        assert result.limit == 5 and result.at_least
        final = app.controller.latest()
        users = [e.value for e in final.control_log if e.command == "users"]
        assert users[-3:] == [1, 2, 5], final.control_log
        await wait_for(pilot, lambda: "find-limit: limit at least 5 users" in screen_text(app))
        assert "limit at least 5 users: every SLO held" in screen_text(app)
        drawn = chart_text(app)
        assert drawn.count(HELD) == 3 and BROKE not in drawn, drawn
        total = final.total
        await wait_for(pilot, lambda: capped.count == total.requests + total.cancelled, timeout=10)


async def test_a_dead_target_is_an_error_not_a_limit(tmp_path: Path, refused_url: str) -> None:
    app = console(open_profile(tmp_path, refused_url), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await fill_form(app, pilot, "p95 < 1s", "10", "80", "1s")
        await pilot.press("enter", "3")
        await stopped(app, pilot)
        await wait_for(pilot, lambda: app.search is not None and not app.search.running)
        search = app.search
        assert search.result is None and search.ended is not None
        said = "the target answered no request successfully at 10 req/s"
        assert search.ended.startswith(said), search.ended
        assert app.controller.latest().stop_reason == SEARCH_ENDED
        await wait_for(pilot, lambda: "find-limit ended without a limit" in screen_text(app))
        # Its one step broke with no bottleneck named, so it was measured again: 2 steps.
        broke = len(search.steps)
        assert broke in (1, 2) and not any(step.held for step in search.steps)
        assert f"ended without a limit (0 held, {broke} broke): {said}" in flat(screen_text(app))
        assert any(line.endswith("find-limit: " + search.ended) for line in log_lines(app))


async def test_a_host_past_this_machine_asks_first_as_s_does(tmp_path: Path, capped) -> None:
    """The app is told that no host is local, so the test's own 127.0.0.1 server plays the
    remote one: if the question were skipped, the load still could only reach that server."""
    known = KnownHosts(tmp_path / "known.json", is_local=lambda host: False)
    source = PlanSource.from_file(open_profile(tmp_path, capped.url), max_duration=20.0)
    app = StressDeckApp(
        source,
        ConsoleOptions(
            monitor=FixedMonitor(), sessions_dir=tmp_path / "sessions", known_hosts=known
        ),
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await fill_form(app, pilot, "p95 < 1s", "5", "10", "1s")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Send load to 127.0.0.1?" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.controller is not None and app.controller.handle is None
        assert app.search is None and capped.count == 0 and not known.path.exists()
        await fill_form(app, pilot, "p95 < 1s", "5", "10", "1s")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.search is not None and capped.count > 0, timeout=20)
        assert known.to_confirm(app.controller.plan) == []  # remembered for this profile
        await pilot.press("s")
        await stopped(app, pilot)


async def test_bad_input_is_one_line_in_the_form(tmp_path: Path, capped) -> None:
    app = console(open_profile(tmp_path, capped.url), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        # From the palette too; the profile's thresholds are the SLOs offered.
        await pilot.press("ctrl+p", *"limit")
        await wait_for(pilot, lambda: "Find the limit" in screen_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FindLimitScreen))
        assert app.screen.query_one(SloArea).text == "p95 < 5s"
        # Enter in the SLOs starts too: here it says what is wrong with them, in one line.
        await pilot.press("f7", *"p95 < fast", "enter")
        said = 'SLOs: expected an expression like "p95 < 200ms"'
        await wait_for(pilot, lambda: said in screen_text(app))
        assert app.screen.query_one(SloArea).text == "p95 < fast"  # no new line was added
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FindLimitScreen))

        for form, said in (
            (("p95 < fast", "10", "80", "1s"), "SLOs: expected an expression like"),
            (("p95 < 1s", "10", "lots", "1s"), "max: expected a rate in requests/s, got 'lots'"),
            (("p95 < 1s", "90", "80", "1s"), "start: expected at most max (80 requests/s)"),
            (("p95 < 1s", "10", "80", "soon"), 'step: expected a duration like "10s"'),
            (("p95 < 1s", "10", "30000", "1s"), "max: 30000 requests/s is above the safety cap"),
        ):
            await fill_form(app, pilot, *form)
            await pilot.press("enter")
            await wait_for(pilot, lambda said=said: said in screen_text(app))
            assert isinstance(app.screen, FindLimitScreen)  # still open, to be put right
            errors = [line for line in screen_text(app).splitlines() if said in line]
            assert len(errors) == 1, errors
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, FindLimitScreen))
        assert app.controller is not None and app.controller.handle is None
        assert app.search is None
        assert capped.count == 0


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (("", "open", "", "", ""), 'SLOs: expected at least one, e.g. "p95 < 200ms"'),
        (("p95 < 1s", "fast", "", "", ""), 'model: expected "open" or "closed", got \'fast\''),
        (("p95 < 1s", "closed", "2.5", "", ""), "start: expected a whole number of users above 0"),
        (("p95 < 1s", "open", "-3", "", ""), "start: expected a rate in requests/s above 0"),
        (("p95 < 1s", "closed", "", "5000", ""), "max: 5000 users is above the safety cap"),
        (("p95 < 1s", "open", "", "", "0s"), 'step: expected a duration like "10s"'),
        (("p95 < 1s", "open", "", "", "2h"), "step: expected at most 10m"),
        (("rps > 10", "open", "", "", "1s", "150%"), 'precision: expected a percentage like "5%"'),
    ],
)
def test_a_bad_field_is_named(fields: tuple[str, ...], line: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_search(*fields)
    assert caught.value.line().startswith(line), caught.value.line()


def test_empty_fields_take_the_clis_defaults_and_slos_split_on_lines_and_commas() -> None:
    search = parse_search("p95 < 200ms\nerror_rate < 1%, p99 < 1s", "open", "", "", "", "")
    assert [slo.expr for slo in search.slos] == ["p95 < 200ms", "error_rate < 1%", "p99 < 1s"]
    assert (search.start, search.maximum, search.step, search.warmup) == (10, 20_000, 10, 2.5)
    assert search.precision == DEFAULT_PRECISION
    closed = parse_search("p95 < 1s", "closed", "", "", "30s", "10%")
    assert (closed.start, closed.maximum, closed.warmup, closed.precision) == (1, 2000, 5, 0.1)
    lifted = parse_search("p95 < 1s", "open", "", "30000", "", i_know=True)
    assert lifted.maximum == 30_000


def step(asked: float, achieved: float, p95: float, broken: str = "") -> Step:
    return Step(
        asked=asked,
        achieved=achieved,
        requests=int(achieved),
        errors=0,
        dropped=0,
        latency=Percentiles(p50=p95 / 2, p95=p95, p99=p95 * 1.2, count=int(achieved)),
        broken=(broken,) if broken else (),
        bottleneck=Bottleneck("target" if broken else "none"),
        seconds=1.0,
    )


async def test_the_steps_chart_marks_each_step_and_the_knee_at_80x24() -> None:
    """A fixed search drawn at 80x24: three held markers, two broke markers, and the limit
    as a vertical line where 40 req/s falls on the x axis."""
    search = Search("open", (), start=10, maximum=80, step=1, warmup=0.25)
    steps = [
        step(10, 10, 22),
        step(20, 20, 24),
        step(40, 39.5, 60),
        step(80, 48, 900, "p95 < 100ms (p95 900)"),
        step(60, 47, 500, "p95 < 100ms (p95 500)"),
    ]
    result = LimitResult("http://127.0.0.1:1", search, tuple(steps), 40.0, False, "held at 40")
    app = StressDeckApp(
        options=ConsoleOptions(
            static_snapshot=sample_snapshot(), monitor=FixedMonitor(), static_title="t"
        )
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("3")
        assert app.dashboard is not None
        app.dashboard.show_search(ConsoleSearch(search, steps, result=result, running=False))
        await wait_for(pilot, lambda: "limit 40 req/s: held at 40" in screen_text(app))
        chart = app.screen.query_one(LimitChart)
        assert chart.size.height >= 8, chart.size  # room for the steps at 80x24
        drawn = chart_text(app).splitlines()
        assert "".join(drawn).count(HELD) == 3 and "".join(drawn).count(BROKE) == 2, drawn
        # The plot's frame: its corners give the columns of 0 and of the right edge.
        top = next(i for i, row in enumerate(drawn) if "┌" in row)
        bottom = next(i for i, row in enumerate(drawn) if "└" in row)
        left, right = drawn[top].index("┌"), drawn[top].index("┐")
        inside = drawn[top + 1 : bottom]
        columns = {c: sum(1 for row in inside if row[c] == "│") for c in range(left + 1, right)}
        knee = max(columns, key=lambda c: columns[c])
        assert columns[knee] >= len(inside) - 3, (columns[knee], drawn)  # a line down the plot
        # 40 req/s on an axis that ends 5 % past the highest step (80 req/s).
        expected = left + 1 + 40 / (80 * 1.05) * (right - left - 2)
        assert abs(knee - expected) <= 1.5, (knee, expected)


async def test_the_per_second_chart_beside_the_steps_labels_the_top_of_its_axis() -> None:
    """At 80x24 the steps chart leaves the per-second chart a few rows. Its top label is
    still the top of its axis: a run at 94 req/s once read "50/s" on its top row (the
    ticks 0, 50, 100 on two rows, 100 lost)."""
    snapshot = sample_snapshot()
    snapshot = replace(
        snapshot, timeline=tuple(replace(p, rps=94.0, requests=94) for p in snapshot.timeline)
    )
    search = Search("open", (), start=10, maximum=80, step=1, warmup=0.25)
    steps = [step(10, 10, 22), step(20, 20, 24)]
    app = StressDeckApp(
        options=ConsoleOptions(static_snapshot=snapshot, monitor=FixedMonitor(), static_title="t")
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("3")
        assert app.dashboard is not None
        app.dashboard.show_search(ConsoleSearch(search, steps, running=True))
        await wait_for(pilot, lambda: HELD in screen_text(app))
        chart = next(
            c for c in app.screen.query(TimelineChart) if c.kind == "load" and c.region.height
        )
        region = chart.region
        rows = screen_text(app).splitlines()[region.y : region.y + region.height]
        labels = [
            float(found.group(1))
            for row in rows
            if (found := re.match(r"\s*(\d+(?:\.\d+)?)/s┤", row[region.x : region.right]))
        ]
        assert labels and labels[0] == max(labels) >= 94, rows


async def test_the_start_and_cap_follow_the_model_typed(tmp_path: Path) -> None:
    """The plan is closed (start 1 user, cap 2000 users); typing "open" makes the start
    10 req/s and the cap 20000 req/s, as the command's defaults: a search once started
    at 1 req/s that way. A start typed by hand is kept. The cap is read whole on screen (it
    once read "cap 200" for 2000, cut by the field's width)."""
    app = console(write_profile(tmp_path, "http://127.0.0.1:9", duration="30s"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, FindLimitScreen))
        start = app.screen.query_one("#limit-start", Input)
        maximum = app.screen.query_one("#limit-max", Input)
        assert (start.value, maximum.placeholder) == ("1", "2000")
        await wait_for(pilot, lambda: "max (cap)" in screen_text(app))
        assert re.search(r"\b2000\b", screen_text(app))
        await pilot.press("tab", "ctrl+a", "ctrl+k", *"open")
        await wait_for(pilot, lambda: start.value == "10")
        assert maximum.placeholder == "20000"
        await wait_for(pilot, lambda: "20000" in screen_text(app))
        await pilot.press("tab", "ctrl+a", "ctrl+k", *"25", "shift+tab")
        await pilot.press("ctrl+a", "ctrl+k", *"closed")
        await pilot.pause()
        assert start.value == "25" and maximum.placeholder == "2000"
        await pilot.press("escape")


def test_the_header_of_a_search_does_not_say_thresholds_none() -> None:
    """The search's SLOs hold its run, not thresholds: "thresholds: none" beside the step
    (as it read at 80x24 over SSH) would say nothing is checked."""
    snapshot = replace(sample_snapshot(), thresholds=())
    plain = header_text(snapshot, RunInfo("p"), width=120).plain
    assert "thresholds: none" in plain
    searching = header_text(
        snapshot, RunInfo("p", search="find-limit step 1: 1 users"), width=120
    ).plain
    assert "find-limit step 1: 1 users" in searching
    assert "thresholds" not in searching
