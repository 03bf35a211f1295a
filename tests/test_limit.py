"""find-limit against servers with a known capacity (tests/capacity_server.py, own process)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from shaped import server_stats, shaped_server

from stressdeck.engine.limit import limit_schema
from stressdeck.engine.snapshot import SEARCH_ENDED
from stressdeck.engine.usl import fit_usl
from stressdeck.sessions.session import load_session

ROOT = Path(__file__).parent.parent
STRESSDECK = [sys.executable, "-m", "stressdeck"]
SCHEMA = ROOT / "limit.schema.json"


def find_limit(*args: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STRESSDECK, "find-limit", *args, "--processes", "1"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_the_published_schema_is_the_models() -> None:
    """limit.schema.json is generated (``python -m stressdeck.engine.limit > limit.schema.json``)."""
    assert json.loads(SCHEMA.read_text()) == limit_schema()
    jsonschema.Draft202012Validator.check_schema(limit_schema())


@pytest.mark.slow
def test_the_limit_is_the_capacity_the_server_measured(tmp_path: Path) -> None:
    """2 slots of 20 ms: about 95 req/s. The limit lands within 10 % of what the server
    measured of itself, in under 3 minutes."""
    out = tmp_path / "limit.json"
    began = time.monotonic()
    with shaped_server(concurrency=2, service_ms=20) as url:
        result = find_limit(
            f"{url}/",
            "--slo",
            "p95 < 100ms",
            "--slo",
            "error_rate < 1%",
            "--start",
            "25",
            "--step",
            "3s",
            "--warmup",
            "1s",
            "--json",
            str(out),
        )
        capacity = server_stats(url)["capacity"]
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    jsonschema.validate(document, limit_schema())
    assert document["unit"] == "req/s" and document["at_least"] is False
    assert abs(document["limit"] - capacity) <= 0.1 * capacity, (document["limit"], capacity)
    assert took < 180, took
    assert document["broken_by"] == "p95 < 100ms"
    # Every step is in the table, and the limit is the highest that held below the break.
    steps = document["steps"]
    held = [s["asked"] for s in steps if s["held"]]
    assert document["limit"] == max(a for a in held if a < document["broken_at"])
    for step in steps:
        assert f"{step['asked']:g}" in result.stdout
    assert f"limit: {document['limit']:g} req/s" in result.stdout


def test_a_dead_target_is_an_error_not_a_limit_of_zero(refused_url: str, tmp_path: Path) -> None:
    out = tmp_path / "limit.json"
    result = find_limit(
        f"{refused_url}/",
        "--slo",
        "p95 < 100ms",
        "--step",
        "1s",
        "--warmup",
        "0.2s",
        "--json",
        str(out),
        timeout=60,
    )
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "answered no request successfully at 10 req/s" in errors[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not any(line.startswith("limit:") for line in result.stdout.splitlines())


@pytest.mark.slow
def test_when_the_connections_give_out_first_the_limit_is_at_least(tmp_path: Path) -> None:
    """50 ms answers, any number at once, 2 connections: our bound is 40 req/s, not the target's."""
    out = tmp_path / "limit.json"
    with shaped_server(service_ms=50) as url:
        result = find_limit(
            f"{url}/",
            "--slo",
            "p95 < 1s",
            "--start",
            "10",
            "--connections",
            "2",
            "--step",
            "2s",
            "--warmup",
            "0.5s",
            "--json",
            str(out),
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["at_least"] is True, document
    assert document["bottleneck"]["kind"] == "connections"
    assert "--connections" in document["bottleneck"]["evidence"]
    assert document["limit"] >= 20
    assert "limit: at least" in result.stdout


@pytest.mark.slow
def test_the_closed_model_climbs_users_and_fits_the_scalability_law(tmp_path: Path) -> None:
    """4 slots of 10 ms: throughput levels off near 400 req/s past 4 users."""
    out = tmp_path / "limit.json"
    with shaped_server(concurrency=4, service_ms=10) as url:
        result = find_limit(
            f"{url}/",
            "--slo",
            "p95 < 40ms",
            "--model",
            "closed",
            "--step",
            "2s",
            "--warmup",
            "0.5s",
            "--json",
            str(out),
            timeout=150,
        )
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    jsonschema.validate(document, limit_schema())
    assert document["unit"] == "users" and document["at_least"] is False
    asked = [s["asked"] for s in document["steps"]]
    assert asked[:3] == [1, 2, 5], asked  # the ladder, as teams' suites run it
    assert document["limit"] == max(s["asked"] for s in document["steps"] if s["held"])
    assert document["usl"] is not None and document["usl"]["quality"] in ("good", "poor")
    assert "Universal Scalability Law" in result.stdout
    assert f"fit {document['usl']['quality']}" in result.stdout


def test_the_scalability_law_fit_recovers_known_coefficients() -> None:
    users = [1, 2, 4, 8, 16, 32, 64]
    lam, sigma, kappa = 100.0, 0.05, 0.0005
    throughput = [lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1)) for n in users]
    fit = fit_usl(users, throughput)
    assert fit is not None and fit.good
    assert abs(fit.sigma - sigma) < 0.005 and abs(fit.kappa - kappa) < 0.0001
    assert fit.peak_users is not None and abs(fit.peak_users - (0.95 / 0.0005) ** 0.5) < 5


