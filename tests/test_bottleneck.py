"""The bottleneck is named from what was measured, against real servers built to cause each kind.

Each target runs in its own process (tests/capacity_server.py), so the generator's CPU is
its own and not the target's.
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from shaped import shaped_server
from test_ui_support import sample_snapshot

from stressdeck.api.results import RunResults, ThresholdsFailed
from stressdeck.engine import Plan, build_plan, start
from stressdeck.engine.bottleneck import (
    CONNECTIONS,
    GENERATOR,
    NONE,
    TARGET,
    Bottleneck,
    SecondFigures,
    Unloaded,
    classify,
    summarise,
)
from stressdeck.engine.results import Results
from stressdeck.engine.snapshot import Snapshot
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.compare import load_differences
from stressdeck.sessions.exports import write_html
from stressdeck.sessions.session import load_session, save_session
from stressdeck.sessions.summary import summary_text
from stressdeck.ui.widgets.header import RunInfo, header_text

SATURATION_WARNING = "warning: the load generator was saturated"


def shaped_plan(
    url: str,
    endpoint: dict[str, Any] | None = None,
    thresholds: list[str] | None = None,
    **load: Any,
) -> Plan:
    document: dict[str, Any] = {
        "name": "shaped",
        "base_url": url,
        "endpoints": [{"name": "root", "path": "/", **(endpoint or {})}],
        "load": load,
        "thresholds": thresholds or [],
    }
    return build_plan(parse_profile(document, "test.toml"), max_duration=30)


async def run(
    url: str, processes: int = 1, endpoint: dict[str, Any] | None = None, **load: Any
) -> Snapshot:
    handle = await start(shaped_plan(url, endpoint, **load), processes)
    return await handle.wait()


def kinds(snapshot: Snapshot) -> Counter[str]:
    return Counter(point.bottleneck.kind for point in snapshot.timeline)


# -- the classifier, figure by figure ----------------------------------------------------------


def second(**figures: Any) -> SecondFigures:
    base: dict[str, Any] = dict(
        model="open",
        requests=500,
        rps=500.0,
        asked_rate=500.0,
        dropped=0,
        latency_p50_ms=1.2,
        service_p50_ms=1.0,
        service_mean_ms=1.1,
        service_low_ms=0.5,
        connections=64,
        processes=1,
        cpu_percent=20.0,
        loop_lag_ms=1.0,
    )
    return SecondFigures(**{**base, **figures})


UNLOADED = Unloaded(service_ms=10.0, rps=800.0)


@pytest.mark.parametrize(
    ("figures", "kind"),
    [
        ({}, NONE),
        # The run: 64 connections busy on a target answering in 80 ms, not 10.
        (
            dict(
                rps=800.0,
                asked_rate=1000.0,
                latency_p50_ms=700.0,
                service_p50_ms=80.0,
                service_mean_ms=80.0,
            ),
            TARGET,
        ),
        # The same rise while our processes are busy (88 % each: the HTTP/2 client past its
        # own limit, measured against an idle nginx): answers waited in our loop, so ours.
        (
            dict(
                rps=800.0,
                asked_rate=1000.0,
                latency_p50_ms=700.0,
                service_p50_ms=80.0,
                service_mean_ms=80.0,
                processes=2,
                cpu_percent=176.0,
            ),
            GENERATOR,
        ),
        # ...and with our processes at half that, the target after all.
        (
            dict(
                rps=800.0,
                asked_rate=1000.0,
                latency_p50_ms=700.0,
                service_p50_ms=80.0,
                service_mean_ms=80.0,
                processes=2,
                cpu_percent=88.0,
            ),
            TARGET,
        ),
        # Same waiting, service time flat: the connections.
        (
            dict(
                rps=360.0,
                asked_rate=1000.0,
                latency_p50_ms=700.0,
                service_p50_ms=11.0,
                service_mean_ms=11.0,
                connections=4,
            ),
            CONNECTIONS,
        ),
        # Send lag alone (waiting for a lane) never blames the generator; loop lag does.
        (dict(loop_lag_ms=120.0, cpu_percent=60.0), GENERATOR),
        # Late with little CPU of our own: the host ran something else, not the generator.
        (dict(loop_lag_ms=120.0, cpu_percent=5.0), NONE),
        # ...but a rise in service time no larger than that lag is ours, not the target's.
        (
            dict(loop_lag_ms=300.0, cpu_percent=5.0, rps=800.0, asked_rate=1000.0)
            | dict(latency_p50_ms=700.0, service_p50_ms=600.0, service_mean_ms=600.0),
            GENERATOR,
        ),
        (
            dict(loop_lag_ms=60.0, cpu_percent=5.0, rps=800.0, asked_rate=1000.0)
            | dict(latency_p50_ms=700.0, service_p50_ms=600.0, service_mean_ms=600.0),
            TARGET,
        ),
        (dict(cpu_percent=95.0), GENERATOR),
        (dict(cpu_percent=150.0, processes=2), NONE),
        # A modest rise with the load carried is nobody's limit.
        (dict(service_p50_ms=14.0, service_mean_ms=14.0, latency_p50_ms=14.5), NONE),
        # Closed model: service time rising with users is the target.
        (
            dict(
                model="closed",
                asked_rate=None,
                connections=0,
                service_p50_ms=40.0,
                service_mean_ms=40.0,
                latency_p50_ms=40.0,
                users=20,
            ),
            TARGET,
        ),
        # Nothing came back while load was asked for: a frozen target.
        (dict(requests=0, rps=0.0), TARGET),
        (dict(requests=0, rps=0.0, asked_rate=0.0), NONE),
    ],
)
def test_classify(figures: dict[str, Any], kind: str) -> None:
    assert classify(second(**figures), UNLOADED).kind == kind


def test_connections_evidence_is_littles_law() -> None:
    found = classify(
        second(
            rps=80.0,
            asked_rate=200.0,
            latency_p50_ms=900.0,
            service_p50_ms=50.0,
            service_mean_ms=50.0,
            connections=4,
        ),
        Unloaded(50.0, 80.0),
    )
    assert found.kind == CONNECTIONS
    # 200/s x 50 ms = 10 in flight; a quarter to spare: 12.5 -> 13.
    assert (
        "rate 200/s x service 50.0 ms = 10.0 requests in flight > 4 connections" in found.evidence
    )
    assert "--connections 13 would carry it" in found.evidence


def test_one_noisy_second_names_nothing() -> None:
    target = Bottleneck(TARGET, "slow")
    assert summarise([Bottleneck(), target, Bottleneck(), Bottleneck()]).kind == NONE
    run = summarise([Bottleneck(), target, Bottleneck(TARGET, "slowest"), target], [1, 5, 9, 6])
    assert run == Bottleneck(TARGET, "3 of 4 s: slowest")


# -- each kind caused by a real server -----------------------------------------------------


async def test_a_capacity_capped_target_is_the_target_not_the_generator(tmp_path: Path) -> None:
    """8 requests at once, 10 ms each (800/s), driven at 1,000/s on 64 connections."""
    with shaped_server(concurrency=8, service_ms=10) as url:
        plan = shaped_plan(
            url, thresholds=["p95 < 20ms"], model="open", rate=1000, connections=64, duration="5s"
        )
        final = await (await start(plan)).wait()
    assert final.bottleneck.kind == TARGET, final.bottleneck
    assert "ms unloaded (fastest" in final.bottleneck.evidence
    # Each second on its own: the target, bar a second the busy host may have stalled us.
    seconds = kinds(final)
    assert seconds[TARGET] >= 3 and seconds[TARGET] > seconds[CONNECTIONS], seconds
    text = summary_text(final)
    assert "bottleneck: target (" in text
    assert SATURATION_WARNING not in text
    assert Results.from_snapshot(final).to_dict()["bottleneck"]["kind"] == TARGET
    # Sessions keep it (the run's and each second's), in TOML as in JSON; compare shows a change.
    for suffix in ("toml", "json"):
        saved = load_session(save_session(tmp_path / f"capped.{suffix}", plan, final))
        assert saved.results.bottleneck == final.bottleneck
        assert [p.bottleneck for p in saved.results.timeline] == [
            p.bottleneck for p in final.timeline
        ]
    page = io.StringIO()
    write_html(saved, page)
    assert "<td>bottleneck</td><td>target: " in page.getvalue()
    assert "The load generator was saturated" not in page.getvalue()
    healthy = dataclasses.replace(
        saved, results=dataclasses.replace(saved.results, bottleneck=Bottleneck())
    )
    assert "bottleneck target → none" in load_differences(saved, healthy)
    # The pytest plugin's failure names it beside the threshold table.
    with pytest.raises(ThresholdsFailed, match=r"(?s)p95 < 20ms.*\nbottleneck: target \("):
        RunResults.from_run(plan, final).assert_thresholds()


async def test_a_slow_but_wide_target_is_limited_by_the_connections() -> None:
    """Every answer takes 50 ms, any number at once: 4 connections carry 80/s of the 200 asked."""
    with shaped_server(service_ms=50) as url:
        final = await run(url, model="open", rate=200, connections=4, duration="4s")
    assert final.bottleneck.kind == CONNECTIONS, final.bottleneck
    assert "all 4 connections busy, service time flat" in final.bottleneck.evidence
    assert "Little's law" in final.bottleneck.evidence
    # Each second on its own: the connections (a stall of the busy host may blur one).
    assert kinds(final)[CONNECTIONS] >= 3, kinds(final)
    assert SATURATION_WARNING not in summary_text(final)


async def test_a_starved_generator_is_the_generator() -> None:
    """One process parsing a 512 KB JSON answer for every check, 200 times a second."""
    heavy = {
        "checks": ["$.items[0].id exists", "$.items[3].name == 'widget'", "body contains 'zzz'"]
    }
    with shaped_server(body_kb=512) as url:
        final = await run(url, 1, heavy, model="open", rate=200, connections=16, duration="4s")
    assert final.bottleneck.kind == GENERATOR, (final.bottleneck, final.health)
    assert SATURATION_WARNING in summary_text(final)


@pytest.mark.slow
async def test_a_target_that_freezes_is_the_target() -> None:
    """The whole server stops for 1 s every 2 s: its fault, not the generator's."""
    with shaped_server(freeze_every=1, freeze_for=1) as url:
        final = await run(url, model="open", rate=200, connections=64, duration="6s")
    assert final.bottleneck.kind == TARGET, (final.bottleneck, kinds(final))
    assert kinds(final)[TARGET] >= 3, kinds(final)
    assert SATURATION_WARNING not in summary_text(final)


async def test_a_healthy_run_names_nothing() -> None:
    with shaped_server(service_ms=1) as url:
        final = await run(url, model="open", rate=100, connections=16, duration="3s")
    assert final.bottleneck == Bottleneck(), kinds(final)
    assert "bottleneck:" not in summary_text(final)


def test_the_console_header_names_the_target_and_the_connections_not_the_generator() -> None:
    evidence = (
        "service time 10.9 ms unloaded (fastest, at 645 req/s) -> mean 129.5 ms, p50 115.1 ms"
    )
    for kind in (TARGET, CONNECTIONS):
        snapshot = sample_snapshot(bottleneck=Bottleneck(kind, evidence))
        lines = header_text(snapshot, RunInfo("p")).plain.splitlines()
        assert lines[3] == f"limited by the {kind}: {evidence[:55]}…"
    # The generator has its own warning (the saturation line), when its health says so.
    generator = sample_snapshot(bottleneck=Bottleneck(GENERATOR, evidence))
    assert len(header_text(generator, RunInfo("p")).plain.splitlines()) == 3
