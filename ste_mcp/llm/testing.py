"""``ScriptedModel``: a fake ``ChatModel`` that replays given responses (for orchestration unit tests).

Never the only test of a feature: every pipeline also has an end-to-end test on the real model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ste_mcp.llm.base import ChatResponse, Choice, Message, ModelError, ToolCall, Usage

Reply = str | ChatResponse | Callable[[list[Message], dict[str, Any]], "str | ChatResponse"]


def text_response(text: str, *, model: str = "scripted", n: int = 1) -> ChatResponse:
    return ChatResponse(model=model, choices=[Choice(text=text, finish_reason="stop") for _ in range(n)])


def tool_call_response(
    name: str, arguments: Mapping[str, Any] | str, *, call_id: str = "call_0", model: str = "scripted"
) -> ChatResponse:
    """A response carrying one native tool call."""
    raw = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
    call = ToolCall(id=call_id, name=name, arguments=raw)
    return ChatResponse(model=model, choices=[Choice(tool_calls=[call], finish_reason="tool_calls")])


class ScriptedModel:
    """Replays ``replies`` in order, one per ``chat`` call, and records every call in ``calls``.

    A reply is a text, a ``ChatResponse``, or a function ``(messages, kwargs) -> text | ChatResponse``.
    ``repeat_last``: keep answering with the last reply once the script is used up (else ``ModelError``).
    """

    def __init__(
        self, replies: Iterable[Reply], *, model: str = "scripted", repeat_last: bool = False
    ) -> None:
        self.replies = list(replies)
        self.repeat_last = repeat_last
        self._model = model
        self.calls: list[dict[str, Any]] = []  # {"messages": [...], **kwargs}
        self.usage = Usage()

    @property
    def model(self) -> str:
        return self._model

    @property
    def remaining(self) -> int:
        return max(0, len(self.replies) - len(self.calls))

    async def chat(self, messages: list[Message], **kwargs: Any) -> ChatResponse:
        index = len(self.calls)
        self.calls.append({"messages": [dict(m) for m in messages], **kwargs})
        if index >= len(self.replies):
            if not (self.repeat_last and self.replies):
                raise ModelError(
                    f"scripted model: no reply left for call {index + 1} ({len(self.replies)} scripted)"
                )
            index = len(self.replies) - 1
        reply = self.replies[index]
        if callable(reply):
            reply = reply(messages, kwargs)
        model = kwargs.get("model") or self._model
        if isinstance(reply, str):
            reply = text_response(reply, model=model, n=kwargs.get("n", 1))
        usage = Usage(  # a rough count (4 characters a token), enough for accounting tests
            prompt_tokens=sum(len(str(m.get("content") or "")) for m in messages) // 4,
            completion_tokens=len(reply.text) // 4,
        )
        reply = reply.model_copy(update={"usage": usage})
        self.usage.prompt_tokens += reply.usage.prompt_tokens
        self.usage.completion_tokens += reply.usage.completion_tokens
        return reply
