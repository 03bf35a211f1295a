"""Request hooks: a Python function of the user's that changes each request before it is sent
(signing it, refreshing a token), for what declarative fields cannot say.

A profile names it as ``hooks = "module:function"``; the module is found in the profile's
directory first, then on ``sys.path``. It is called with the request (method, URL, headers,
body) and the user's variables, in the worker, once per request, and returns the request to
send (or None: the request as it changed it in place). The method cannot change: it decides
how the request is framed.

A hook is code the user runs, with the user's rights, in every worker process: stressdeck
imports it as Python imports any module. Its time is the generator's (it shows in the
generator's CPU and loop lag); an exception it raises is counted as the error class ``hook``
with its message, never as the target's.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stressdeck.core.errors import InputError, describe

HOOK_ERROR = "hook"  # the error class of a request whose hook raised


@dataclass
class HookRequest:
    """The request a hook sees and may change."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None


class HookFailed(Exception):
    """The user's hook raised, or returned something that is not a request."""


HookFunction = Callable[[HookRequest, dict[str, str]], "HookRequest | None"]


@dataclass(frozen=True)
class Hook:
    """``module:function`` found from ``directory``; imported on first use in each process
    (the plan travels to worker processes as data, and the function with it by name)."""

    target: str
    directory: str
    _function: list[HookFunction] = field(default_factory=list, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"target": self.target, "directory": self.directory, "_function": []}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    def function(self) -> HookFunction:
        if not self._function:
            self._function.append(_import(self.target, self.directory))
        return self._function[0]

    def apply(
        self,
        method: str,
        url: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
        variables: Mapping[str, str],
    ) -> tuple[str, tuple[tuple[str, str], ...], bytes | None]:
        """The request as the hook returns it; raises HookFailed with the hook's own words."""
        request = HookRequest(method, url, list(headers), body)
        try:
            returned = self.function()(request, dict(variables))
        except Exception as exc:  # the user's code: any failure is its own error class
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise HookFailed(f"{type(exc).__name__}: {text}"[:160]) from None
        result = request if returned is None else returned
        if not isinstance(result, HookRequest):
            raise HookFailed(f"returned {type(result).__name__}, expected a HookRequest or None")
        body_out = result.body.encode() if isinstance(result.body, str) else result.body
        try:
            pairs = tuple((str(name), str(value)) for name, value in result.headers)
        except (TypeError, ValueError):
            raise HookFailed("headers must be (name, value) pairs") from None
        return str(result.url), pairs, body_out


def load_hook(text: str, source: str, where: str) -> Hook:
    """A hook named ``module:function``, checked now (one line if it cannot be found)."""
    module, _, name = text.partition(":")
    if (
        not module
        or not name
        or not all(part.isidentifier() for part in (*module.split("."), name))
    ):
        raise InputError(source, where, f'expected "module:function", got {describe(text)}')
    directory = str(Path(source).resolve().parent) if source else str(Path.cwd())
    hook = Hook(text, directory)
    try:
        hook.function()
    except HookFailed as failed:
        raise InputError(source, where, str(failed)) from None
    return hook


def _import(target: str, directory: str) -> HookFunction:
    module_name, _, name = target.partition(":")
    if directory not in sys.path:
        sys.path.insert(0, directory)  # the profile's own directory first, as a script's is
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a missing module, or its own import failing
        raise HookFailed(f"cannot import {module_name} ({type(exc).__name__}: {exc})") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise HookFailed(f"{module_name} has no function {name}")
    return function  # type: ignore[no-any-return]
