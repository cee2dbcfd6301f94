"""The shared description of a tool: what the proxy serves, the explorer tries, and the learning improves.

A ``Tool`` is one HTTP operation of an upstream API, imported from a spec (OpenAPI or native YAML).
A ``ToolResult`` is what calling it gave. These two types are the contract between the upstream
layer and everything above it (server, explorer, evaluation).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

ParamLocation = Literal["path", "query", "header", "cookie", "body"]
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Param(BaseModel):
    """One argument of a tool and where it goes in the HTTP request."""

    name: str  # argument name as the client sees it in input_schema
    location: ParamLocation
    wire_name: str | None = None  # name on the wire when it differs (e.g. header "X-Api-Key")
    required: bool = False


class ExplorePolicy(BaseModel):
    """Whether and where the explorer may call this tool."""

    allowed: bool | None = Field(
        None,
        description="None: decided by the method (read-only methods only); True/False: operator's choice.",
    )
    sandbox_base_url: str | None = Field(None, description="Explore against this base URL instead.")


class AuthRef(BaseModel):
    """A credential taken from an environment variable; its value is never shown or logged."""

    kind: Literal["header", "query", "bearer"]
    name: str = "Authorization"  # header or query parameter name
    env: str  # environment variable holding the value


class Tool(BaseModel):
    """One upstream operation served as an MCP tool."""

    name: str  # valid MCP name ^[A-Za-z0-9_-]{1,64}$, unique within the toolset
    description: str  # the spec's original description (never edited by learning)
    input_schema: dict[str, Any]
    method: str  # upper-case HTTP method
    path: str  # path template, e.g. "/pets/{petId}"
    base_url: str  # allowlisted origin (+ base path) for this tool
    params: list[Param] = Field(default_factory=list)
    body_mode: Literal["none", "json", "form"] = "none"
    auth: list[AuthRef] = Field(default_factory=list)
    explore: ExplorePolicy = Field(default_factory=ExplorePolicy)
    read_only: bool | None = None  # spec's own hint; None: from the method
    source: str = ""  # which spec it came from
    spec_hash: str = ""  # hash of this tool's definition (changes when the spec changes)
    hidden: bool = False

    @property
    def argument_names(self) -> list[str]:
        """The names its input schema declares, in order."""
        return list((self.input_schema or {}).get("properties") or {})

    @property
    def served_schema(self) -> dict[str, Any]:
        """The input schema as clients are shown it (``served_schema``). Built on each use (~3 µs, against
        a tools/call's milliseconds): a cached copy would outlive a ``model_copy`` with another schema."""
        return served_schema(self.input_schema)

    @property
    def documentation(self) -> str:
        """Its description and its parameters' descriptions, a line each: all the prose its spec gives
        (what an explorer is shown, and what a user's request should not copy)."""
        properties = (self.input_schema or {}).get("properties") or {}
        lines = [self.description]
        lines += [
            str(p["description"]) for p in properties.values() if isinstance(p, dict) and p.get("description")
        ]
        return "\n".join(line for line in lines if line)

    @property
    def is_read_only(self) -> bool:
        return self.read_only if self.read_only is not None else self.method.upper() in READ_ONLY_METHODS

    @property
    def is_idempotent(self) -> bool:
        return self.method.upper() in IDEMPOTENT_METHODS


class ToolResult(BaseModel):
    """What a tool call produced. ``is_error`` results carry a short, specific message in ``text``."""

    is_error: bool = False
    text: str = ""
    status: int | None = None  # HTTP status when a request was made
    content_type: str | None = None
    structured: Any | None = None  # parsed JSON body when it was JSON
    truncated: bool = False
    elapsed_ms: float = 0.0
    error_kind: str | None = None  # "validation" | "timeout" | "connect" | "http" | "ssrf" | "size" | ...


def served_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as ``tools/list`` shows it: a required parameter's ``default`` becomes its first
    ``examples`` entry.

    Specs imported from API marketplaces (RapidAPI, and so STE's tools) put an example value in a required
    parameter's ``default`` (latitude 37.4666405, amount "1000", place "London"). A required value is never
    absent, so no default applies, and a client reading "default" sends it as the user's value: the packaged
    0.5B sent the spec's latitude in 11 of 15 time-zone calls with demonstrations (3 once it was served as an
    example), and the spec's amount or currency in 32 of 195 calls zero-shot (22); no score moved beyond noise
    (BENCHMARKS, session 46). As an example it still shows the format. The stored schema keeps it (the judge's
    checks read it as the spec's example: ``memory.checks.spec_examples``); optional parameters' defaults are
    real defaults and stay."""
    properties = schema.get("properties")
    required = set(schema.get("required") or [])
    if not isinstance(properties, dict) or not required:
        return schema
    moved = {
        key: spec
        for key, spec in properties.items()
        if key in required and isinstance(spec, dict) and "default" in spec
    }
    if not moved:
        return schema
    served = dict(properties)
    for key, spec in moved.items():
        spec = dict(spec)
        value = spec.pop("default")
        earlier = spec.get("examples") if isinstance(spec.get("examples"), list) else []
        spec["examples"] = [value, *(e for e in earlier if e != value)]
        served[key] = spec
    return {**schema, "properties": served}
