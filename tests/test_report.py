"""Reports from sessions: HTML (valid, self-contained, escaped), CSV timeline, JUnit thresholds."""

from __future__ import annotations

import csv
import io
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import tomli_w

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ServerThread, counting_app
from session_support import BASE_FIGURES, crafted_document, profile_document, run_sync

from stressdeck.cli import main
from stressdeck.sessions.exports import write_csv, write_html, write_junit
from stressdeck.sessions.session import Session, build_session, session_from_document

VOID = {
    "meta",
    "br",
    "hr",
    "img",
    "input",
    "link",
    "col",
    "area",
    "base",
    "wbr",
    "source",
    "line",
    "rect",
    "polyline",
    "path",
    "circle",
}


class StrictParser(HTMLParser):
    """Checks every element is closed in order and collects attributes that could load things."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.loading: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data") or (
                value and "url(" in value
            ):
                self.loading.append((tag, name, value))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href"):
                self.loading.append((tag, name, value))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID and (not self.stack or self.stack[-1] != tag):
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    """A real 2 s run with live changes and a failing threshold."""
    with ServerThread(counting_app()) as server:
        document = profile_document(
            server.url, thresholds=["p95 < 2s", "error_rate < 50%", "rps > 1000000"]
        )
        changes = [
            (0.5, lambda h: h.set_users(3)),
            (1.0, lambda h: h.pause()),
            (1.3, lambda h: h.resume()),
        ]
        yield build_session(*run_sync(document, changes, users=2))


def _render(writer, session: Session) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    writer(session, out)
    return out.getvalue()


def test_html_is_valid_and_self_contained(session: Session) -> None:
    html = _render(write_html, session)
    parser = parse(html)
    assert parser.errors == [] and parser.stack == []
    assert parser.loading == []
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "@import" not in html and "url(" not in html
    # latency and RPS/errors over time, histogram; per endpoint: p95, requests, errors per second
    assert parser.tags.count("svg") == 6
    # p50, p95, p99, rps, errors/s; then each of the 2 endpoints in the 3 per-endpoint charts
    assert parser.tags.count("polyline") == 5 + 2 * 3
    text = " ".join(parser.text)
    # The target reads as written once the entities are decoded; only the raw file avoids "://".
    assert session.results.target.split("//")[1] in text
    for expected in (
        "ok",
        "teapot",
        "TOTAL",
        "p95 < 2s",
        "rps > 1000000",
        "FAIL",
        "pause",
        "resume",
        "users 3",
    ):
        assert expected in text


def test_the_histogram_chart_comes_from_the_encoded_hdr_histogram(session: Session) -> None:
    html = _render(write_html, session)
    bars = re.findall(
        r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="#3b82f6"><title>([^<]*)</title>',
        html,
    )
    assert len(bars) == 30
    assert (
        sum(int(float(title.rsplit(": ", 1)[1])) for title in bars)
        == session.results.total.requests
    )


def test_outside_text_is_escaped_everywhere(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script> & http://evil.example/x.js'
    document = crafted_document(
        {evil: BASE_FIGURES},
        thresholds=[{"expr": "p95 < 1ms", "endpoint": evil, "value": 20.0, "ok": False}],
    )
    document["results"]["name"] = evil
    document["results"]["stop_reason"] = "<b>bold</b>\x1b[31m"
    document["results"]["target"] = "https://target.example:8443"
    document["results"]["control_log"] = []
    session = session_from_document(document, "evil.toml")
    html = _render(write_html, session)
    parser = parse(html)
    assert parser.errors == [] and parser.loading == []
    assert "<script" not in html and "<b>bold" not in html and "\x1b" not in html
    assert "http://" not in html and "https://" not in html
    assert evil in " ".join(parser.text)
    junit = _render(write_junit, session)
    root = ET.fromstring(junit)
    assert root.find(".//testcase").get("classname") == f"stressdeck.profiles.thresholds.{evil}"


def test_csv_is_the_timeline(session: Session) -> None:
    rows = list(csv.DictReader(io.StringIO(_render(write_csv, session))))
    assert len(rows) == len(session.results.timeline) >= 2
    assert list(rows[0]) == [  # each with its unit
        "t_s",
        "span_s",
        "requests",
        "rps_per_s",
        "errors",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "users",
        "rate_per_s",
        "dropped",
        "service_p50",
        "bottleneck",
    ]
    assert {r["bottleneck"] for r in rows} <= {"none", "target", "connections", "generator"}
    assert sum(int(r["requests"]) for r in rows) == sum(
        p.requests for p in session.results.timeline
    )
    assert float(rows[0]["t_s"]) == session.results.timeline[0].t and rows[0]["rate_per_s"] == ""
    assert float(rows[0]["p95_ms"]) == session.results.timeline[0].p95


def test_junit_has_one_case_per_threshold_and_a_failure_for_each_miss(session: Session) -> None:
    root = ET.fromstring(_render(write_junit, session))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [r.expr for r in session.results.thresholds]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["rps > 1000000"]
    assert root.get("tests") == "4" and root.get("failures") == "1"
    assert cases[-1].get("classname") == "stressdeck.profiles.thresholds.ok"
    # the measured value carries its unit
    miss = next(r for r in session.results.thresholds if not r.ok)
    failure = next(c for c in cases if c.find("failure") is not None).find("failure")
    assert failure is not None
    assert failure.get("message") == f"rps > 1000000 failed for total: measured {miss.value:.1f}/s"
    latency = next(c for c in cases if c.get("name").startswith("p95"))
    assert latency.findtext("system-out").endswith(" ms")


def test_junit_without_thresholds_has_a_case_per_endpoint(tmp_path: Path) -> None:
    document = crafted_document(
        {"home": BASE_FIGURES, "search": {**BASE_FIGURES, "error_rate": 0.02}}, thresholds=[]
    )
    session = session_from_document(document, "s.toml")
    root = ET.fromstring(_render(write_junit, session))
    assert root.get("tests") == "2" and root.get("failures") == "0"
    cases = root.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("stressdeck.endpoints", "home"),
        ("stressdeck.endpoints", "search"),
    ]
    assert cases[1].findtext("system-out") == (
        "1000 requests, 20 errors (2.00%), 100.0 rps, p95 20.00 ms"
    )


def test_report_command_writes_every_format_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(crafted_document()))
    out = tmp_path / "out"
    assert (
        main(
            [
                "report",
                str(path),
                "--html",
                str(out / "r.html"),
                "--csv",
                str(out / "t.csv"),
                "--junit",
                str(out / "j.xml"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["j.xml", "r.html", "t.csv"]
    assert parse((out / "r.html").read_text()).errors == []
    assert ET.parse(out / "j.xml").getroot().tag == "testsuites"
    assert "html report written" in capsys.readouterr().out


def test_report_without_a_format_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(crafted_document()))
    assert main(["report", str(path)]) == 2
    assert (
        "expected at least one of --html FILE, --csv FILE, --junit FILE" in capsys.readouterr().err
    )


def test_an_unwritable_report_is_one_line_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused as run's --save is (exit 2, the option named), before any report is written:
    the HTML asked beside it is not written either."""
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(crafted_document()))
    blocker = tmp_path / "file"
    blocker.write_text("")
    html = tmp_path / "r.html"
    assert main(["report", str(path), "--html", str(html), "--csv", str(blocker / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --csv: ") and err.count("\n") == 1
    assert not html.exists()


def test_a_report_keeps_an_existing_file_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(crafted_document()))
    html = tmp_path / "r.html"
    html.write_text("mine")
    assert main(["report", str(path), "--html", str(html)]) == 2
    assert capsys.readouterr().err == (
        f"error: --html: {html} already exists (use --force to overwrite)\n"
    )
    assert html.read_text() == "mine"
    assert main(["report", str(path), "--html", str(html), "--force"]) == 0
    assert html.read_text().startswith("<!DOCTYPE html>")
