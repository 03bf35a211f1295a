"""A URL typed on the command line with a password or a token in it: the names made from it
(the first stdout line, the session's plan and profile names, the results' name, the JSON's
name) carry the redacted URL, never the secret. Real runs against a server on 127.0.0.1."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from conftest import ServerThread

from stressdeck.cli.main import main
from stressdeck.core.redact import (
    _SECRET_NAMES,
    _SECRET_PARTS,
    _SECRET_QUERY_NAMES,
    REDACTED,
    url_name,
)
from stressdeck.profiles.adhoc import url_profile

SECRET = "S3CRETvalue"  # what must appear nowhere
# Every query name the redactor knows as secret: whole names, the words a name may contain,
# and the names that are secrets only in a query.
SECRET_QUERY_NAMES = sorted({*_SECRET_NAMES, *_SECRET_PARTS, *_SECRET_QUERY_NAMES})


def run_url(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict, dict]:
    """Runs `stressdeck run URL` for 2 requests; its stdout, JSON document and session."""
    results, session = tmp_path / "r.json", tmp_path / "s.toml"
    code = main(
        ["run", url, "--requests", "2", "--users", "1", "--processes", "1"]
        + ["--json", str(results), "--save", str(session)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert SECRET not in captured.out + captured.err
    for path in (results, session):
        assert SECRET not in path.read_text(encoding="utf-8"), path.name
    document = json.loads(results.read_text(encoding="utf-8"))
    saved = tomllib.loads(session.read_text(encoding="utf-8"))
    return captured.out, document, saved


def assert_named(expected: str, out: str, document: dict, saved: dict) -> None:
    assert out.splitlines()[0].startswith(f"stressdeck 0.1.0: {expected} -> ")
    assert document["name"] == expected
    assert saved["plan"]["name"] == expected
    assert saved["plan"]["profile"]["name"] == expected
    assert saved["results"]["name"] == expected


@pytest.mark.parametrize("name", SECRET_QUERY_NAMES)
def test_a_secret_query_value_never_reaches_a_name(
    name: str, target: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{target.url}/ok?page=2&{name}={SECRET}"
    out, document, saved = run_url(url, tmp_path, capsys)
    assert_named(f"GET {target.url}/ok?page=2&{name}={REDACTED}", out, document, saved)
    assert target.count == 2


def test_userinfo_never_reaches_a_name(
    target: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = target.url.removeprefix("http://")
    url = f"http://user:{SECRET}@{host}/ok?token={SECRET}"
    out, document, saved = run_url(url, tmp_path, capsys)
    assert_named(f"GET http://{REDACTED}@{host}/ok?token={REDACTED}", out, document, saved)
    assert target.count == 2


@pytest.mark.parametrize("url", ["http://u:pw@127.0.0.1:1/x?sig=abc", "http://127.0.0.1:1/"])
def test_the_profile_and_its_endpoint_take_their_names_from_url_name(url: str) -> None:
    profile = url_profile(url, "post")
    assert profile.name == url_name("POST", url)
    assert [endpoint.name for endpoint in profile.endpoints] == [
        url_name("POST", "/x" if "x" in url else "/")
    ]
