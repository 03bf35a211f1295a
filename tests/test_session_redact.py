"""Redaction of literal secrets in the profile a session keeps."""

from __future__ import annotations

import pytest

from stressdeck.core.redact import (
    REDACTED,
    is_reference,
    is_secret_name,
    redact_document,
    redacted_fields,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${TOKEN}", True),
        ("Bearer ${TOKEN}", True),
        ("  Token ${A}  ", True),
        ("${A} ${B}", True),
        ("{login.token}", True),  # a value extracted at run time
        ("Bearer {token}", True),
        ("Bearer abc123", False),
        ("abc${TOKEN}", False),  # literal text glued to the reference
        ("Basic ${USER}:${PASS}", False),  # a literal separator: cautious, redacted
        ("session=abc; ${REST}", False),
        ("", False),
    ],
)
def test_is_reference(value: str, expected: bool) -> None:
    assert is_reference(value) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Authorization", True),
        ("authorization", True),
        ("Proxy-Authorization", True),
        ("Cookie", True),
        ("X-Api-Key", True),
        ("X-Auth-Token", True),
        ("X-CSRF-Token", True),
        ("client_secret", True),
        ("X-Password", True),
        ("X-Session-Id", True),
        ("api_key", True),
        ("User-Agent", False),
        ("Accept", False),
        ("Content-Type", False),
        ("X-Demo", False),
        ("limit", False),
    ],
)
def test_is_secret_name(name: str, expected: bool) -> None:
    assert is_secret_name(name) is expected


def test_redact_document() -> None:
    document = {
        "base_url": "http://admin:hunter2@127.0.0.1:9",
        "defaults": {
            "headers": {"Authorization": "Bearer ${TOKEN}", "Cookie": "sid=abc", "Accept": "*/*"}
        },
        "endpoints": [
            {
                "name": "a",
                "path": "/a",
                "headers": {"X-Api-Key": "k-123", "X-Demo": "1"},
                "query": {"access_token": "t-9", "limit": "10", "api_key": "${KEY}"},
            },
            {"name": "b", "url": "http://u:${PASS}@127.0.0.1:9/b", "json": {"password": "kept"}},
            {"name": "c", "url": "http://u:pw@127.0.0.1:9/c"},
        ],
    }
    redacted = redact_document(document)
    assert redacted["base_url"] == f"http://{REDACTED}@127.0.0.1:9"  # userinfo whole
    assert redacted["defaults"]["headers"] == {
        "Authorization": "Bearer ${TOKEN}",
        "Cookie": REDACTED,
        "Accept": "*/*",
    }
    first = redacted["endpoints"][0]
    assert first["headers"] == {"X-Api-Key": REDACTED, "X-Demo": "1"}
    assert first["query"] == {"access_token": REDACTED, "limit": "10", "api_key": "${KEY}"}
    assert redacted["endpoints"][1]["url"] == "http://u:${PASS}@127.0.0.1:9/b"
    assert redacted["endpoints"][1]["json"] == {"password": "kept"}  # bodies cannot hold ${VAR}
    assert redacted["endpoints"][2]["url"] == f"http://{REDACTED}@127.0.0.1:9/c"
    assert redacted_fields(redacted) == [
        "base_url",
        "defaults.headers.Cookie",
        "endpoints[0].headers.X-Api-Key",
        "endpoints[0].query.access_token",
        "endpoints[2].url",
    ]


def test_redaction_tolerates_odd_shapes() -> None:
    document = {"defaults": "x", "endpoints": ["not a table", {"headers": ["list"]}], "base_url": 3}
    assert redact_document(dict(document)) == document
    assert redacted_fields(document) == []


def test_a_password_in_the_metrics_url_is_redacted_and_reported() -> None:
    document = {
        "base_url": "http://127.0.0.1:8765",
        "metrics_url": "http://scraper:hunter2@127.0.0.1:9100/metrics",
        "endpoints": [{"name": "a", "path": "/"}],
    }
    redacted = redact_document(document)
    assert redacted["metrics_url"] == "http://<redacted>@127.0.0.1:9100/metrics"  # userinfo whole
    assert redacted_fields(redacted) == [
        "metrics_url"
    ]  # so a replay warns it scrapes with "<redacted>"
