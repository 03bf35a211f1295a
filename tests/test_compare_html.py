"""compare --html draws each endpoint's own timeline second by second, both sides on one axis
per figure, from real saved sessions (real runs against an aiohttp server on 127.0.0.1): the
polylines hold exactly the seconds the sessions kept, names are escaped, and a comparison of
many endpoints draws the most changed ones and names the others."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ServerThread
from session_support import run_sync

from stressdeck.cli import main
from stressdeck.sessions.compare import INCONCLUSIVE, REGRESSION, compare_sides
from stressdeck.sessions.compare_html import ENDPOINT_CHARTS, compare_html
from stressdeck.sessions.session import Session, build_session, load_session, write_session

SLOW = web.AppKey("slow", dict)
EVIL = '<img src=x onerror="alert(1)"> slow'


def app() -> web.Application:
    """/work/{name}: answers at once, except the endpoint named in app[SLOW] (after its delay);
    /fail: a 500 every time."""
    application = web.Application()
    application[SLOW] = {"name": "", "seconds": 0.0}

    async def work(request: web.Request) -> web.Response:
        slow = request.app[SLOW]
        if request.match_info["name"] == slow["name"]:
            await asyncio.sleep(slow["seconds"])
        return web.Response(text="ok")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, text="broken")

    application.router.add_get("/work/{name}", work)
    application.router.add_get("/fail", fail)
    return application


def run(url: str, endpoints: list[dict[str, Any]], rate: float) -> Session:
    """3 s at a fixed rate (the open model): a slow endpoint does not take the others' rate."""
    document = {
        "name": "compare html",
        "base_url": url,
        "load": {"model": "open", "rate": rate, "duration": "3s"},
        "endpoints": endpoints,
    }
    plan, snapshot = run_sync(document)
    return build_session(plan, snapshot)


def chart(page: str, title: str) -> str:
    """The svg whose title is ``title`` (as the page escapes it)."""
    label = html.escape(title, quote=True)
    match = re.search(rf'<svg[^>]*aria-label="{re.escape(label)}">.*?</svg>', page, re.S)
    assert match is not None, f"no chart {title!r}"
    return match.group(0)


def polyline_points(svg: str, legend: str) -> list[tuple[float, float]]:
    match = re.search(rf'<polyline points="([^"]*)"[^>]*><title>{legend}</title>', svg)
    assert match is not None, f"no line {legend!r}"
    return [tuple(map(float, pair.split(","))) for pair in match.group(1).split()]  # type: ignore[misc]


def headings(page: str) -> list[tuple[str, str]]:
    return [
        (html.unescape(name), html.unescape(words))
        for name, words in re.findall(r'<h3 class="endpoint">(.*?): ([^:<]*)</h3>', page)
    ]


def test_each_endpoint_is_drawn_second_by_second_for_both_sides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = [
        {"name": "fast", "path": "/work/fast", "weight": 2},
        {"name": EVIL, "path": "/work/slow"},
        {"name": "broken", "path": "/fail", "expect": [200]},
    ]
    with ServerThread(app()) as server:
        server.app[SLOW].update(name="slow", seconds=0.005)
        base = run(server.url, endpoints, 400)
        server.app[SLOW].update(seconds=0.060)  # 12 times slower: a regression beyond doubt
        new = run(server.url, endpoints, 400)
    paths = [
        write_session(tmp_path / f"{side}.toml", s) for side, s in (("base", base), ("new", new))
    ]
    page_path = tmp_path / "cmp.html"
    # 3: the regression; 4 on a host whose other load changed between the two runs (compare
    # then cannot tell latency apart from the host's): the page is drawn either way
    assert main(["compare", *map(str, paths), "--html", str(page_path)]) in (3, 4)
    capsys.readouterr()
    page = page_path.read_text()
    base, new = load_session(paths[0]), load_session(paths[1])  # as the page read them

    assert "<h2>Second by second, by endpoint</h2>" in page
    assert "<img" not in page and "onerror=&quot;alert(1)&quot;" in page  # escaped, not live
    drawn = headings(page)
    # the most changed endpoint first (p50 twelve times), with its verdicts
    assert drawn[0][0] == EVIL and drawn[0][1].split(", ")[0] in ("REGRESSION", "inconclusive")
    assert {name for name, _ in drawn} == {"fast", EVIL, "broken"}
    assert "Not drawn" not in page

    for name in ("fast", EVIL, "broken"):
        series = {
            side: next(s for s in session.results.endpoint_timeline if s.name == name).points
            for side, session in (("base", base), ("new", new))
        }
        for title in ("p95 latency", "requests per second", "errors per second"):
            svg = chart(page, f"{name}: {title}")
            for side, points in series.items():
                line = polyline_points(svg, side)
                # one vertex per second the session kept, in time order
                assert len(line) == len(points) >= 2, (name, title, side)
                assert [x for x, _ in line] == sorted(x for x, _ in line)
            if title == "p95 latency" and name == EVIL:
                # the new side's line runs above the base's (smaller y is higher): 60 ms vs 5 ms
                base_y = [y for _, y in polyline_points(svg, "base")]
                new_y = [y for _, y in polyline_points(svg, "new")]
                assert max(new_y) < min(base_y)
            if title == "errors per second" and name == "fast":
                # nothing failed: both lines lie on the axis, at one height
                assert len({y for side in series for _, y in polyline_points(svg, side)}) == 1
    # every request of "broken" failed: its errors per second are its requests per second,
    # so both charts draw the very same lines
    errors, requests = (
        chart(page, f"broken: {t}") for t in ("errors per second", "requests per second")
    )
    for side in ("base", "new"):
        assert polyline_points(errors, side) == polyline_points(requests, side)


def test_many_endpoints_draw_the_most_changed_and_name_the_others(tmp_path: Path) -> None:
    names = [f"ep{i}" for i in range(ENDPOINT_CHARTS + 3)]
    endpoints = [{"name": name, "path": f"/work/{name}"} for name in names]
    with ServerThread(app()) as server:
        base = run(server.url, endpoints, 900)
        server.app[SLOW].update(name="ep7", seconds=0.060)
        new = run(server.url, endpoints, 900)
    comparison = compare_sides([base], [new])
    page = compare_html(comparison, [], [], [base], [new])

    drawn = [name for name, _ in headings(page)]
    assert len(drawn) == ENDPOINT_CHARTS and drawn[0] == "ep7"
    assert page.count("<svg") == 4 + 3 * ENDPOINT_CHARTS  # the total's four, three a drawn one
    note = re.search(
        r'<p class="note left-out">Not drawn \((\d+), less changed\): (.*?)\.</p>', page
    )
    assert note is not None
    left_out = note.group(2).split(", ")
    assert int(note.group(1)) == len(left_out) == len(names) - ENDPOINT_CHARTS
    assert sorted(drawn + left_out) == sorted(names)
    # ep7 is drawn first: the worst verdict of all (a regression, or inconclusive as every
    # endpoint is when the host's other load changed between the runs) and the largest change
    ep7 = next(row for row in comparison.rows if row.name == "ep7")
    p50 = next(c for c in ep7.changes if c.metric == "p50")
    assert p50.new > 10 * p50.base
    assert p50.verdict in (REGRESSION, INCONCLUSIVE)
