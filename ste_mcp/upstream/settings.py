"""Settings of upstream HTTP calls and of loading tool specs."""

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator


class UpstreamSettings(BaseModel):
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    call_timeout_s: float = Field(
        90.0,
        gt=0,
        description="Deadline for one tool call, retries and a trickling body included (read_timeout_s "
        "restarts with every byte received).",
    )
    retries: int = Field(2, description="Retries (with backoff) for idempotent methods only.")
    max_response_bytes: int = Field(1_000_000, description="Larger bodies are truncated with a notice.")
    max_connections: int = 100
    spec_load_timeout_s: float = Field(
        30.0, gt=0, description="Deadline for loading one spec, every document it references included."
    )
    spec_max_bytes: int = Field(
        32 * 1024 * 1024, gt=0, description="Bytes one spec may read, every document it references included."
    )
    spec_ref_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) that a spec loaded from a URL may reference besides its own.",
    )

    @field_validator("spec_ref_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                parts = urlsplit(value)
                valid = parts.port is None or parts.port > 0  # .port raises for a port out of range
            except ValueError:
                valid = False
            if (
                not valid
                or parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
            ):
                raise ValueError(f"{value!r} is not an origin like https://schemas.example.com[:port]")
        return values
