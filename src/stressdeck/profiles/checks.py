"""Response checks: declarative assertions on each response, like k6's ``check()``.

A check is ``SUBJECT OPERATOR [VALUE]``, parsed once when the profile loads:

- subjects: ``status``, ``body``, ``header:NAME``, a JSON path (``$.status``, ``$.items[0].id``)
- operators: ``==`` ``!=`` ``<`` ``<=`` ``>`` ``>=``, ``contains``, ``matches`` (a regular
  expression, searched), ``exists``; ``not`` before ``contains``, ``matches`` or ``exists``
- values: a number, ``true``, ``false``, ``null``, a quoted string (``'ok'`` or ``"ok"``, taken
  literally: no escapes, so ``'^\\{'`` is the regex it looks like), or one bare word (``json``)

A check that fails is counted as a check failure of its endpoint, never as an error: errors
stay what the transport and the status said. Checks see the body as kept (the first MiB).
A ``matches`` check searches with the time bound of the regex extractor: a pattern that
backtracks for ever on some body fails that response under a name of its own
(``timed_out(expr)``), and the worker goes on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import regex

from stressdeck.profiles.chain import REGEX_TIMEOUT_S, ResponseBody, json_lookup, json_path_steps

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
WORDS = ("contains", "matches", "exists")
SYNTAX = 'SUBJECT OP VALUE, e.g. "status == 200", "$.status == \'ok\'", "body contains \'x\'"'

# Which operators make sense on which subject: a check that can never pass is a typo.
_ALLOWED = {
    "status": COMPARISONS,
    "body": ("contains", "matches"),
    "header": ("==", "!=", "contains", "matches", "exists"),
    "json": (*COMPARISONS, "contains", "matches", "exists"),
}
_HEADER_NAME = r"header:[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_JSON_PATH = r"\$(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\['[^']*'\]|\[\"[^\"]*\"\])*"
_CHECK = re.compile(
    rf"^(?P<subject>status|body|{_HEADER_NAME}|{_JSON_PATH})"
    r"\s*(?P<op>==|!=|<=|>=|<|>|(?:not\s+)?(?:contains|matches|exists)\b)"
    r"\s*(?P<value>.*)$",
    re.DOTALL,
)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


@dataclass(frozen=True)
class Check:
    """One parsed check; ``expr`` is the text as written (spaces collapsed), its name in reports."""

    expr: str
    subject: str  # "status", "body", "header" or "json"
    op: str  # one of COMPARISONS or WORDS
    negate: bool = False
    value: Any = None
    header: str = ""
    steps: tuple[str | int, ...] = ()
    # A compiled ``regex`` pattern: it takes a timeout, ``re`` has none (and holds the GIL).
    pattern: Any = field(default=None, compare=False)

    @property
    def needs_body(self) -> bool:
        return self.subject in ("body", "json")

    def passes(self, status: int, headers: Mapping[str, str], body: ResponseBody) -> bool:
        """Judge one response; ``headers`` must look names up case-insensitively (as HTTP does).

        Raises ``CheckTimedOut`` when a ``matches`` search runs past its time bound."""
        if self.subject == "status":
            return _compare(self.op, status, self.value)
        if self.subject == "body":
            return self._judge(True, body.text)
        if self.subject == "header":
            value = headers.get(self.header)
            return self._judge(value is not None, value)
        found, node = json_lookup(body, self.steps)
        return self._judge(found, node)

    def _judge(self, found: bool, actual: Any) -> bool:
        if self.op == "exists":
            return found != self.negate
        if not found:
            # Nothing to compare: "not contains" of a missing header is not a pass either.
            return False
        if self.op == "contains":
            return _contains(actual, self.value) != self.negate
        if self.op == "matches":
            assert self.pattern is not None
            if not isinstance(actual, str):
                return self.negate  # as before: "not matches" passes a non-string
            try:
                # concurrent: the GIL is released, so a worker on a thread never freezes the
                # runner (nor Ctrl+C) while it searches.
                hit = self.pattern.search(actual, timeout=REGEX_TIMEOUT_S, concurrent=True)
            except TimeoutError:
                raise CheckTimedOut(self.expr) from None
            return (hit is not None) != self.negate
        return _compare(self.op, actual, self.value)


def parse_check(text: str) -> Check:
    """Parse one check; raises ValueError saying what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a check like {SYNTAX}")
    expr = " ".join(text.split()) if "'" not in text and '"' not in text else text.strip()
    match = _CHECK.match(expr)
    if not match:
        raise ValueError(
            f"expected {SYNTAX}; subjects are status, body, header:NAME and $.json.path"
        )
    raw_subject, raw_op, raw_value = match.group("subject", "op", "value")
    words = raw_op.split()
    negate, op = (True, words[1]) if len(words) == 2 else (False, words[0])
    subject, header, steps = _subject(raw_subject)
    if op not in _ALLOWED[subject]:
        raise ValueError(
            f"{op!r} does not apply to {raw_subject}; expected one of "
            + ", ".join(_ALLOWED[subject])
        )
    raw_value = raw_value.strip()
    if op == "exists":
        if raw_value:
            raise ValueError(f"expected nothing after 'exists', got {raw_value!r}")
        return Check(expr, subject, op, negate, header=header, steps=steps)
    if not raw_value:
        raise ValueError(f"expected a value after {raw_op!r}")
    value = _value(raw_value)
    pattern = None
    if op == "matches":
        if not isinstance(value, str):
            raise ValueError("expected a quoted regular expression after 'matches'")
        try:
            pattern = regex.compile(value)
        except regex.error as exc:
            raise ValueError(f"expected a valid regular expression ({exc})") from None
    elif op == "contains" and subject in ("body", "header") and not isinstance(value, str):
        value = raw_value  # body contains 42: the text "42"
    elif subject == "status" and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"expected a status code after {raw_op!r}, got {raw_value!r}")
    elif op in ("<", "<=", ">", ">=") and not _is_number(value):
        raise ValueError(f"expected a number after {raw_op!r}, got {raw_value!r}")
    elif subject == "header" and not isinstance(value, str):
        value = raw_value  # header:x-count == 3 compares the text "3"
    return Check(expr, subject, op, negate, value, header, steps, pattern)


