"""ste-mcp: an MCP server that teaches itself the tools it serves (Simulated Trial and Error)."""

__version__ = "0.1.0"
