"""A profile from a curl command line, as copied from a terminal or a browser's "Copy as cURL".

The command is split the way a POSIX shell would (quotes, backslash escapes, line
continuations and the ``$'...'`` strings browsers emit); everything after a pipe or ``;``
is ignored. Options curl would reject here, or that cannot become a profile (forms,
uploads), are one-line InputErrors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from stressdeck.core.errors import InputError, describe
from stressdeck.core.redact import redact_url
from stressdeck.core.units import format_duration
from stressdeck.profiles.importers.common import (
    Secrets,
    body_fields,
    header_value,
    place_query,
    profile_document,
    read_text_file,
    split_url,
    unique_name,
)
from stressdeck.profiles.profile import METHODS
from stressdeck.profiles.routes import parse_connect_to

SOURCE = "curl"

# Options that take a value, by every spelling, and the kind of each (``_HANDLERS`` acts on it).
_WITH_VALUE = {
    "-X": "request",
    "--request": "request",
    "-H": "header",
    "--header": "header",
    "-d": "data",
    "--data": "data",
    "--data-ascii": "data",
    "--data-raw": "data-raw",
    "--data-binary": "data-binary",
    "--data-urlencode": "data-urlencode",
    "--json": "json",
    "-u": "user",
    "--user": "user",
    "--oauth2-bearer": "bearer",
    "-A": "user-agent",
    "--user-agent": "user-agent",
    "-e": "referer",
    "--referer": "referer",
    "-b": "cookie",
    "--cookie": "cookie",
    "--url": "url",
    "-m": "max-time",
    "--max-time": "max-time",
    "-F": "form",
    "--form": "form",
    "--form-string": "form",
    "-T": "upload",
    "--upload-file": "upload",
    "-x": "proxy",
    "--proxy": "proxy",
    "--resolve": "resolve",
    "--connect-to": "connect-to",
    "--unix-socket": "unix-socket",
    "--abstract-unix-socket": "abstract-unix-socket",
    "-K": "config",
    "--config": "config",
}
_IGNORED_WITH_VALUE = {
    "-o",
    "--output",
    "-w",
    "--write-out",
    "--connect-timeout",
    "--retry",
    "--retry-delay",
    "--retry-max-time",
    "--cacert",
    "--capath",
    "--cert",
    "-E",
    "--key",
    "--cert-type",
    "--key-type",
    "-c",
    "--cookie-jar",
    "-D",
    "--dump-header",
    "-r",
    "--range",
    "--limit-rate",
    "--max-redirs",
    "-U",
    "--proxy-user",
    "-y",
    "--speed-time",
    "-Y",
    "--speed-limit",
    "-z",
    "--time-cond",
    "-C",
    "--continue-at",
    "--interface",
    "--local-port",
    "-Q",
    "--quote",
    "-t",
    "--telnet-option",
    "-P",
    "--ftp-port",
    "--trace",
    "--trace-ascii",
    "--stderr",
    "--max-filesize",
    "--dns-servers",
    "--proxy-header",
    "--ciphers",
    "--pinnedpubkey",
    "--expect100-timeout",
    "--keepalive-time",
    "--happy-eyeballs-timeout-ms",
    "--parallel-max",
    "--variable",
    "--aws-sigv4",
    "--netrc-file",
    "--output-dir",
    "--create-file-mode",
}
_FLAGS = {
    "-G": "get",
    "--get": "get",
    "-I": "head",
    "--head": "head",
    "-k": "insecure",
    "--insecure": "insecure",
}
_SHORT_FLAGS = set("0123456#aBfgGhiIjJkLlMnNOpqRsSvVZ")
_KNOWN_LONG_FLAGS = {
    "--compressed",
    "--location",
    "--silent",
    "--show-error",
    "--verbose",
    "--include",
    "--fail",
    "--fail-with-body",
    "--globoff",
    "--http1.0",
    "--http1.1",
    "--http2",
    "--http2-prior-knowledge",
    "--http3",
    "--no-buffer",
    "--path-as-is",
    "--ipv4",
    "--ipv6",
    "--tlsv1",
    "--tlsv1.2",
    "--tlsv1.3",
    "--no-keepalive",
    "--tcp-nodelay",
    "--location-trusted",
    "--progress-bar",
    "--no-progress-meter",
    "--raw",
    "--remote-name",
    "--remote-name-all",
    "--remote-header-name",
    "--ssl-reqd",
    "--ssl",
    "--no-sessionid",
    "--no-alpn",
    "--no-npn",
    "--anyauth",
    "--basic",
    "--digest",
    "--ntlm",
    "--negotiate",
    "--netrc",
    "--netrc-optional",
    "--create-dirs",
    "--styled-output",
    "--no-styled-output",
    "--disable",
    "--parallel",
    "--fail-early",
    "--retry-connrefused",
    "--retry-all-errors",
    "--tr-encoding",
    "--ssl-no-revoke",
    "--proxy-insecure",
    "--post301",
    "--post302",
    "--post303",
    "--xattr",
    "--suppress-connect-headers",
    "--false-start",
}
_SHORT_WITH_VALUE = {o[1] for o in (*_WITH_VALUE, *_IGNORED_WITH_VALUE) if len(o) == 2}
_ANSI_C = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def split_command(command: str) -> tuple[list[str], str | None]:
    """Words of a shell command line, and the operator that ended it early (``|``, ``;`` ...)."""
    words: list[str] = []
    word: list[str] = []
    started = False
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if c in " \t\r\n":
            if started:
                words.append("".join(word))
                word, started = [], False
            i += 1
        elif c == "\\":
            if command.startswith("\r\n", i + 1):
                i += 3
            elif i + 1 < n and command[i + 1] == "\n":
                i += 2  # a line continuation
            else:
                word.append(command[i + 1 : i + 2])
                started, i = True, i + 2
        elif c == "'":
            end = command.find("'", i + 1)
            if end < 0:
                raise InputError(SOURCE, "", "unterminated ' quote in the command")
            word.append(command[i + 1 : end])
            started, i = True, end + 1
        elif c == "$" and command.startswith("$'", i):
            text, i = _ansi_c(command, i + 2)
            word.append(text)
            started = True
        elif c == '"':
            text, i = _double_quoted(command, i + 1)
            word.append(text)
            started = True
        elif c in "|;&<>" or (c == "#" and not started):
            if c == "#":
                end = command.find("\n", i)
                i = n if end < 0 else end
                continue
            if started and not (c in "<>" and "".join(word).isdigit()):  # "2>/dev/null"
                words.append("".join(word))
            return words, command[i:].strip().splitlines()[0]
        else:
            word.append(c)
            started, i = True, i + 1
    if started:
        words.append("".join(word))
    return words, None


def _double_quoted(command: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(command):
        c = command[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\" and i + 1 < len(command) and command[i + 1] in '$`"\\\n':
            if command[i + 1] != "\n":
                out.append(command[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise InputError(SOURCE, "", 'unterminated " quote in the command')


def _ansi_c(command: str, i: int) -> tuple[str, int]:
    """The body of a ``$'...'`` string, which Chrome and Firefox use for bodies with newlines."""
    out: list[str] = []
    while i < len(command):
        c = command[i]
        if c == "'":
            return "".join(out), i + 1
        if c != "\\" or i + 1 >= len(command):
            out.append(c)
            i += 1
            continue
        code = command[i + 1]
        if code in _ANSI_C:
            out.append(_ANSI_C[code])
            i += 2
        elif code in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = ""
            while (
                len(digits) < width
                and i + 2 + len(digits) < len(command)
                and command[i + 2 + len(digits)] in "0123456789abcdefABCDEF"
            ):
                digits += command[i + 2 + len(digits)]
            out.append(
                chr(int(digits, 16)) if digits and int(digits, 16) <= 0x10FFFF else "\\" + code
            )
            i += 2 + len(digits)
        elif code in "01234567":
            digits = command[i + 1 : i + 4]
            digits = digits[: len(digits) - len(digits.lstrip("01234567"))] or code
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        else:
            out.append("\\" + code)
            i += 2
    raise InputError(SOURCE, "", "unterminated $' quote in the command")


def _options(words: list[str], warnings: list[str]) -> list[tuple[str, str]]:
    """(kind, value) pairs in order; bare words are ("url", word)."""
    found: list[tuple[str, str]] = []
    i = 1
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-") or word == "-":
            found.append(("url", word))
            continue
        if word.startswith("--"):
            name, _, attached = word.partition("=")
            if name in _WITH_VALUE or name in _IGNORED_WITH_VALUE:
                if not attached:
                    if i >= len(words):
                        raise InputError(SOURCE, name, "expected a value after the option")
                    attached, i = words[i], i + 1
                if name in _WITH_VALUE:
                    found.append((_WITH_VALUE[name], attached))
            elif name in _FLAGS:
                found.append((_FLAGS[name], ""))
            elif name not in _KNOWN_LONG_FLAGS:
                warnings.append(f"ignored the option {name} (not something a profile can express)")
            continue
        for position, letter in enumerate(word[1:], start=1):  # -sSLk, -XPOST, -HName:value
            option = "-" + letter
            if letter in _SHORT_WITH_VALUE:
                value = word[position + 1 :]
                if not value:
                    if i >= len(words):
                        raise InputError(SOURCE, option, "expected a value after the option")
                    value, i = words[i], i + 1
                if option in _WITH_VALUE:
                    found.append((_WITH_VALUE[option], value))
                break
            if option in _FLAGS:
                found.append((_FLAGS[option], ""))
            elif letter not in _SHORT_FLAGS:
                warnings.append(
                    f"ignored the option {option} (not something a profile can express)"
                )
    return found


def _read_file(option: str, name: str, *, strip_newlines: bool) -> str:
    if name == "-":
        raise InputError(
            SOURCE, option, "expected data or @FILE, not @- (stdin is not part of a profile)"
        )
    try:
        text = read_text_file(name, "curl data")
    except InputError as exc:  # named after the option that read it: "--data: file not found: ..."
        raise InputError(SOURCE, option, f"{exc.message}: {describe(name)}") from None
    return text.replace("\r", "").replace("\n", "") if strip_newlines else text


def _data(kind: str, value: str, warnings: list[str]) -> str:
    option = {"data": "--data", "data-binary": "--data-binary", "json": "--json"}.get(
        kind, "--" + kind
    )
    if kind in ("data", "data-binary", "json") and value.startswith("@"):
        text = _read_file(option, value[1:], strip_newlines=kind == "data")
        warnings.append(_copied(option, value[1:], text))
        return text
    if kind != "data-urlencode":
        return value
    # curl's forms: "content", "=content", "name=content", "@file", "name@file".
    name, equals, content = value.partition("=")
    if equals:
        return f"{name}={quote(content, safe='')}" if name else quote(content, safe="")
    name, at, file = value.partition("@")
    if at:
        text = _read_file("--data-urlencode", file, strip_newlines=False)
        warnings.append(_copied("--data-urlencode", file, text))
        content = quote(text, safe="")
        return f"{name}={content}" if name else content
    return quote(value, safe="")


def _copied(option: str, name: str, text: str) -> str:
    """A local file's content goes into the profile: the user should know, it may be private."""
    return (
        f"copied the content of the local file {name} ({len(text):,} characters, "
        f"from {option} @FILE) into the profile's body"
    )


