"""Response checks: every kind judged against a server whose answers the test decides, counted
exactly; mistakes refused at load with the field named; the body kept only when a check needs it."""

from __future__ import annotations

import io
import itertools
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ServerThread
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.results import Results
from stressdeck.profiles.chain import ResponseBody
from stressdeck.profiles.checks import parse_check, run_checks
from stressdeck.profiles.profile import parse_profile
from stressdeck.profiles.thresholds import parse_threshold
from stressdeck.sessions.exports import write_html, write_junit
from stressdeck.sessions.session import load_session, save_session, snapshot_from_session
from stressdeck.sessions.summary import summary_text

# Four answers, served in turn: with one user sending one request at a time, a budget of 40
# gets each exactly 10 times.
ANSWERS = {
    "A": (200, '{"status": "ok", "items": [{"id": 1}], "n": 5}', "application/json", "alpha"),
    "B": (200, '{"status": "degraded", "items": [], "n": 2}', "application/json", None),
    "C": (503, "service unavailable", "text/plain", None),
    "D": (200, "{not json", "application/json", "beta"),
}
# Each check and the answers it passes on: the expected counts follow from this table alone.
CHECKS = {
    "status == 200": "ABD",
    "status != 503": "ABD",
    "$.status == 'ok'": "A",
    "$.status != 'ok'": "B",  # a value that is not there is no pass, whatever the operator
    "$.items[0].id exists": "A",
    "$.items[0].id not exists": "BCD",
    "$.n > 3": "A",
    "$.n <= 2": "B",
    "body contains 'ok'": "A",
    "body not contains 'unavailable'": "ABD",
    "body matches '^\\{'": "ABD",
    "header:content-type contains json": "ABD",
    "header:x-tag exists": "AD",
    "header:x-tag not exists": "BC",
    "header:X-Tag == beta": "D",
    "header:x-tag matches '^a'": "A",
}
EACH = 10


def rotating_app() -> web.Application:
    app = web.Application()
    turn = itertools.cycle(ANSWERS.values())

    async def answer(request: web.Request) -> web.Response:
        status, body, content_type, tag = next(turn)
        headers = {"X-Tag": tag} if tag else {}
        return web.Response(status=status, text=body, content_type=content_type, headers=headers)

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app.router.add_get("/answer", answer)
    app.router.add_get("/drop", drop)
    return app


def profile_for(url: str, endpoints: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "checks", "base_url": url, "endpoints": endpoints, **extra}


async def run_to_end(document: dict[str, Any], requests: int) -> Any:
    plan = build_plan(parse_profile(document, "checks.toml"), Overrides(users=1, requests=requests))
    handle = await start(plan)
    return await handle.wait()


async def test_every_kind_of_check_is_counted_exactly() -> None:
    with ServerThread(rotating_app()) as server:
        document = profile_for(
            server.url,
            [{"name": "answer", "path": "/answer", "checks": list(CHECKS)}],
            thresholds=["checks > 99%"],
        )
        final = await run_to_end(document, EACH * len(ANSWERS))
    answer = final.endpoints[0]
    assert answer.requests == EACH * len(ANSWERS)
    assert answer.status_counts == {200: 3 * EACH, 503: EACH}
    expected_failures = {
        expr: EACH * (len(ANSWERS) - len(passing)) for expr, passing in CHECKS.items()
    }
    assert answer.check_failures == {k: v for k, v in expected_failures.items() if v}
    assert answer.checks_failed == sum(expected_failures.values())
    assert answer.checks_passed == sum(EACH * len(passing) for passing in CHECKS.values())
    assert answer.checked == answer.requests
    assert answer.checks_passed + answer.checks_failed == len(CHECKS) * answer.checked
    # A failed check is not an error: only the 503s are (no expect list: any status >= 400).
    assert answer.errors == EACH
    assert final.total.checks_failed == answer.checks_failed
    [threshold] = final.thresholds
    assert threshold.value == pytest.approx(answer.checks_passed / (len(CHECKS) * answer.requests))
    assert not threshold.ok


