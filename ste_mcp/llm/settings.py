"""Settings of the model side: which model, which server."""

from pydantic import BaseModel, Field


class LLMSettings(BaseModel):
    model: str = Field(
        "packaged:qwen2.5-coder-0.5b-instruct",
        description="packaged:NAME, a local HF folder, a local .gguf, or a hub id.",
    )
    base_url: str | None = Field(None, description="External OpenAI-compatible server; unset: managed vLLM.")
    api_key_env: str = "STE_MCP_LLM_API_KEY"
    served_model_name: str | None = None
    max_concurrency: int = 16
    timeout_s: float = 120.0
    retries: int = 3
    max_model_len: int = 4096
    kv_cache_gib: int = 2
    startup_timeout_s: float = 600.0
    protocol: str = Field("auto", description="react | native | auto (chosen per model)")
