"""`--cluster HOST:PORT` with no Ray behind it (issue 27.5): one error line within a bounded
time, before Ray is even imported, so nothing is dialled but the address given.

What Ray itself does with an address that listens but never answers is in
test_cluster_ray.py (marker ``ray``: Ray dials this machine's own address for 127.0.0.1).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import faults
import psutil
import pytest


def test_a_closed_port_is_one_line_in_a_second_and_ray_is_never_started(
    tmp_path: Path,
) -> None:
    closed = faults.refused_url().removeprefix("http://")
    profile = tmp_path / "p.toml"
    profile.write_text(
        'name = "p"\nbase_url = "http://127.0.0.1:9"\n[[endpoints]]\nname = "x"\npath = "/x"\n'
    )
    program = textwrap.dedent(
        f"""\
        import sys
        from stressdeck.cli import main
        code = main(["run", {str(profile)!r}, "--cluster", {closed!r}, "--duration", "1s"])
        print(code, "ray" in sys.modules)
        """
    )
    started = time.monotonic()
    ran = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    took = time.monotonic() - started
    assert ran.stdout.splitlines() == ["2 False"]  # Ray never imported: nothing else dialled
    assert ran.stderr == (
        f"error: --cluster: no Ray cluster at {closed}: connection refused (a TCP connection "
        "within 20 s, before Ray was started); start one with `ray start --head`\n"
    )
    assert took < 30  # a hang would be Ray's minutes of retries


@pytest.mark.ray
def test_an_address_that_never_answers_is_one_line_on_time_naming_what_ray_dialled() -> None:
    # Something listens (the TCP check passes) but never speaks Ray's protocol: Ray's own
    # retries would go on for minutes. Ray runs here, so only in .ci/ray-tests' namespace.
    if set(psutil.net_if_addrs()) > {"lo"}:
        pytest.fail("Ray tests need a network namespace of their own: run .ci/ray-tests")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        program = textwrap.dedent(
            f"""\
            from ray._private.services import canonicalize_bootstrap_address
            from stressdeck.core.errors import InputError
            from stressdeck.engine.cluster import connect
            print(canonicalize_bootstrap_address({address!r}))
            try:
                connect({address!r}, timeout=3)
            except InputError as exc:
                print(exc.line())
            """
        )
        started = time.monotonic()
        ran = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=90
        )
        took = time.monotonic() - started
    dialled, line = ran.stdout.splitlines()[-2:]
    assert line == (
        f"--cluster: no answer from a Ray cluster at {address} within 3 s (Ray dialled "
        f"{dialled}); start one with `ray start --head`"
    )
    assert took < 60
