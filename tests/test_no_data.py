"""Figures that say "no data" instead of 0: a run nothing answered (connection refused
everywhere) shows n/a in its progress lines, summary, HTML, CSV and console, writes null in
--json (valid against the schema) and exits 4; each progress line's figures are its own
second's; answers with an error status are named apart from transport errors. Real runs
against 127.0.0.1 (a refused port, and a server answering 404)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import jsonschema
import pytest
from conftest import ServerThread
from session_support import crafted_document
from test_ui_support import FixedMonitor, screen_text, wait_for

from stressdeck.cli.console import build_parser as console_parser
from stressdeck.cli.console import console_app
from stressdeck.cli.main import main
from stressdeck.core.exits import (
    EXIT_INCONCLUSIVE,
    EXIT_NOTHING_ANSWERED,
    EXIT_OK,
    EXIT_THRESHOLDS,
)
from stressdeck.core.fields import Reader
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.results import Results, results_schema
from stressdeck.engine.snapshot import PERCENTILE_KEYS, STOPPED, Percentiles, TimelinePoint
from stressdeck.engine.timeline import _merge_points
from stressdeck.sessions.exports import write_csv, write_html
from stressdeck.sessions.session import FORMAT_VERSION, load_session, session_from_document

LINE = re.compile(
    r"^\[\s*(?P<t>[\d.]+)s\] .* rps\s+(?P<rps>[\d.]+)\s+p50\s+(?P<p50>\S+)\s+p95\s+(?P<p95>\S+)"
    r"\s+p99\s+(?P<p99>\S+) ms\s+errors (?P<errors>\d+) \((?P<rate>[^)]+)\)"
)


def run_refused(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str, dict]:
    results = tmp_path / "r.json"
    argv = ["run", f"{url}/x", "--users", "1", "--processes", "1", *extra]
    code = main([*argv, "--json", str(results), "--save", str(tmp_path / "s.toml")])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, json.loads(results.read_text(encoding="utf-8"))


def test_a_run_nothing_answered_says_no_data_everywhere_and_exits_4(
    refused_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, document = run_refused(refused_url, tmp_path, capsys, "--duration", "2s")
    assert code == EXIT_NOTHING_ANSWERED == 5
    assert err.strip().splitlines()[-1] == (
        "error: nothing answered: not one request got an HTTP response (exit 5)"
    )
    lines = [LINE.match(line) for line in out.splitlines() if line.startswith("[")]
    assert len(lines) >= 2 and all(lines)
    assert {(m["p50"], m["p95"], m["p99"]) for m in lines if m} == {("n/a", "n/a", "n/a")}
    assert not re.search(r"(?<![\d.])0\.00(?!%)", out)  # 0.00 ms nowhere; 100.00% is fine
    # The JSON: null for every latency figure, valid against the published schema.
    jsonschema.validate(document, results_schema())
    total = document["summary"]["total"]
    assert total["requests"] > 0 and total["status_counts"] == {}
    for kind in ("latency_ms", "service_ms", "ttfb_ms"):
        assert total[kind] == dict.fromkeys(PERCENTILE_KEYS), kind
    assert document["timeline"] and all(
        (p["p50"], p["p95"], p["p99"]) == (None, None, None) for p in document["timeline"]
    )
    # Read back: no data, not zeros.
    results = Results.from_dict(Reader("r.json"), document)
    assert not results.total.latency_ms.measured
    assert not any(point.measured for point in results.timeline)
    # The session, then the HTML and CSV reports made from it.
    session = load_session(tmp_path / "s.toml")
    assert session.format_version == FORMAT_VERSION == 3
    assert not session.results.total.latency_ms.measured
    html = io.StringIO()
    write_html(session, html)
    assert "0.00 ms" not in html.getvalue() and "<td>0.00</td>" not in html.getvalue()
    assert html.getvalue().count("<td>n/a</td>") == 2 * 4  # the endpoint's row and TOTAL's
    assert "Latency over time (no answers: no data)" in html.getvalue()
    table = io.StringIO()
    write_csv(session, table)
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    latencies = {(r["p50_ms"], r["p95_ms"], r["p99_ms"]) for r in rows}
    assert rows and latencies == {("n/a", "n/a", "n/a")}


def test_thresholds_that_fail_keep_exit_3_when_nothing_answered(
    refused_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'name = "p"\nbase_url = "{refused_url}"\nthresholds = ["error_rate < 1%"]\n'
        '[[endpoints]]\nname = "x"\npath = "/x"\n',
        encoding="utf-8",
    )
    argv = ["run", str(profile), "--requests", "20", "--users", "1", "--processes", "1"]
    assert main([*argv, "--quiet"]) == EXIT_THRESHOLDS
    assert "nothing answered" not in capsys.readouterr().err


def test_a_run_something_answered_exits_0(
    target: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", f"{target.url}/ok", "--requests", "20", "--users", "1", "--processes", "1"]
    assert main([*argv, "--quiet"]) == EXIT_OK
    assert target.count == 20


def test_every_figure_on_a_progress_line_is_its_seconds(
    refused_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors on the line for second N are N's, not the run's so far (which once printed
    more errors than requests on a line): each line matches its timeline point."""
    code, out, _, document = run_refused(refused_url, tmp_path, capsys, "--duration", "3s")
    assert code == EXIT_NOTHING_ANSWERED
    points = {p["t"]: p for p in document["timeline"]}
    matched = [m for m in map(LINE.match, out.splitlines()) if m]
    whole_seconds = [m for m in matched if float(m["t"]) in points and float(m["t"]) % 1 == 0]
    assert len(whole_seconds) >= 2
    for m in whole_seconds:
        point = points[float(m["t"])]
        assert int(m["errors"]) == point["errors"] == point["requests"]
        assert m["rate"] == "100.00%"
    assert sum(p["errors"] for p in document["timeline"]) == document["summary"]["total"]["errors"]


