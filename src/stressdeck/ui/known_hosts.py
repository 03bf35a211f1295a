"""Hosts a profile may send load to without asking: loopback always, others once the user
said yes for that profile. A typo in a base URL (or a profile copied from a colleague)
should not load someone else's server without a question first.

The answers live in a small JSON file (``{"profile key": ["host", ...]}``), written
atomically. A missing or unreadable file means "nothing remembered": the worst case is one
question too many, never a run that was not asked about.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from stressdeck.core.files import write_atomic
from stressdeck.core.hosts import is_loopback
from stressdeck.engine.plan import Plan, plan_hosts, plan_routed_hosts
from stressdeck.profiles.profile import SUFFIXES

FILE_NAME = ".known-hosts.json"
__all__ = ["FILE_NAME", "KnownHosts", "plan_hosts", "profile_key"]


def profile_key(plan: Plan) -> str:
    """Which profile the answers belong to: its file, absolute; else its source label."""
    source = plan.source or plan.name
    path = Path(source)
    return str(path.resolve()) if path.suffix.lower() in SUFFIXES else source


class KnownHosts:
    """``is_local`` decides which hosts never need asking about (loopback, normally)."""

    def __init__(self, path: Path, is_local: Callable[[str], bool] = is_loopback) -> None:
        self.path = path
        self.is_local = is_local

    def load(self) -> dict[str, list[str]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict):
            return {}
        return {
            str(key): [str(h) for h in hosts]
            for key, hosts in document.items()
            if isinstance(hosts, list)
        }

    def to_confirm(self, plan: Plan) -> list[str]:
        """The plan's hosts that are neither loopback nor accepted before for this profile."""
        known = set(self.load().get(profile_key(plan), ()))
        # Judged by where the connection goes; named as "name via address" when routed.
        return [
            host.label
            for host in plan_routed_hosts(plan)
            if not self.is_local(host.dialled) and host.label not in known
        ]

    def remember(self, plan: Plan, hosts: list[str]) -> None:
        """Accept ``hosts`` for this plan's profile from now on; raises WriteError."""
        document = self.load()
        key = profile_key(plan)
        document[key] = sorted(set(document.get(key, ())) | set(hosts))
        write_atomic(self.path, json.dumps(document, indent=2, sort_keys=True) + "\n")
