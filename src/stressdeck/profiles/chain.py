"""Request chaining: ``{var}`` templates, values extracted from responses, data feeds.

A template is compiled once when the plan is built; rendering it per request is a join
of literal parts and variable lookups. Variables live per virtual user (or per flow
iteration in the open model): extracted values, the current data row as ``row.NAME``,
and random helpers ``random.uuid``, ``random.int``, ``random.hex``, ``random.string``.
"""

from __future__ import annotations

import csv
import functools
import json
import random
import re
import string
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import regex

# {name} or {row.email}; "${" never reaches here (environment references expand first).
_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)\}")
_JSON_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")

RANDOM: dict[str, Callable[[], str]] = {
    "random.uuid": lambda: str(uuid.uuid4()),
    "random.int": lambda: str(random.randrange(1_000_000_000)),
    "random.hex": lambda: f"{random.getrandbits(64):016x}",
    "random.string": lambda: "".join(random.choices(string.ascii_lowercase + string.digits, k=12)),
}


# A regex extractor's search may take this long on one body, then it counts as failed: a
# catastrophic pattern (``(a|aa)+$`` on a 300 kB body) must not hang a worker.
REGEX_TIMEOUT_S = 0.05


class ExtractionFailed(Exception):
    """An extractor gave up on a response (its work bound was reached)."""


class MissingVariable(Exception):
    """A template needs a variable this user does not have (yet)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Template:
    """Literal parts and variable names, alternating: parts[0] var[0] parts[1] ..."""

    parts: tuple[str, ...]
    names: tuple[str, ...]
    json_escape: bool = False  # values go inside a JSON string: quotes and backslashes escaped

    def render(self, variables: Mapping[str, str]) -> str:
        out = [self.parts[0]]
        for name, literal in zip(self.names, self.parts[1:], strict=False):
            value = variables.get(name)
            if value is None:
                maker = RANDOM.get(name)
                if maker is None:
                    raise MissingVariable(name)
                value = maker()
            if self.json_escape:
                value = json.dumps(value)[1:-1]
            out.append(value)
            out.append(literal)
        return "".join(out)


def compile_template(text: str, *, json_escape: bool = False) -> Template | None:
    """None when ``text`` has no placeholders, so the prepared value is used as is."""
    names = tuple(_PLACEHOLDER.findall(text))
    if not names:
        return None
    return Template(tuple(_PLACEHOLDER.split(text)[::2]), names, json_escape)


def placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


NOT_JSON = object()


class ResponseBody:
    """A kept response body, decoded and parsed at most once however many extracts read it."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    @functools.cached_property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @functools.cached_property
    def json(self) -> Any:
        """The parsed document, or NOT_JSON; a hostile nesting depth is not JSON either."""
        try:
            return json.loads(self.text)
        except (ValueError, RecursionError):
            return NOT_JSON


@dataclass(frozen=True)
class Extractor:
    """Take one value from a response: ``$.json.path``, ``header:Name`` or ``regex:PATTERN``."""

    variable: str
    kind: str  # "json", "header" or "regex"
    expression: str
    steps: tuple[str | int, ...] = ()
    pattern: Any = None  # a compiled ``regex`` pattern (it has timeouts; ``re`` has none)

    @property
    def needs_body(self) -> bool:
        return self.kind != "header"

    def extract(self, headers: Mapping[str, str], body: bytes | ResponseBody) -> str | None:
        if self.kind == "header":
            return headers.get(self.expression)
        if isinstance(body, bytes):
            body = ResponseBody(body)
        if self.kind == "regex":
            assert self.pattern is not None
            try:
                # concurrent: the GIL is released, so a worker on a thread never freezes the runner.
                match = self.pattern.search(body.text, timeout=REGEX_TIMEOUT_S, concurrent=True)
            except TimeoutError:
                raise ExtractionFailed(
                    f"regex gave up after {REGEX_TIMEOUT_S * 1000:g} ms on a {len(body.raw)}-byte body"
                ) from None
            if not match:
                return None
            return match.group(1) if match.groups() else match.group(0)
        found, node = json_lookup(body, self.steps)
        if not found:
            return None
        if node is None or isinstance(node, (dict, list)):
            return json.dumps(node) if node is not None else None
        if isinstance(node, bool):
            return "true" if node else "false"
        return str(node)