def test_a_run_of_4xx_names_transport_errors_and_http_error_statuses(
    target: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", f"{target.url}/status/404", "--requests", "12", "--users", "1"]
    assert main([*argv, "--processes", "1", "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "\nerrors:" not in out
    assert (
        "transport errors: none; HTTP error statuses: 404: 12 (12 answers counted as errors)" in out
    )
    assert "100.00%" in out and target.count == 12


def test_old_files_with_zeros_for_no_answers_read_as_no_data() -> None:
    """Format 1 and 2 wrote 0.0 where nothing was answered; they read back as no data."""
    document = crafted_document()
    document["format_version"] = 2
    total = document["results"]["summary"]["total"]
    total["status_counts"], total["error_counts"] = {}, {"connect": total["requests"]}
    for kind in ("latency_ms", "service_ms", "ttfb_ms"):
        total[kind] = dict.fromkeys(total[kind], 0.0)
    for point in document["results"]["timeline"]:
        point.update(p50=0.0, p95=0.0, p99=0.0)
    session = session_from_document(document, "old.toml")
    assert session.results.total.latency_ms == Percentiles()
    assert not session.results.total.latency_ms.measured
    assert all(point.p50 is None and not point.measured for point in session.results.timeline)
    endpoint = session.results.endpoints[0]  # it had answers: its figures stand, counted
    assert endpoint.latency_ms.measured and endpoint.latency_ms.count == 1000
    assert endpoint.latency_ms.p95 == 20.0


def test_a_null_latency_in_a_file_that_had_answers_is_no_data() -> None:
    document = crafted_document()["results"]
    document["summary"]["total"]["latency_ms"] = dict.fromkeys(PERCENTILE_KEYS)
    results = Results.from_dict(Reader("r.json"), document)
    assert not results.total.latency_ms.measured


def test_merging_seconds_without_answers_keeps_the_answered_ones() -> None:
    """A long run's older seconds are merged two by two: no answer is no time, not 0 ms."""

    def second(t: float, p50: float | None) -> TimelinePoint:
        p95 = None if p50 is None else p50 * 2
        p99 = None if p50 is None else p50 * 4
        return TimelinePoint(t, 1.0, 10, 10.0, 10 if p50 is None else 0, p50, p95, p99, 1)

    merged = _merge_points(second(1.0, None), second(2.0, 5.0))
    assert (merged.p50, merged.p95, merged.p99, merged.requests) == (5.0, 10.0, 20.0, 20)
    empty = _merge_points(second(1.0, None), second(2.0, None))
    assert (empty.p50, empty.p95, empty.p99) == (None, None, None) and not empty.measured


async def test_the_console_says_n_a_when_nothing_answered(refused_url: str, tmp_path: Path) -> None:
    args = console_parser().parse_args(
        [f"{refused_url}/x", "--users", "1", "--duration", "2s", "--processes", "1"]
        + ["--profiles-dir", str(tmp_path), "--sessions-dir", str(tmp_path / "sessions")]
    )
    app = console_app(args, args.profile, Overrides.from_args(args))
    app.monitor = FixedMonitor()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED, timeout=30)
        await wait_for(pilot, lambda: "p95 n/a" in screen_text(app))
        overview = screen_text(app)
        await pilot.press("2")  # the Endpoints pane
        await wait_for(pilot, lambda: endpoint_row(screen_text(app)) is not None)
        row = endpoint_row(screen_text(app))
    final = app.controller.latest()
    assert final.total.requests > 0 and not final.total.status_counts
    assert [line.split() for line in overview.splitlines() if "━ p" in line or " max " in line] == [
        ["━", "p50", "n/a"],
        ["━", "p95", "n/a"],
        ["━", "p99", "n/a"],
        ["max", "n/a"],
    ]
    assert row is not None and row.count("n/a") == 5  # p50, p95, p99, max, ttfb p95


def endpoint_row(text: str) -> str | None:
    return next((line for line in text.splitlines() if "GET /x" in line and "100.0%" in line), None)


def test_compare_says_n_a_for_a_side_nothing_answered(tmp_path: Path, capsys) -> None:
    answered = crafted_document()
    refused = crafted_document()
    for summary in (
        refused["results"]["summary"]["total"],
        *refused["results"]["summary"]["endpoints"].values(),
    ):
        summary["status_counts"], summary["error_counts"] = {}, {"connect": summary["requests"]}
        summary["errors"], summary["error_rate"] = summary["requests"], 1.0
        for kind in ("latency_ms", "service_ms", "ttfb_ms"):
            summary[kind] = dict.fromkeys(PERCENTILE_KEYS)
    paths = []
    for name, document in (("refused", refused), ("answered", answered)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        paths.append(str(path))
    # No latency on one side: the latencies cannot be judged (inconclusive, exit 4), and
    # the side's figure reads n/a, never 0 ms.
    code = main(["compare", *paths, "--format", "json"])
    compared = json.loads(capsys.readouterr().out)
    assert main(["compare", *paths]) == code == EXIT_INCONCLUSIVE
    out = capsys.readouterr().out
    p95 = next(line for line in out.splitlines() if line.split()[:1] == ["p95"])
    assert p95.split()[1] == "n/a" and "20.00 ms" in p95 and "inconclusive" in p95
    assert "REGRESSION" not in out and "nothing answered: no latency" in out
    total = compared["rows"][-1]["metrics"]["p95"]
    assert total["base"] is None and total["new"] == 20.0
    assert compared["verdict"] == "inconclusive"


def test_the_pytest_plugin_records_n_a_latencies_when_nothing_answered(
    refused_url: str, tmp_path: Path
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_refused.py").write_text(
        "def test_refused(stressdeck):\n"
        f"    stressdeck.run({{'name': 'r', 'base_url': '{refused_url}',"
        " 'endpoints': [{'name': 'x', 'path': '/x'}]}, requests=5, users=1, processes=1)\n",
        encoding="utf-8",
    )
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(suite)]
        + ["-o", "addopts=", "--junitxml", str(junit)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    case = next(ElementTree.parse(junit).getroot().iter("testcase"))
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["stressdeck.1.requests"] == "5"
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        assert properties[f"stressdeck.1.{key}"] == "n/a"
