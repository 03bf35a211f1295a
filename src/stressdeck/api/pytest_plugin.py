"""The pytest plugin (entry point ``pytest11``): a ``stressdeck`` fixture and ``--stressdeck-save``.

    def test_checkout_sla(stressdeck):
        results = stressdeck.run("profiles/shop.toml", users=50, duration="30s")
        results.assert_thresholds()          # fails the test with the CLI's threshold table

Each run's figures become properties of the test in a JUnit report (``--junitxml``), and with
``--stressdeck-save DIR`` each run's session is saved under DIR for ``stressdeck compare``.
Nothing heavy is imported until a test asks for the fixture: pytest loads this module in
every run where stressdeck is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from stressdeck.api.options import ProfileLike
    from stressdeck.api.results import RunResults
    from stressdeck.api.runs import LiveRun

SAVE_OPTION = "--stressdeck-save"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stressdeck", "stressdeck load tests")
    group.addoption(
        SAVE_OPTION,
        metavar="DIR",
        default=None,
        help="save the session of every stressdeck run under DIR (one .toml per run)",
    )


class StressdeckFixture:
    """What a test gets as ``stressdeck``: the Python API, with each run recorded."""

    def __init__(
        self,
        nodeid: str,
        record_property: Callable[[str, object], None],
        save_dir: Path | None,
    ) -> None:
        self._nodeid = nodeid
        self._record_property = record_property
        self._save_dir = save_dir
        self._live: list[LiveRun] = []
        self.runs: list[RunResults] = []

    def run(self, profile: ProfileLike, **overrides: Any) -> RunResults:
        """``stressdeck.run``: headless to the end; returns its RunResults."""
        from stressdeck.api.runs import run

        return self._record(run(profile, **self._with_save(overrides)))

    async def run_async(self, profile: ProfileLike, **overrides: Any) -> RunResults:
        """``stressdeck.run_async``, for async tests."""
        from stressdeck.api.runs import run_async

        return self._record(await run_async(profile, **self._with_save(overrides)))

    def start(self, profile: ProfileLike, **overrides: Any) -> LiveRun:
        """``stressdeck.start``: a live run to steer; stopped at the end of the test if still going.

        Its results are recorded when ``wait()`` or ``stop()`` hands them back.
        """
        from stressdeck.api.runs import start

        live = start(profile, **self._with_save(overrides))
        live.on_results(self._record)
        self._live.append(live)
        return live

    def close(self) -> None:
        for live in self._live:
            live.close()

    def _with_save(self, overrides: dict[str, Any]) -> dict[str, Any]:
        if self._save_dir is None or overrides.get("save") is not None:
            return overrides
        return {**overrides, "save": str(self._session_path())}

    def _session_path(self) -> Path:
        assert self._save_dir is not None
        self._save_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self._nodeid).strip("_.") or "run"
        number = len(self.runs) + len(self._live) + 1
        path = self._save_dir / f"{stem}-{number}.toml"
        while path.exists():  # a second pass into the same directory keeps the first one
            number += 1
            path = self._save_dir / f"{stem}-{number}.toml"
        return path

    def _record(self, results: RunResults) -> RunResults:
        self.runs.append(results)
        prefix = f"stressdeck.{len(self.runs)}"
        total = results.total
        latency = total.latency_ms
        properties: dict[str, object] = {
            "profile": results.name,
            "stop_reason": results.stop_reason,
            "requests": total.requests,
            "errors": total.errors,
            "rps": round(total.rps, 1),
            "error_rate": round(total.error_rate, 6),
            # n/a: nothing answered, so no latency (0 ms would read as a fast run).
            "p50_ms": round(latency.p50, 3) if latency.measured else "n/a",
            "p95_ms": round(latency.p95, 3) if latency.measured else "n/a",
            "p99_ms": round(latency.p99, 3) if latency.measured else "n/a",
            "checks_passed": total.checks_passed,
            "checks_failed": total.checks_failed,
            "thresholds": "passed" if results.passed else "failed",
            # A saturated generator measures itself: say so beside the figures.
            "generator_saturated_s": round(results.generator.saturated_seconds, 1),
        }
        for result in results.thresholds:
            scope = result.endpoint or "total"
            properties[f"threshold[{scope}] {result.expr}"] = "pass" if result.ok else "FAIL"
        if results.session is not None:
            properties["session"] = str(results.session)
        for key, value in properties.items():
            self._record_property(f"{prefix}.{key}", value)
        return results


@pytest.fixture
def stressdeck(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> Any:
    """The stressdeck Python API for this test: ``stressdeck.run(profile, users=10, ...)``."""
    save = request.config.getoption(SAVE_OPTION)
    fixture = StressdeckFixture(
        request.node.nodeid, record_property, Path(save) if save is not None else None
    )
    yield fixture
    fixture.close()
