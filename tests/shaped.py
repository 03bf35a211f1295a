"""Start ``capacity_server.py`` (a target with a known capacity) in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SERVER = Path(__file__).parent / "capacity_server.py"


@contextmanager
def shaped_server(**options: float) -> Iterator[str]:
    """The server's URL; ``options`` are its flags (``concurrency=8`` -> ``--concurrency 8``)."""
    args = [sys.executable, str(SERVER)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", f"{value:g}"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(20)
        assert first and first[0].startswith("http://127.0.0.1:"), "the shaped server did not start"
        yield first[0].strip()
    finally:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def server_stats(url: str) -> dict[str, Any]:
    """What the server measured itself (``/stats``)."""
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as answer:
        return json.loads(answer.read())
