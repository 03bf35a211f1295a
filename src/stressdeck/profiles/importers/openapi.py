"""A profile from an OpenAPI 3.x description (JSON or YAML): one endpoint per operation.

Values come from the spec's own examples and defaults first; where there are none, a
type-appropriate placeholder is used and a warning says which endpoint to check. What
cannot be sent as written (multipart uploads, TRACE, callbacks) is skipped and reported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from stressdeck.core.errors import InputError, describe
from stressdeck.core.hosts import check_url
from stressdeck.core.redact import redact_url
from stressdeck.profiles.importers.common import (
    env_name,
    is_json_type,
    profile_document,
    unique_name,
)
from stressdeck.profiles.importers.fetch import is_url
from stressdeck.profiles.importers.spec import (
    MISSING,
    Spec,
    as_text,
    build_example,
    example_of,
    placeholder,
    read_spec,
    schema_value,
)

OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SERVER_VARIABLE = re.compile(r"\{([^{}]+)\}")
_PATH_PARAMETER = re.compile(r"\{([^{}/]+)\}")


def profile_from_openapi(
    path: str | Path, *, base_url: str | None = None, allow_remote: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """A profile document from an OpenAPI 3.x spec (a file, or an http(s) URL to fetch it
    from), and warnings for the user; raises InputError."""
    fetched_from = str(path) if is_url(str(path)) else None
    source = redact_url(str(path)) if fetched_from else str(path)
    document = read_spec(path, allow_remote=allow_remote)
    if "swagger" in document:
        raise InputError(
            source,
            "swagger",
            "expected OpenAPI 3.x, got Swagger 2.0 (convert it first, e.g. with swagger2openapi)",
        )
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise InputError(
            source,
            "openapi",
            f'expected a version like "3.0.3" or "3.1.0", got {describe(version)}',
        )
    spec = Spec(source, document)
    base = _base_url(spec, base_url, fetched_from)
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise InputError(
            source, "paths", f"expected a table of paths with operations, got {describe(paths)}"
        )
    if document.get("webhooks"):
        spec.warn("skipped the webhooks: they are requests the API sends, not ones it receives")
    endpoints: list[dict[str, Any]] = []
    seen: set[str] = set()
    for route, item in paths.items():
        where = f"paths.{route}"
        if not isinstance(route, str) or not route.startswith("/"):
            spec.warn(f"skipped {where}: expected a path starting with /")
            continue
        item = spec.resolve(item, where)
        if item is None:
            continue
        if not isinstance(item, dict):
            raise spec.fail(where, f"expected a path item table, got {describe(item)}")
        shared = _parameter_list(spec, item.get("parameters"), f"{where}.parameters")
        for method in OPERATIONS:
            if method not in item:
                continue
            operation = item[method]
            if not isinstance(operation, dict):
                raise spec.fail(
                    f"{where}.{method}", f"expected an operation table, got {describe(operation)}"
                )
            endpoint = _endpoint(
                spec, route, method, operation, shared, security=document.get("security")
            )
            if endpoint is not None:
                endpoint["name"] = unique_name(_endpoint_name(route, method, operation), seen)
                endpoints.append(endpoint)
    if not endpoints:
        raise InputError(source, "paths", "expected at least one operation that can be imported")
    deletes = sum(1 for endpoint in endpoints if endpoint["method"] == "DELETE")
    if deletes:
        spec.warn(
            f"the profile includes {deletes} DELETE operation(s): remove them before running "
            "against data you care about"
        )
    raw_info = document.get("info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    title = (
        info.get("title") if isinstance(info.get("title"), str) and info["title"].strip() else None
    )
    if fetched_from:
        name = title or urlsplit(fetched_from).hostname or "openapi"
        described = f"Imported from the OpenAPI description at {source}"
    else:
        name = title or Path(source).stem
        described = f"Imported from the OpenAPI description {Path(source).name}"
    if isinstance(info.get("version"), (str, int, float)):
        described += f" (version {info['version']})"
    result = profile_document(name, described + ".", base, endpoints)
    return result, [*spec.secrets.warnings(), *spec.warnings]


# An endpoint's name is a column of an 80-column table: past this, a short method and path
# says more than a long name cut off.
MAX_NAME = 32


def _endpoint_name(route: str, method: str, operation: dict[str, Any]) -> str:
    """The operationId when a person wrote it; else the summary; else ``METHOD /path``.

    Frameworks make an operationId from the function, path and method when none is given
    (FastAPI: ``get_item_items__item_id__get``): unique, but unreadable in a table.
    """
    fallback = f"{method.upper()} {route}"
    label = operation.get("operationId")
    if isinstance(label, str) and label.strip() and not _machine_made(label, route, method):
        if len(label) <= MAX_NAME:
            return label.strip()
    summary = operation.get("summary")
    if isinstance(summary, str) and summary.strip() and len(summary.strip()) <= MAX_NAME:
        return " ".join(summary.split())
    return fallback


def _machine_made(label: str, route: str, method: str) -> bool:
    """FastAPI's default: the function name, the path with every non-word character as ``_``
    and the method, e.g. ``read_item_items__item_id__get`` for ``GET /items/{item_id}``."""
    path_part = re.sub(r"\W", "_", route)
    lowered = label.lower()
    return lowered.endswith(f"_{method}") and path_part.lower() in lowered


def _base_url(spec: Spec, given: str | None, fetched_from: str | None = None) -> str:
    servers = spec.document.get("servers")
    server: dict[str, Any] = (
        servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], dict) else {}
    )
    url = server.get("url")
    if isinstance(url, str):
        url = _fill_server_variables(spec, url, server.get("variables"))
    if given is not None:
        check_url("--base-url", "", given)
        if isinstance(url, str) and url.startswith("/") and url.strip("/"):
            # A relative server URL is a path prefix: keep it under the given host.
            prefix = "/" + url.strip("/")
            if not given.rstrip("/").endswith(prefix):
                spec.warn(f"paths are under {prefix} (servers[0].url), appended to --base-url")
                return given.rstrip("/") + prefix
        return given.rstrip("/") or given
    if fetched_from is not None and (url is None or (isinstance(url, str) and url.startswith("/"))):
        # Served by the API itself (FastAPI and most frameworks list no servers): the
        # requests go where the spec came from, under a relative server's path.
        parts = urlsplit(fetched_from)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        prefix = "/" + url.strip("/") if isinstance(url, str) and url.strip("/") else ""
        return origin + prefix
    if url is None:
        raise spec.fail(
            "servers", "no server URL in the spec; expected --base-url http://HOST:PORT"
        )
    if not isinstance(url, str):
        raise spec.fail("servers[0].url", f"expected a URL, got {describe(url)}")
    if not urlsplit(url).scheme:
        raise spec.fail(
            "servers[0].url", f"{describe(url)} is relative; expected --base-url http://HOST:PORT"
        )
    check_url(spec.source, "servers[0].url", url)
    return url.rstrip("/") or url


def _fill_server_variables(spec: Spec, url: str, variables: Any) -> str:
    variables = variables if isinstance(variables, dict) else {}

    def value(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1))
        default = variable.get("default") if isinstance(variable, dict) else None
        if default is None:
            raise spec.fail(f"servers[0].variables.{match.group(1)}", "expected a default value")
        return str(default)

    return _SERVER_VARIABLE.sub(value, url)


def _parameter_list(spec: Spec, value: Any, where: str) -> dict[tuple[str, str], dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise spec.fail(where, f"expected a list of parameters, got {describe(value)}")
    parameters = {}
    for index, item in enumerate(value):
        item = spec.resolve(item, f"{where}[{index}]")
        if item is None:
            continue
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or item.get("in") not in ("path", "query", "header", "cookie")
        ):
            raise spec.fail(
                f"{where}[{index}]",
                "expected a parameter with a name and in = path, query, header or cookie",
            )
        parameters[(item["name"], item["in"])] = item
    return parameters


def _endpoint(
    spec: Spec,
    route: str,
    method: str,
    operation: dict[str, Any],
    shared: dict[tuple[str, str], dict[str, Any]],
    security: Any,
) -> dict[str, Any] | None:
    label = f"{method.upper()} {route}"
    where = f"paths.{route}.{method}"
    if method == "trace":
        spec.warn(f"skipped {label}: TRACE is not a method a load test sends")
        return None
    if operation.get("callbacks"):
        spec.warn(f"{label}: its callbacks are not imported (the API makes those requests)")
    parameters = {
        **shared,
        **_parameter_list(spec, operation.get("parameters"), f"{where}.parameters"),
    }
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    cookies: list[str] = []
    path = route
    for (name, kind), parameter in parameters.items():
        if kind != "path" and not parameter.get("required"):
            continue
        if kind == "header" and name.lower() in ("accept", "content-type", "authorization"):
            continue  # OpenAPI ignores these as parameters: the body and security decide them
        text = _parameter_value(spec, parameter, label, f"{kind} parameter {name!r}")
        if text is None:
            continue
        if kind == "path":
            path = path.replace("{" + name + "}", quote(text, safe="-._~"))
        elif kind == "query":
            query[name] = text
        elif kind == "header":
            headers[name] = text
        else:
            cookies.append(f"{name}={text}")
    for name in _PATH_PARAMETER.findall(path):
        spec.warn(f"{label}: path parameter {name!r} is not described; used 1")
        path = path.replace("{" + name + "}", "1")
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    _security(spec, operation.get("security", security), headers, query, label)
    endpoint: dict[str, Any] = {
        "method": method.upper(),
        "path": path,
        "headers": headers,
        "query": query,
    }
    if "requestBody" in operation:
        body = _request_body(spec, operation["requestBody"], label, f"{where}.requestBody", headers)
        if body is None:
            return None
        endpoint.update(body)
    endpoint["expect"] = _expected(operation.get("responses"))
    return endpoint


def _parameter_value(spec: Spec, parameter: dict[str, Any], label: str, what: str) -> str | None:
    value = example_of(spec, parameter, label)
    if value is MISSING:
        schema = spec.resolve(parameter.get("schema"), label)
        if schema is None and isinstance(parameter.get("content"), dict):
            media = next(iter(parameter["content"].values()), None)
            value = example_of(spec, media, label) if isinstance(media, dict) else MISSING
            schema = spec.resolve(media.get("schema"), label) if isinstance(media, dict) else None
        if value is MISSING and isinstance(schema, dict):
            value = schema_value(schema)
        if value is MISSING:
            value = placeholder(schema if isinstance(schema, dict) else {})
            spec.warn(
                f"{label}: {what} has no example; used {describe(as_text(value))}, edit it in the profile"
            )
    if isinstance(value, dict):
        spec.warn(f"{label}: {what} is an object; not sent")
        return None
    return as_text(value)


def _request_body(
    spec: Spec, node: Any, label: str, where: str, headers: dict[str, str]
) -> dict[str, Any] | None:
    body = spec.resolve(node, where)
    if body is None:
        return {}
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, dict) or not content:
        raise spec.fail(
            f"{where}.content", f"expected a table of media types, got {describe(content)}"
        )
    media_type = (
        next((m for m in content if is_json_type(str(m))), None)
        or next(
            (m for m in content if str(m).lower().startswith("application/x-www-form-urlencoded")),
            None,
        )
        or next((m for m in content if str(m).lower().startswith("text/")), None)
    )
    if media_type is None:
        kinds = ", ".join(str(m) for m in content)
        spec.warn(
            f"skipped {label}: its request body ({kinds}) cannot be built; "
            "expected JSON, a urlencoded form or text"
        )
        return None
    media = spec.resolve(content[media_type], f"{where}.content.{media_type}")
    media = media if isinstance(media, dict) else {}
    value = example_of(spec, media, label)
    if value is MISSING:
        value = build_example(spec, media.get("schema"), label)
        spec.warn(f"{label}: the request body was built from its schema; check the values")
    media_type = str(media_type)
    if media_type.split(";")[0].strip().lower() != "application/json":
        headers["Content-Type"] = media_type
    if is_json_type(media_type):
        if isinstance(value, (dict, list)):
            return {"json": value}
        return {"body": json.dumps(value)}
    if media_type.lower().startswith("application/x-www-form-urlencoded"):
        pairs = value.items() if isinstance(value, dict) else []
        return {"body": urlencode([(k, as_text(v)) for k, v in pairs])}
    return {"body": value if isinstance(value, str) else as_text(value)}


def _security(
    spec: Spec, requirements: Any, headers: dict[str, str], query: dict[str, str], label: str
) -> None:
    """Credentials the operation needs, as ``${VAR}`` references (the first alternative)."""
    if (
        not isinstance(requirements, list)
        or not requirements
        or not isinstance(requirements[0], dict)
    ):
        return
    components = spec.document.get("components")
    schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    schemes = schemes if isinstance(schemes, dict) else {}
    for scheme_name in requirements[0]:
        scheme = spec.resolve(schemes.get(scheme_name), f"securitySchemes.{scheme_name}")
        if not isinstance(scheme, dict):
            spec.warn(f"{label}: security scheme {scheme_name!r} is not defined")
            continue
        kind = str(scheme.get("type", "")).lower()
        http_scheme = str(scheme.get("scheme", "")).lower()
        if kind == "http" and http_scheme == "basic":
            headers["Authorization"] = spec.secrets.basic_auth("")
        elif kind in ("oauth2", "openidconnect") or (kind == "http" and http_scheme == "bearer"):
            headers["Authorization"] = "Bearer " + spec.secrets.reference(
                "STRESSDECK_AUTHORIZATION", "the Bearer credentials of the Authorization header"
            )
        elif kind == "apikey" and isinstance(scheme.get("name"), str):
            name, place = scheme["name"], scheme.get("in")
            reference = spec.secrets.reference(env_name(name), f"the API key {name!r} ({place})")
            if place == "header":
                headers[name] = reference
            elif place == "query":
                query[name] = reference
            elif place == "cookie":
                headers["Cookie"] = "; ".join(
                    filter(None, [headers.get("Cookie"), f"{name}={reference}"])
                )
        else:
            spec.warn(
                f"{label}: security scheme {scheme_name!r} ({kind or 'unknown'}) is not supported; "
                "add the credentials to the profile by hand"
            )


def _expected(responses: Any) -> list[int] | None:
    if not isinstance(responses, dict):
        return None
    codes = sorted({int(str(code)) for code in responses if re.fullmatch(r"2\d\d", str(code))})
    return codes or None
