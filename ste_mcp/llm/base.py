"""The one core abstraction of the model side: a chat model and its response.

Everything that talks to a model (explorer, judge, paraphraser, evaluation, adapters) uses
``ChatModel.chat``. The implementation is an OpenAI-compatible HTTP client (vLLM, managed or
external); tests of orchestration may use a scripted fake with the same interface.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Message = dict[str, Any]  # OpenAI chat message: {"role": ..., "content": ..., ...}


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` that constrains a reply to ``schema`` (vLLM's structured outputs)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def json_object(text: str) -> dict[str, Any] | None:
    """The outermost ``{...}`` of a model's reply, parsed, or None (no object, or not valid JSON)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ToolCall(BaseModel):
    """A native tool call as returned by the server (arguments still raw JSON text)."""

    id: str = ""
    name: str
    arguments: str


class Choice(BaseModel):
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None


class ChatResponse(BaseModel):
    """One completion. ``text``/``tool_calls`` are those of the first choice."""

    model: str
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0

    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.choices[0].tool_calls if self.choices else []


@runtime_checkable
class ChatModel(Protocol):
    """A model that answers chat messages. ``model`` may name a LoRA adapter the server loaded."""

    @property
    def model(self) -> str: ...

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        stop: list[str] | None = None,
        n: int = 1,
        response_format: dict[str, Any] | None = None,
        structured: dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        prefix: str | None = None,
    ) -> ChatResponse: ...


@runtime_checkable
class SupportsLora(Protocol):
    """An optional capability of a ``ChatModel``: its server loads LoRA adapters at run time; afterwards
    ``chat(..., model=name)`` uses one (the OpenAI-compatible client; check with ``isinstance``)."""

    async def load_lora(self, name: str, path: str) -> None:
        """Load the PEFT adapter folder ``path`` (on the server's machine) as model ``name``."""
        ...

    async def unload_lora(self, name: str) -> None: ...


class ModelError(Exception):
    """The model server failed; the message says which server and what went wrong."""


class ContextTooLong(ModelError):
    """The server refused a prompt longer than the model's context (retrying it unchanged cannot help)."""
