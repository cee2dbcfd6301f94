"""Validate tool arguments against the tool's JSON Schema before any upstream request."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ste_mcp.upstream.tools import Tool
from ste_mcp.upstream.urls import wire_text

MAX_ERRORS = 3
MAX_ECHO_CHARS = 200  # of a client's argument name repeated in a message
MAX_RULE_CHARS = 1_000  # of one rule's message (it quotes the value, and enum lists)
MAX_JSON_DEPTH = 64  # arguments nested deeper are refused; upstream JSON deeper is passed as text only
_WIRE_LOCATIONS = ("query", "path", "header", "cookie")
_JSON_TYPES = {bool: {"boolean"}, int: {"integer", "number"}, float: {"number"}, str: {"string"}}


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar: 0), without recursion."""
    depth, level = 0, [value]
    while True:
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            return depth
        depth += 1
        level = [child for v in containers for child in (v.values() if isinstance(v, dict) else v)]


def _not_json(arguments: dict[str, Any]) -> str | None:
    """A message for the first value JSON and HTTP cannot carry (NaN / Infinity, a lone UTF-16
    surrogate in a string or key), or None."""
    stack: list[tuple[str, Any]] = list(arguments.items())
    while stack:
        path, value = stack.pop()
        for text in (path, value) if isinstance(value, str) else (path,):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"argument '{_shown(path)}': not valid Unicode (an unpaired surrogate at position {exc.start})"
        if isinstance(value, float) and not math.isfinite(value):
            return (
                f"argument '{_shown(path)}': NaN and Infinity are not JSON numbers "
                "(nor is a number too large for a double)"
            )
        if isinstance(value, dict):
            stack += [(f"{path}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(f"{path}.{i}", v) for i, v in enumerate(value)]
    return None


def _accepts(schema: Any, value: Any) -> tuple[bool, bool]:
    """(whether the schema's ``type`` admits ``value``'s JSON type, whether it admits a string)."""
    declared = schema.get("type") if isinstance(schema, dict) else None
    types = {declared} if isinstance(declared, str) else set(declared or ())
    kind = _JSON_TYPES.get(type(value), set())
    if isinstance(value, float) and value.is_integer():
        kind = kind | {"integer"}
    return bool(kind & types), "string" in types


def coerce_scalars(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` with booleans and numbers bound for a query, path, header or cookie parameter
    declared as a string written as OpenAPI serialises them there (``true`` -> ``"true"``, ``7`` ->
    ``"7"``; array items too): on the wire they are the same text. Other values are left as they are."""
    properties = tool.input_schema.get("properties") or {}
    out = dict(arguments)
    for param in tool.params:
        if param.location not in _WIRE_LOCATIONS or param.name not in out:
            continue
        schema, value = properties.get(param.name), out[param.name]
        if isinstance(value, list) and isinstance(schema, dict) and isinstance(schema.get("items"), dict):
            out[param.name] = [_as_text(schema["items"], v) for v in value]
        else:
            out[param.name] = _as_text(schema, value)
    return out


def _as_text(schema: Any, value: Any) -> Any:
    if not isinstance(value, bool | int | float) or (isinstance(value, float) and not math.isfinite(value)):
        return value
    admits_value, admits_string = _accepts(schema, value)
    return wire_text(value) if admits_string and not admits_value else value


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _describe(error: ValidationError) -> list[str]:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [r for r in error.validator_value if r not in error.instance]
        return [f"argument '{'.'.join([*path, m])}': required argument is missing" for m in missing]
    name = ".".join(path) if path else "(arguments)"
    return [f"argument '{_shown(name)}': {_shown(error.message, MAX_RULE_CHARS)} (rule: {error.validator})"]


def _shown(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` as a message may repeat it: cut to ``limit`` characters, lone surrogates escaped."""
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text):,} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def validate_arguments(tool: Tool, arguments: Any) -> str | None:
    """A message naming the field and the rule for each problem (first few), or ``None`` when valid."""
    if not isinstance(arguments, dict):
        return f"arguments must be an object, got {type(arguments).__name__}"
    if json_depth(arguments) > MAX_JSON_DEPTH:
        return f"arguments are nested deeper than {MAX_JSON_DEPTH} levels"
    problem = _not_json(arguments)
    if problem:
        return problem
    known = tool.input_schema.get("properties") or {}
    unknown = [k for k in arguments if k not in known]
    if unknown:
        expected = ", ".join(sorted(known)) or "none"
        return (
            f"argument '{_shown(unknown[0])}': unknown argument for tool '{tool.name}' (expected: {expected})"
        )
    validator = _validator(json.dumps(tool.input_schema, sort_keys=True))
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return None
    first = best_match(errors)
    messages = [m for e in [first, *(e for e in errors if e is not first)] for m in _describe(e)]
    return "; ".join(list(dict.fromkeys(messages))[:MAX_ERRORS])
