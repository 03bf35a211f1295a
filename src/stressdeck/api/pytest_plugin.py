"""The pytest plugin (entry point ``pytest11``): a ``stressdeck`` fixture and ``--stressdeck-save``.

    def test_checkout_sla(stressdeck):
        results = stressdeck.run("profiles/shop.toml", users=50, duration="30s")
        results.assert_thresholds()          # fails the test with the CLI's threshold table

Each run's figures become properties of the test in a JUnit report (``--junitxml``), and with
``--stressdeck-save DIR`` each run's session is saved under DIR for ``stressdeck compare``.

With ``--stressdeck-baseline DIR`` each run is compared, as ``stressdeck compare`` does, with
the session of the same name in DIR (``<test id>-<n>.toml``, n the run's number in the test):
a regression fails the test with the comparison table; an inconclusive verdict, or no baseline
of that name, is a ``StressdeckBaselineWarning`` (shown in pytest's warnings summary), not a
silent pass. With both options, the saved sessions replace the baselines of the same name:
``--stressdeck-baseline base --stressdeck-save base`` judges, then writes the new baselines.
Nothing heavy is imported until a test asks for the fixture: pytest loads this module in
every run where stressdeck is installed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Unpack

import pytest

if TYPE_CHECKING:
    from stressdeck.api.options import ProfileLike, RunOverrides
    from stressdeck.api.results import RunResults
    from stressdeck.api.runs import LiveRun
    from stressdeck.sessions.session import Session

SAVE_OPTION = "--stressdeck-save"
BASELINE_OPTION = "--stressdeck-baseline"


class StressdeckBaselineWarning(UserWarning):
    """A run the baseline could not judge: inconclusive, or no baseline session of its name."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stressdeck", "stressdeck load tests")
    group.addoption(
        SAVE_OPTION,
        metavar="DIR",
        default=None,
        help="save the session of every stressdeck run under DIR (one .toml per run)",
    )
    group.addoption(
        BASELINE_OPTION,
        metavar="DIR",
        default=None,
        help="compare every stressdeck run with the session of the same name in DIR; "
        "a regression fails the test, an inconclusive verdict is a warning",
    )


class Baseline(NamedTuple):
    path: Path
    session: Session | None  # None: no baseline session of that name


