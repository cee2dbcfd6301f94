"""Settings of the MCP server (transports, auth)."""

from typing import Literal

from pydantic import BaseModel, Field


class ServerSettings(BaseModel):
    transport: Literal["stdio", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = 8765
    auth_token_env: str = Field(
        "STE_MCP_TOKEN", description="Env var holding the bearer token; required when binding beyond loopback."
    )
    allowed_origins: list[str] = Field(default_factory=list, description="Extra Origins allowed over HTTP.")
    explore_in_background: bool = True
