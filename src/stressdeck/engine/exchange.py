"""Either side of the wire, the same for every client: a request rendered for its user
before it is sent, an answer judged (checks, then extracts) after it is counted."""

from __future__ import annotations

from collections.abc import Mapping

from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder
from stressdeck.profiles.chain import ExtractionFailed, MissingVariable, ResponseBody
from stressdeck.profiles.checks import run_checks
from stressdeck.profiles.hooks import HOOK_ERROR, HookFailed

Rendered = tuple[str, tuple[tuple[str, str], ...], bytes | None]


def render(
    spec: RequestSpec, index: int, recorder: Recorder, variables: Mapping[str, str] | None
) -> Rendered | None:
    """URL, headers and body for this user (templates filled, the hook applied); None when
    the request cannot be sent, which is recorded here: a missing variable is a skip, a
    hook that raised is an error of class ``hook``, never the target's."""
    try:
        return spec.render(variables or {})
    except MissingVariable as missing:
        recorder.record_skipped(index, f"missing {{{missing.name}}}")
    except HookFailed as failed:
        recorder.record_error(index, HOOK_ERROR, 0, f"{HOOK_ERROR}: {failed}")
    return None


def judge(
    spec: RequestSpec,
    index: int,
    ok: bool,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    recorder: Recorder,
    variables: dict[str, str] | None,
) -> None:
    """Run the endpoint's checks on every answer, and its extracts on a good one, recording
    each outcome; extracted values go into the user's ``variables``."""
    kept = ResponseBody(body)  # decoded and parsed once for both
    if spec.checks:
        recorder.record_checks(index, *run_checks(spec.checks, status, headers, kept))
    if spec.extract and ok and variables is not None:
        for extractor in spec.extract:
            try:
                value = extractor.extract(headers, kept)
            except ExtractionFailed as failure:
                recorder.record_extract_failure(index, f"{extractor.variable}: {failure}")
                continue
            if value is not None:
                variables[extractor.variable] = value