@dataclass
class _Request:
    """What the options of one curl command say, as its handlers read them in order."""

    warnings: list[str]
    secrets: Secrets = field(default_factory=Secrets)
    headers: dict[str, str] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)
    method: str | None = None
    data: list[tuple[str, str]] = field(default_factory=list)
    get: bool = False
    head: bool = False
    insecure: bool = False
    timeout: str | None = None
    # Where the command connected (profiles/routes.py), as the profile will.
    connect_to: list[str] = field(default_factory=list)
    unix_socket: str | None = None
    proxy: str | None = None


def _url(request: _Request, kind: str, value: str) -> None:
    request.urls.append(value)


def _method(request: _Request, kind: str, value: str) -> None:
    request.method = value.upper()
    if request.method not in METHODS:
        raise InputError(
            SOURCE, "-X", f"expected one of {', '.join(METHODS)}, got {describe(value)}"
        )


def _header(request: _Request, kind: str, value: str) -> None:
    _add_header(request.headers, value, request.secrets, request.warnings)


def _body(request: _Request, kind: str, value: str) -> None:
    request.data.append((kind, _data(kind, value, request.warnings)))


def _user(request: _Request, kind: str, value: str) -> None:
    request.headers["Authorization"] = request.secrets.basic_auth(value.partition(":")[0])


