"""A saved find-limit search in the places that show a session: the HTML report (the answer,
throughput and latency against the load with the limit drawn, every step), the answer's line
from `report` and `replay`, and `compare` of two searches judged by their limits.

Searches are real (``find-limit --save`` against tests/capacity_server.py), or a real run's
session saved through ``save_session`` with a LimitResult built here, for figures a test must
choose (a given break, a load measured again, hostile text, a limit 17 % lower)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ServerThread, counting_app
from session_support import profile_document, run_sync
from shaped import shaped_server
from test_report import parse

from stressdeck.core.fields import MAX_SECONDS
from stressdeck.engine import Plan, Snapshot
from stressdeck.engine.bottleneck import Bottleneck
from stressdeck.engine.limit import LimitResult, Search, Step
from stressdeck.engine.plan import CEILING_RATE
from stressdeck.engine.snapshot import Percentiles
from stressdeck.engine.usl import UslFit
from stressdeck.profiles.thresholds import parse_threshold
from stressdeck.sessions.compare_schema import comparison_schema
from stressdeck.sessions.exports import write_html
from stressdeck.sessions.limit_html import LIMIT_STYLE
from stressdeck.sessions.session import Session, load_session, save_session
from stressdeck.sessions.summary import limit_line
from stressdeck.sessions.svg import HEIGHT, WIDTH, ticks

ROOT = Path(__file__).parent.parent
STRESSDECK = [sys.executable, "-m", "stressdeck"]
EVIL = '<img src=x onerror="alert(1)">\x1b[31m & http://evil.example/x.js'
PLOT_LEFT, PLOT_RIGHT = 64, WIDTH - 16  # svg.py's plot area


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STRESSDECK, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[Plan, Snapshot]]:
    """A real 1 s run: the session every built search is saved with."""
    with ServerThread(counting_app()) as server:
        yield run_sync(profile_document(server.url, duration="1s"))


def step(
    asked: float,
    achieved: float,
    p95: float,
    broken: tuple[str, ...] = (),
    kind: str = "none",
    evidence: str = "",
    recheck: bool = False,
) -> Step:
    requests = round(achieved * 3)
    return Step(
        asked=asked,
        achieved=achieved,
        requests=requests,
        errors=0,
        dropped=0,
        latency=Percentiles(p50=p95 * 0.8, p95=p95, p99=p95 * 1.1, count=requests),
        broken=broken,
        bottleneck=Bottleneck(kind, evidence),
        seconds=3.0,
        recheck=recheck,
    )


SLOS = (parse_threshold("p95 < 100ms"), parse_threshold("error_rate < 1%"))


def open_search(limit: float = 87.5, broken_at: float = 90.7, why: str = "") -> LimitResult:
    """An open-model search: 25, 50 held; 100 broke (the target named); bisected down to
    ``limit`` held and ``broken_at`` broken, that one measured again."""
    broke = f"p95 < 100ms (p95 {105.7:g})"
    steps = (
        step(25, 24.9, 26.4),
        step(50, 49.8, 35.5),
        step(100, 91.4, 333.1, ("p95 < 100ms (p95 333.1)",), "target", "service time rose"),
        step(limit, limit, 26.8),
        step(broken_at, broken_at - 2, 150.0, (broke,)),
        step(broken_at, broken_at - 1.8, 105.7, (broke,), "target", "service 20 -> 90 ms", True),
    )
    return LimitResult(
        target="http://127.0.0.1:9/",
        search=Search("open", SLOS, 25, 20000, step=3, warmup=1),
        steps=steps,
        limit=limit,
        at_least=False,
        why=why or f"every SLO held at {limit:g} req/s; at {broken_at:g} req/s {broke} broke first",
        broken_by="p95 < 100ms",
        broken_at=broken_at,
        bottleneck=Bottleneck("target", "service 20 -> 90 ms"),
    )


def saved(tmp_path: Path, name: str, run: tuple[Plan, Snapshot], limit: LimitResult) -> Path:
    """The real run's session with ``limit``, written and read back as a user's file is."""
    return save_session(tmp_path / name, *run, limit=limit)


def html_of(session: Session) -> str:
    out = io.StringIO()
    write_html(session, out)
    return out.getvalue()


def charts(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, re.S)


def x_of(level: float, highest: float) -> float:
    """Where a load sits on a load chart whose x axis runs to the tick above ``highest``."""
    top = ticks(highest, 8)[-1]
    return PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * level / top


def vertical(svg: str, css: str) -> tuple[float, str]:
    """The x and the label of the vertical rule of class ``css``."""
    match = re.search(
        rf'<line x1="([\d.]+)" y1="[\d.]+" x2="\1" y2="[\d.]+" class="{css}">'
        r"<title>([^<]*)</title></line>",
        svg,
    )
    assert match is not None, f"no {css} line"
    return float(match.group(1)), match.group(2)


# -- the HTML report -------------------------------------------------------------------------


def test_the_report_opens_with_the_answer_and_draws_it_against_the_load(
    tmp_path: Path, run: tuple[Plan, Snapshot]
) -> None:
    result = open_search()
    session = load_session(saved(tmp_path, "search.toml", run, result))
    assert session.limit is not None
    html = html_of(session)
    parser = parse(html)
    assert parser.errors == [] and parser.stack == [] and parser.loading == []
    assert "http://" not in html
    # first, before the run's own charts
    assert html.index("find-limit: the answer") < html.index("<h2>Charts</h2>")
    throughput, latency, *rest = charts(html)
    assert len(rest) == 6  # the report's own charts, as without a search
    assert "Throughput against the rate asked" in throughput
    assert "Latency against the rate asked" in latency
    highest = 100.0  # the highest load asked
    for svg in (throughput, latency):
        x, label = vertical(svg, "limit")
        assert label == "limit 87.5 req/s"
        assert x == pytest.approx(x_of(87.5, highest), abs=0.06)
        x, label = vertical(svg, "breakrule")
        assert label == "broke at 90.7 req/s"
        assert x == pytest.approx(x_of(90.7, highest), abs=0.06)
    # every step a point: held ones circles, broken ones crosses, the recheck ringed and its
    # first try pale
    assert throughput.count('class="held"') == 3
    assert throughput.count('class="broke"') == 3
    assert throughput.count('class="ring"') == 1
    # the ringed point's words once, on its mark (the ring repeated them)
    assert throughput.count("this verdict stands") == 1
    assert throughput.count('opacity="0.4"') == 1
    assert latency.count('class="held"') == 3 * 3 and latency.count('class="broke"') == 3 * 3
    # the open model's y = x: a step under it carried less than it was asked
    assert "<title>asked (y = x)</title>" in throughput
    # the latency SLO's bound, the error rate's not (it is no latency)
    bounds = re.findall(r'class="slo"><title>([^<]*)</title>', latency)
    assert bounds == ["p95 &lt; 100ms"]
    text = " ".join(parser.text)
    assert '<p class="answer">Limit: <b>87.5 req/s</b></p>' in html
    assert "first broke at 90.7 req/s: p95 < 100ms (p95 105.7)" in text
    assert "the bottleneck was the <b>target</b>: service 20 -&gt; 90 ms" in html
    # the steps table: every step in the order measured, the recheck said
    rows = re.findall(r"<tr><td>(\d+)</td><td>([\d.]+)</td>", html)
    assert [(int(i), float(level)) for i, level in rows] == [
        (i + 1, s.asked) for i, s in enumerate(result.steps)
    ]
    assert "(measured again)" in text
    assert "above the answer are the whole search's, every step's load together" in text


def test_a_session_without_a_search_renders_as_before(
    tmp_path: Path, run: tuple[Plan, Snapshot]
) -> None:
    """The search adds its section and its style, nothing else: the page without it is the
    page of the same session with both taken out."""
    session = load_session(saved(tmp_path, "search.toml", run, open_search()))
    with_search = html_of(session)
    without = html_of(dataclasses.replace(session, limit=None))
    assert "find-limit" not in without and 'class="limit"' not in without
    section = with_search[
        with_search.index("<h2>find-limit: the answer</h2>") : with_search.index("<h2>Charts</h2>")
    ]
    assert with_search.replace(section, "").replace(LIMIT_STYLE, "") == without


def test_outside_text_in_a_search_is_escaped(tmp_path: Path, run: tuple[Plan, Snapshot]) -> None:
    result = open_search(why=EVIL)
    evil_step = dataclasses.replace(
        result.steps[2], broken=(EVIL,), bottleneck=Bottleneck("target", EVIL)
    )
    result = dataclasses.replace(
        result,
        steps=(*result.steps[:2], evil_step, *result.steps[3:]),
        bottleneck=Bottleneck("target", EVIL),
    )
    html = html_of(load_session(saved(tmp_path, "evil.toml", run, result)))
    parser = parse(html)
    assert parser.errors == [] and parser.loading == [] and parser.stack == []
    assert "<img" not in html and "\x1b" not in html and "http://" not in html
    assert html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;\\x1b[31m") >= 4


def test_the_closed_model_draws_the_scalability_fit_not_y_equals_x(
    tmp_path: Path, run: tuple[Plan, Snapshot]
) -> None:
    levels = [(1, 95.0, 11), (2, 182, 12), (5, 342, 22), (10, 340, 37), (20, 343, 64)]
    steps = tuple(
        step(n, x, p95, () if p95 < 40 else ("p95 < 40ms (p95 64)",)) for n, x, p95 in levels
    )
    result = LimitResult(
        target="http://127.0.0.1:9/",
        search=Search("closed", (parse_threshold("p95 < 40ms"),), 1, 2000, step=2, warmup=0.5),
        steps=(*steps, step(15, 360, 48, ("p95 < 40ms (p95 48)",)), step(12, 360, 38.6)),
        limit=12,
        at_least=False,
        why="every SLO held at 12 users; at 13 users p95 < 40ms (p95 43.68) broke first",
        broken_by="p95 < 40ms",
        broken_at=13,
        bottleneck=Bottleneck("target", "service time rose"),
        usl=UslFit(lam=108.1, sigma=0.1448, kappa=0.007124, r2=0.975, points=7),
    )
    path = saved(tmp_path, "closed.json", run, result)
    html = html_of(load_session(path))
    throughput, latency = charts(html)[:2]
    assert "Throughput against users (closed model)" in throughput
    assert "<title>USL fit</title>" in throughput and "y = x" not in throughput
    assert vertical(throughput, "limit")[1] == "limit 12 users"
    assert vertical(latency, "breakrule")[1] == "broke at 13 users"
    assert "Universal Scalability Law: contention σ 0.1448" in html
    report = cli("report", str(path), "--html", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines()[-2:] == [
        "find-limit: limit 12 users",
        "  p95 < 40ms broke first at 13 users; bottleneck target",
    ]


def test_a_hostile_search_still_renders(tmp_path: Path, run: tuple[Plan, Snapshot]) -> None:
    """The largest figures the session reader takes, 80 steps, a fit that explodes: a page
    that parses, every coordinate a finite number."""
    path = saved(tmp_path, "base.toml", run, open_search())
    document = load_session(path)
    assert document.limit is not None
    table = document.limit.to_dict()
    huge_step = {
        **table["steps"][0],
        "asked": CEILING_RATE,
        "achieved": CEILING_RATE,
        "p50": MAX_SECONDS * 1000,
        "p95": MAX_SECONDS * 1000,
        "p99": MAX_SECONDS * 1000,
        "held": False,
        "broken_by": [EVIL * 20],
    }
    table["steps"] = ([huge_step, *table["steps"]] * 12)[:80]
    assert len(table["steps"]) == 80
    table["model"], table["unit"] = "closed", "users"
    table["usl"] = {
        "lambda": 1e300,
        "sigma": -1.0,
        "kappa": 1e300,
        "peak_users": None,
        "r2": -1e300,
        "quality": "poor",
    }
    table["slos"] = ["p95 < 100000s", "p99 < 1ms"]
    saved_document = tomllib.loads(path.read_text())
    saved_document["limit"] = table
    hostile = tmp_path / "hostile.json"  # JSON: the search's nulls as written
    hostile.write_text(json.dumps(saved_document))
    html = html_of(load_session(hostile))
    parser = parse(html)
    assert parser.errors == [] and parser.stack == [] and parser.loading == []
    for svg in charts(html)[:2]:
        numbers = re.findall(r' (?:x|y|x1|y1|x2|y2|cx|cy)="([^"]*)"', svg)
        points = " ".join(re.findall(r'points="([^"]*)"', svg) + re.findall(r'd="([^"]*)"', svg))
        numbers += re.findall(r"-?[\d.]+(?:e[-+]?\d+)?", points)
        assert numbers and all(math.isfinite(float(n)) for n in numbers)
        for value in numbers:
            assert -WIDTH <= float(value) <= 2 * WIDTH + HEIGHT
    bounds = re.findall(r'class="slo"><title>([^<]*)</title>', charts(html)[1])
    assert bounds == ["p95 &lt; 100000s", "p99 &lt; 1ms"]


def test_where_the_load_tool_gave_out_is_not_drawn_as_a_break(
    tmp_path: Path, run: tuple[Plan, Snapshot]
) -> None:
    evidence = "every connection was busy: 2 connections x 50 ms carry 40 req/s"
    result = dataclasses.replace(
        open_search(),
        steps=(step(10, 10, 51), step(20, 20, 52), step(40, 39.8, 55, kind="connections")),
        limit=39.8,
        at_least=True,
        why="at 40 req/s the connections gave out before the target",
        broken_by=None,
        broken_at=40,
        bottleneck=Bottleneck("connections", evidence),
    )
    html = html_of(load_session(saved(tmp_path, "floor.toml", run, result)))
    assert '<p class="answer">Limit: <b>at least 39.8 req/s</b></p>' in html
    assert f"the bottleneck was the <b>connections</b>: {evidence}" in html
    assert "first broke" not in html
    for svg in charts(html)[:2]:
        assert vertical(svg, "limit")[1] == "limit at least 39.8 req/s"
        assert vertical(svg, "breakrule")[1] == "connections gave out at 40 req/s"
        assert 'class="broke"' not in svg


def test_a_search_with_no_step_says_so(tmp_path: Path, run: tuple[Plan, Snapshot]) -> None:
    empty = dataclasses.replace(open_search(), steps=(), limit=None, broken_at=None)
    html = html_of(load_session(saved(tmp_path, "empty.toml", run, empty)))
    assert parse(html).errors == []
    assert "<p>No step was measured.</p>" in html
    assert len(charts(html)) == 6  # the run's own charts only


@pytest.mark.slow
def test_a_real_search_that_broke_is_drawn_as_it_was_measured(tmp_path: Path) -> None:
    """One slot of 20 ms (about 50 req/s): the report draws the session's own limit and break
    where their figures lie, and a mark for every step the search took."""
    saved_path, page = tmp_path / "search.toml", tmp_path / "search.html"
    with shaped_server(concurrency=1, service_ms=20) as url:
        search = cli(
            "find-limit",
            f"{url}/",
            "--slo",
            "p95 < 60ms",
            "--start",
            "20",
            "--step",
            "1s",
            "--warmup",
            "0.3s",
            "--precision",
            "10%",
            "--processes",
            "1",
            "--save",
            str(saved_path),
            timeout=150,
        )
    assert search.returncode == 0, search.stderr
    result = load_session(saved_path).limit
    assert result is not None and result.limit is not None and result.broken_at is not None
    report = cli("report", str(saved_path), "--html", str(page))
    assert report.returncode == 0, report.stderr
    assert report.stdout == f"html report written: {page}\n{limit_line(result)}\n"
    html = page.read_text()
    assert parse(html).errors == []
    throughput, latency = charts(html)[:2]
    highest = max(s.asked for s in result.steps)
    held = sum(1 for s in result.steps if s.held)
    for svg, marks in ((throughput, 1), (latency, 3)):
        x, label = vertical(svg, "limit")
        assert label == f"limit {result.limit:g} req/s"
        assert x == pytest.approx(x_of(result.limit, highest), abs=0.06)
        x, label = vertical(svg, "breakrule")
        assert label == f"broke at {result.broken_at:g} req/s"
        assert x == pytest.approx(x_of(result.broken_at, highest), abs=0.06)
        assert svg.count('class="held"') == held * marks
        assert svg.count('class="broke"') == (len(result.steps) - held) * marks
    assert re.findall(r'class="slo"><title>([^<]*)</title>', latency) == ["p95 &lt; 60ms"]


# -- the answer in a line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "text"),
    [
        (
            open_search(),
            # 88 columns in one line: the figures after the limit go to the next
            "find-limit: limit 87.5 req/s\n"
            "  p95 < 100ms broke first at 90.7 req/s; bottleneck target",
        ),
        (
            dataclasses.replace(
                open_search(),
                limit=40,
                at_least=True,
                broken_by=None,
                broken_at=80,
                bottleneck=Bottleneck("connections", "every connection was busy"),
            ),
            "find-limit: limit at least 40 req/s\n"
            "  the connections gave out at 80 req/s, before the target",
        ),
        (
            dataclasses.replace(open_search(), limit=None, broken_at=25, bottleneck=Bottleneck()),
            "find-limit: no load held every SLO (p95 < 100ms broke even at 25 req/s)",
        ),
        (
            dataclasses.replace(open_search(), broken_by=EVIL, broken_at=100),
            "find-limit: limit 87.5 req/s\n"
            '  <img src=x onerror="alert(1)">\\x1b[31m & http://evil.example/x… broke first at '
            "100 req/s; bottleneck target",
        ),
    ],
)
def test_the_answer_in_a_line(result: LimitResult, text: str) -> None:
    assert limit_line(result) == text


def test_a_real_saved_search_is_reported_and_replayed_with_its_answer(tmp_path: Path) -> None:
    """Every SLO holds up to --max: the limit is at least that, drawn and said in a line by
    `report`, and `replay` says which answer it replays."""
    saved_path, page = tmp_path / "search.toml", tmp_path / "search.html"
    with shaped_server(service_ms=5) as url:
        search = cli(
            "find-limit",
            f"{url}/",
            "--slo",
            "p95 < 1s",
            "--start",
            "10",
            "--max",
            "20",
            "--step",
            "1s",
            "--warmup",
            "0.3s",
            "--processes",
            "1",
            "--save",
            str(saved_path),
        )
        assert search.returncode == 0, search.stderr
        report = cli("report", str(saved_path), "--html", str(page))
        assert report.returncode == 0, report.stderr
        session = load_session(saved_path)
        assert session.limit is not None
        assert (session.limit.limit, session.limit.at_least) == (20, True)
        assert report.stdout == f"html report written: {page}\n{limit_line(session.limit)}\n"
        assert limit_line(session.limit) == (
            "find-limit: limit at least 20 req/s\n  every SLO held up to the highest load tried"
        )
        html = page.read_text()
        throughput, latency = charts(html)[:2]
        for svg in (throughput, latency):
            assert vertical(svg, "limit")[1] == "limit at least 20 req/s"
            assert svg.count('class="held"') == 2 * (1 if svg is throughput else 3)
            assert 'class="broke"' not in svg and 'class="breakrule"' not in svg
        # 1 s is far above any p99 of 5 ms answers: named, not drawn (the lines would be flat)
        assert 'class="slo"' not in latency
        assert re.search(
            r"<p>Not drawn, far above every step's p99 \(at most [\d.]+ ms\): "
            r"p95 &lt; 1s\.</p>",
            html,
        )
        replay = cli("replay", str(saved_path), "--processes", "1")
        assert replay.returncode == 0, replay.stderr
        assert "saved find-limit: limit at least 20 req/s" in replay.stdout.splitlines()


# -- compare ------------------------------------------------------------------------------------


def compare(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("compare", *args, timeout=60)


def test_a_lower_limit_beyond_the_searches_precision_is_a_regression(
    tmp_path: Path, run: tuple[Plan, Snapshot]
) -> None:
    base = saved(tmp_path, "base.toml", run, open_search(96.9, 100))
    new = saved(tmp_path, "new.toml", run, open_search(80.1, 83.2))
    result = compare(str(base), str(new))
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = lines.index("verdict: regression: the limit is lower")
    assert lines[at + 1] == "find-limit: limit 96.9 → 80.1 req/s −17.3 %"
    # 10 % of 96.9 (the tolerance) is wider than 5 % of it plus the last step (3.1)
    assert lines[at + 2] == (
        "  lower: beyond ±9.7 req/s (the 10% tolerance; the searches' precision ±7.9)"
    )
    assert "not judged: a search" in result.stdout
    back = compare(str(new), str(base))
    assert back.returncode == 0
    assert "verdict: no regression: the limit is higher" in back.stdout
    document = json.loads(compare(str(base), str(new), "--format", "json").stdout)
    jsonschema.validate(document, comparison_schema())
    assert document["verdict"] == "regression" and document["regressed"] is True
    assert document["regressions"] == []  # no figure of the whole searches is judged
    limit = document["limit"]
    assert (limit["base"]["limit"], limit["new"]["limit"], limit["outcome"]) == (
        96.9,
        80.1,
        "lower",
    )
    assert limit["base"]["searches"][0] == load_session(base).limit.to_dict()  # type: ignore[union-attr]
    markdown = compare(str(base), str(new), "--format", "markdown").stdout
    assert markdown.splitlines()[0] == "**verdict: regression: the limit is lower**"
    assert "- find-limit: limit 96.9 → 80.1 req/s −17.3 %" in markdown


@pytest.mark.parametrize(("new_limit", "code"), [(89.0, 0), (88.9, 3)])
def test_within_the_searches_precision_is_no_change(
    tmp_path: Path, run: tuple[Plan, Snapshot], new_limit: float, code: int
) -> None:
    """Tolerance 1 %: the searches' own precision decides. Base 96.9 held, 100 broke: 5 % of
    96.9 plus the 3.1 step = 7.945 req/s; 96.9 → 89.0 is within it, 88.9 beyond."""
    base = saved(tmp_path, "base.toml", run, open_search(96.9, 100))
    new = saved(tmp_path, "new.toml", run, open_search(new_limit, new_limit + 2))
    result = compare(str(base), str(new), "--tolerance", "1%")
    assert result.returncode == code, result.stdout
    verdict = "verdict: no change in the limit" if code == 0 else "verdict: regression: "
    assert any(line.startswith(verdict) for line in result.stdout.splitlines())
    word = "within" if code == 0 else "beyond"
    expected = f"  {'same' if code == 0 else 'lower'}: {word} ±7.9 req/s (the searches' precision; "
    assert expected + "the 1% tolerance ±1)" in result.stdout.splitlines()


def test_searches_held_to_different_slos_are_not_compared(
    tmp_path: Path, run: tuple[Plan, Snapshot]
) -> None:
    base = saved(tmp_path, "base.toml", run, open_search(96.9, 100))
    other = dataclasses.replace(
        open_search(50, 52),
        search=dataclasses.replace(open_search().search, slos=(parse_threshold("p95 < 50ms"),)),
    )
    new = saved(tmp_path, "new.toml", run, other)
    result = compare(str(base), str(new))
    assert "find-limit: limit 96.9 → 50 req/s" in result.stdout
    assert (
        "  the searches held different SLOs ([error_rate < 1%, p95 < 100ms] and [p95 < 50ms]): "
        "not compared"
    ) in result.stdout.splitlines()
    assert "verdict: regression: the limit" not in result.stdout
    assert "not judged: a search" not in result.stdout  # the figures are judged as ever


def floor(result: LimitResult, limit: float | None) -> LimitResult:
    """The search stopped before the target broke: its limit is at least ``limit``."""
    return dataclasses.replace(result, limit=limit, at_least=True, broken_by=None, broken_at=None)


@pytest.mark.parametrize(
    ("base", "new", "outcome", "verdict"),
    [
        # a floor above the base's limit: higher (better), as far as it can tell
        (open_search(96.9, 100), floor(open_search(), 120), "higher", "same"),
        # a floor far below the base's limit: the load tool stopped, not the target
        (open_search(96.9, 100), floor(open_search(), 40), "unsure", "inconclusive"),
        # a limit far below the base's floor: the target got worse
        (floor(open_search(), 120), open_search(80.1, 83.2), "lower", "regression"),
        # a limit at or above the base's floor: the floor says nothing more
        (floor(open_search(), 80), open_search(96.9, 100), "unsure", "inconclusive"),
        (floor(open_search(), 40), floor(open_search(), 40), "same", "same"),
        # nothing held in the new search
        (
            open_search(96.9, 100),
            dataclasses.replace(open_search(), limit=None),
            "lower",
            "regression",
        ),
    ],
)
def test_a_floor_is_compared_as_a_floor(
    tmp_path: Path,
    run: tuple[Plan, Snapshot],
    base: LimitResult,
    new: LimitResult,
    outcome: str,
    verdict: str,
) -> None:
    sides = [
        saved(tmp_path, f"{name}.toml", run, result) for name, result in (("b", base), ("n", new))
    ]
    result = compare(*map(str, sides), "--format", "json")
    document = json.loads(result.stdout)
    assert (document["limit"]["outcome"], document["verdict"]) == (outcome, verdict)
    assert result.returncode == {"same": 0, "regression": 3, "inconclusive": 4}[verdict]


def test_a_search_against_a_plain_run_is_said_not_compared(
    tmp_path: Path, run: tuple[Plan, Snapshot]
) -> None:
    base = saved(tmp_path, "base.toml", run, open_search(96.9, 100))
    plain = save_session(tmp_path / "plain.toml", *run)
    result = compare(str(base), str(plain), "--html", str(tmp_path / "c.html"))
    said = (
        "find-limit: the new side holds sessions that are not find-limit searches: "
        "limits not compared"
    )
    assert said in result.stdout.splitlines()
    assert "not judged" not in result.stdout
    assert said in (tmp_path / "c.html").read_text()
