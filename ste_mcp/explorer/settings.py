"""Settings of STE exploration (paper defaults)."""

from pydantic import BaseModel, Field


class ExplorerSettings(BaseModel):
    num_episodes: int = Field(15, description="Episodes per tool (paper: 15).")
    num_stm_slots: int = Field(3, description="Trials per episode sharing one conversation (paper: 3-4).")
    max_turn: int = Field(4, description="Tool calls per trial (paper: 4).")
    temperature: float = 1.0
    max_tokens: int = 360
    concurrency: int = 8
    upstream_rate_per_s: float = 5.0
    max_calls: int | None = None
    max_tokens_total: int | None = None
    explore_tools: list[str] = Field(default_factory=list, description="Opt-in for non-read-only tools.")
