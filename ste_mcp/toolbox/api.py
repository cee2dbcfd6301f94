"""The toolbox's building blocks: endpoints, the error a real API would answer, and the tool catalog.

The catalog (``data/tools.json``) holds the 13 STE-50 tool definitions verbatim; every endpoint is
published with exactly that name, description and parameter schema.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, wraps
from importlib import resources
from typing import Any, TypeVar

T = TypeVar("T")


def load_once(load: Callable[[], T]) -> Callable[[], T]:
    """Cache a data loader; concurrent first calls (requests, warm-up) wait for one load."""
    cached = cache(load)
    lock = threading.Lock()

    @wraps(load)
    def loader() -> T:
        with lock:
            return cached()

    return loader


class ToolboxError(Exception):
    """An error response: HTTP status, message and (for bad input) the offending parameter."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


def invalid(field: str, message: str) -> ToolboxError:
    """A 422 naming the parameter, e.g. ``invalid("date", "must be a date as 'yyyy-mm-dd'")``."""
    return ToolboxError(422, f"parameter '{field}' {message}", field=field)


def parse_bool(field: str, value: str | bool) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``) as sent in a query string."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise invalid(field, f"must be true or false, got {value!r}")


@dataclass(frozen=True)
class Endpoint:
    """One tool of the toolbox: a GET path whose query parameters are the tool's arguments.

    ``handler`` is a plain function taking the parsed parameters as keyword arguments and returning a
    JSON-serialisable value or a starlette ``Response``; it raises ``ToolboxError`` for bad input.
    Absent optional parameters get the catalog's default unless listed in ``no_default`` (where the
    service's documented behaviour differs from the example value RapidAPI published as default).
    """

    name: str
    path: str
    handler: Callable[..., Any]
    no_default: frozenset[str] = field(default_factory=frozenset)


@load_once
def catalog() -> dict[str, dict[str, Any]]:
    """The STE-50 definitions of the toolbox's tools, by ``mcp_name``."""
    text = (resources.files("ste_mcp.toolbox") / "data" / "tools.json").read_text(encoding="utf-8")
    return {tool["mcp_name"]: tool for tool in json.loads(text)}
