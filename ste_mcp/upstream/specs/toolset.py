"""Loading specs into the served ``Toolset``: one spec (``load_spec``: schema checks, spec hashes) or
all of ``settings.specs`` (``load_toolset``; the packaged toolbox spec by default)."""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ste_mcp.upstream.settings import UpstreamSettings
from ste_mcp.upstream.specs.common import SpecError, pointer, unique_name
from ste_mcp.upstream.specs.native import native_tools
from ste_mcp.upstream.specs.openapi import openapi_tools
from ste_mcp.upstream.specs.reading import Limits, is_url, parse_document, read_text
from ste_mcp.upstream.tools import Tool

if TYPE_CHECKING:
    from ste_mcp.config import Settings


def _hash(tool: Tool) -> str:
    data = tool.model_dump(include={"description", "input_schema", "method", "path", "base_url", "params"})
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_spec(
    source: str, *, variables: dict[str, str] | None = None, settings: UpstreamSettings | None = None
) -> list[Tool]:
    """Tools of one spec: OpenAPI 3.0/3.1 or native YAML, by file path or http(s) URL, within the
    time, size and reference limits of ``settings`` (``upstream.spec_*``)."""
    if not is_url(source):
        source = str(Path(source).expanduser().resolve())
    limits = Limits.of(source, settings or UpstreamSettings())
    doc = parse_document(source, read_text(source, limits), limits)
    if not isinstance(doc, dict):
        raise SpecError(f"{source}: a spec must be a mapping at the top level")
    if "swagger" in doc:
        raise SpecError(f"{source}#/swagger: Swagger 2.0 is not supported (convert it to OpenAPI 3)")
    try:
        if "openapi" in doc:
            tools = openapi_tools(source, doc, limits)
        elif "tools" in doc or "import" in doc:
            tools = native_tools(source, doc, dict(variables or {}), limits)
        else:
            raise SpecError(
                f"{source}: neither an OpenAPI document ('openapi') nor a native spec ('tools'/'import')"
            )
    except (AttributeError, TypeError, KeyError, ValueError) as exc:  # a value of an unexpected type
        raise SpecError(f"{source}: malformed spec ({type(exc).__name__}: {exc})") from None
    checked: set[str] = set()
    for tool in tools:
        limits.remaining()
        _check_input_schema(tool, source, checked)
        tool.spec_hash = _hash(tool)
    return tools


def _check_input_schema(tool: Tool, source: str, checked: set[str]) -> None:
    """Each property and definition of ``tool.input_schema`` must be a valid JSON Schema (each distinct
    one is checked once per spec: large specs repeat the same few; the object around them is ours)."""
    schema = tool.input_schema
    parts = [("properties", k, v) for k, v in (schema.get("properties") or {}).items()]
    parts += [("$defs", k, v) for k, v in (schema.get("$defs") or {}).items()]
    for section, name, part in parts:
        key = json.dumps(part, sort_keys=True, default=str)
        if key in checked:
            continue
        try:
            Draft202012Validator.check_schema(part)
        except SchemaError as exc:
            where = "/".join([section, pointer(name)[1:], *(str(p) for p in exc.absolute_path)])
            raise SpecError(
                f"{source}: tool '{tool.name}' ({tool.method} {tool.path}): invalid JSON Schema "
                f"at input_schema/{where}: {exc.message}"
            ) from exc
        checked.add(key)


class Toolset:
    """The tools served, by name (unique across specs)."""

    def __init__(self, tools: list[Tool]):
        self._tools: dict[str, Tool] = {}
        taken: set[str] = set()
        for tool in tools:
            tool.name = unique_name(tool.name, taken)
            self._tools[tool.name] = tool

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def visible(self) -> list[Tool]:
        """Tools shown to clients (not hidden by an override)."""
        return [t for t in self._tools.values() if not t.hidden]

    def secret_values(self) -> list[str]:
        """Current values of the environment variables used for auth (for redaction)."""
        envs = {a.env for t in self._tools.values() for a in t.auth}
        return sorted({os.environ[e] for e in envs if os.environ.get(e)})


def toolbox_spec_path() -> str:
    """The packaged native spec of the offline toolbox (uses ``${TOOLBOX_URL}``)."""
    return str(resources.files("ste_mcp") / "tool_specs" / "toolbox.yaml")


def load_toolset(settings: Settings, *, variables: dict[str, str] | None = None) -> Toolset:
    """All tools of ``settings.specs``; with no specs, the packaged toolbox spec."""
    sources = list(settings.specs) or [toolbox_spec_path()]
    tools: list[Tool] = []
    for source in sources:
        tools += load_spec(source, variables=variables, settings=settings.upstream)
    return Toolset(tools)