def _bearer(request: _Request, kind: str, value: str) -> None:
    request.headers["Authorization"] = "Bearer " + request.secrets.reference(
        "STRESSDECK_AUTHORIZATION", "the Bearer credentials of the Authorization header"
    )


def _named_header(name: str) -> Callable[[_Request, str, str], None]:
    def handle(request: _Request, kind: str, value: str) -> None:
        request.headers[name] = value

    return handle


def _cookie(request: _Request, kind: str, value: str) -> None:
    if "=" in value:
        request.headers["Cookie"] = request.secrets.header("Cookie", value)
    else:
        request.warnings.append(f"ignored the cookie file {describe(value)} (-b with a file name)")


def _max_time(request: _Request, kind: str, value: str) -> None:
    seconds = _seconds(value)
    request.timeout = format_duration(seconds) if seconds else None


def _refuse_upload(request: _Request, kind: str, value: str) -> None:
    raise InputError(
        SOURCE,
        "-F" if kind == "form" else "-T",
        "multipart forms and file uploads cannot be imported; "
        "expected --data, --data-binary or --json",
    )


def _proxy(request: _Request, kind: str, value: str) -> None:
    url = value if "://" in value else f"http://{value}"  # curl's default scheme for -x
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        request.warnings.append(
            f"ignored the proxy {describe(redact_url(url))}: only an http:// proxy is "
            "supported; runs connect to the target directly"
        )
        return
    if parts.password is not None:
        # The password goes to the environment, never into the profile.
        secret = request.secrets.reference("STRESSDECK_PROXY_PASSWORD", "the proxy's password")
        netloc = f"{parts.username}:{secret}@{parts.netloc.rpartition('@')[2]}"
        url = parts._replace(netloc=netloc).geturl()
    request.proxy = url


