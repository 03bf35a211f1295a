"""Profiles from what users already have: a curl command, a HAR recording, an OpenAPI spec.

Each importer returns a profile document and warnings (what was skipped, which environment
variables to set). ``write_profile`` validates the document with the profile parser before
writing it, so an import never leaves a profile that will not load.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w

from stressdeck.core.errors import InputError, describe
from stressdeck.core.files import write_atomic
from stressdeck.core.hosts import check_url
from stressdeck.profiles.importers.common import header_value, slugify
from stressdeck.profiles.importers.curl import profile_from_curl
from stressdeck.profiles.importers.har import profile_from_har
from stressdeck.profiles.importers.openapi import profile_from_openapi
from stressdeck.profiles.profile import SUFFIXES, parse_profile

KINDS = ("curl", "har", "openapi")
PROFILES_DIR = "profiles"

__all__ = [
    "KINDS",
    "import_command",
    "profile_from_curl",
    "profile_from_har",
    "profile_from_openapi",
    "render_profile",
    "write_profile",
]


def render_profile(document: dict[str, Any], path: str | Path, notes: Sequence[str] = ()) -> str:
    """The file text for ``path`` (.toml or .json), checked to load as a profile; raises InputError."""
    source = str(path)
    suffix = Path(source).suffix.lower()
    if suffix == ".toml":
        try:
            body = tomli_w.dumps(_tomlable(document))
        except (TypeError, ValueError) as exc:
            raise InputError(
                source, "", f"cannot be written as TOML ({exc}); try a .json file"
            ) from None
        header = "".join(f"# {line}\n" for note in notes for line in note.splitlines())
        text = header + ("\n" if header else "") + body
        parsed = tomllib.loads(text)
    elif suffix == ".json":
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        parsed = json.loads(text)
    else:
        raise InputError(source, "", "expected a .toml or .json file name")
    parse_profile(parsed, source)  # the text as it will be read back, not the dict we meant
    return text


def write_profile(
    document: dict[str, Any],
    path: str | Path,
    *,
    overwrite: bool = False,
    notes: Sequence[str] = (),
) -> Path:
    """Validate, then write atomically; ``notes`` become comments at the top of a TOML file.

    Raises InputError for a document that would not load or an existing file (unless
    ``overwrite``), and files.WriteError when the disk refuses.
    """
    target = Path(path)
    text = render_profile(document, target, notes)
    if not overwrite and os.path.lexists(target):
        raise InputError(str(target), "", "already exists (use --force to overwrite)")
    return write_atomic(target, text, overwrite=overwrite)


def import_command(
    kind: str,
    source: str,
    *,
    out: str | None = None,
    base_url: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
    directory: str | Path = PROFILES_DIR,
    free_name: bool = False,
    allow_remote: bool = False,
) -> tuple[Path, list[str]]:
    """``stressdeck import KIND SOURCE``: build, validate and write a profile; returns it and warnings.

    ``source`` is the curl command line for ``curl``, a file path otherwise, or for
    ``openapi`` also an http(s) URL to fetch the spec from (this machine only, unless
    ``allow_remote``). The profile
    goes to ``out`` or ``directory/<slug of its name>.toml``; with ``free_name``, to
    ``<slug>-2.toml``... when that is taken, so an existing profile is never in the way.
    """
    if name is not None and not name.strip():
        raise InputError("--name", "", "expected a non-empty profile name")
    if base_url is not None:
        check_url("--base-url", "", base_url)
    if kind == "curl":
        document, warnings = profile_from_curl(source, name=name)
    elif kind == "har":
        document, warnings = profile_from_har(source)
    elif kind == "openapi":
        document, warnings = profile_from_openapi(
            source, base_url=base_url, allow_remote=allow_remote
        )
    else:
        raise InputError("import", "", f'expected "curl", "har" or "openapi", got {describe(kind)}')
    if name is not None:
        document["name"] = name
    if base_url is not None and kind != "openapi":
        document["base_url"] = base_url.rstrip("/") or base_url
    target = (
        Path(out) if out else _profile_path(Path(directory), slugify(document["name"]), free_name)
    )
    if out is not None and target.suffix.lower() not in SUFFIXES:
        raise InputError("--out", "", f"expected a .toml or .json file name, got {describe(out)}")
    notes = [
        f"Imported by stressdeck import {kind}; review the load and the endpoints before running.",
        *warnings,
    ]
    return write_profile(document, target, overwrite=overwrite, notes=notes), warnings


def _profile_path(directory: Path, slug: str, free_name: bool) -> Path:
    path, counter = directory / f"{slug}.toml", 2
    while free_name and os.path.lexists(path):
        path, counter = directory / f"{slug}-{counter}.toml", counter + 1
    return path


def _tomlable(document: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: a JSON body holding one is written as its text instead."""
    endpoints = []
    for endpoint in document.get("endpoints", []):
        if isinstance(endpoint, dict) and "json" in endpoint and _has_null(endpoint["json"]):
            endpoint = dict(endpoint)
            headers = dict(endpoint.get("headers") or {})
            if header_value(headers, "content-type") is None:
                headers["Content-Type"] = "application/json"
            endpoint["headers"] = headers
            endpoint["body"] = json.dumps(endpoint.pop("json"), ensure_ascii=False)
        endpoints.append(endpoint)
    return {**document, "endpoints": endpoints} if "endpoints" in document else dict(document)


def _has_null(value: Any, depth: int = 0) -> bool:
    if value is None:
        return True
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(_has_null(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_has_null(item, depth + 1) for item in value)
    return False
