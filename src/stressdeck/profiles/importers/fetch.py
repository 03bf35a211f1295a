"""A spec fetched from where it lives (``http://127.0.0.1:8000/openapi.json``): one GET,
bounded in size and time, to this machine unless the user consents to another host.

Fetching is a request the user did not write as load, so it follows the rule of the console:
a host that is not this machine is named and needs consent (``--allow-remote``); a redirect
may not lead from this machine to another one.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from stressdeck.core.errors import InputError
from stressdeck.core.files import LIMITS
from stressdeck.core.hosts import is_loopback_url
from stressdeck.core.redact import redact_url

FETCH_TIMEOUT_S = 15.0  # no answer, or no byte, for this long: the target is stuck
FETCH_DEADLINE_S = 60.0  # the whole document, so a server sending a byte a second cannot hold us
_CHUNK = 256 * 1024


def is_url(source: str) -> bool:
    """True when the importer's source is an http(s) URL rather than a file path."""
    return source.lower().startswith(("http://", "https://"))


class _Redirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, source: str, allow_remote: bool) -> None:
        self.source, self.allow_remote = source, allow_remote

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not self.allow_remote and not is_loopback_url(newurl):
            raise InputError(
                self.source,
                "",
                f"redirected to a host that is not this machine ({redact_url(newurl)}); "
                "add --allow-remote to follow it",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_spec(url: str, *, allow_remote: bool = False, what: str = "OpenAPI") -> bytes:
    """The body of a GET of ``url``, within the size cap for ``what``; raises InputError."""
    source = redact_url(url)
    parts = urlsplit(url)
    if not parts.hostname:
        raise InputError(
            source, "", "expected a URL with a host, e.g. http://127.0.0.1:8000/openapi.json"
        )
    if not allow_remote and not is_loopback_url(url):
        raise InputError(
            source,
            "",
            f"{parts.hostname} is not this machine; add --allow-remote to fetch the spec from it",
        )
    limit = LIMITS[what]
    opener = urllib.request.build_opener(_Redirects(source, allow_remote))
    request = urllib.request.Request(
        url, headers={"Accept": "application/json, application/yaml, */*"}
    )
    try:
        deadline = time.monotonic() + FETCH_DEADLINE_S
        with opener.open(request, timeout=FETCH_TIMEOUT_S) as response:
            data = bytearray()
            while len(data) <= limit:
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                data += chunk
                if time.monotonic() > deadline:
                    raise InputError(
                        source, "", f"the spec took longer than {FETCH_DEADLINE_S:.0f} s to arrive"
                    )
    except urllib.error.HTTPError as exc:
        raise InputError(
            source, "", f"cannot fetch the spec: HTTP {exc.code} {exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise InputError(source, "", f"cannot fetch the spec ({reason})") from None
    if len(data) > limit:
        raise InputError(source, "", f"larger than {limit // (1024 * 1024)} MiB")
    return bytes(data)
