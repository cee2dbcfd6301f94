"""The MCP server: tools/list computed per request, tools/call, extensions, transports.

Public names are imported lazily so that reading settings (``ste_mcp.server.settings``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BaseExtension": "ste_mcp.server.extensions",
    "ServerExtension": "ste_mcp.server.extensions",
    "ServerSettings": "ste_mcp.server.settings",
    "ToolsChangedNotifier": "ste_mcp.server.notifications",
    "build_server": "ste_mcp.server.server",
    "call_tool": "ste_mcp.server.server",
    "list_tools": "ste_mcp.server.server",
    "http_app": "ste_mcp.server.transports",
    "serve_asgi": "ste_mcp.server.transports",
    "serve_stdio": "ste_mcp.server.transports",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ste_mcp.server' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
