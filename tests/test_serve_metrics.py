"""--serve-metrics: our live figures scraped during a run with prometheus-client's parser, equal
to the run's own at the end; refused in one line when the address is bad or taken."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerThread
from prometheus_client.parser import text_string_to_metric_families
from waiting import until

import stressdeck
from stressdeck.cli.console import build_parser as console_parser
from stressdeck.cli.main import main
from stressdeck.engine.serve_metrics import LATENCY_BUCKETS, parse_listen


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample by name, then by its labels."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by(samples: dict[tuple[tuple[str, str], ...], float], *keys: str) -> dict[Any, float]:
    return {tuple(dict(labels)[k] for k in keys): value for labels, value in samples.items()}


def profile(url: str) -> dict[str, Any]:
    return {
        "name": "scraped",
        "base_url": url,
        "endpoints": [
            {
                "name": "ok",
                "path": "/ok",
                "weight": 4,
                "checks": ["body contains 'o'", "body contains 'nope'"],
            },
            {"name": "boom", "path": "/status/500"},
            {"name": "drop", "path": "/drop"},
        ],
    }


def test_a_scrape_during_the_run_and_at_its_end_equals_the_run(target: ServerThread) -> None:
    with stressdeck.start(
        profile(target.url), users=3, duration="2s", processes=1, serve_metrics="127.0.0.1:0"
    ) as live:
        url = live.metrics_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        scrapes: list[dict] = []

        def going() -> bool:
            scrapes.append(scrape(url))
            samples = scrapes[-1]
            running = samples.get("stressdeck_running", {}).get((), 0)
            return running == 1 and sum(samples.get("stressdeck_requests_total", {}).values()) > 0

        until(going, 10, "a scrape saw the run going")
        during = scrapes[-1]
        assert during["stressdeck_users"][()] == 3
        results = live.wait()
        end = scrape(url)  # the server keeps the final figures until the run is closed
    total, endpoints = results.total, {ep.name: ep for ep in results.endpoints}

    requests = by(end["stressdeck_requests_total"], "endpoint", "status")
    assert requests == {
        (ep.name, str(code)): n for ep in endpoints.values() for code, n in ep.status_counts.items()
    }
    errors = by(end["stressdeck_errors_total"], "endpoint", "class")
    assert errors[("boom", "status")] == endpoints["boom"].errors
    assert errors[("drop", "disconnect")] == endpoints["drop"].error_counts["disconnect"]
    assert sum(errors.values()) == total.errors
    checks = by(end["stressdeck_checks_total"], "endpoint", "result")
    assert checks == {
        ("ok", "passed"): endpoints["ok"].checks_passed,
        ("ok", "failed"): endpoints["ok"].checks_failed,
    }
    assert by(end["stressdeck_check_failures_total"], "endpoint", "check") == {
        ("ok", "body contains 'nope'"): endpoints["ok"].requests
    }
    # The histogram: cumulative buckets, +Inf and _count equal to the responses timed.
    for name, ep in endpoints.items():
        count = ep.latency_ms.count
        buckets = {
            le: value
            for (endpoint, le), value in by(
                end["stressdeck_latency_seconds_bucket"], "endpoint", "le"
            ).items()
            if endpoint == name
        }
        assert list(buckets) == [f"{edge:g}" for edge in LATENCY_BUCKETS] + ["+Inf"]
        assert list(buckets.values()) == sorted(buckets.values())
        assert (
            buckets["+Inf"]
            == count
            == by(end["stressdeck_latency_seconds_count"], "endpoint")[(name,)]
        )
    assert end["stressdeck_running"][()] == 0
    assert by(end["stressdeck_run"], "state")[("stopped",)] == 1
    # Every request the server got was counted (a cancelled one may not have arrived).
    assert total.requests <= target.count <= total.requests + total.cancelled
    # It stopped with the run.
    with pytest.raises(urllib.error.URLError):
        scrape(url)


def test_the_cli_serves_while_running_and_stops_with_the_run(
    target: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile(target.url)))
    code = main(
        [
            "run",
            str(path),
            "--requests",
            "30",
            "--processes",
            "1",
            "--quiet",
            "--serve-metrics",
            str(port),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"live metrics for Prometheus: http://127.0.0.1:{port}/metrics" in out
    with pytest.raises(urllib.error.URLError):
        scrape(f"http://127.0.0.1:{port}/metrics")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["", "port", "70000", "127.0.0.1:", ":-1"])
def test_a_bad_address_is_one_line_and_exit_2(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile("http://127.0.0.1:9")))
    assert main(["run", str(path), "--requests", "1", "--serve-metrics", value]) == 2
    err = capsys.readouterr().err
    assert err == (
        f'error: --serve-metrics: expected [HOST:]PORT like "9464" or "127.0.0.1:9464", got {value!r}\n'
    )


def test_a_taken_port_is_refused_before_any_load(
    target: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile(target.url)))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["run", str(path), "--requests", "5", "--serve-metrics", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --serve-metrics: cannot listen on 127.0.0.1:{port} (")
    assert err.count("\n") == 1
    assert target.count == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_replay_and_the_console_take_the_option(
    target: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        console_parser().parse_args(["p.toml", "--serve-metrics", "9464"]).serve_metrics == "9464"
    )
    saved = tmp_path / "run.toml"
    stressdeck.run(profile(target.url), requests=12, users=1, processes=1, save=saved)
    port = free_port()
    code = main(["replay", str(saved), "--processes", "1", "--quiet", "--serve-metrics", str(port)])
    assert code == 0
    assert (
        f"live metrics for Prometheus: http://127.0.0.1:{port}/metrics" in capsys.readouterr().out
    )
    assert target.count == 24  # the run and its replay, 12 each
    with pytest.raises(urllib.error.URLError):
        scrape(f"http://127.0.0.1:{port}/metrics")
