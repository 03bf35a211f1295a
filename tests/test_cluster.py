"""The cluster option without a cluster: Ray stays unimported, a missing Ray is one line,
workers spread over nodes, and a session keeps a cluster run's shape.

The runs on a real Ray cluster are in test_cluster_ray.py (marker ``ray``, .ci/ray-tests).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ServerThread
from session_support import profile_document, run_document, run_sync
from test_ui_support import screen_text, wait_for

from stressdeck.cli.console import view_app
from stressdeck.core.errors import InputError
from stressdeck.engine.cluster import ClusterNode, check_address, spread
from stressdeck.engine.snapshot import NodeHealth
from stressdeck.sessions.session import load_session, save_session, snapshot_from_session
from stressdeck.sessions.summary import summary_text


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _profile(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\nbase_url = "{url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n')
    return path


def test_without_cluster_ray_is_never_imported(target: ServerThread, tmp_path: Path) -> None:
    profile = _profile(tmp_path, target.url)
    ran = _python(
        f"""
        import sys
        from stressdeck.cli import main
        import stressdeck.cli.console  # the console's module too, with its cluster notes
        code = main(["run", {str(profile)!r}, "--requests", "40", "--processes", "2", "--quiet"])
        print(code, "ray" in sys.modules, sorted(m for m in sys.modules if m.startswith("ray")))
        """,
        tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == "0 False []"
    assert target.count == 40


def test_cluster_without_ray_installed_is_one_line(tmp_path: Path) -> None:
    profile = _profile(tmp_path, "http://127.0.0.1:9")
    # None in sys.modules is how Python spells "this module cannot be imported".
    ran = _python(
        f"""
        import sys
        sys.modules["ray"] = None
        from stressdeck.cli import main
        sys.exit(main(["run", {str(profile)!r}, "--cluster", "auto"]))
        """,
        tmp_path,
    )
    assert ran.returncode == 2
    assert ran.stderr == (
        "error: --cluster: Ray is not installed: pip install 'stressdeck[cluster]' (on every node)\n"
    )
    assert ran.stdout == ""


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:6379", "head.lan:6379", "[::1]:6379"])
def test_cluster_addresses_taken(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["", "6379", "http://127.0.0.1:6379", "a b:1", "host:"])
def test_bad_cluster_addresses_are_one_line(address: str) -> None:
    with pytest.raises(InputError) as caught:
        check_address(address)
    assert caught.value.line() == f'--cluster: expected "auto" or HOST:PORT, got {address!r}'


def test_cluster_option_on_run_replay_and_console(target: ServerThread, tmp_path: Path) -> None:
    profile = _profile(tmp_path, target.url)
    plan, snapshot = run_sync(profile_document(target.url, duration="1s"))
    session = save_session(tmp_path / "s.toml", plan, snapshot)
    for args in (["run", str(profile)], ["replay", str(session)], [str(profile)]):
        ran = subprocess.run(
            [sys.executable, "-m", "stressdeck", *args, "--cluster", "nowhere"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": ""},
        )
        assert ran.returncode == 2, (args, ran.stderr)
        assert ran.stderr == "error: --cluster: expected \"auto\" or HOST:PORT, got 'nowhere'\n"


def _nodes(*free: int) -> list[ClusterNode]:
    return [ClusterNode(f"id{i}", f"10.0.0.{i}", cpus, cpus) for i, cpus in enumerate(free)]


@pytest.mark.parametrize(
    ("free", "workers", "expected"),
    [
        ((2, 2), 2, ["10.0.0.0", "10.0.0.1"]),  # one on each node before a second on any
        ((2, 2), 3, ["10.0.0.0", "10.0.0.1", "10.0.0.0"]),
        ((1, 3), 4, ["10.0.0.0", "10.0.0.1", "10.0.0.1", "10.0.0.1"]),
        ((4,), 1, ["10.0.0.0"]),
    ],
)
def test_workers_spread_round_robin_over_free_cpus(
    free: tuple[int, ...], workers: int, expected: list[str]
) -> None:
    assert [node.address for node in spread(_nodes(*free), workers)] == expected


def test_more_workers_than_free_cpus_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        spread(_nodes(1, 2), 4)
    assert caught.value.line() == (
        "--processes: 4 workers asked, the cluster has 3 free CPU(s) on 2 node(s) "
        "(one worker per CPU)"
    )


def test_a_session_keeps_the_cluster_shape_and_the_summary_shows_it(
    target: ServerThread, tmp_path: Path
) -> None:
    # A real run, dressed as a cluster run's result: the shape is plain data on a snapshot.
    plan, snapshot = run_sync(profile_document(target.url, duration="1s"))
    nodes = (
        NodeHealth("10.0.0.1/ab12cd", workers=2, cpus=2, requests=700, cpu_percent=150.0),
        NodeHealth(
            "10.0.0.2/ef34ab", workers=1, cpus=4, crashed=1, requests=300, peak_loop_lag_ms=12.0
        ),
    )
    clustered = dataclasses.replace(snapshot, nodes=nodes)
    for suffix in (".toml", ".json"):
        loaded = load_session(save_session(tmp_path / f"s{suffix}", plan, clustered))
        assert loaded.results.nodes == nodes
        assert snapshot_from_session(loaded).nodes == nodes
    lines = summary_text(clustered).splitlines()
    start = lines.index("cluster: 3 workers on 2 nodes")
    assert lines[start + 1 : start + 3] == [
        "  10.0.0.1/ab12cd: 2 workers, 2 CPU(s), 700 requests, workers CPU 150% (node 0%), "
        "loop lag peak 0 ms",
        "  10.0.0.2/ef34ab: 1 worker, 4 CPU(s), 300 requests, workers CPU 0% (node 0%), "
        "loop lag peak 12 ms, 1 CRASHED (its counts up to then are kept)",
    ]
    # A run on one machine says nothing about a cluster, and its session holds no nodes.
    assert "cluster:" not in summary_text(snapshot)
    assert load_session(save_session(tmp_path / "one.toml", plan, snapshot)).results.nodes == ()


async def test_the_console_shows_a_cluster_runs_nodes(target: ServerThread, tmp_path: Path) -> None:
    # The Host tab (4) of a saved cluster run: the same lines a live run draws every tick.
    plan, snapshot = await run_document(profile_document(target.url, duration="1s"))
    nodes = (
        NodeHealth("10.0.0.1/ab12cd", workers=2, cpus=2, requests=700, cpu_percent=150.0),
        NodeHealth("10.0.0.2/[bold]x", workers=1, cpus=4, crashed=1, requests=300),
    )
    health = dataclasses.replace(snapshot.health, processes=3)
    clustered = dataclasses.replace(snapshot, nodes=nodes, health=health)
    saved = save_session(tmp_path / "c.toml", plan, clustered)
    app = view_app(str(saved))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: "cluster  3 workers on 2 nodes" in screen_text(app))
        lines = screen_text(app).splitlines()
        generator = next(line for line in lines if "generator" in line)
        assert generator.rstrip().endswith("3 workers")  # actors, not this machine's processes
        first = next(i for i, line in enumerate(lines) if "cluster  3 workers" in line)
        assert "10.0.0.1/ab12cd  2w  cpu 150% (node 0%)" in lines[first + 1]
        assert "700 req" in lines[first + 1]
        # A node's name comes from outside: shown as text, never as markup.
        assert "10.0.0.2/[bold]x  1w" in lines[first + 2]
        assert lines[first + 2].rstrip().endswith("300 req  1 CRASHED")
        await pilot.press("q")
