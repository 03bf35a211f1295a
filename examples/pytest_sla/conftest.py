"""Fixtures of the SLA suite: the demo target for the whole session, and the SLA table.

Run it with ``pytest examples/pytest_sla`` (add ``--stressdeck-save DIR`` to keep every run's
session for ``stressdeck compare``, ``--junitxml FILE`` for the figures as test properties).
The table is built from the properties the stressdeck fixture records on each test, so it
is the same whether the tests ran in this process or on pytest-xdist workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stressdeck.observe.demo import DemoServerThread


@pytest.fixture
def demo_target() -> Iterator[DemoServerThread]:
    """A fresh demo target on a free loopback port for each SLA level. Fresh, because the
    demo keeps its newest 10,000 items: a fast run's creates would evict the item that
    "get item" reads, and a later level would measure 404s instead of latency."""
    with DemoServerThread(seed=1) as server:
        yield server


class SlaTable:
    """Collects each SLA test's figures from its report and prints them as one table."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        if report.when == "call" and "sla_users" in properties:
            self.rows.append(properties)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.rows:
            return
        columns = ("users", "requests", "rps", "p50 ms", "p95 ms", "p99 ms", "SLA p50/p95/p99")
        columns += ("errors", "checks failed", "gen. saturated s", "result")
        keys = ("sla_users", "requests", "rps", "p50_ms", "p95_ms", "p99_ms", "sla")
        keys += ("errors", "checks_failed", "generator_saturated_s", "thresholds")
        lines = []
        for row in sorted(self.rows, key=lambda row: int(str(row["sla_users"]))):
            run = {k.split(".", 2)[2]: v for k, v in row.items() if k.startswith("stressdeck.1.")}
            values = {**run, "sla_users": row["sla_users"], "sla": row["sla"]}
            lines.append([str(values.get(key, "")) for key in keys])
        widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(columns)]
        terminalreporter.section("SLA: latency by users (demo target)")
        terminalreporter.write_line(
            "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))
        )
        terminalreporter.write_line("  ".join("-" * w for w in widths))
        for line in lines:
            terminalreporter.write_line(
                "  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True))
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SlaTable(), "sla-table")
