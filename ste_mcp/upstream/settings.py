"""Settings of upstream HTTP calls."""

from pydantic import BaseModel, Field


class UpstreamSettings(BaseModel):
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    retries: int = Field(2, description="Retries (with backoff) for idempotent methods only.")
    max_response_bytes: int = Field(1_000_000, description="Larger bodies are truncated with a notice.")
    max_connections: int = 100
