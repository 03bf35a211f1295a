"""An OpenAPI document as the importer reads it: JSON or YAML, local $ref, example values.

Example values come from the spec first (``example``, ``examples``, ``default``, ``const``,
the first ``enum`` value); a body with none is built from its schema, depth-limited so a
self-referencing schema still ends.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.core.redact import redact_url
from stressdeck.profiles.importers.common import (
    Secrets,
    parse_json,
    read_json_file,
    read_text_file,
)
from stressdeck.profiles.importers.fetch import fetch_spec, is_url

MAX_DEPTH = 6  # of a body built from a schema: deep enough for real payloads, safe for cycles
MAX_PROPERTIES = 30
MAX_REF_HOPS = 32
PLACEHOLDER_STRINGS = {
    "uuid": "00000000-0000-4000-8000-000000000000",
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "password": "password",
    "byte": "c3RyZXNzZGVjaw==",
    "time": "00:00:00Z",
}
MISSING = object()  # "the spec gives no value", as distinct from a null example


def read_spec(path: str | Path, *, allow_remote: bool = False) -> dict[str, Any]:
    """JSON or YAML by the file name, or fetched from an http(s) URL (JSON when it looks like
    JSON, else YAML, which also reads JSON)."""
    source = str(path)
    if is_url(source):
        source = redact_url(source)
        try:
            text = fetch_spec(str(path), allow_remote=allow_remote).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(source, "", "expected UTF-8 text") from None
        document = parse_json(source, text) if text.lstrip().startswith("{") else None
        if document is None:
            document = _parse_yaml(source, text)
    elif Path(source).suffix.lower() == ".json":
        document = read_json_file(path, "OpenAPI")
    else:
        document = _parse_yaml(source, read_text_file(source, "OpenAPI"))
    if not isinstance(document, dict):
        raise InputError(
            source, "", f"expected an OpenAPI document (a table), got {describe(document)}"
        )
    return document


def _parse_yaml(source: str, text: str) -> Any:
    import yaml  # only the OpenAPI importer needs it

    try:
        return yaml.load(text, Loader=_bounded_loader())  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(
            source, "", f"invalid YAML ({exc.problem or exc.context}{where})"
        ) from None
    except _TooLarge as exc:
        raise InputError(source, "", str(exc)) from None
    except yaml.YAMLError as exc:
        raise InputError(source, "", f"invalid YAML ({exc})") from None
    except RecursionError:
        raise InputError(source, "", "document nested too deeply") from None


# Nodes the document would have with every alias written out. Aliases are shared by the YAML
# loader, but everything after it (examples, bodies, the profile written) walks them as
# copies: a 1 KB "billion laughs" file is a billion nodes. Real specs are far below this.
MAX_EXPANDED_NODES = 1_000_000


class _TooLarge(Exception):
    pass


def _bounded_loader() -> type:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """A SafeLoader that refuses a document whose aliases expand past the bound."""

        def compose_document(self) -> Any:
            node = super().compose_document()
            if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
                raise _TooLarge(
                    f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes "
                    "(an alias bomb?); expected a spec without such repetition"
                )
            return node

    return BoundedLoader


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """Nodes under ``node`` with aliases expanded, each shared node sized once."""
    import yaml

    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node that holds itself counts once, not forever
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, sizes)
            if size > MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, sizes) + _expanded_size(value, sizes)
            if size > MAX_EXPANDED_NODES:
                break
    sizes[id(node)] = size
    return size


class Spec:
    """The document, with $ref resolution and the warnings gathered while reading it."""

    def __init__(self, source: str, document: dict[str, Any]) -> None:
        self.source = source
        self.document = document
        self.warnings: list[str] = []
        self.secrets = Secrets()

    def resolve(self, node: Any, where: str) -> Any:
        """Follow local ``#/...`` references; an external or broken one yields None (and a warning)."""
        for _ in range(MAX_REF_HOPS):
            if not isinstance(node, dict) or "$ref" not in node:
                return node
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                self.warn(f"{where}: only local $ref (#/...) are followed, not {describe(ref)}")
                return None
            node = self.document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    self.warn(f"{where}: $ref {describe(ref)} points at nothing")
                    return None
        self.warn(f"{where}: $ref chain too long (a cycle?)")
        return None

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def fail(self, where: str, message: str) -> InputError:
        return InputError(self.source, where, message)


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(as_text(item) for item in value)
    if value is None:
        return ""
    return str(value)


def example_of(spec: Spec, node: dict[str, Any], label: str) -> Any:
    """A parameter's or media type's ``example``, else the first of its ``examples``."""
    if "example" in node:
        return plain(node["example"])
    examples = node.get("examples")
    if isinstance(examples, dict):
        for key, example in examples.items():
            example = spec.resolve(example, f"{label} examples.{key}")
            if isinstance(example, dict) and "value" in example:
                return plain(example["value"])
    return MISSING


def schema_value(schema: dict[str, Any]) -> Any:
    """The schema's own example, default, const or first enum value."""
    for key in ("example", "default", "const"):
        if key in schema:
            return plain(schema[key])
    for key in ("examples", "enum"):  # "examples" is JSON Schema's list form (OpenAPI 3.1)
        if isinstance(schema.get(key), list) and schema[key]:
            return plain(schema[key][0])
    return MISSING


def placeholder(schema: dict[str, Any]) -> Any:
    kind = schema_type(schema)
    if kind == "integer":
        return int(schema["minimum"]) if isinstance(schema.get("minimum"), (int, float)) else 1
    if kind == "number":
        return schema["minimum"] if isinstance(schema.get("minimum"), (int, float)) else 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return PLACEHOLDER_STRINGS.get(str(schema.get("format", "")), "string")


def schema_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1: ["string", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema:
            return "array"
    return kind if isinstance(kind, str) else None


def build_example(spec: Spec, schema: Any, label: str, depth: int = 0) -> Any:
    """A minimal value for ``schema``: required properties and those with examples or defaults."""
    schema = spec.resolve(schema, label)
    if not isinstance(schema, dict):
        return None
    value = schema_value(schema)
    if value is not MISSING:
        return value
    if depth >= MAX_DEPTH:
        return placeholder(schema) if schema_type(schema) not in ("object", "array") else None
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            piece = build_example(spec, part, label, depth + 1)
            if isinstance(piece, dict):
                merged.update(piece)
        if merged or schema_type(schema) is None:
            return merged
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return build_example(spec, schema[key][0], label, depth + 1)
    kind = schema_type(schema)
    if kind == "array":
        item = build_example(spec, schema.get("items"), label, depth + 1)
        return [item] if item is not None else []
    if kind != "object":
        return placeholder(schema) if kind else None
    raw_properties = schema.get("properties")
    properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
    required = set(schema["required"]) if isinstance(schema.get("required"), list) else set()
    writable = {
        name: item
        for name, item in ((name, spec.resolve(item, label)) for name, item in properties.items())
        if isinstance(item, dict) and not item.get("readOnly")
    }  # readOnly: responses only
    chosen = [
        name
        for name, item in writable.items()
        if name in required or schema_value(item) is not MISSING
    ]
    if not chosen and not required:
        chosen = list(writable)
    result = {}
    for name in chosen[:MAX_PROPERTIES]:
        value = build_example(spec, properties[name], label, depth + 1)
        if value is not None:
            result[str(name)] = value
    return result


def plain(value: Any, depth: int = 0) -> Any:
    """YAML gives dates and other types JSON and TOML bodies cannot carry: make them text."""
    if depth > 64:
        return None
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float) and (not math.isfinite(value)):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