def _resolve(request: _Request, kind: str, value: str) -> None:
    # curl's --resolve HOST:PORT:ADDR[,ADDR...] is --connect-to HOST:PORT:ADDR:PORT.
    entry = value.lstrip("+")
    if entry.startswith("-"):
        return  # removes an entry from curl's DNS cache: nothing to map
    host, _, rest = entry.partition(":")
    port, _, addresses = rest.partition(":")
    address = addresses.split(",")[0]
    if not (host and port and address):
        raise InputError(SOURCE, "--resolve", f"expected HOST:PORT:ADDRESS, got {describe(value)}")
    if "," in addresses:
        request.warnings.append(f"--resolve {describe(value)}: connects to the first address only")
    request.connect_to.append(f"{host}:{port}:{address}:{port}")


def _connect_to(request: _Request, kind: str, value: str) -> None:
    parse_connect_to(value, SOURCE, "--connect-to")  # one line now, not from the profile
    request.connect_to.append(value)


def _unix_socket(request: _Request, kind: str, value: str) -> None:
    request.unix_socket = value


def _abstract_socket(request: _Request, kind: str, value: str) -> None:
    request.warnings.append(
        f"ignored --abstract-unix-socket {describe(value)}: runs connect to the URL's own "
        "host and port; check that this is where the load should go"
    )


def _refuse_config(request: _Request, kind: str, value: str) -> None:
    raise InputError(SOURCE, "-K", "expected the options on the command line, not in a config file")


def _flag(name: str) -> Callable[[_Request, str, str], None]:
    def handle(request: _Request, kind: str, value: str) -> None:
        setattr(request, name, True)

    return handle


# Each option kind ``_options`` yields, and what it does to the request; other kinds (the
# ones curl has that change nothing a load test sends) are read and left alone.
_HANDLERS: dict[str, Callable[[_Request, str, str], None]] = {
    "url": _url,
    "request": _method,
    "header": _header,
    **dict.fromkeys(("data", "data-raw", "data-binary", "data-urlencode", "json"), _body),
    "user": _user,
    "bearer": _bearer,
    "user-agent": _named_header("User-Agent"),
    "referer": _named_header("Referer"),
    "cookie": _cookie,
    "max-time": _max_time,
    "form": _refuse_upload,
    "upload": _refuse_upload,
    "proxy": _proxy,
    "resolve": _resolve,
    "connect-to": _connect_to,
    "unix-socket": _unix_socket,
    "abstract-unix-socket": _abstract_socket,
    "config": _refuse_config,
    "get": _flag("get"),
    "head": _flag("head"),
    "insecure": _flag("insecure"),
}


