"""The Python API against real servers on 127.0.0.1: run, run_async, start, and its errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerThread

import stressdeck
from stressdeck.cli.main import main
from stressdeck.engine.results import Results
from stressdeck.observe.demo import DemoServerThread
from stressdeck.sessions.session import load_session

ROOT = Path(__file__).parent.parent
DEMO_MIX = ROOT / "profiles" / "demo-mix.toml"


def ok_profile(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "api",
        "base_url": url,
        "endpoints": [{"name": "ok", "path": "/ok"}],
        **extra,
    }


def test_run_returns_the_results_and_the_server_got_exactly_them(target: ServerThread) -> None:
    profile = ok_profile(target.url, thresholds=["error_rate < 1%"])
    results = stressdeck.run(profile, users=3, requests=120, processes=1)
    assert results.total.requests == 120 == target.count
    assert results.total.cancelled == 0
    assert [ep.name for ep in results.endpoints] == ["ok"]
    assert results.endpoint("ok").status_counts == {200: 120}
    assert results.passed and [t.expr for t in results.thresholds] == ["error_rate < 1%"]
    document = results.to_dict()
    assert isinstance(results, Results)  # the one results model
    assert document == Results.from_snapshot(results.snapshot, "api").to_dict()
    assert document["summary"]["total"]["requests"] == 120
    assert document["stop_reason"] == "requests done"
    results.assert_thresholds()


def test_run_takes_a_profile_file_and_the_cli_options() -> None:
    with DemoServerThread() as demo:
        results = stressdeck.run(
            DEMO_MIX, base_url=demo.url, users="2", duration="1s", processes=1, metric=[]
        )
    assert results.name == "Demo mix"
    assert results.stop_reason == "duration reached"
    assert {ep.name for ep in results.endpoints} == {
        "list items",
        "get item",
        "create item",
        "update item",
        "delete item",
    }
    assert results.total.requests > 0 and results.total.errors == 0
    assert results.snapshot.users == 2


async def test_run_async_runs_inside_an_event_loop(target: ServerThread) -> None:
    results = await stressdeck.run_async(
        ok_profile(target.url), model="open", rate=200, requests=50, processes=1
    )
    assert results.total.requests == 50 == target.count
    assert results.snapshot.model == "open"


def test_start_steers_a_live_run(target: ServerThread) -> None:
    with stressdeck.start(ok_profile(target.url), users=2, duration="20s", processes=1) as live:
        assert live.users == 2
        seen = []
        for snapshot in live.snapshots():
            seen.append(snapshot)
            if snapshot.total.requests > 0:
                break
        live.set_users(5)
        assert live.users == 5
        live.pause()
        live.resume()
        results = live.stop()
    assert seen and seen[-1].total.requests > 0
    log = results.snapshot.control_log
    assert [(e.command, e.value) for e in log if e.command != "resume"] == [
        ("users", 5),
        ("pause", None),
        ("stop", None),
    ]
    [resume] = [e for e in log if e.command == "resume"]
    assert resume.value is not None and resume.value >= 0  # how long the pause lasted, s
    assert results.stop_reason == "stopped by user"
    # A request cancelled at the stop may or may not have reached the server.
    total = results.total
    assert total.requests <= target.count <= total.requests + total.cancelled


def test_save_and_json_write_what_the_cli_writes(target: ServerThread, tmp_path: Path) -> None:
    save, report = tmp_path / "run.toml", tmp_path / "run.json"
    results = stressdeck.run(
        ok_profile(target.url), users=1, requests=20, processes=1, save=save, json=report
    )
    assert results.session == save
    assert load_session(save).results.total.requests == 20
    assert json.loads(report.read_text()) == results.to_dict()
    with pytest.raises(stressdeck.InputError, match="already exists"):
        stressdeck.run(ok_profile(target.url), requests=1, processes=1, save=save)


@pytest.mark.parametrize(
    ("profile", "overrides", "line"),
    [
        ("missing.toml", {}, "missing.toml: file not found"),
        (None, {"users": 0}, "--users: expected a positive whole number, got '0'"),
        (
            None,
            {"duration": "soon"},
            '--duration: expected a duration like "500ms", "30s" or "2m", got \'soon\'',
        ),
        (None, {"model": "half-open"}, "--model: expected one of closed, open, got 'half-open'"),
        (None, {"colour": "red"}, "--colour: unknown option; expected one of"),
        (None, {"serve_metrics": "x"}, '--serve-metrics: expected [HOST:]PORT like "9464"'),
        (
            {"name": "x", "endpoints": [{"name": "a", "path": "/"}]},
            {},
            "<profile>: base_url: required",
        ),
        (
            None,
            {"rate": 30_000, "model": "open"},
            "load.rate: 30000 requests/s is above the safety cap",
        ),
    ],
)
def test_errors_are_the_cli_one_line_errors(
    profile: Any, overrides: dict[str, Any], line: str
) -> None:
    with pytest.raises(stressdeck.InputError) as caught:
        stressdeck.run(DEMO_MIX if profile is None else profile, **overrides)
    assert line in caught.value.line()
    assert "\n" not in caught.value.line()


def test_a_bad_profile_raises_the_line_the_cli_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\nbase_url = "http://127.0.0.1:9"\n[[endpoints]]\nname = "a"\npath = "/"\nweight = "abc"\n'
    )
    assert main(["run", str(bad)]) == 2
    printed = capsys.readouterr().err
    with pytest.raises(stressdeck.InputError) as caught:
        stressdeck.run(bad)
    assert printed == f"error: {caught.value.line()}\n"


def test_assert_thresholds_fails_with_the_threshold_table(target: ServerThread) -> None:
    results = stressdeck.run(
        ok_profile(target.url, thresholds=["p99 < 1us", "error_rate < 1%"]),
        users=1,
        requests=10,
        processes=1,
    )
    assert not results.passed
    with pytest.raises(stressdeck.ThresholdsFailed) as caught:
        results.assert_thresholds()
    message = str(caught.value)
    assert message.startswith("1 of 2 threshold(s) failed (api):\n")
    assert results.thresholds_table() in message
    assert "p99 < 1us" in message and "FAIL" in message


def test_a_run_that_measured_nothing_fails_its_assertion(refused_url: str) -> None:
    # Nothing listens: every request is a connect error; a latency threshold has no data.
    results = stressdeck.run(
        ok_profile(refused_url, thresholds=["p95 < 1s"]), requests=5, processes=1
    )
    assert results.total.error_counts == {"connect": 5}
    assert not results.passed  # no data at the end is a failed threshold
    with pytest.raises(stressdeck.ThresholdsFailed) as caught:
        results.assert_thresholds()
    message = str(caught.value)
    assert message.startswith("1 of 1 threshold(s) failed, 1 with no data (api):\n")
    assert "p95 < 1s" in message and "no data" in message and "FAIL" in message
