"""Upstream HTTP APIs: tool specs, argument validation, and pooled, allowlisted calls."""

from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs import SpecError, Toolset, load_spec, load_toolset
from ste_mcp.upstream.tools import Tool, ToolResult

__all__ = ["SpecError", "Tool", "ToolResult", "Toolset", "UpstreamClient", "load_spec", "load_toolset"]
