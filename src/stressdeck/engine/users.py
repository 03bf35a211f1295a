"""What a virtual user carries from one request to the next: its variables (extracted values,
data rows) and its own cookie jar.

Cookies follow RFC 6265 as aiohttp's jar applies it (domain, path, expiry, ``Secure``,
``Max-Age``); IP-address hosts keep cookies too, as browsers and curl do. A jar is bounded:
past ``MAX_COOKIES`` a new cookie is not kept (counted as ignored), and a cookie larger than
``MAX_COOKIE_BYTES`` is ignored, as browsers ignore one over 4 KiB.

Who owns a jar: in the closed model, each user, for the whole run. In the open model, each
flow instance (one pass through ``flow``, or one request when there is no flow): a request
of the open model stands for a new visitor, who arrives with no cookies.
"""

from __future__ import annotations

from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie

import aiohttp
from yarl import URL

MAX_COOKIES = 300  # per user: RFC 6265 asks user agents for at least 50 per domain, 3,000 in all
MAX_COOKIE_BYTES = 4096


class CookieJar:
    """One user's cookies."""

    __slots__ = ("_jar", "ignored")

    def __init__(self) -> None:
        # unsafe: keep cookies from IP-address hosts (127.0.0.1, a pod's address) as browsers
        # do; quote_cookie off: send each value back exactly as the server set it.
        self._jar = aiohttp.CookieJar(unsafe=True, quote_cookie=False)
        self.ignored = 0

    def __len__(self) -> int:
        return len(self._jar)

    def header(self, url: str) -> str | None:
        """The ``Cookie`` header for a request to ``url``, or None when no cookie applies."""
        if not len(self._jar):
            return None
        cookies = self._jar.filter_cookies(URL(url))
        if not cookies:
            return None
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())

    def update(self, set_cookies: Iterable[str], url: str) -> None:
        """Keep what the ``Set-Cookie`` headers of an answer from ``url`` set."""
        parsed: SimpleCookie = SimpleCookie()
        for value in set_cookies:
            if len(value) > MAX_COOKIE_BYTES:
                self.ignored += 1
                continue
            try:
                parsed.load(value)
            except CookieError:
                self.ignored += 1  # a header the cookie grammar cannot read: as browsers do
        if not parsed:
            return
        room = MAX_COOKIES - len(self._jar)
        if room < len(parsed):
            # Cookies the jar already holds may be updated; new ones wait for room.
            known = {cookie.key for cookie in self._jar}
            for name in [name for name in parsed if name not in known][max(room, 0) :]:
                del parsed[name]
                self.ignored += 1
        self._jar.update_cookies(parsed, URL(url))


class UserState(dict[str, str]):
    """A user's variables, as templates and extracts read and write them, and its cookies
    (None when the profile says ``cookies = false``)."""

    __slots__ = ("cookies",)

    def __init__(self, cookies: bool = True) -> None:
        super().__init__()
        self.cookies: CookieJar | None = CookieJar() if cookies else None


def cookie_jar(variables: dict[str, str] | None) -> CookieJar | None:
    """The jar of the user sending, if it keeps one (the clients' one question)."""
    return variables.cookies if isinstance(variables, UserState) else None