def test_a_scattered_scalability_fit_says_it_is_poor() -> None:
    fit = fit_usl([1, 2, 5, 10, 20], [100, 20, 300, 50, 250])
    assert fit is not None and not fit.good
    assert "fit poor" in fit.text()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--slo", "p95 <"],
            'error: --slo: expected an expression like "p95 < 200ms", "error_rate < 1%", '
            '"rps > 100" or "p95 < 200ms for 10s", got "p95 <"',
        ),
        (
            ["--slo", "p95 < 1s", "--max", "1e9"],
            "error: --max: 1e+09 requests/s is above the safety cap of 20000 requests/s "
            "(pass --i-know to lift the cap)",
        ),
        (
            ["--slo", "p95 < 1s", "--model", "closed", "--max", "5000"],
            "error: --max: 5000 users is above the safety cap of 2000 users "
            "(pass --i-know to lift the cap)",
        ),
        (
            ["--slo", "p95 < 1s", "--start", "50", "--max", "10"],
            "error: --start: expected at most --max (10)",
        ),
        (
            ["--slo", "p95 > 100ms"],
            'error: --slo: expected p95 with < or <= (a bound more load breaks), got "p95 > 100ms"',
        ),
        (
            ["--slo", "rps < 100"],
            "error: --slo: expected rps with > or >= (a floor the target must reach), "
            'got "rps < 100"',
        ),
    ],
)
def test_bad_input_is_one_line_before_anything_is_sent(
    refused_url: str, args: list[str], line: str
) -> None:
    result = find_limit(f"{refused_url}/", *args, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == line
    assert result.stdout == ""


def test_the_search_is_one_run_saved_whole_and_its_replay_steps_the_same_load(
    tmp_path: Path,
) -> None:
    """Every step is a part of one run: the session holds the search (``limit``) and a
    control log with each step's rate, and its replay asks the same rates in the same order.
    The server's count is the run's, past every live change."""
    saved, replayed = tmp_path / "search.toml", tmp_path / "replay.toml"
    with shaped_server(service_ms=5) as url:
        result = find_limit(
            f"{url}/",
            "--slo",
            "p95 < 1s",
            "--start",
            "10",
            "--max",
            "40",
            "--step",
            "1s",
            "--warmup",
            "0.3s",
            "--save",
            str(saved),
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        answered = server_stats(url)["answered"]
        session = load_session(saved)
        assert session.limit is not None
        assert [s.asked for s in session.limit.steps] == [10, 20, 40]
        assert session.limit.limit == 40 and session.limit.at_least
        assert session.results.stop_reason == SEARCH_ENDED
        rates = [e.value for e in session.control_log if e.command == "rate"]
        assert rates[-3:] == [10, 20, 40], session.control_log
        assert session.control_log[-1].command == "stop"
        total = session.results.total
        assert answered == total.requests + total.cancelled  # cancelled: in flight at the stop
        replay = subprocess.run(
            [*STRESSDECK, "replay", str(saved), "--save", str(replayed), "--processes", "1"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert replay.returncode == 0, replay.stderr
        again = load_session(replayed)
        assert [e.value for e in again.control_log if e.command == "rate"][-3:] == [10, 20, 40]
        total = again.results.total
        assert server_stats(url)["answered"] == answered + total.requests + total.cancelled


def test_find_limit_has_no_repeat(refused_url: str) -> None:
    """One search is one run: --repeat (run's and replay's) is not an option of find-limit,
    refused before anything is sent, where it once ran a search and then lost it."""
    result = find_limit(f"{refused_url}/", "--slo", "p95 < 1s", "--repeat", "2", timeout=60)
    assert result.returncode == 2
    assert "unrecognized arguments: --repeat 2" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_ctrl_c_keeps_what_the_steps_measured_as_a_floor(tmp_path: Path) -> None:
    """SIGINT mid-search: exit 130, and the steps measured so far give "at least" the
    highest load that held, printed, in --json and in the saved session."""
    out, saved = tmp_path / "limit.json", tmp_path / "search.toml"
    with shaped_server(service_ms=5) as url:
        process = subprocess.Popen(
            [*STRESSDECK, "find-limit", f"{url}/", "--slo", "p95 < 1s", "--start", "10"]
            + ["--step", "1s", "--warmup", "0.2s", "--processes", "1"]
            + ["--json", str(out), "--save", str(saved)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert process.stdout is not None
        lines = []
        while len([line for line in lines if line.rstrip().endswith("held")]) < 2:
            line = process.stdout.readline()
            assert line, "find-limit ended before two steps held"
            lines.append(line)
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    document = json.loads(out.read_text())
    held = [s["asked"] for s in document["steps"] if s["held"]]
    assert document["at_least"] is True and document["limit"] == max(held) >= 20
    assert document["why"].startswith("stopped before the search was done (interrupted")
    assert f"limit: at least {document['limit']:g} req/s" in rest
    assert f"partial session saved: {saved}" in rest
    session = load_session(saved)
    assert session.limit is not None and session.limit.to_dict() == document