def profile_from_curl(command: str, *, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A profile document (one endpoint per URL) and warnings for the user; raises InputError."""
    if not isinstance(command, str) or not command.strip():
        raise InputError(SOURCE, "", "expected a curl command line, got nothing")
    warnings: list[str] = []
    if re.search(r'(?:^|\s)\^"', command):  # cmd.exe quoting: every argument is ^"...^"
        raise InputError(
            SOURCE,
            "",
            'expected a POSIX shell command; this looks like "Copy as cURL (cmd)", '
            'use "Copy as cURL (bash)"',
        )
    words, rest = split_command(command.strip())
    if not words or Path(words[0]).name not in ("curl", "curl.exe"):
        shown = words[0] if words else command.strip()
        raise InputError(
            SOURCE, "", f'expected a command starting with "curl", got {describe(shown)}'
        )
    if rest:
        warnings.append(
            f"ignored everything from {describe(rest)} on (only the curl command is imported)"
        )
    request = _Request(warnings)
    for kind, value in _options(words, warnings):
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(request, kind, value)
    if not request.urls:
        raise InputError(SOURCE, "", "expected a URL in the command")
    headers, data = request.headers, request.data
    body_text: str | None = None
    if data:
        separator = "" if all(kind == "json" for kind, _ in data) else "&"
        body_text = separator.join(text for _, text in data)
        if any(kind == "json" for kind, _ in data):
            for header in ("Content-Type", "Accept"):
                if header_value(headers, header) is None:
                    headers[header] = "application/json"
    method = request.method
    if method is None:
        method = "HEAD" if request.head else ("POST" if data and not request.get else "GET")
    endpoints, base_url = _endpoints(
        request.urls,
        method,
        headers,
        body_text,
        request.get,
        request.timeout,
        request.secrets,
        warnings,
    )
    document = profile_document(
        name or endpoints[0]["name"],
        "Imported from a curl command.",
        base_url,
        endpoints,
        insecure=request.insecure,
    )
    routes: dict[str, Any] = {
        "connect_to": request.connect_to,
        "unix_socket": request.unix_socket,
        "proxy": request.proxy,
    }
    document.update({key: value for key, value in routes.items() if value})
    return document, [*request.secrets.warnings(), *warnings]


def _add_header(headers: dict[str, str], value: str, secrets: Secrets, warnings: list[str]) -> None:
    if value.startswith("@"):
        warnings.append(f"ignored the header file {describe(value[1:])} (-H @FILE)")
        return
    name, colon, content = value.partition(":")
    if not colon:
        if value.endswith(";"):  # curl's spelling of a header with an empty value
            headers[value[:-1].strip()] = ""
            return
        raise InputError(SOURCE, "-H", f'expected "Name: value", got {describe(value)}')
    name, content = name.strip(), content.strip()
    if not name or any(c in name for c in " \t\r\n"):
        raise InputError(SOURCE, "-H", f'expected "Name: value", got {describe(value)}')
    if not content:
        return  # "-H 'Accept:'" tells curl not to send its own header: nothing to send here either
    for existing in list(headers):
        if existing.lower() == name.lower():
            del headers[existing]
    headers[name] = secrets.header(name, content)


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        raise InputError(
            SOURCE, "-m", f"expected a number of seconds, got {describe(value)}"
        ) from None
    return seconds if 0 < seconds < float("inf") else None


def _endpoints(
    urls: list[str],
    method: str,
    headers: dict[str, str],
    body_text: str | None,
    get: bool,
    timeout: str | None,
    secrets: Secrets,
    warnings: list[str],
) -> tuple[list[dict[str, Any]], str]:
    endpoints: list[dict[str, Any]] = []
    seen: set[str] = set()
    base_url: str | None = None
    for position, url in enumerate(urls):
        if "://" not in url:
            url = "http://" + url  # what curl assumes
        own_headers = dict(headers)
        where = "URL" if len(urls) == 1 else f"URL {position + 1}"
        origin, path, pairs = split_url(url, SOURCE, where, secrets, own_headers)
        if get and body_text:
            pairs += _form_pairs(body_text)
        path, query = place_query(path, pairs, secrets)
        endpoint: dict[str, Any] = {
            "name": unique_name(f"{method} {path.split('?')[0]}", seen),
            "method": method,
        }
        if base_url is None or origin == base_url:
            base_url = origin
            endpoint["path"] = path
        else:
            endpoint["url"] = origin + path
        endpoint["headers"] = own_headers
        endpoint["query"] = query
        if body_text is not None and not get:
            content_type = header_value(own_headers, "content-type")
            fields = body_fields(
                body_text, content_type, f"endpoints[{position}].body", secrets, warnings
            )
            if content_type is None and "body" in fields:
                own_headers["Content-Type"] = (
                    "application/x-www-form-urlencoded"  # as curl sends it
                )
            endpoint.update(fields)
        endpoint["timeout"] = timeout
        endpoints.append(endpoint)
    assert base_url is not None
    return endpoints, base_url


def _form_pairs(text: str) -> list[tuple[str, str]]:
    pairs = parse_qsl(text, keep_blank_values=True)
    return pairs if pairs or not text else [(text, "")]
