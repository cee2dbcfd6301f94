"""Validate tool arguments against the tool's JSON Schema before any upstream request."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ste_mcp.upstream.tools import Tool

MAX_ERRORS = 3


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _describe(error: ValidationError) -> list[str]:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [r for r in error.validator_value if r not in error.instance]
        return [f"argument '{'.'.join([*path, m])}': required argument is missing" for m in missing]
    name = ".".join(path) if path else "(arguments)"
    return [f"argument '{name}': {error.message} (rule: {error.validator})"]


def validate_arguments(tool: Tool, arguments: Any) -> str | None:
    """A message naming the field and the rule for each problem (first few), or ``None`` when valid."""
    if not isinstance(arguments, dict):
        return f"arguments must be an object, got {type(arguments).__name__}"
    known = tool.input_schema.get("properties") or {}
    unknown = [k for k in arguments if k not in known]
    if unknown:
        expected = ", ".join(sorted(known)) or "none"
        return f"argument '{unknown[0]}': unknown argument for tool '{tool.name}' (expected: {expected})"
    validator = _validator(json.dumps(tool.input_schema, sort_keys=True))
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return None
    first = best_match(errors)
    messages = [m for e in [first, *(e for e in errors if e is not first)] for m in _describe(e)]
    return "; ".join(list(dict.fromkeys(messages))[:MAX_ERRORS])
