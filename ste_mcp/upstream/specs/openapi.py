"""OpenAPI 3.0/3.1 import: one ``Tool`` per operation (parameters, request body, servers, security)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urljoin

from ste_mcp.upstream.specs.common import HTTP_METHODS, TOOL_NAME_RE, SpecError, pointer, unique_name
from ste_mcp.upstream.specs.reading import Limits, is_url
from ste_mcp.upstream.specs.refs import Resolver, endless_cycle, fix_nullable
from ste_mcp.upstream.tools import AuthRef, Param, Tool
from ste_mcp.upstream.urls import WHOLE_BODY

log = logging.getLogger(__name__)


class UnsupportedOperation(SpecError):
    """An operation the proxy cannot call (e.g. a multipart upload): skipped, the rest still load."""


_IGNORED_HEADERS = {"accept", "content-type", "authorization"}


def _tool_name(operation_id: Any, method: str, path: str) -> str:
    if isinstance(operation_id, str) and TOOL_NAME_RE.match(operation_id):
        return operation_id
    raw = operation_id if isinstance(operation_id, str) and operation_id else f"{method}_{path}"
    name = re.sub(r"[^A-Za-z0-9-]+", "_", raw).strip("_") or method
    return name[:64]


def _server_url(servers: Any, source: str, at: str) -> str | None:
    if not servers:
        return None
    if not isinstance(servers, list) or not isinstance(servers[0], dict) or "url" not in servers[0]:
        raise SpecError(f"{source}#{at}: servers must be a list of objects with a 'url'")
    server = servers[0]
    url = str(server["url"])
    for var, spec in (server.get("variables") or {}).items():
        url = url.replace("{" + var + "}", str((spec or {}).get("default", "")))
    return urljoin(source, url) if is_url(source) else url


def _security_auth(doc: dict[str, Any], requirements: Any, source: str) -> list[AuthRef]:
    """Auth from securitySchemes: the value comes from ``x-env`` or ``STE_MCP_AUTH_<SCHEME>``."""
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    auth: list[AuthRef] = []
    for requirement in requirements or []:
        for scheme_name in requirement or {}:
            scheme = schemes.get(scheme_name)
            if not isinstance(scheme, dict):
                raise SpecError(f"{source}#/components/securitySchemes: no scheme '{scheme_name}'")
            env = scheme.get("x-env") or "STE_MCP_AUTH_" + re.sub(r"[^A-Z0-9]", "_", scheme_name.upper())
            kind, where = scheme.get("type"), scheme.get("in")
            if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
                auth.append(AuthRef(kind="bearer", env=env))
            elif kind == "apiKey" and where in ("header", "query"):
                auth.append(AuthRef(kind=where, name=scheme["name"], env=env))
        if auth:
            break  # the first satisfiable alternative
    return auth


def openapi_tools(
    source: str, doc: dict[str, Any], limits: Limits, base_url: str | None = None
) -> list[Tool]:
    """One tool per operation of the OpenAPI document ``doc`` (``base_url`` replaces its servers)."""
    version = str(doc.get("openapi", ""))
    if not version.startswith("3."):
        raise SpecError(f"{source}#/openapi: unsupported version '{version}' (OpenAPI 3.0 or 3.1 expected)")
    resolver = Resolver(source, doc, limits)
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        raise SpecError(f"{source}#/paths: missing or not an object")
    root_server = _server_url(doc.get("servers"), source, "/servers")
    tools: list[Tool] = []
    skipped: list[str] = []
    taken: set[str] = set()
    for path, item in paths.items():
        limits.remaining()
        item_at = pointer("paths", path)
        item = resolver.deref(source, item, item_at)
        if not isinstance(item, dict):
            raise SpecError(f"{source}#{item_at}: path item must be an object")
        path_server = _server_url(item.get("servers"), source, f"{item_at}/servers")
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op_at = f"{item_at}/{method}"
            op = item[method]
            if not isinstance(op, dict):
                raise SpecError(f"{source}#{op_at}: operation must be an object")
            url = (
                base_url
                or _server_url(op.get("servers"), source, f"{op_at}/servers")
                or path_server
                or root_server
            )
            if not url or not is_url(url):
                raise SpecError(
                    f"{source}#/servers: no absolute server URL for {method.upper()} {path} "
                    "(add 'servers' or wrap the spec in a native YAML with base_url)"
                )
            try:
                tool = _openapi_operation(resolver, doc, source, path, method, item, op, op_at, url)
            except UnsupportedOperation as exc:
                skipped.append(str(exc))
                log.warning("spec: skipping %s %s: %s", method.upper(), path, exc)
                continue
            tool.name = unique_name(tool.name, taken)
            tools.append(tool)
    if skipped and not tools:
        raise SpecError(f"{source}: no operation the proxy can call ({'; '.join(skipped[:3])})")
    return tools


def _openapi_operation(
    resolver: Resolver,
    doc: dict[str, Any],
    source: str,
    path: str,
    method: str,
    item: dict[str, Any],
    op: dict[str, Any],
    op_at: str,
    base_url: str,
) -> Tool:
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[Param] = []
    all_defs: dict[str, Any] = {}
    legacy = str(doc.get("openapi", "")).startswith("3.0")

    def add(name: str, schema: Any, param: Param) -> None:
        if name in properties:  # same name in two locations: qualify the later one
            param.wire_name = param.wire_name or name
            name = param.name = f"{param.location}_{name}"
        properties[name] = fix_nullable(schema) if legacy else schema
        if param.required:
            required.append(name)
        params.append(param)

    declared: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for level, at in (
        (item.get("parameters"), "/".join(op_at.split("/")[:-1])),
        (op.get("parameters"), op_at),
    ):
        for i, raw in enumerate(level or []):
            p_at = f"{at}/parameters/{i}"
            p = resolver.deref(source, raw, p_at)
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or "in" not in p:
                raise SpecError(f"{source}#{p_at}: a parameter needs 'name' (a string) and 'in'")
            declared[(p["name"], p["in"])] = (p, p_at)  # operation level overrides path level
    for (name, location), (p, p_at) in declared.items():
        if location not in ("path", "query", "header", "cookie"):
            raise SpecError(f"{source}#{p_at}/in: unknown location '{location}'")
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            continue
        schema, defs = resolver.schema(source, p.get("schema", {}), f"{p_at}/schema")
        all_defs.update(defs)
        schema = dict(schema) if isinstance(schema, dict) else {}
        if p.get("description") and "description" not in schema:
            schema["description"] = p["description"]
        is_required = bool(p.get("required")) or location == "path"
        add(name, schema, Param(name=name, location=location, required=is_required))

    body_mode = "none"
    body = op.get("requestBody")
    if body is not None:
        b_at = f"{op_at}/requestBody"
        body = resolver.deref(source, body, b_at)
        content = (body or {}).get("content") or {}
        media = next((m for m in content if m == "application/json" or m.endswith("+json")), None)
        body_mode = "json"
        if media is None and "application/x-www-form-urlencoded" in content:
            media, body_mode = "application/x-www-form-urlencoded", "form"
        if media is None:
            raise UnsupportedOperation(
                f"{source}#{b_at}/content: no JSON or form media type (has {sorted(content)})"
            )
        schema, defs = resolver.schema(
            source, content[media].get("schema", {}), f"{b_at}/content/{pointer(media)[1:]}/schema"
        )
        all_defs.update(defs)
        body_required = bool(body.get("required"))
        if isinstance(schema, dict) and set(schema) == {"$ref"}:  # a recursive schema: flatten its definition
            schema = all_defs.get(schema["$ref"].rsplit("/", 1)[-1], schema)
        props = (
            schema.get("properties")
            if isinstance(schema, dict) and schema.get("type", "object") == "object"
            else None
        )
        if isinstance(props, dict) and props and not set(props) & set(properties):
            inner_required = set(schema.get("required") or [])
            for name, prop in props.items():
                add(
                    name,
                    prop,
                    Param(name=name, location="body", required=body_required and name in inner_required),
                )
        else:
            if body.get("description") and isinstance(schema, dict) and "description" not in schema:
                schema = {**schema, "description": body["description"]}
            name = "body" if "body" not in properties else "request_body"
            add(name, schema, Param(name=name, location="body", wire_name=WHOLE_BODY, required=body_required))

    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    if all_defs:
        cycle = endless_cycle(all_defs)
        if cycle:
            raise SpecError(
                f"{source}#{op_at}: $ref cycle {' -> '.join(cycle)} never descends into the value "
                "(only $ref/allOf/anyOf/oneOf/not on the way): validating against it would never end"
            )
        input_schema["$defs"] = all_defs
    description = "\n\n".join(str(op[k]).strip() for k in ("summary", "description") if op.get(k)) or (
        f"{method.upper()} {path}"
    )
    security = op.get("security", doc.get("security"))
    return Tool(
        name=_tool_name(op.get("operationId"), method, path),
        description=description,
        input_schema=input_schema,
        method=method.upper(),
        path=path,
        base_url=base_url,
        params=params,
        body_mode=body_mode,
        auth=_security_auth(doc, security, source),
        source=source,
    )
