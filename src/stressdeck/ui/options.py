"""How the console was asked to run: everything StressDeckApp takes besides the plan, in one
object the CLI builds (and tests build to their needs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stressdeck.engine.overrides import NO_OVERRIDES, Overrides
from stressdeck.engine.plan import DEFAULT_MAX_DURATION
from stressdeck.engine.processes import ProcessWorker
from stressdeck.engine.snapshot import Snapshot
from stressdeck.observe.monitor import Monitor
from stressdeck.ui.known_hosts import KnownHosts

if TYPE_CHECKING:  # the runner is imported once the console is up (ui.controller.preload_run)
    from stressdeck.engine.runner import Steer, WorkerFactory
    from stressdeck.engine.serve_metrics import MetricsServer

REFRESH_SECONDS = 0.25  # 4 renders a second at most: the engine ticks at the same pace


@dataclass(frozen=True)
class ConsoleOptions:
    # What the next run is built from, and how it runs.
    overrides: Overrides = NO_OVERRIDES
    max_duration: float = DEFAULT_MAX_DURATION
    processes: int = 1
    i_know: bool = False  # the safety caps on users and rate are lifted
    worker_factory: WorkerFactory | None = ProcessWorker  # None: a read-only view
    autostart: bool = False  # start the plan at once (a replay)
    steer: Steer | None = None  # runs beside the run with its handle (a replay's control log)
    replay_of: str | None = None  # the session a replay re-runs: its saves say so
    # Where the console reads profiles and writes sessions (and its known hosts).
    profiles_dir: Path = Path("profiles")
    sessions_dir: Path = Path("sessions")
    known_hosts: KnownHosts | None = None  # default: sessions_dir's known-hosts file
    # What it shows besides the live run.
    target_pid: int | None = None  # the backend's process, watched in the Host tab
    monitor: Monitor | None = None  # default: this host's CPU and memory
    static_snapshot: Snapshot | None = None  # a saved run on view, read-only
    static_title: str = "static snapshot"
    baseline: Snapshot | None = None  # a saved run's figures under the live ones
    baseline_title: str = ""
    host_note: str = ""  # what the Host tab says when there is no host to sample
    notes: tuple[str, ...] = ()  # warnings shown once at start
    refresh_seconds: float = REFRESH_SECONDS
    # SIGINT/SIGTERM/SIGHUP stop the run and autosave it. Only for a console that owns its
    # process: a test's event loop is pytest's, not ours to take.
    handle_signals: bool = False
    metrics_server: MetricsServer | None = None  # --serve-metrics: follows each run
