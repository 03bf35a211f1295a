"""Workers on a real Ray cluster: two nodes simulated on this machine, never a mock.

Marked ``ray`` and left out of the default run: a local Ray cluster talks to the machine's
non-loopback address, so these run only inside a network namespace of their own, through
``.ci/ray-tests`` (``unshare -n``, loopback up).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import psutil
import pytest
from conftest import ServerThread
from test_engine import assert_counted_once, make_plan
from waiting import eventually

from stressdeck.engine import start
from stressdeck.engine.cluster import RayPlacement, connect
from stressdeck.engine.results import results_schema

pytestmark = pytest.mark.ray
MB = 1024 * 1024


def _own_network_namespace() -> bool:
    """Loopback is this namespace's only interface: nothing can leave the machine."""
    return set(psutil.net_if_addrs()) <= {"lo"}


@pytest.fixture(scope="module")
def cluster_address() -> Iterator[str]:
    """A head and a second node, one CPU each, small object stores (the machine is shared)."""
    if not _own_network_namespace():
        pytest.fail("Ray tests need a network namespace of their own: run .ci/ray-tests")
    from ray.cluster_utils import Cluster

    node = {
        "num_cpus": 1,
        "object_store_memory": 80 * MB,
        "node_ip_address": "127.0.0.1",
    }
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


@pytest.fixture
def placement(cluster_address: str) -> Iterator[RayPlacement]:
    placement = connect(cluster_address)
    try:
        yield placement
    finally:
        placement.close()


def _alive_actors() -> list[dict[str, Any]]:
    from ray._private.state import actors

    return [actor for actor in actors().values() if actor["State"] != "DEAD"]


async def test_a_request_budget_split_over_two_nodes_is_sent_exactly(
    target: ServerThread, placement: RayPlacement
) -> None:
    plan = make_plan(
        target.url,
        [{"name": "ok", "path": "/ok", "weight": 2}, {"name": "boom", "path": "/status/500"}],
        users=6,
        requests=1000,
    )
    workers = placement.plan_workers(None)  # one per free CPU: one on each node
    assert workers == 2
    final = await (await start(plan, workers, placement)).wait()
    assert final.stop_reason == "requests done"
    assert final.total.requests == 1000 == target.count
    assert_counted_once(final)
    assert final.total.latency_ms.count == 1000  # the HDR merge kept every sample
    assert [(node.workers, node.crashed) for node in final.nodes] == [(1, 0), (1, 0)]
    assert len({node.node for node in final.nodes}) == 2
    assert sum(node.requests for node in final.nodes) == 1000
    assert all(node.requests > 0 for node in final.nodes)
    assert final.health.processes == 2


async def test_live_user_changes_reach_every_actor_and_stop_leaves_none(
    target: ServerThread, placement: RayPlacement
) -> None:
    plan = make_plan(
        target.url,
        [{"name": "slow", "path": "/slow", "query": {"ms": "100"}}],
        users=2,
        duration="20s",
    )
    handle = await start(plan, placement.plan_workers(2), placement)
    assert len(_alive_actors()) == 2
    handle.set_users(8)
    # 8 only if both actors took their 4: one that missed the change would leave 4 + 1.
    await eventually(lambda: handle.latest.active_users == 8, 30, "8 users over both actors")
    began = time.perf_counter()
    final = await handle.stop()
    stop_seconds = time.perf_counter() - began
    assert stop_seconds < 10.0  # a hang guard; the engine aims at a second
    # What the server received is what we counted: answered, or on the wire at the stop. A
    # user between an answer and its next send at that moment has nothing to cancel.
    assert final.total.requests + final.total.cancelled == target.count
    assert 0 < final.total.cancelled <= 8
    await eventually(lambda: not _alive_actors(), 30, "every actor has ended")
    assert [event.command for event in final.control_log] == ["users", "stop"]


async def test_a_killed_actor_is_reported_crashed_and_keeps_its_counts(
    target: ServerThread, placement: RayPlacement
) -> None:
    import ray

    plan = make_plan(
        target.url,
        [{"name": "slow", "path": "/slow", "query": {"ms": "20"}}],
        users=4,
        duration="20s",
    )
    handle = await start(plan, placement.plan_workers(2), placement)
    nodes = lambda: handle.latest.nodes  # noqa: E731
    await eventually(
        lambda: len(nodes()) == 2 and all(n.requests > 20 for n in nodes()),
        30,
        "both nodes sent 20 requests",
    )
    victim = placement._workers[1]
    sent_before = victim.requests
    ray.kill(victim.actor, no_restart=True)
    final = await asyncio.wait_for(handle.wait(), 10)
    assert final.stop_reason.startswith(f"worker 1 crashed: actor on node {victim.label} lost")
    lost = next(node for node in final.nodes if node.node == victim.label)
    assert lost.crashed == 1
    assert lost.requests >= sent_before > 0  # what it had sent stays counted
    kept = next(node for node in final.nodes if node.node != victim.label)
    assert kept.crashed == 0
    assert final.total.requests == lost.requests + kept.requests
    # The killed actor's last moments never reached us: the target may have seen more.
    assert final.total.requests <= target.count
    await eventually(lambda: not _alive_actors(), 30, "every actor has ended")


def _stressdeck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stressdeck", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_run_and_replay_from_the_command_line(
    target: ServerThread, cluster_address: str, tmp_path: Path
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'name = "cluster"\nbase_url = "{target.url}"\n'
        '[[endpoints]]\nname = "ok"\npath = "/ok"\n[load]\nusers = 4\n'
    )
    session = tmp_path / "s.toml"
    ran = _stressdeck(
        "run", str(profile), "--cluster", cluster_address, "--requests", "600", "--quiet",
        "--save", str(session), "--json", str(tmp_path / "r.json"), cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "cluster: 2 workers on 2 nodes" in ran.stdout
    assert ran.stdout.count(": 1 worker,") == 2, ran.stdout
    assert target.count == 600
    saved = session.read_text()
    assert "[[results.nodes]]" in saved
    document = json.loads((tmp_path / "r.json").read_text())
    jsonschema.validate(document, results_schema())
    assert [node["workers"] for node in document["nodes"]] == [1, 1]
    assert sum(node["requests"] for node in document["nodes"]) == 600
    # Replayed on one machine (no --cluster) and on the cluster (auto: RAY_ADDRESS).
    again = _stressdeck("replay", str(session), "--quiet", "--processes", "1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "cluster:" not in again.stdout
    assert target.count == 1200
    env_run = subprocess.run(
        [
            sys.executable,
            "-m",
            "stressdeck",
            "replay",
            str(session),
            "--quiet",
            "--cluster",
            "auto",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_ADDRESS": cluster_address},
    )
    assert env_run.returncode == 0, env_run.stderr
    assert "cluster: 2 workers on 2 nodes" in env_run.stdout
    assert target.count == 1800


def test_more_workers_than_free_cpus_is_one_line(cluster_address: str, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        'name = "x"\nbase_url = "http://127.0.0.1:9"\n[[endpoints]]\nname = "ok"\npath = "/"\n'
    )
    ran = _stressdeck(
        "run", str(profile), "--cluster", cluster_address, "--processes", "5", cwd=tmp_path
    )
    assert ran.returncode == 2
    # Ray's own core may warn first, here only, about finding no route out of the namespace.
    assert "Traceback" not in ran.stderr
    assert ran.stderr.splitlines()[-1] == (
        "error: --processes: 5 workers asked, the cluster has 2 free CPU(s) on 2 node(s) "
        "(one worker per CPU)"
    )
