"""Settings of the model side: which model, which server."""

from typing import Literal

from pydantic import BaseModel, Field


class LLMSettings(BaseModel):
    model: str = Field(
        "packaged:qwen2.5-coder-0.5b-instruct",
        description="packaged:NAME, a local HF folder, a local .gguf, or a hub id.",
    )
    base_url: str | None = Field(None, description="External OpenAI-compatible server; unset: managed vLLM.")
    api_key_env: str = Field(
        "STE_MCP_LLM_API_KEY", description="Env var holding the external server's API key."
    )
    served_model_name: str | None = Field(
        None, description="Model name on the server (default: from the model)."
    )
    max_concurrency: int = Field(16, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout.")
    retries: int = Field(
        3, ge=0, description="Retries on 429 / 5xx / connection errors (backoff with jitter)."
    )
    max_model_len: int = Field(4096, ge=256, description="Managed vLLM: context length.")
    kv_cache_gib: int = Field(
        2, ge=1, description="Managed vLLM on CPU: KV-cache size (VLLM_CPU_KVCACHE_SPACE)."
    )
    startup_timeout_s: float = Field(600.0, gt=0, description="Managed vLLM: how long to wait for health.")
    enforce_eager: bool = Field(
        True, description="Managed vLLM: skip graph compilation (starts ~3x faster on CPU)."
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto",
        description="Managed vLLM: weights' dtype (auto: the model's on a GPU; on a CPU bfloat16 only "
        "where the CPU computes it natively, else float32, ~3.6x faster prefill there).",
    )
    cpu_reserved_cores: int | None = Field(
        None,
        ge=0,
        description="Managed vLLM on CPU: cores kept out of inference (VLLM_CPU_NUM_OF_RESERVED_CPU); "
        "unset: 0 on machines with two cores or fewer, else vLLM's default (one).",
    )
    max_lora_rank: int = Field(16, ge=1, description="Managed vLLM: largest LoRA rank that can be loaded.")
    max_loras: int = Field(2, ge=1, description="Managed vLLM: LoRA adapters usable in one batch.")
    protocol: Literal["auto", "react", "native"] = Field("auto", description="Call protocol (auto: ReAct).")
