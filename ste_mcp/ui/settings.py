"""Settings of the review dashboard (``[ui]``)."""

from pydantic import BaseModel, Field


class UISettings(BaseModel):
    enabled: bool = Field(True, description="Serve the dashboard at /ui of `ste-mcp serve --transport http`.")
    read_only: bool = Field(
        False,
        description="Show everything, change nothing: approve / reject / rollback / promote are refused.",
    )
    host: str = Field(
        "127.0.0.1", description="`ste-mcp ui` bind address; beyond loopback a bearer token is required."
    )
    port: int = Field(8767, description="`ste-mcp ui` port; the page is http://HOST:PORT/ui.")
