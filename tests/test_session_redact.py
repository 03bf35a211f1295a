"""Redaction of literal secrets in the profile a session keeps."""

from __future__ import annotations

import pytest

from stressdeck.core import redact
from stressdeck.core.redact import (
    REDACTED,
    is_reference,
    is_secret_name,
    is_secret_query,
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


# Every name the redactor keeps, written out here: a name dropped from (or added to) its lists
# fails below rather than passing quietly. Header names are matched whole, name parts anywhere.
HEADER_NAMES = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-csrf-token",
)
NAME_PARTS = ("token", "secret", "password", "passwd", "api_key", "api-key", "apikey", "session")
QUERY_ONLY_NAMES = ("key", "sig", "signature", "auth", "pwd", "sid", "credentials", "code")


def test_the_lists_here_are_the_redactors_lists() -> None:
    assert set(HEADER_NAMES) == redact._SECRET_NAMES
    assert set(NAME_PARTS) == set(redact._SECRET_PARTS)
    assert set(QUERY_ONLY_NAMES) == redact._SECRET_QUERY_NAMES


SECRET_NAMES = [
    *HEADER_NAMES,
    *(name.title() for name in HEADER_NAMES),
    *(f"x-my-{part}" for part in NAME_PARTS),
    *(f"My_{part.upper()}_id" for part in NAME_PARTS),
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_every_secret_name_is_redacted_in_headers_query_tables_and_urls(name: str) -> None:
    document = {
        "base_url": f"http://127.0.0.1:9/?{name}=s3cret&limit=1",
        "defaults": {"headers": {name: "s3cret", "Accept": "*/*"}},
        "endpoints": [
            {
                "name": "a",
                "url": f"http://127.0.0.1:9/a?{name}=s3cret",
                "headers": {name: "s3cret"},
                "query": {name: "s3cret", "limit": "1"},
            },
            {"name": "kept", "path": "/b", "headers": {name: "Bearer ${TOKEN}"}},
        ],
    }
    redacted = redact_document(document)
    assert "s3cret" not in repr(redacted)
    assert redacted["base_url"] == f"http://127.0.0.1:9/?{name}={REDACTED}&limit=1"
    assert redacted["defaults"]["headers"] == {name: REDACTED, "Accept": "*/*"}
    assert redacted["endpoints"][0]["query"] == {name: REDACTED, "limit": "1"}
    assert redacted["endpoints"][1]["headers"] == {name: "Bearer ${TOKEN}"}  # a reference stays
    assert redacted_fields(redacted) == [
        "base_url",
        f"defaults.headers.{name}",
        f"endpoints[0].headers.{name}",
        f"endpoints[0].query.{name}",
        "endpoints[0].url",
    ]


@pytest.mark.parametrize("name", [*QUERY_ONLY_NAMES, *(n.upper() for n in QUERY_ONLY_NAMES)])
def test_every_secret_query_name_is_redacted_in_urls_and_query_tables(name: str) -> None:
    assert not is_secret_name(name)  # a header of that name is not a secret ...
    assert is_secret_query(name)  # ... a query parameter is
    document = {
        "base_url": f"http://127.0.0.1:9/?{name}=s3cret",
        "metrics_url": f"/metrics?{name}=s3cret",
        "endpoints": [
            {"name": "a", "url": f"http://127.0.0.1:9/a?x=1&{name}=s3cret#top"},
            {"name": "b", "path": "/b", "query": {name: "s3cret"}, "headers": {name: "shown"}},
        ],
    }
    redacted = redact_document(document)
    assert "s3cret" not in repr(redacted)
    assert redacted["endpoints"][0]["url"] == f"http://127.0.0.1:9/a?x=1&{name}={REDACTED}#top"
    assert redacted["endpoints"][1]["headers"] == {name: "shown"}
    assert redacted_fields(redacted) == [
        "base_url",
        "metrics_url",
        "endpoints[0].url",
        f"endpoints[1].query.{name}",
    ]
