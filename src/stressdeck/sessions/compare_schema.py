"""The JSON Schema of ``compare --format json`` (and ``--json FILE``), published as
``compare.schema.json``: ``python -m stressdeck.sessions.compare_schema > compare.schema.json``."""

from __future__ import annotations

from typing import Any

from stressdeck.sessions.compare import METRICS

_NUMBER = {"type": "number"}
_INTERVAL = {
    "description": "the side's figure and its 95 % interval; null for requests (not judged)",
    "anyOf": [
        {
            "type": "object",
            "properties": {"value": _NUMBER, "low": _NUMBER, "high": _NUMBER},
            "required": ["value", "low", "high"],
            "additionalProperties": False,
        },
        {"type": "null"},
    ],
}
_METRIC = {
    "type": "object",
    "properties": {
        "base": {"description": "latency in ms, rps per second, error rate 0-1", **_NUMBER},
        "new": _NUMBER,
        "base_interval": _INTERVAL,
        "new_interval": _INTERVAL,
        "delta": _NUMBER,
        "percent": {
            "description": "relative change; null when base is 0",
            "type": ["number", "null"],
        },
        "noise": {
            "description": "the change the noise allows (95 %): percent of the base, "
            "percentage points for the error rate; null when not measured",
            "type": ["number", "null"],
        },
        "verdict": {"enum": ["same", "regression", "improvement", "inconclusive"]},
        "reason": {
            "description": "why inconclusive, or 'within noise' for a change beyond the "
            "tolerance but not beyond the noise",
            "type": "string",
        },
    },
    "required": [
        "base",
        "new",
        "base_interval",
        "new_interval",
        "delta",
        "percent",
        "noise",
        "verdict",
        "reason",
    ],
    "additionalProperties": False,
}
_ROW = {
    "type": "object",
    "properties": {
        "name": {"description": "the endpoint, or TOTAL", "type": "string"},
        "in_base": {"type": "boolean"},
        "in_new": {"type": "boolean"},
        "status_changes": {"type": "array", "items": {"type": "string"}},
        "metrics": {
            "description": "empty when the endpoint is on one side only",
            "type": "object",
            "properties": dict.fromkeys(METRICS, _METRIC),
            "additionalProperties": False,
        },
    },
    "required": ["name", "in_base", "in_new", "status_changes", "metrics"],
    "additionalProperties": False,
}
_FIGURE = {
    "type": "object",
    "properties": {"endpoint": {"type": "string"}, "metric": {"enum": list(METRICS)}},
    "required": ["endpoint", "metric"],
}
_LIMIT_SIDE = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "limit": {
                    "description": "the mean of the side's limits; null: no load held every SLO",
                    "type": ["number", "null"],
                },
                "at_least": {"type": "boolean"},
                "searches": {
                    "description": "each session's find-limit document (limit.schema.json)",
                    "type": "array",
                    "items": {"type": "object"},
                },
            },
            "required": ["limit", "at_least", "searches"],
            "additionalProperties": False,
        },
        {"type": "null"},
    ]
}
_LIMIT = {
    "description": "both sides' find-limit answers and their change; null when neither side "
    "is a find-limit search. When compared, it decides the verdict",
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "unit": {"enum": ["req/s", "users"]},
                "slos": {"type": "array", "items": {"type": "string"}},
                "base": _LIMIT_SIDE,
                "new": _LIMIT_SIDE,
                "percent": {"type": ["number", "null"]},
                "margin": {
                    "description": "the change allowed, in the unit: the searches' precision "
                    "plus the step each ended on, at least the tolerance",
                    **_NUMBER,
                },
                "outcome": {"enum": ["lower", "higher", "same", "unsure", "not compared"]},
                "reason": {"type": "string"},
            },
            "required": ["unit", "slos", "base", "new", "percent", "margin", "outcome", "reason"],
            "additionalProperties": False,
        },
        {"type": "null"},
    ],
}
_COMPARISON = {
    "type": "object",
    "properties": {
        "base": {
            "description": "the base side's session files",
            "type": "array",
            "items": {"type": "string"},
        },
        "new": {"type": "array", "items": {"type": "string"}},
        "tolerance": _NUMBER,
        "latency_floor_ms": _NUMBER,
        "confidence": _NUMBER,
        "verdict": {"enum": ["same", "regression", "inconclusive"]},
        "regressed": {"type": "boolean"},
        "regressions": {"type": "array", "items": _FIGURE},
        "inconclusive": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "endpoint": {"type": "string"},
                    "metric": {"enum": list(METRICS)},
                    "reason": {"type": "string"},
                },
                "required": ["endpoint", "metric", "reason"],
                "additionalProperties": False,
            },
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": _ROW},
        "limit": _LIMIT,
    },
    "required": [
        "base",
        "new",
        "tolerance",
        "latency_floor_ms",
        "confidence",
        "verdict",
        "regressed",
        "regressions",
        "inconclusive",
        "warnings",
        "rows",
        "limit",
    ],
    "additionalProperties": False,
}


def comparison_schema() -> dict[str, Any]:
    """One comparison, or (``--baseline`` with several sessions) a list of them."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "stressdeck comparison",
        "description": "What `stressdeck compare --format json` prints and `--json FILE` writes.",
        "anyOf": [
            {"$ref": "#/$defs/comparison"},
            {"type": "array", "items": {"$ref": "#/$defs/comparison"}},
        ],
        "$defs": {"comparison": _COMPARISON},
    }


if __name__ == "__main__":  # python -m stressdeck.sessions.compare_schema > compare.schema.json
    import json

    print(json.dumps(comparison_schema(), indent=2))