class StressdeckFixture:
    """What a test gets as ``stressdeck``: the Python API, with each run recorded."""

    def __init__(
        self,
        nodeid: str,
        record_property: Callable[[str, object], None],
        save_dir: Path | None,
        baseline_dir: Path | None = None,
    ) -> None:
        self._nodeid = nodeid
        self._record_property = record_property
        self._save_dir = save_dir
        self._baseline_dir = baseline_dir
        self._live: list[LiveRun] = []
        self.runs: list[RunResults] = []

    def run(self, profile: ProfileLike, **overrides: Unpack[RunOverrides]) -> RunResults:
        """``stressdeck.run``: headless to the end; returns its RunResults."""
        from stressdeck.api.runs import run

        baseline = self._baseline()  # read first: the run's save may replace it
        return self._record(run(profile, **self._with_save(overrides)), baseline)

    async def run_async(
        self, profile: ProfileLike, **overrides: Unpack[RunOverrides]
    ) -> RunResults:
        """``stressdeck.run_async``, for async tests."""
        from stressdeck.api.runs import run_async

        baseline = self._baseline()
        return self._record(await run_async(profile, **self._with_save(overrides)), baseline)

    def start(self, profile: ProfileLike, **overrides: Unpack[RunOverrides]) -> LiveRun:
        """``stressdeck.start``: a live run to steer; stopped at the end of the test if still going.

        Its results are recorded when ``wait()`` or ``stop()`` hands them back.
        """
        from stressdeck.api.runs import start

        baseline = self._baseline()
        live = start(profile, **self._with_save(overrides))
        live.on_results(lambda results: self._record(results, baseline))
        self._live.append(live)
        return live

    def close(self) -> None:
        for live in self._live:
            live.close()

    def _with_save(self, overrides: RunOverrides) -> RunOverrides:
        if self._save_dir is None or overrides.get("save") is not None:
            return overrides
        if self._baseline_dir is not None:  # new baselines: the same name, replaced
            self._save_dir.mkdir(parents=True, exist_ok=True)
            return {**overrides, "save": str(self._save_dir / self._name()), "force": True}
        return {**overrides, "save": str(self._session_path())}

    def _name(self) -> str:
        """The session file name of the next run: ``<test id>-<n>.toml``."""
        number = len(self.runs) + len(self._live) + 1
        return f"{self._stem()}-{number}.toml"

    def _stem(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self._nodeid).strip("_.") or "run"

    def _baseline(self) -> Baseline | None:
        """The baseline session of the next run (None without --stressdeck-baseline)."""
        if self._baseline_dir is None:
            return None
        from stressdeck.sessions.session import load_session

        path = self._baseline_dir / self._name()
        return Baseline(path, load_session(path) if path.is_file() else None)

    def _judge(self, results: RunResults, baseline: Baseline) -> str:
        """Compare the run with its baseline: fail on a regression, warn when inconclusive."""
        __tracebackhide__ = True
        from stressdeck.sessions.compare import INCONCLUSIVE, REGRESSION, compare_sides
        from stressdeck.sessions.compare_report import compare_text
        from stressdeck.sessions.session import build_session

        if baseline.session is None:
            warnings.warn(
                StressdeckBaselineWarning(
                    f"{self._nodeid}: no baseline session {baseline.path} "
                    f"(write one with {BASELINE_OPTION} DIR {SAVE_OPTION} DIR)"
                ),
                stacklevel=2,
            )
            return "no baseline"
        assert results.plan is not None and results.snapshot is not None
        new = build_session(results.plan, results.snapshot)
        comparison = compare_sides([baseline.session], [new])
        described = [f"base: {baseline.path}", f"new:  this run of {self._nodeid}"]
        text = compare_text(comparison, described, ())
        if comparison.verdict == REGRESSION:
            pytest.fail(f"regression against the baseline {baseline.path}:\n{text}", pytrace=False)
        if comparison.verdict == INCONCLUSIVE:
            warnings.warn(
                StressdeckBaselineWarning(
                    f"{self._nodeid}: inconclusive against the baseline {baseline.path}:\n{text}"
                ),
                stacklevel=2,
            )
        return comparison.verdict or "same"

    def _session_path(self) -> Path:
        assert self._save_dir is not None
        self._save_dir.mkdir(parents=True, exist_ok=True)
        stem = self._stem()
        number = len(self.runs) + len(self._live) + 1
        path = self._save_dir / f"{stem}-{number}.toml"
        while path.exists():  # a second pass into the same directory keeps the first one
            number += 1
            path = self._save_dir / f"{stem}-{number}.toml"
        return path

    def _record(self, results: RunResults, baseline: Baseline | None = None) -> RunResults:
        __tracebackhide__ = True
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
            "bottleneck": results.bottleneck.kind,
        }
        for result in results.thresholds:
            scope = result.endpoint or "total"
            properties[f"threshold[{scope}] {result.expr}"] = "pass" if result.ok else "FAIL"
        if results.session is not None:
            properties["session"] = str(results.session)
        verdict = None
        try:
            if baseline is not None:
                verdict = self._judge(results, baseline)
        except pytest.fail.Exception:
            verdict = "regression"
            raise
        finally:
            if verdict is not None:
                properties["baseline"] = verdict
            for key, value in properties.items():
                self._record_property(f"{prefix}.{key}", value)
        return results


def stable_test_id(request: pytest.FixtureRequest) -> str:
    """The test's id with its file relative to where pytest was started: the session names
    must not move between passes, and pytest's own ids follow its rootdir, which an existing
    --stressdeck-baseline directory given on the command line can change."""
    node = request.node
    _file, _, rest = node.nodeid.partition("::")
    try:
        path = Path(node.path).relative_to(request.config.invocation_params.dir)
    except ValueError:
        return str(node.nodeid)
    return f"{path.as_posix()}::{rest}" if rest else path.as_posix()


@pytest.fixture
def stressdeck(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> Any:
    """The stressdeck Python API for this test: ``stressdeck.run(profile, users=10, ...)``."""
    save = request.config.getoption(SAVE_OPTION)
    baseline = request.config.getoption(BASELINE_OPTION)
    fixture = StressdeckFixture(
        stable_test_id(request),
        record_property,
        Path(save) if save is not None else None,
        Path(baseline) if baseline is not None else None,
    )
    yield fixture
    fixture.close()
