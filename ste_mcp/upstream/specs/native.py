"""ste-mcp's native YAML: hand-written tools, ``${VAR}`` substitution, an imported OpenAPI document
and per-tool overrides (the format is shown in ``ste_mcp/upstream/specs/__init__.py``)."""

from __future__ import annotations

import re
from typing import Any

from ste_mcp.upstream.specs.common import HTTP_METHODS, TOOL_NAME_RE, SpecError, pointer
from ste_mcp.upstream.specs.openapi import openapi_tools
from ste_mcp.upstream.specs.reading import Limits, is_url, may_reference, parse_document, read_text, relative
from ste_mcp.upstream.tools import AuthRef, ExplorePolicy, Param, Tool

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NATIVE_KEYS = {"base_url", "auth", "import", "tools", "overrides"}
_OVERRIDE_KEYS = {"name", "description", "hidden", "read_only", "explore"}
_NATIVE_TOOL_KEYS = {
    "name",
    "description",
    "method",
    "path",
    "params",
    "body",
    "base_url",
    "auth",
} | _OVERRIDE_KEYS


def _substitute(value: Any, variables: dict[str, str], source: str, at: str = "") -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                raise SpecError(f"{source}#{at}: unknown variable ${{{m.group(1)}}}")
            return variables[m.group(1)]

        return _VAR_RE.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, variables, source, f"{at}/{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, source, f"{at}/{k}") for k, v in value.items()}
    return value


def _auth_list(raw: Any, source: str, at: str) -> list[AuthRef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(f"{source}#{at}: must be a list")
    try:
        return [AuthRef.model_validate(a) for a in raw]
    except ValueError as exc:
        raise SpecError(f"{source}#{at}: {exc}") from exc


def _check_keys(value: Any, allowed: set[str], source: str, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{source}#{at}: must be a mapping")
    unknown = set(value) - allowed
    if unknown:
        raise SpecError(f"{source}#{at}: unknown key(s) {sorted(unknown)} (allowed: {sorted(allowed)})")
    return value


def _native_tool(raw: Any, source: str, at: str, base_url: str | None, auth: list[AuthRef]) -> Tool:
    t = _check_keys(raw, _NATIVE_TOOL_KEYS, source, at)
    for key in ("name", "path"):
        if not isinstance(t.get(key), str) or not t[key]:
            raise SpecError(f"{source}#{at}/{key}: required string")
    if not TOOL_NAME_RE.match(t["name"]):
        raise SpecError(
            f"{source}#{at}/name: '{t['name']}' is not a valid tool name (^[A-Za-z0-9_-]{{1,64}}$)"
        )
    method = str(t.get("method", "GET")).upper()
    if method.lower() not in HTTP_METHODS:
        raise SpecError(f"{source}#{at}/method: unknown HTTP method '{method}'")
    url = t.get("base_url") or base_url
    if not isinstance(url, str) or not is_url(url):
        raise SpecError(f"{source}#{at}: no absolute http(s) base_url (got {url!r})")
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[Param] = []
    raw_params = t.get("params") or {}
    if not isinstance(raw_params, dict):
        raise SpecError(f"{source}#{at}/params: must be a mapping of name -> JSON Schema with 'in'")
    for name, spec in raw_params.items():
        p_at = f"{at}/params/{pointer(name)[1:]}"
        if not isinstance(spec, dict):
            raise SpecError(f"{source}#{p_at}: must be a mapping")
        schema = {k: v for k, v in spec.items() if k not in ("in", "required", "wire_name")}
        location = spec.get("in", "body" if method in ("POST", "PUT", "PATCH") else "query")
        if location not in ("path", "query", "header", "cookie", "body"):
            raise SpecError(f"{source}#{p_at}/in: unknown location '{location}'")
        is_required = bool(spec.get("required")) or location == "path"
        params.append(
            Param(name=name, location=location, wire_name=spec.get("wire_name"), required=is_required)
        )
        properties[name] = schema
        if is_required:
            required.append(name)
    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    has_body = any(p.location == "body" for p in params)
    body_mode = t.get("body", "json") if has_body else "none"
    if body_mode not in ("json", "form", "none"):
        raise SpecError(f"{source}#{at}/body: must be json or form")
    tool = Tool(
        name=t["name"],
        description=str(t.get("description") or f"{method} {t['path']}"),
        input_schema=input_schema,
        method=method,
        path=t["path"],
        base_url=url,
        params=params,
        body_mode=body_mode,
        auth=_auth_list(t.get("auth"), source, f"{at}/auth") or auth,
        source=source,
    )
    _apply_override(tool, {k: t[k] for k in ("hidden", "read_only", "explore") if k in t}, source, at)
    return tool


def _apply_override(tool: Tool, override: dict[str, Any], source: str, at: str) -> None:
    _check_keys(override, _OVERRIDE_KEYS, source, at)
    if "name" in override:
        if not isinstance(override["name"], str) or not TOOL_NAME_RE.match(override["name"]):
            raise SpecError(f"{source}#{at}/name: {override['name']!r} is not a valid tool name")
        tool.name = override["name"]
    if "description" in override:
        tool.description = str(override["description"])
    if "hidden" in override:
        tool.hidden = bool(override["hidden"])
    if "read_only" in override:
        tool.read_only = None if override["read_only"] is None else bool(override["read_only"])
    if "explore" in override:
        try:
            tool.explore = ExplorePolicy.model_validate(override["explore"])
        except ValueError as exc:
            raise SpecError(f"{source}#{at}/explore: {exc}") from exc


def native_tools(source: str, doc: dict[str, Any], variables: dict[str, str], limits: Limits) -> list[Tool]:
    """The tools of a native spec ``doc`` read from ``source``: imported, hand-written, then overridden."""
    _check_keys(doc, _NATIVE_KEYS, source, "")
    doc = _substitute(doc, variables, source)
    base_url = doc.get("base_url")
    auth = _auth_list(doc.get("auth"), source, "/auth")
    tools: list[Tool] = []
    if doc.get("import"):
        if not isinstance(doc["import"], str):
            raise SpecError(f"{source}#/import: must be a path or URL (a string)")
        imported = relative(source, doc["import"], limits, "/import")
        may_fetch = (lambda url: may_reference(source, url, limits)) if is_url(source) else None
        imported_doc = parse_document(imported, read_text(imported, limits, may_fetch), limits)
        if not isinstance(imported_doc, dict) or "openapi" not in imported_doc:
            raise SpecError(
                f"{source}#/import: {imported} is not an OpenAPI document (a mapping with 'openapi'; "
                f"got {type(imported_doc).__name__})"
            )
        tools += openapi_tools(imported, imported_doc, limits, base_url)
        for tool in tools:
            tool.auth = tool.auth or auth
    raw_tools = doc.get("tools") or []
    if not isinstance(raw_tools, list):
        raise SpecError(f"{source}#/tools: must be a list")
    tools += [_native_tool(t, source, f"/tools/{i}", base_url, auth) for i, t in enumerate(raw_tools)]
    overrides = doc.get("overrides") or {}
    by_name = {t.name: t for t in tools}
    for name, override in _check_keys(overrides, set(overrides), source, "/overrides").items():
        if name not in by_name:
            raise SpecError(f"{source}#/overrides/{name}: no tool named '{name}' (have {sorted(by_name)})")
        _apply_override(by_name[name], override or {}, source, f"/overrides/{pointer(name)[1:]}")
    names = [t.name for t in tools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"{source}: duplicate tool name(s) {dupes}")
    return tools
