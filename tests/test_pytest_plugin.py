"""The pytest plugin, through pytest itself: the example SLA suite passes and prints its table,
saves sessions and JUnit properties; a missed SLA fails its test with the threshold table."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest

from stressdeck.sessions.session import load_session

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "pytest_sla"


def pytest_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # No bytecode, no cache: the example is run where it lives and must write nothing there.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture
def alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One example suite at a time: pytest-xdist workers would run both tests below side by
    side, and two load tests measure each other. The workers share the base temp's parent."""
    lock = tmp_path_factory.getbasetemp().parent / "stressdeck-example-suite.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.mark.usefixtures("alone")
@pytest.mark.slow
def test_the_example_sla_suite_passes_saves_sessions_and_junit_properties(tmp_path: Path) -> None:
    sessions, junit = tmp_path / "sessions", tmp_path / "junit.xml"
    done = pytest_run(
        [str(EXAMPLE), "--stressdeck-save", str(sessions), "--junitxml", str(junit)], ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
    table = done.stdout[done.stdout.index("SLA: latency by users") :]
    header = table.splitlines()[1].split()
    assert header[:6] == ["users", "requests", "rps", "p50", "ms", "p95"]
    rows = [line.split() for line in table.splitlines()[3:7]]
    assert [row[0] for row in rows] == ["1", "10", "50", "100"]
    assert all(row[-1] == "passed" for row in rows)

    saved = sorted(sessions.glob("*.toml"))
    assert len(saved) == 4
    by_users = {}
    for path in saved:
        session = load_session(path)
        users = int(re.search(r"\[?(\d+)-users", path.name).group(1))  # type: ignore[union-attr]
        by_users[users] = session
        assert session.plan.load.users == users
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    for case in cases:
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        users = int(properties["sla_users"] or 0)
        saved_total = by_users[users].results.total
        assert properties["stressdeck.1.requests"] == str(saved_total.requests)
        assert properties["stressdeck.1.thresholds"] == "passed"
        assert properties["stressdeck.1.checks_failed"] == "0"
        assert Path(properties["stressdeck.1.session"] or "").parent == sessions
        row = next(row for row in rows if row[0] == str(users))
        assert row[1] == str(saved_total.requests)  # the table shows what was saved


@pytest.mark.usefixtures("alone")
@pytest.mark.slow
def test_a_missed_sla_fails_its_test_with_the_threshold_table(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(EXAMPLE, suite)
    test_file = suite / "test_sla.py"
    source = test_file.read_text()
    assert '1: ("10ms", "50ms", "100ms")' in source
    test_file.write_text(
        source.replace('1: ("10ms", "50ms", "100ms")', '1: ("10ms", "50ms", "1us")')
    )
    done = pytest_run(["-k", "1-users"], suite)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert "ThresholdsFailed: 1 of 5 threshold(s) failed (Demo SLA):" in done.stdout
    lines = [line.removeprefix("E").strip() for line in done.stdout.splitlines()]
    assert "threshold        scope  measured  result" in lines
    failing = next(line for line in lines if line.startswith("p99 < 1us"))
    assert failing.split()[-1] == "FAIL" and failing.split()[3] == "total"
    assert any(line.startswith("p50 < 10ms") and line.endswith("pass") for line in lines)
    assert any(line.startswith("p95 < 50ms") for line in lines)
