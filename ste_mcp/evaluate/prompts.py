"""Zero-shot prompt variants for ``ste-mcp eval --prompt``: how the tools and the request are put to the model.

- ``paper``: the STE paper's ReAct protocol as the LLM layer builds it (``ReActProtocol``: Thought /
  Action / Action Input, with a Final Answer option); the replies start from ``Thought:`` (prefill).
- ``must-call``: the candidates, then "Answer by calling exactly one of the APIs above" in the
  Action / Action Input format, the names listed, no Thought and no Final Answer option; the replies
  start from ``Action:`` (prefill).
- ``native``: OpenAI-style tool calls (``tools`` / ``tool_calls``; vLLM's hermes parser), the model
  free to call or answer (``tool_choice: auto``).

Every variant also frames the learned settings (descriptions, retrieval's demonstrations, the adapter),
so each can be compared with the best zero-shot prompt and built on it. ``best`` is not a variant:
``ste_mcp.evaluate.best`` resolves it to one, measured on ``bench/dev``. Fine-tuning writes its rows in
these variants too (``finetune.prompt``), so this module is a leaf: it imports nothing of ``evaluate``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ste_mcp.llm.protocols import (
    OBSERVATION,
    NativeToolProtocol,
    ReActProtocol,
    format_react_call,
    function_of,
    react_grammar,
)

Prompt = Literal["paper", "must-call", "native"]
PROMPTS: tuple[str, ...] = ("paper", "must-call", "native")


def variant_label(prompt: str, constrained: bool) -> str:
    """A prompt variant with its decoding, as runs and ``--prompt best`` name it (``must-call+constrained``)."""
    return prompt + ("+constrained" if constrained else "")


BEST = "best"

MUST_CALL_PREFIX = "Action:"
_MUST_CALL = """\
Answer by calling exactly one of the APIs above, in this format:
Action: <the API name, one of: {names}>
Action Input: <the arguments as one JSON object>"""


class MustCallProtocol(ReActProtocol):
    """The APIs, then an instruction to call exactly one of them (no final answer, no thought).
    ``constrained``: a vLLM grammar holds the reply to one call of a shown tool, with no thought before it;
    ``prefill``: otherwise
    the reply starts from ``Action:``. Replies parse as the paper's ReAct calls do."""

    name = "must-call"

    def __init__(self, constrained: bool = False, prefill: bool = True) -> None:
        super().__init__(constrained=constrained, prefill=prefill)

    def system_prompt(self, tools: Sequence[Any], instructions: str = "") -> str:
        fns = [function_of(t) for t in tools]
        listing = "\n\n".join(
            f"{fn['name']}: {fn['description'].strip()}\n"
            f"Parameters: {json.dumps(fn['parameters'], ensure_ascii=False)}"
            for fn in fns
        )
        parts = [instructions.strip()] if instructions.strip() else []
        parts.append(f"You have access to the following APIs:\n\n{listing}")
        parts.append(_MUST_CALL.format(names=", ".join(fn["name"] for fn in fns)))
        return "\n\n".join(parts)

    def request_kwargs(
        self, tools: Sequence[Mapping[str, Any]], *, must_call: bool = True, must_answer: bool = False
    ) -> dict[str, Any]:
        """Stop at ``Observation:``; the grammar (constrained) or the ``Action:`` prefill."""
        kwargs: dict[str, Any] = {"stop": [OBSERVATION]}
        if self.constrained:
            kwargs["structured"] = {"grammar": react_grammar(tools, must_call=True, thought=False)}
        elif self.prefill:
            kwargs["prefix"] = MUST_CALL_PREFIX
        return kwargs


def protocol_for_prompt(
    prompt: str, *, constrained: bool = False, prefill: bool = True
) -> ReActProtocol | MustCallProtocol | NativeToolProtocol:
    """The call protocol of a prompt variant (``constrained`` / ``prefill``: the text variants only)."""
    if prompt == "paper":
        return ReActProtocol(constrained=constrained, prefill=prefill)
    if prompt == "must-call":
        return MustCallProtocol(constrained=constrained, prefill=prefill)
    if prompt == "native":
        return NativeToolProtocol()
    raise ValueError(f"unknown prompt variant {prompt!r}: use one of {', '.join(PROMPTS)} or {BEST}")


def format_call(prompt: str, tool: str, arguments: Mapping[str, Any]) -> str:
    """A call in the reply format the variant asks for (the paper's ReAct step, or must-call's plain
    ``Action`` / ``Action Input``; native has no text format, so it gets the plain call too)."""
    if prompt == "paper":
        return format_react_call(tool, arguments)
    return f"Action: {tool}\nAction Input: {json.dumps(dict(arguments), ensure_ascii=False)}"


def format_demo(prompt: str, query: str, tool: str, arguments: Mapping[str, Any]) -> str:
    """One worked example (retrieval's demonstrations) in the reply format the variant asks for."""
    return f"Query: {query}\n{format_call(prompt, tool, arguments)}"


def with_demonstrations(system: str, shots: Sequence[str]) -> str:
    """A system prompt followed by worked examples (``format_demo``): how the retrieval setting shows a
    model its demonstrations, and what fine-tuning with ``finetune.demonstrations`` trains on."""
    if not shots:
        return system
    joined = "\n\n".join(shots)
    return f"{system}\n\nExamples of correct calls for similar requests:\n\n{joined}".strip()


def protocol_name(prompt: str) -> str:
    """How the variant's calls travel: ``react`` (text) or ``native`` (tool calls)."""
    return "native" if prompt == "native" else "react"
