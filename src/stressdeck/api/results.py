"""The results of a run as the Python API and the pytest plugin hand them out: the engine's one
results model (``to_dict`` is the ``--json`` document), plus what a caller does with them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from stressdeck.engine import Plan, Snapshot
from stressdeck.engine.results import Results
from stressdeck.engine.snapshot import EndpointSummary
from stressdeck.sessions.session import save_session
from stressdeck.sessions.summary import bottleneck_line, summary_text, thresholds_text
from stressdeck.sessions.threshold_notes import failure_notes


class ThresholdsFailed(AssertionError):
    """A run's thresholds failed; the message is the CLI's threshold table."""


@dataclass(frozen=True)
class RunResults(Results):
    """``Results`` of a run started from Python, with the plan and final snapshot behind them."""

    plan: Plan | None = field(default=None, compare=False, repr=False)
    snapshot: Snapshot | None = field(default=None, compare=False, repr=False)
    session: Path | None = None  # where the run's session was saved (save=, --stressdeck-save)

    @classmethod
    def from_run(cls, plan: Plan, snapshot: Snapshot, session: Path | None = None) -> RunResults:
        results = Results.from_snapshot(snapshot, plan.name)
        figures = {item.name: getattr(results, item.name) for item in dataclasses.fields(Results)}
        return cls(**figures, plan=plan, snapshot=snapshot, session=session)

    def endpoint(self, name: str) -> EndpointSummary:
        """One endpoint's figures by name; KeyError when the profile has no such endpoint."""
        for summary in self.endpoints:
            if summary.name == name:
                return summary
        raise KeyError(name)

    @property
    def crashed(self) -> bool:
        """The run ended on a failure of its own (a worker died or never started, a bug)."""
        return self.stop_reason.startswith(("worker", "a worker", "internal error"))

    def summary(self) -> str:
        """The summary ``stressdeck run`` prints."""
        return summary_text(self._final())

    def thresholds_table(self) -> str:
        """The threshold table ``stressdeck run`` prints."""
        return thresholds_text(self._final())

    def assert_thresholds(self) -> None:
        """Raise ThresholdsFailed, with the CLI's threshold table, unless every threshold passed.

        In a test, a threshold that could not be measured (no latency when every request
        failed, say) fails as well, and so does a run that crashed or completed no request.
        """
        __tracebackhide__ = True  # pytest: the failure is the table, not this frame
        if self.crashed:
            raise ThresholdsFailed(f"{self.name}: the run failed ({self.stop_reason})")
        if self.total.requests == 0:
            raise ThresholdsFailed(
                f"{self.name}: no request completed ({self.stop_reason}); "
                "nothing to judge the thresholds by"
            )
        failed = [r for r in self.thresholds if not r.ok or r.value is None]
        if failed:
            unmeasured = sum(r.value is None for r in failed)
            note = f", {unmeasured} with no data" if unmeasured else ""
            limited = self.bottleneck
            notes = "\n".join(failure_notes(self._final()))
            raise ThresholdsFailed(
                f"{len(failed)} of {len(self.thresholds)} threshold(s) failed{note} "
                f"({self.name}):\n{self.thresholds_table()}\n{notes}"
                + (f"\n{bottleneck_line(limited)}" if limited.kind != "none" else "")
            )

    def save(
        self, path: str | Path, *, overwrite: bool = False, keep_secrets: bool = False
    ) -> Path:
        """Save the run's session (.toml or .json) as ``--save`` does; raises WriteError."""
        assert self.plan is not None
        return save_session(
            path, self.plan, self._final(), overwrite=overwrite, keep_secrets=keep_secrets
        )

    def _final(self) -> Snapshot:
        assert self.snapshot is not None, "made by RunResults.from_run"
        return self.snapshot

    def __repr__(self) -> str:
        total = self.total
        return (
            f"<RunResults {self.name!r}: {total.requests} requests, {total.errors} errors, "
            f"p95 {f'{total.latency_ms.p95:.2f} ms' if total.latency_ms.measured else 'n/a'}, "
            f"{'passed' if self.passed else 'FAILED'}>"
        )
