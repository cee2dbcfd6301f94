"""Settings of the model side: which model, which server, and which model plays which role."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["main", "explorer", "judge", "paraphrase"]
"""Who uses a model: ``main`` is the served / trained (student) model; the others are the loop's roles."""
ROLES: tuple[Role, ...] = ("explorer", "judge", "paraphrase")


class RoleModelSettings(BaseModel):
    """The model one role of the loop uses; all unset: the app's model (``llm.model``)."""

    # a misspelt key must not silently leave the role on the app's model
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "",
        description="Empty: the app's model; else a model source as llm.model (packaged:NAME, a local HF "
        "folder, a local .gguf, a hub id), served by a managed vLLM of its own unless base_url is set.",
    )
    base_url: str | None = Field(
        None, description="External OpenAI-compatible server for this role; unset: managed vLLM."
    )
    served_model_name: str | None = Field(
        None, description="Model name on this role's server (default: from the model)."
    )
    api_key_env: str | None = Field(
        None, description="Env var holding this role's server key (default: llm.api_key_env)."
    )


class LLMSettings(BaseModel):
    model: str = Field(
        "packaged:qwen2.5-coder-0.5b-instruct",
        description="packaged:NAME, a local HF folder, a local .gguf, or a hub id.",
    )
    base_url: str | None = Field(None, description="External OpenAI-compatible server; unset: managed vLLM.")
    replica_urls: list[str] = Field(
        default_factory=list,
        description="The vLLM replicas behind llm.base_url when that is a router (vLLM's production stack, "
        "any OpenAI-compatible load balancer): runtime LoRA adapters are loaded into each of them (a "
        "router would pass /v1/load_lora_adapter to one only); chat goes through base_url. The adapter "
        "folder (data_dir/adapters) must be at the same path on every replica's machine.",
    )
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
    explorer: RoleModelSettings = Field(
        default_factory=RoleModelSettings,
        description="The explorer's model (imagines queries, calls tools, reflects): the teacher.",
    )
    judge: RoleModelSettings = Field(
        default_factory=RoleModelSettings, description="The judge's model (filters trials into exemplars)."
    )
    paraphrase: RoleModelSettings = Field(
        default_factory=RoleModelSettings, description="The paraphraser's model (augments exemplars)."
    )
    evaluators: list[RoleModelSettings] = Field(
        default_factory=list,
        description="More client models the description gate asks, besides the app's own (e.g. a stronger "
        "client than the served model): a rewritten description is promoted only if no evaluator does "
        "worse with it and at least one does better. Each entry as llm.explorer (model, base_url, ...).",
    )

    def for_role(self, role: Role) -> LLMSettings:
        """The settings of the model ``role`` uses: ``self`` (the same object) when that is the app's own
        model, else a copy naming the role's model and server (other fields, e.g. timeouts and the
        managed vLLM's context length, are shared)."""
        if role == "main":
            return self
        return self._resolve(getattr(self, role))

    def for_evaluator(self, index: int) -> LLMSettings:
        """The settings of the description gate's extra evaluator ``llm.evaluators[index]``, resolved
        as ``for_role`` resolves a role (``self`` when it names the app's own model)."""
        return self._resolve(self.evaluators[index])

    def _resolve(self, r: RoleModelSettings) -> LLMSettings:
        if not r.model and not r.base_url:
            return self
        resolved = self.model_copy(
            update={
                "model": r.model or self.model,
                "base_url": r.base_url,
                "replica_urls": [],  # the app's fleet is not the role's server
                "served_model_name": r.served_model_name,
                "api_key_env": r.api_key_env or self.api_key_env,
            }
        )
        return self if resolved.server_key() == self.server_key() else resolved

    @model_validator(mode="after")
    def _replicas_need_a_router(self) -> LLMSettings:
        if self.replica_urls and not self.base_url:
            raise ValueError(
                "llm.replica_urls needs llm.base_url: the router in front of the replicas (a managed vLLM "
                "is one server)"
            )
        return self

    def server_key(self) -> tuple[str, str | None, str | None, str]:
        """What identifies a model server and client: roles with equal keys share one."""
        return (self.model, self.base_url, self.served_model_name, self.api_key_env)