def json_path_steps(expression: str) -> tuple[str | int, ...]:
    """``$.data.items[0].id`` as keys and indexes; raises ValueError on anything else."""
    rest = expression[1:]
    steps: list[str | int] = []
    position = 0
    while position < len(rest):
        match = _JSON_PATH_TOKEN.match(rest, position)
        if not match:
            raise ValueError('expected a JSON path like "$.id" or "$.data.items[0].id"')
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name or quoted))
        position = match.end()
    return tuple(steps)


def json_lookup(body: ResponseBody, steps: tuple[str | int, ...]) -> tuple[bool, Any]:
    """Follow a JSON path into a body: (found, value); a body that is not JSON has nothing."""
    node = body.json
    if node is NOT_JSON:
        return False, None
    for step in steps:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return False, None
        elif not isinstance(node, dict) or step not in node:
            return False, None
        node = node[step]
    return True, node


def parse_extractor(variable: str, expression: str) -> Extractor:
    """Raises ValueError with what was expected."""
    if expression.startswith("header:"):
        name = expression[len("header:") :].strip()
        if not name:
            raise ValueError('expected "header:NAME"')
        return Extractor(variable, "header", name)
    if expression.startswith("regex:"):
        try:
            pattern = regex.compile(expression[len("regex:") :])
        except regex.error as exc:
            raise ValueError(f"expected a valid regular expression ({exc})") from None
        return Extractor(variable, "regex", expression, pattern=pattern)
    if expression.startswith("$"):
        return Extractor(variable, "json", expression, steps=json_path_steps(expression))
    raise ValueError('expected "$.json.path", "header:NAME" or "regex:PATTERN"')


class DataFeed:
    """Rows of a data file handed out in order; ``cycle`` wraps around, ``stop`` ends the run.

    Rows are read from the file as they are needed, one at a time, never all kept: a data
    file may be far bigger than memory. With several workers, worker ``i`` of ``n`` takes
    rows i, i+n, i+2n ... so each row is used once per pass across the whole run.
    """

    def __init__(self, spec: DataSource, worker: int = 0, workers: int = 1) -> None:
        self.path = spec.path
        self.mode = spec.mode
        self.position = worker  # the number of the next row this worker takes
        self.step = max(workers, 1)
        self._rows: Iterator[dict[str, str]] | None = None
        self._handle: BinaryIO | None = None
        self._read = 0  # rows read from the file in this pass

    def next_row(self) -> Mapping[str, str] | None:
        while True:
            if self._rows is None:
                self._open()
            assert self._rows is not None
            try:
                row = next(self._rows, None)
            except (OSError, ValueError, csv.Error):
                row = None  # the file changed since it was checked: no more rows
            if row is None:
                passed = self._read
                self.close()
                if self.mode != "cycle" or passed == 0:
                    return None
                self.position %= passed
                continue
            number, self._read = self._read, self._read + 1
            if number == self.position:
                self.position += self.step
                return row

    def _open(self) -> None:
        self._handle = open(self.path, "rb")
        self._rows = iter_rows(self.path, self._handle)
        self._read = 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._rows = None


class DataSource(Protocol):
    """Where a feed reads: the file and what to do when its rows run out."""

    @property
    def path(self) -> str: ...

    @property
    def mode(self) -> str: ...


def row_variables(row: Mapping[str, str], into: MutableMapping[str, str]) -> None:
    for key, value in row.items():
        into[f"row.{key}"] = value


MAX_ROW_BYTES = 1024 * 1024  # one line of a data file; a longer one is refused, not buffered


def iter_rows(path: str, handle: BinaryIO) -> Iterator[dict[str, str]]:
    """CSV with a header line, or JSON lines (``.jsonl``/``.ndjson``) of flat objects, read
    from ``handle`` one line at a time. Raises ValueError (or csv.Error) naming the line."""
    lines = _lines(handle)
    if path.lower().endswith((".jsonl", ".ndjson")):
        for line_number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError(f"line {line_number}: expected a JSON object")
            yield {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return
    for row in csv.DictReader(lines):
        yield {str(k): (v or "") for k, v in row.items() if k is not None}


def _lines(handle: BinaryIO) -> Iterator[str]:
    """Lines as text, each at most MAX_ROW_BYTES; a UTF-8 byte order mark is dropped."""
    number = 0
    while True:
        raw = handle.readline(MAX_ROW_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_ROW_BYTES:
            raise ValueError(f"line {number} is longer than 1 MiB")
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"line {number}: expected UTF-8 text") from None
        yield text