async def test_checks_are_apart_from_transport_errors_and_reported_everywhere() -> None:
    with ServerThread(rotating_app()) as server:
        document = profile_for(
            server.url,
            [
                {
                    "name": "answer",
                    "path": "/answer",
                    "checks": ["status == 200"],
                    "thresholds": ["checks >= 75%"],
                },
                {"name": "drop", "path": "/drop", "checks": ["status == 200"]},
            ],
            flow=["answer", "drop"],
        )
        final = await run_to_end(document, 8)
    answer, drop = final.endpoints
    assert (answer.checks_passed, answer.checks_failed) == (3, 1)  # A B C D once each
    # No answer, nothing to judge: a transport error is only an error.
    assert drop.error_counts == {"disconnect": 4}
    assert (drop.checked, drop.checks_passed, drop.checks_failed) == (0, 0, 0)
    assert final.thresholds[0].ok and final.thresholds[0].endpoint == "answer"

    document = Results.from_snapshot(final, "checks").to_dict()
    assert document["summary"]["endpoints"]["answer"]["checks_passed"] == 3
    assert document["summary"]["endpoints"]["answer"]["check_failures"] == {"status == 200": 1}
    assert document["summary"]["total"]["checks_failed"] == 1
    text = summary_text(final)
    assert "checks: 3 passed, 1 failed (75.00% passed)" in text
    assert "answer: status == 200 failed 1 of 4" in text


def test_the_body_is_kept_only_for_endpoints_whose_checks_read_it() -> None:
    document = profile_for(
        "http://127.0.0.1:9",
        [
            {"name": "status", "path": "/a", "checks": ["status == 200", "header:etag exists"]},
            {"name": "json", "path": "/b", "checks": ["$.ok == true"]},
            {"name": "body", "path": "/c", "checks": ["body contains 'x'"]},
            {"name": "none", "path": "/d"},
        ],
    )
    plan = build_plan(parse_profile(document, "checks.toml"))
    assert [spec.needs_body for spec in plan.requests] == [False, True, True, False]


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("status == '200'", "expected a status code after '==', got \"'200'\""),
        ("body > 3", "'>' does not apply to body; expected one of contains, matches"),
        ("body matches '(('", "expected a valid regular expression"),
        ("$.a ==", "expected a value after '=='"),
        ("$.a == two words", "expected one value, got 'two words' (quote a value with spaces)"),
        ("$.n > 'x'", "expected a number after '>'"),
        ("header:x exists now", "expected nothing after 'exists'"),
        ("latency < 200", "expected SUBJECT OP VALUE"),
        ("$.a == 'it's'", "expected one quoted value"),
    ],
)
def test_bad_checks_are_refused_at_load_with_the_field_named(check: str, message: str) -> None:
    document = profile_for(
        "http://127.0.0.1:9", [{"name": "a", "path": "/a", "checks": ["status == 200", check]}]
    )
    with pytest.raises(InputError) as caught:
        parse_profile(document, "shop.toml")
    line = caught.value.line()
    assert line.startswith("shop.toml: endpoints[0].checks[1]: ")
    assert message in line


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("status == 200", 'endpoints[0].checks: expected a list of checks like ["status == 200"]'),
        ([200], "endpoints[0].checks[0]: expected a check like"),
    ],
)
def test_checks_must_be_a_list_of_strings(value: Any, message: str) -> None:
    document = profile_for("http://127.0.0.1:9", [{"name": "a", "path": "/a", "checks": value}])
    with pytest.raises(InputError, match="^shop.toml: " + message.replace("[", r"\[")):
        parse_profile(document, "shop.toml")


@pytest.mark.parametrize(
    ("expr", "limit"),
    [("checks > 99%", 0.99), ("checks >= 0.5", 0.5), ("checks > 150%", None)],
)
def test_check_thresholds_are_shares(expr: str, limit: float | None) -> None:
    if limit is None:
        with pytest.raises(InputError, match="percentage up to 100%"):
            parse_threshold(expr)
    else:
        assert parse_threshold(expr).limit == pytest.approx(limit)


