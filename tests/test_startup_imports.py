"""The console's first screen imports only what it shows (issue 27.14: start-up, measured
and cut; benchmarks/startup.py has the figures). Checked as a user meets it: a fresh
interpreter builds the console for a profile, as `stressdeck PROFILE` does before its first
frame, and lists what is loaded; the run's modules come once the screen is up."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# What the first screen does not need: the runner and the workers (their HTTP clients,
# aiohttp, h2, httptools), the histograms' numpy, Ray's side, the Prometheus server, the
# package metadata behind __version__, the importers and the other commands.
NOT_BEFORE_THE_FIRST_SCREEN = (
    "aiohttp",
    "numpy",
    "h2",
    "httptools",
    "hdrh",
    "prometheus_client",
    "importlib.metadata",
    "stressdeck.engine.runner",
    "stressdeck.engine.worker",
    "stressdeck.engine.clients",
    "stressdeck.engine.cluster",
    "stressdeck.engine.limit_search",
    "stressdeck.sessions.session",
    "stressdeck.sessions.compare",
    "stressdeck.profiles.importers",
    "stressdeck.observe.demo",
    "stressdeck.cli.run",
    "stressdeck.cli.limit",
)

SCRIPT = """
import json, sys
from stressdeck.cli.console import build_parser, console_app
from stressdeck.engine.overrides import Overrides

args = build_parser().parse_args([sys.argv[1], "--sessions-dir", sys.argv[2]])
app = console_app(args, args.profile, Overrides.from_args(args))
assert app.controller is not None and app.controller.plan.name == "probe"
first = sorted(m for m in {modules} if m in sys.modules)
from stressdeck.ui.controller import preload_run
preload_run()
print(json.dumps({{"first": first, "run": "stressdeck.engine.runner" in sys.modules}}))
"""


def test_the_console_builds_its_first_screen_without_the_run_s_modules(tmp_path: Path) -> None:
    profile = tmp_path / "probe.toml"
    profile.write_text(
        'name = "probe"\nbase_url = "http://127.0.0.1:9"\nmetrics_url = "/metrics"\n'
        'metrics = ["p95(h)"]\n[[endpoints]]\nname = "x"\npath = "/x"\n',
        encoding="utf-8",
    )
    script = textwrap.dedent(SCRIPT).format(modules=NOT_BEFORE_THE_FIRST_SCREEN)
    done = subprocess.run(
        [sys.executable, "-c", script, str(profile), str(tmp_path / "sessions")],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"first": [], "run": True}


def test_the_console_builds_its_plan_once(tmp_path: Path) -> None:
    """The console checks the source it is given by building its plan, then runs that very
    plan: not a second build (seconds for a profile of 20,000 endpoints)."""
    from stressdeck.cli.console import build_parser, console_app
    from stressdeck.engine.overrides import Overrides

    profile = tmp_path / "probe.toml"
    profile.write_text(
        'name = "probe"\nbase_url = "http://127.0.0.1:9"\n[[endpoints]]\nname = "x"\npath = "/x"\n',
        encoding="utf-8",
    )
    args = build_parser().parse_args([str(profile), "--sessions-dir", str(tmp_path / "s")])
    app = console_app(args, args.profile, Overrides.from_args(args))
    controller = app.controller
    assert controller is not None
    assert controller.plan is controller.source.build()
    controller.set_users(12)  # a change builds the changed source's plan, once
    assert controller.plan.load.users == 12
    assert controller.plan is controller.source.build()
