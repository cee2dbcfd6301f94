"""How features beyond the proxy plug into the MCP server.

The server's ``tools/list`` is produced at request time from the toolset, with each tool's
description given by ``App.describe(tool)`` (the learned-description provider replaces the default).
Features that add tools (e.g. ``find_tool_examples``), resources (exemplars, status) or background
work (the explorer, training triggers) register a ``ServerExtension`` on the ``App``.

An extension that serves the tool named ``SEARCH_TOOL`` enables the search listing
(``server.tool_listing``): ``tools/list`` then holds only that tool and the server's ``CALL_TOOL``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mcp import types

SEARCH_TOOL = "search_tools"
"""The tool that finds upstream tools for a task (served by the memory feature)."""
CALL_TOOL = "call_tool"
"""The server's call-by-name tool, listed in search mode: ``call_tool(name, arguments)``."""


class ServerExtension(Protocol):
    """Extra tools, resources and background work offered by a feature."""

    name: str

    def list_tools(self) -> list[types.Tool]:
        """Tools this extension serves (besides the upstream tools)."""
        ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult | None:
        """Handle a call to one of this extension's tools; ``None`` if the name is not ours."""
        ...

    def list_resources(self) -> list[types.Resource]: ...

    def list_resource_templates(self) -> list[types.ResourceTemplate]: ...

    async def read_resource(self, uri: str) -> str | None:
        """Text of a resource (JSON or Markdown); ``None`` if the URI is not ours."""
        ...

    def background(self) -> list[Callable[[], Awaitable[None]]]:
        """Coroutines to run for the server's lifetime (started in its lifespan task group)."""
        ...


class BaseExtension:
    """Convenience base: an extension that offers nothing until methods are overridden."""

    name = "extension"

    def list_tools(self) -> list[types.Tool]:
        return []

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult | None:
        return None

    def list_resources(self) -> list[types.Resource]:
        return []

    def list_resource_templates(self) -> list[types.ResourceTemplate]:
        return []

    async def read_resource(self, uri: str) -> str | None:
        return None

    def background(self) -> list[Callable[[], Awaitable[None]]]:
        return []