def test_a_check_compares_like_json() -> None:
    """true is not 1, "200" is not 200, 2 equals 2.0; a body that is not JSON has no values."""
    body = ResponseBody(b'{"flag": true, "code": "200", "n": 2, "tags": ["a", "b"]}')
    headers = CIMultiDict({"Content-Type": "application/json"})

    def passes(expr: str) -> bool:
        return run_checks([parse_check(expr)], 200, headers, body)[0] == 1

    assert passes("$.flag == true") and not passes("$.flag == 1")
    assert passes("$.code == '200'") and not passes("$.code == 200")
    assert passes("$.n == 2.0") and passes("$.n >= 2")
    assert passes("$.tags contains 'b'") and not passes("$.tags contains 'c'")
    assert not passes("$.flag > 0")  # a boolean is not a number
    assert run_checks([parse_check("$ exists")], 200, headers, ResponseBody(b"<html>")) == (
        0,
        ["$ exists"],
    )


async def test_sessions_and_reports_keep_the_checks(tmp_path: Path) -> None:
    with ServerThread(rotating_app()) as server:
        document = profile_for(
            server.url,
            [
                {
                    "name": "answer",
                    "path": "/answer",
                    "checks": ["status  ==  200", "header:x-tag exists", "body matches '<?.'"],
                },
                {"name": "plain", "path": "/answer"},
            ],
            flow=["answer", "plain"],
        )
        plan = build_plan(parse_profile(document, "checks.toml"), Overrides(users=1, requests=16))
        final = await (await start(plan)).wait()
    # Through the answers in turn, "answer" gets A, C, A, C ... and "plain" B, D, B, D ...
    path = save_session(tmp_path / "checks.toml", plan, final)
    session = load_session(path)
    answer = session.results.endpoints[0]
    assert (answer.checks_passed, answer.checks_failed) == (16, 8)
    assert answer.check_failures == {"status == 200": 4, "header:x-tag exists": 4}
    assert session.results.total.checks_failed == 8
    assert snapshot_from_session(session).endpoints[0].check_failures == answer.check_failures

    out = io.StringIO()
    write_junit(session, out)
    cases = {
        (case.get("classname"), case.get("name")): case
        for case in ElementTree.fromstring(out.getvalue()).iter("testcase")
    }
    assert set(cases) == {
        ("stressdeck.checks.answer", "status == 200"),
        ("stressdeck.checks.answer", "header:x-tag exists"),
        ("stressdeck.checks.answer", "body matches '<?.'"),
    }
    failure = cases[("stressdeck.checks.answer", "status == 200")].find("failure")
    assert failure is not None
    assert (
        failure.get("message")
        == "status == 200 failed for answer: 4 passed, 4 failed of 8 responses"
    )
    assert cases[("stressdeck.checks.answer", "body matches '<?.'")].find("failure") is None

    html = io.StringIO()
    write_html(session, html)
    page = html.getvalue()
    section = page[page.index("<h2>Checks</h2>") : page.index("<h2>Thresholds</h2>")]
    assert '<td>answer</td><td>header:x-tag exists</td><td>4</td><td class="fail">4</td>' in section
    assert "<td>answer</td><td>body matches &#x27;&lt;?.&#x27;</td><td>8</td>" in section
    assert "16 of 24 checks passed (66.67%)" in section


@pytest.mark.fuzz
@given(text=st.text(max_size=60))
@settings(deadline=None)  # the example count is the profile's (conftest.py): 300, CI 2,000
def test_any_text_is_a_check_or_one_value_error(text: str) -> None:
    try:
        check = parse_check(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    # Whatever parsed judges any response without raising.
    for body in (b"", b"{", b'{"a": [1, {"b": null}]}', "é".encode()):
        run_checks([check], 200, CIMultiDict({"X": "1"}), body)


@pytest.mark.fuzz
@given(
    path=st.sampled_from(["$.a", "$.a[0]", "$['a b'].c", "$"]),
    document=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=10,
    ),
)
@settings(deadline=None)  # the example count is the profile's (conftest.py): 300, CI 2,000
def test_json_checks_never_raise_on_any_document(path: str, document: Any) -> None:
    body = json.dumps({"a": document, "a b": {"c": document}}).encode()
    for op in ("exists", "== 1", "!= 'x'", "> 0", "contains 'x'", "matches 'x'"):
        run_checks([parse_check(f"{path} {op}")], 200, CIMultiDict(), body)
