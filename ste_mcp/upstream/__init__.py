"""Upstream HTTP APIs: tool specs, argument validation, and pooled, allowlisted calls.

Public names are imported lazily so that reading settings (``ste_mcp.upstream.settings``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SpecError": "ste_mcp.upstream.specs",
    "Toolset": "ste_mcp.upstream.specs",
    "load_spec": "ste_mcp.upstream.specs",
    "load_toolset": "ste_mcp.upstream.specs",
    "Tool": "ste_mcp.upstream.tools",
    "ToolResult": "ste_mcp.upstream.tools",
    "UpstreamClient": "ste_mcp.upstream.client",
    "UpstreamSettings": "ste_mcp.upstream.settings",
    "validate_arguments": "ste_mcp.upstream.validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ste_mcp.upstream' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
