"""The results of a run: one model for ``--json``, sessions, reports, compare and the console.

``Results.from_snapshot`` takes the final (or any) snapshot; ``to_dict`` is the published JSON
shape (``results.schema.json``, generated from these classes by ``results_schema``);
``from_dict`` reads it back with one-line errors. The per-endpoint figures are the engine's
own ``EndpointSummary``: adding a counter there adds it to every output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stressdeck.core.fields import Reader
from stressdeck.engine.bottleneck import Bottleneck, bottleneck_schema
from stressdeck.engine.snapshot import (
    ENDPOINT_POINT_FIELDS,
    LATENCY_KEYS,
    LIVE_ONLY_FIELDS,
    MAX_CONTROL_EVENTS,
    PERCENTILE_KEYS,
    ControlEvent,
    EndpointSeries,
    EndpointSummary,
    GeneratorHealth,
    NodeHealth,
    Percentiles,
    Snapshot,
    TimelinePoint,
    field_default,
)
from stressdeck.engine.timeline import DEFAULT_MAX_POINTS
from stressdeck.observe.metrics import MetricsSnapshot
from stressdeck.profiles.thresholds import ThresholdResult

TOTAL = "total"


@dataclass(frozen=True)
class Results:
    """What a run measured, as kept after it: the ``--json`` document, typed."""

    name: str
    target: str
    model: str
    elapsed: float
    stop_reason: str
    total: EndpointSummary
    endpoints: tuple[EndpointSummary, ...]
    thresholds: tuple[ThresholdResult, ...] = ()
    control_log: tuple[ControlEvent, ...] = ()
    timeline: tuple[TimelinePoint, ...] = ()
    generator: GeneratorHealth = GeneratorHealth()
    target_metrics: MetricsSnapshot | None = None  # None: the run had no metrics URL
    nodes: tuple[NodeHealth, ...] = ()  # a cluster run's machines; empty: this machine
    bottleneck: Bottleneck = Bottleneck()  # what limited the load (engine/bottleneck.py)
    # Each endpoint's per-second timeline; empty in files from before it was kept.
    endpoint_timeline: tuple[EndpointSeries, ...] = ()

    @property
    def passed(self) -> bool:
        """Every threshold held (a run without thresholds passes)."""
        return all(result.ok for result in self.thresholds)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, name: str = "") -> Results:
        return cls(
            name=name,
            target=snapshot.target,
            model=snapshot.model,
            elapsed=snapshot.elapsed,
            stop_reason=snapshot.stop_reason,
            total=snapshot.total,
            endpoints=snapshot.endpoints,
            thresholds=snapshot.thresholds,
            control_log=snapshot.control_log,
            timeline=snapshot.timeline,
            generator=snapshot.health,
            target_metrics=snapshot.target_metrics,
            nodes=snapshot.nodes,
            bottleneck=snapshot.bottleneck,
            endpoint_timeline=snapshot.endpoint_timeline,
        )

    def to_dict(self) -> dict[str, Any]:
        """The documented results document (``--json``; a session's ``results``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "target": self.target,
            "model": self.model,
            "elapsed": round(self.elapsed, 3),
            "stop_reason": self.stop_reason,
            "summary": {
                TOTAL: self.total.to_dict(),
                "endpoints": {ep.name: ep.to_dict() for ep in self.endpoints},
            },
            "thresholds": [result.to_dict() for result in self.thresholds],
            "control_log": [event.to_dict() for event in self.control_log],
            "timeline": [point.to_dict() for point in self.timeline],
            "generator": self.generator.to_dict(),
            "bottleneck": self.bottleneck.to_dict(),
        }
        if self.target_metrics is not None:
            out["target_metrics"] = self.target_metrics.to_dict()
        if self.nodes:
            out["nodes"] = [node.to_dict() for node in self.nodes]
        if self.endpoint_timeline:
            out["endpoint_timeline"] = {
                series.name: series.to_dict() for series in self.endpoint_timeline
            }
        return out

    @classmethod
    def from_dict(
        cls,
        r: Reader,
        table: Mapping[str, Any],
        where: str = "results",
        histograms: Mapping[str, Mapping[str, Percentiles]] | None = None,
    ) -> Results:
        """Read back ``to_dict``'s document; raises InputError naming the field.

        ``histograms`` ("total" or an endpoint name -> "latency"/"service"/"ttfb" ->
        percentiles from a saved HDR histogram) fills figures the document does not hold.
        """
        measured = histograms or {}
        summary = r.table(table, "summary", where)
        endpoints_table = r.table(summary, "endpoints", f"{where}.summary")
        endpoints = tuple(
            EndpointSummary.from_dict(
                r,
                r.as_table(value, f"{where}.summary.endpoints.{name}"),
                str(name),
                f"{where}.summary.endpoints.{name}",
                measured.get(str(name)),
            )
            for name, value in endpoints_table.items()
        )
        total = EndpointSummary.from_dict(
            r,
            r.table(summary, TOTAL, f"{where}.summary"),
            TOTAL,
            f"{where}.summary.total",
            measured.get(TOTAL),
        )
        metrics = r.table(table, "target_metrics", where, required=False)
        series_table = r.table(table, "endpoint_timeline", where, required=False)
        return cls(
            name=r.string(table, "name", where),
            target=r.string(table, "target", where),
            model=r.string(table, "model", where),
            elapsed=r.seconds(table, "elapsed", where),
            stop_reason=r.string(table, "stop_reason", where, default=""),
            total=total,
            endpoints=endpoints,
            thresholds=tuple(
                ThresholdResult.from_dict(r, r.as_table(item, path), path)
                for path, item in _items(r, table, "thresholds", where)
            ),
            # No more than a live run keeps: its control log's and timeline's own bounds.
            control_log=tuple(
                ControlEvent.from_dict(r, r.as_table(item, path), path)
                for path, item in _items(r, table, "control_log", where, MAX_CONTROL_EVENTS + 1)
            ),
            timeline=tuple(
                TimelinePoint.from_dict(r, r.as_table(item, path), path)
                for path, item in _items(r, table, "timeline", where, DEFAULT_MAX_POINTS)
            ),
            generator=GeneratorHealth.from_dict(
                r, r.table(table, "generator", where, required=False), f"{where}.generator"
            ),
            target_metrics=MetricsSnapshot.from_dict(r, metrics, f"{where}.target_metrics")
            if metrics
            else None,
            nodes=tuple(
                NodeHealth.from_dict(r, r.as_table(item, path), path)
                for path, item in _items(r, table, "nodes", where)
            ),
            bottleneck=Bottleneck.from_dict(
                r, r.table(table, "bottleneck", where, required=False), f"{where}.bottleneck"
            ),
            endpoint_timeline=tuple(
                EndpointSeries.from_dict(
                    r,
                    r.as_table(value, f"{where}.endpoint_timeline.{name}"),
                    str(name),
                    f"{where}.endpoint_timeline.{name}",
                )
                for name, value in series_table.items()
            ),
        )


