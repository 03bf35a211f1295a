"""Where a run is kept: --save, and the autosave that catches partial or unsaved runs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from stressdeck.core.files import WriteError
from stressdeck.core.text import printable
from stressdeck.engine.plan import Plan
from stressdeck.engine.snapshot import Snapshot
from stressdeck.sessions.session import save_session

AUTOSAVE_DIR = "sessions"


def autosave_path(directory: str = AUTOSAVE_DIR) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(directory) / f"autosave-{stamp}.toml"
    counter = 1
    while os.path.lexists(path):  # a dangling link is taken too: never written through
        path = Path(directory) / f"autosave-{stamp}-{counter}.toml"
        counter += 1
    return path


def sent_anything(snapshot: Snapshot) -> bool:
    """Whether the run sent a request: answered, failed, cancelled on the wire or lost with
    a worker. A run stopped before its first request measured nothing: no session is kept
    of it (an empty autosave only buries the real ones)."""
    total = snapshot.total
    return bool(total.requests or total.cancelled or snapshot.health.unaccounted)


def keep_session(
    args: argparse.Namespace,
    plan: Plan,
    snapshot: Snapshot,
    *,
    partial: bool,
    replay_of: str | None = None,
) -> bool:
    """Save to --save; a partial run with no usable --save goes to sessions/autosave-*.toml.

    A --save that fails after the run (a full disk, a directory gone) falls back to the
    autosave as well: a measured run should never end up only on the screen. Returns False
    when the session is not where it was asked for (--save, or a partial run's autosave).
    """
    targets: list[tuple[str | Path, bool]] = []
    wanted = getattr(args, "save", None)
    if wanted:
        targets.append((wanted, bool(args.force)))
    if partial or wanted:
        targets.append((autosave_path(), False))
    kind = "partial session" if partial else "session"
    keep_secrets = bool(getattr(args, "keep_secrets", False))
    for attempt, (path, overwrite) in enumerate(targets):
        try:
            written = save_session(
                path,
                plan,
                snapshot,
                overwrite=overwrite,
                keep_secrets=keep_secrets,
                replay_of=replay_of,
            )
        except WriteError as exc:
            print(f"error: {printable(exc)}", file=sys.stderr)
            continue
        instead = " instead" if attempt and wanted else ""
        print(f"{kind} saved{instead}: {printable(written)}", flush=True)
        return attempt == 0
    return not targets
