"""The headless CLI end to end, in subprocesses, against the demo target on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from conftest import LOOPBACK_URL
from waiting import OutputLines

ROOT = Path(__file__).parent.parent
STRESSDECK = [sys.executable, "-m", "stressdeck"]
SCHEMA = ROOT / "results.schema.json"


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    server = subprocess.Popen(
        [*STRESSDECK, "demo-server", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(LOOPBACK_URL, line)
        assert match, line
        yield match.group(0)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(10)


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STRESSDECK, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_run_prints_progress_and_a_summary_that_adds_up(demo_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run(
        "run",
        "profiles/demo-mix.toml",
        "--base-url",
        demo_url,
        "--duration",
        "2s",
        "--users",
        "4",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^\[\s*\d+\.\ds\] users", result.stdout, re.M)) >= 2
    assert "TOTAL" in result.stdout and "duration reached" in result.stdout
    results = json.loads(out.read_text())
    total = results["summary"]["total"]
    assert total["requests"] > 0
    assert total["requests"] == sum(total["status_counts"].values()) + sum(
        total["error_counts"].values()
    )
    endpoints = results["summary"]["endpoints"]
    assert set(endpoints) == {"list items", "get item", "create item", "update item", "delete item"}
    assert sum(ep["requests"] for ep in endpoints.values()) == total["requests"]
    # The published schema, the one README links to, holds for a real run's file.
    jsonschema.validate(results, json.loads(SCHEMA.read_text()))
    for kind in ("latency_ms", "service_ms", "ttfb_ms"):
        assert set(total[kind]) == {"p50", "p90", "p95", "p99", "p999", "max", "mean"}
    assert results["timeline"] and {
        "t",
        "requests",
        "rps",
        "errors",
        "p50",
        "p95",
        "p99",
        "users",
    } <= set(results["timeline"][0])
    assert [t["ok"] for t in results["thresholds"]] == [True, True]


def test_bad_profile_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "shop.toml"
    bad.write_text(
        'name = "shop"\nbase_url = "http://127.0.0.1:1"\n[[endpoints]]\nname = "a"\npath = "/"\n'
        'weight = "abc"\n'
    )
    result = run("run", str(bad))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f'error: {bad}: endpoints[0].weight: expected a positive number, got "abc"'
    )
    assert "Traceback" not in result.stderr


def test_bad_usage_exits_2() -> None:
    result = run("run", "profiles/demo-mix.toml", "--duration", "forever")
    assert result.returncode == 2
    assert "expected a duration" in result.stderr and "Traceback" not in result.stderr


def test_failed_threshold_exits_3(demo_url: str, tmp_path: Path) -> None:
    profile = tmp_path / "strict.toml"
    profile.write_text(
        'name = "strict"\nbase_url = "http://127.0.0.1:1"\nthresholds = ["p50 < 0.001ms"]\n'
        '[[endpoints]]\nname = "health"\npath = "/health"\n'
    )
    result = run(
        "run", str(profile), "--base-url", demo_url, "--duration", "1s", "--users", "1", "--quiet"
    )
    assert result.returncode == 3, result.stderr
    assert re.search(r"p50 < 0\.001ms\s+total\s+[\d.]+ ms\s+FAIL", result.stdout)


def test_ctrl_c_stops_cleanly_prints_partial_results_and_writes_the_file(
    demo_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "partial.json"
    process = subprocess.Popen(
        [
            *STRESSDECK,
            "run",
            str(ROOT / "profiles" / "demo-mix.toml"),
            "--base-url",
            demo_url,
            "--duration",
            "30s",
            "--users",
            "2",
            "--json",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # The partial session autosaves under ./sessions: the test's own directory, never
        # the working tree's.
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = OutputLines(process.stdout)
        # A progress line with answers in it: the run is under way and has counted requests.
        lines.wait_for(r"users \d+/\d+  rps +[1-9]", timeout=30)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        assert process.stderr is not None
        stderr = process.stderr.read()
        stdout = lines.text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 130, stderr
    assert "interrupted" in stdout and "TOTAL" in stdout
    assert "Traceback" not in stderr
    results = json.loads(out.read_text())
    assert (
        results["stop_reason"] == "interrupted (SIGINT)"
        and results["summary"]["total"]["requests"] > 0
    )
    autosaved = list((tmp_path / "sessions").glob("autosave-*.toml"))
    assert len(autosaved) == 1 and f"partial session saved: sessions/{autosaved[0].name}" in stdout


def test_a_rate_above_the_cap_is_refused_without_i_know(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        'name = "p"\nbase_url = "http://127.0.0.1:1"\n[[endpoints]]\nname = "a"\npath = "/"\n'
    )
    result = run("run", str(profile), "--rate", "99999", "--model", "open")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {profile}: load.rate: 99999 requests/s is above the safety cap "
        "of 20000 requests/s (pass --i-know to lift the cap)"
    )
