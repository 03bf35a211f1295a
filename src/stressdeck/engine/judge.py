"""What a complete answer is judged by after it is counted: response checks, then extracts."""

from __future__ import annotations

from collections.abc import Mapping

from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder
from stressdeck.profiles.chain import ExtractionFailed, ResponseBody
from stressdeck.profiles.checks import run_checks


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
