"""How features beyond the proxy plug into the MCP server.

The server's ``tools/list`` is produced at request time from the toolset, with each tool's
description given by ``App.describe(tool)`` (the learned-description provider replaces the default).
Features that add tools (e.g. ``find_tool_examples``), resources (exemplars, status) or background
work (the explorer, training triggers) register a ``ServerExtension`` on the ``App``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mcp import types


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