def run_checks(
    checks: Sequence[Check],
    status: int,
    headers: Mapping[str, str],
    body: bytes | ResponseBody | None,
) -> tuple[int, list[str]]:
    """Judge one response by every check: how many passed, and the expressions that failed.

    The one entry point of the response path: any HTTP client calls it with what it received.
    """
    kept = body if isinstance(body, ResponseBody) else ResponseBody(body or b"")
    failed = []
    for check in checks:
        try:
            if not check.passes(status, headers, kept):
                failed.append(check.expr)
        except CheckTimedOut:
            failed.append(timed_out(check.expr))
    return len(checks) - len(failed), failed


class CheckTimedOut(Exception):
    """A ``matches`` check ran past REGEX_TIMEOUT_S on one response."""


def timed_out(expr: str) -> str:
    """The failure name of a check whose search gave up: counted apart from plain failures
    (the marker first, so a name cut short in a table still says it)."""
    return f"timed out after {REGEX_TIMEOUT_S * 1000:g} ms: {expr}"


# -- parsing helpers -----------------------------------------------------------------------


def _subject(text: str) -> tuple[str, str, tuple[str | int, ...]]:
    if text in ("status", "body"):
        return text, "", ()
    if text.startswith("header:"):
        return "header", text[len("header:") :], ()
    return "json", "", json_path_steps(text)


def _value(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        inner = text[1:-1]
        if text[0] in inner:
            raise ValueError(
                f"expected one quoted value, got {text!r} (use the other quote inside)"
            )
        return inner
    if text in _LITERALS:
        return _LITERALS[text]
    if _NUMBER.match(text):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {text!r}")
        return int(text) if re.fullmatch(r"-?\d+", text) else number
    if text[0] in "'\"":
        raise ValueError(f"expected a closing {text[0]} in {text!r}")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"expected one value, got {text!r} (quote a value with spaces)")
    return text


# -- evaluation helpers --------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    # JSON's true is not 1 and "200" is not 200: a check compares like JSON, not like Python.
    if _is_number(actual) and _is_number(expected):
        pass
    elif type(actual) is not type(expected):
        return op == "!="
    if op == "==":
        return bool(actual == expected)
    if op == "!=":
        return bool(actual != expected)
    if not _is_number(actual):
        return False
    if op == "<":
        return bool(actual < expected)
    if op == "<=":
        return bool(actual <= expected)
    if op == ">":
        return bool(actual > expected)
    return bool(actual >= expected)


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list):
        return any(_compare("==", item, expected) for item in actual)
    if isinstance(actual, dict):
        return isinstance(expected, str) and expected in actual
    return False
