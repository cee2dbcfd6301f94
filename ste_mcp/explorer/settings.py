"""Settings of STE exploration (paper defaults)."""

from pydantic import BaseModel, Field, field_validator


class ExplorerSettings(BaseModel):
    num_episodes: int = Field(15, ge=0, description="Episodes per tool (paper: 15).")
    num_stm_slots: int = Field(
        3, ge=1, description="Trials per episode sharing one conversation (paper: 3-4)."
    )
    max_turn: int = Field(4, ge=1, description="Tool calls per trial (paper: 4).")
    reflect: bool = Field(
        True,
        description="Ask the explorer after each answered trial whether it fulfilled the request (STE's "
        "reflection: it stays in the episode's conversation and marks the request [ok] / [failed] in later "
        "episodes' memory). False: the paper's no-reflection ablation; requests are remembered unmarked.",
    )
    use_adapter: bool = Field(
        True,
        description="Explore with the promoted LoRA adapter once one is served (the loop improves itself); "
        "false: always the base model.",
    )
    temperature: float = Field(
        0.6,
        ge=0,
        description="Sampling temperature of the explorer model (paper: 1.0, with GPT-3.5; a 0.5B model "
        "writes incoherent requests at 1.0).",
    )
    max_tokens: int = Field(360, ge=16, description="New tokens per model turn.")
    concurrency: int = Field(
        8, ge=1, description="Episodes in flight at once (keeps a vLLM server batching)."
    )
    tool_concurrency: int = Field(
        4,
        ge=1,
        description="Episodes of one tool in flight at once (fewer keeps long-term memory informative).",
    )
    upstream_rate_per_s: float = Field(
        5.0, description="Explorer calls per second per upstream origin (0: no limit)."
    )
    max_calls: int | None = Field(
        None, description="Global budget of upstream calls (lifetime, from the store)."
    )
    max_calls_per_tool: int | None = Field(None, description="Budget of upstream calls per tool (lifetime).")
    max_tokens_total: int | None = Field(None, description="Global budget of model tokens (lifetime).")
    max_tokens_per_tool: int | None = Field(None, description="Budget of model tokens per tool (lifetime).")
    budget_sync_s: float = Field(
        5.0,
        ge=0,
        description="With a global budget set, how often (seconds, at most) to count other explorer "
        "processes' recorded usage from the shared trial store.",
    )
    max_episodes_total: int | None = Field(None, description="Episodes started per run, all tools together.")
    target_exemplars: int | None = Field(
        None,
        ge=1,
        description="Per-tool stopping: a tool that holds this many approved original exemplars gets no new "
        "episodes, and the tools holding fewest are explored first, so the episodes go where exploration has "
        "yielded least (DRAFT's adaptive budget); `learn` then explores in passes of one episode per tool, "
        "judging after each. None: every tool gets num_episodes.",
    )
    explore_tools: list[str] = Field(default_factory=list, description="Opt-in for non-read-only tools.")
    tools: list[str] = Field(
        default_factory=list, description="Explore only these tools (empty: all eligible)."
    )
    shard: str = Field(
        "0/1",
        description="'i/n': explore only the tools of shard i of n (a stable hash of the tool name), so n "
        "explorer processes on one shared store split the tools (`--shard i/n`).",
    )
    observation_chars: int = Field(
        1500, ge=100, description="Observations are truncated to this many characters."
    )
    ltm_max_items: int = Field(
        30, ge=0, description="Most recent earlier queries shown in the imagination prompt."
    )
    context_chars: int | None = Field(
        None,
        description="Conversation budget in characters (default: ~2 chars per token of the model's context).",
    )
    poll_s: float = Field(60.0, gt=0, description="In `serve`, how often to look for new work once done.")

    @field_validator("shard")
    @classmethod
    def _valid_shard(cls, value: str) -> str:
        from ste_mcp.explorer.shard import parse_shard

        index, count = parse_shard(value)
        return f"{index}/{count}"