def _items(
    r: Reader, table: Mapping[str, Any], key: str, where: str, most: int | None = None
) -> list[tuple[str, Any]]:
    items = (
        r.array(table, key, where, required=False)
        if most is None
        else r.bounded_list(table, key, where, most, "a run keeps")
    )
    return [(f"{where}.{key}[{index}]", item) for index, item in enumerate(items)]


# -- the published JSON Schema, generated from the model --------------------------------------

_NUMBER = {"type": "number"}
# A latency where nothing was answered: null (no data), never 0.
_NUMBER_OR_NULL = {"anyOf": [_NUMBER, {"type": "null"}]}
_COUNT = {"type": "integer", "minimum": 0}


def _endpoint_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for item in dataclasses.fields(EndpointSummary):
        if item.name in LIVE_ONLY_FIELDS:
            continue
        default = field_default(item)
        if isinstance(default, Percentiles):
            properties[item.name] = {
                "type": "object",
                "properties": {key: _NUMBER_OR_NULL for key in PERCENTILE_KEYS},
                "additionalProperties": False,
            }
        elif isinstance(default, dict):
            properties[item.name] = {"type": "object", "additionalProperties": _COUNT}
        elif isinstance(default, float):
            properties[item.name] = _NUMBER
        elif isinstance(default, str):
            properties[item.name] = {"type": "string"}
        else:
            properties[item.name] = _COUNT
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _plain_schema(cls: type, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        kind = str(item.type)
        if kind.startswith("int"):
            schema: dict[str, Any] = {"type": "integer"}
        elif kind.startswith("float"):
            schema = _NUMBER
        elif kind.startswith("bool"):
            schema = {"type": "boolean"}
        else:
            schema = {"type": "string"}
        if "None" in kind:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[item.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _timeline_schema() -> dict[str, Any]:
    # p50/p95/p99: null in a second nothing answered (a session leaves them out).
    schema = _plain_schema(
        TimelinePoint, optional=("rate", "dropped", "service_p50", "bottleneck", *LATENCY_KEYS)
    )
    schema["properties"]["bottleneck"] = bottleneck_schema()
    return schema


def results_schema() -> dict[str, Any]:
    """The JSON Schema of ``Results.to_dict()``, published as ``results.schema.json``."""
    endpoint = _endpoint_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "stressdeck results",
        "description": "The document `stressdeck run --json` writes; a session's `results`.",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "target": {"type": "string"},
            "model": {"enum": ["closed", "open"]},
            "elapsed": _NUMBER,
            "stop_reason": {"type": "string"},
            "summary": {
                "type": "object",
                "properties": {
                    TOTAL: endpoint,
                    "endpoints": {"type": "object", "additionalProperties": endpoint},
                },
                "required": [TOTAL, "endpoints"],
                "additionalProperties": False,
            },
            "thresholds": {
                "type": "array",
                # Added with sustained thresholds: older documents do not hold them.
                "items": _plain_schema(ThresholdResult, optional=("breached_for", "failed_at")),
            },
            "control_log": {"type": "array", "items": _plain_schema(ControlEvent)},
            "timeline": {"type": "array", "items": _timeline_schema()},
            "generator": _plain_schema(GeneratorHealth),
            "bottleneck": bottleneck_schema(),
            "target_metrics": {"type": "object"},
            "nodes": {"type": "array", "items": _plain_schema(NodeHealth)},
            "endpoint_timeline": {
                "type": "object",
                "description": "Per endpoint, its per-second timeline as columns of one "
                "length: seconds in which it did nothing are left out; old points of a long "
                "run are merged two into one (span from the first one's start to t).",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        key: {
                            "type": "array",
                            "items": _COUNT
                            if key in ("requests", "errors", "dropped")
                            else _NUMBER,
                        }
                        for key in ENDPOINT_POINT_FIELDS
                    },
                    "required": list(ENDPOINT_POINT_FIELDS),
                    "additionalProperties": False,
                },
            },
        },
        "required": [
            "name",
            "target",
            "model",
            "elapsed",
            "stop_reason",
            "summary",
            "thresholds",
            "control_log",
            "timeline",
            "generator",
        ],
        "additionalProperties": False,
    }


if __name__ == "__main__":  # python -m stressdeck.engine.results > results.schema.json
    import json

    print(json.dumps(results_schema(), indent=2))
