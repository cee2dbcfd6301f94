"""Settings of the MCP server (transports, auth, features)."""

from typing import Literal

from pydantic import BaseModel, Field

from ste_mcp.extensions import server_factories


class ServerSettings(BaseModel):
    transport: Literal["stdio", "http"] = Field(
        "stdio", description="stdio (Claude Desktop) or http (Streamable HTTP)."
    )
    host: str = Field(
        "127.0.0.1", description="HTTP bind address; beyond loopback a bearer token is required."
    )
    port: int = Field(8765, description="HTTP port; the endpoint is http://HOST:PORT/mcp.")
    auth_token_env: str = Field(
        "STE_MCP_TOKEN",
        description="Env var holding the bearer token; required when binding beyond loopback.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Extra Origins allowed over HTTP (loopback origins always are)."
    )
    http_json_response: bool = Field(
        True,
        description="Answer each HTTP request with one JSON body instead of an SSE stream (less CPU per "
        "call; list_changed still streams: subscriptions/listen and the session GET stream stay SSE).",
    )
    http_stateless: bool = Field(
        False,
        description="No HTTP sessions: every request stands alone (any replica or worker can answer it). "
        "Old-protocol clients then get no list_changed (they have no stream); new-protocol clients do.",
    )
    explore_in_background: bool = Field(
        True, description="Explore tools while serving (`--no-explore`: off)."
    )
    tool_listing: Literal["all", "search", "auto"] = Field(
        "auto",
        description="tools/list: all upstream tools; search: only search_tools and call_tool (large APIs, "
        "small clients, clients that ignore list_changed); auto: search above search_listing_above tools.",
    )
    search_listing_above: int = Field(
        40, ge=0, description="In auto listing, serve search mode when more tools than this are visible."
    )
    features: list[str] = Field(
        default_factory=server_factories,
        description="Feature factories 'module:function' loaded at start (default: those declared in "
        "ste_mcp/extensions.py); [] serves the proxy only.",
    )
