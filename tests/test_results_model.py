"""The one results model: its published schema, and reading back what it writes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from stressdeck.core.errors import InputError
from stressdeck.core.fields import Reader
from stressdeck.engine.results import Results, results_schema
from stressdeck.engine.snapshot import (
    ControlEvent,
    EndpointSummary,
    GeneratorHealth,
    Percentiles,
    TimelinePoint,
)
from stressdeck.profiles.thresholds import ThresholdResult

SCHEMA = Path(__file__).parent.parent / "results.schema.json"


def sample() -> Results:
    # count: one time per answer (9 x 200 and 1 x 503), as a file reads it back.
    latency = Percentiles(
        p50=1.25, p90=2.0, p95=2.5, p99=4.125, p999=9.0, max=12.0, mean=1.5, count=10
    )
    endpoint = EndpointSummary(
        name="get item",
        requests=10,
        errors=1,
        rps=5.0,
        error_rate=0.1,
        status_counts={200: 9, 503: 1},
        error_counts={},
        bytes=1000,
        latency_ms=latency,
        service_ms=latency,
        ttfb_ms=latency,
        dropped=2,
        cancelled=1,
        skip_reasons={"missing variable": 3},
        skipped=3,
        chunks=4,
        events=5,
    )
    return Results(
        name="demo",
        target="http://127.0.0.1:1",
        model="open",
        elapsed=2.0,
        stop_reason="duration reached",
        total=EndpointSummary(**{**endpoint.__dict__, "name": "total"}),
        endpoints=(endpoint,),
        thresholds=(ThresholdResult("p95 < 200ms", None, 2.5, True),),
        control_log=(ControlEvent(0.5, "rate", 20.0), ControlEvent(1.0, "pause")),
        timeline=(TimelinePoint(1.0, 1.0, 10, 10.0, 1, 1.0, 2.0, 3.0, 0, rate=20.0),),
        generator=GeneratorHealth(cpu_percent=12.5, processes=2),
    )


def test_the_published_schema_is_the_models() -> None:
    """results.schema.json is generated from the model: regenerate it when the model changes
    (``python -m stressdeck.engine.results > results.schema.json``)."""
    assert json.loads(SCHEMA.read_text()) == results_schema()
    jsonschema.Draft202012Validator.check_schema(results_schema())


def test_to_dict_validates_and_reads_back_equal() -> None:
    results = sample()
    document = json.loads(json.dumps(results.to_dict()))  # through JSON, as a file would be
    jsonschema.validate(document, results_schema())
    assert Results.from_dict(Reader("r.json"), document) == results


def test_a_counter_the_schema_does_not_know_is_refused() -> None:
    document = sample().to_dict()
    document["summary"]["total"]["surprises"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, results_schema())


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        (
            lambda d: d["summary"]["total"].pop("requests"),
            "results.summary.total.requests",
            "missing",
        ),
        (
            lambda d: d["summary"]["total"]["status_counts"].update({"2000": 1}),
            "results.summary.total.status_counts.2000",
            "expected an HTTP status code",
        ),
        (
            lambda d: d["summary"]["total"]["latency_ms"].update({"p42": 1.0}),
            "results.summary.total.latency_ms.p42",
            "unknown percentile",
        ),
        (lambda d: d["timeline"][0].update({"rps": "fast"}), "results.timeline[0].rps", "a number"),
    ],
)
def test_a_bad_results_document_is_one_line_naming_the_field(
    change: object, field: str, expected: str
) -> None:
    document = sample().to_dict()
    change(document)  # type: ignore[operator]
    with pytest.raises(InputError) as caught:
        Results.from_dict(Reader("r.json"), document)
    assert caught.value.line().startswith(f"r.json: {field}: ")
    assert expected in caught.value.line()
