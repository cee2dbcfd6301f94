"""The description gate's evaluator (``memory/gate.py``): held-out exemplars asked as the eval asks
STE-50 items.

The tool and its distractors become a small bench (the exemplars' verified arguments are the ground
truth), asked by ``run_eval`` with the must-call prompt (greedy, every tool listed; the reply held by
the grammar to one call of a listed tool with ``memory.gate_decoding = constrained``, else prefilled with
``Action:``) and scored by the eval's scorer. It lives here, above ``memory/``, so the
memory layer never imports the eval runner: the CLI hands a ``ModelEvaluator`` to the ``Rewriter``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ste_mcp.evaluate.bench import Bench, BenchItem, BenchTool
from ste_mcp.evaluate.prompts import Prompt, variant_label
from ste_mcp.evaluate.run import EvalConfig, run_eval
from ste_mcp.llm.base import ChatModel
from ste_mcp.memory.exemplars import Exemplar
from ste_mcp.memory.gate import GATE_PROMPT, METRICS, Measurement
from ste_mcp.upstream.tools import Tool

if TYPE_CHECKING:
    from ste_mcp.app import App


class EvaluatorError(RuntimeError):
    """The evaluator model failed on some held-out queries; the message names the tool."""


class ModelEvaluator:
    """``memory.gate.Evaluator`` over a chat model: the eval's prompt variant, runner and scorer."""

    def __init__(
        self,
        model: ChatModel,
        *,
        prompt: Prompt = GATE_PROMPT,
        constrained: bool = False,
        concurrency: int = 4,
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.constrained = constrained
        self.concurrency = concurrency

    @property
    def name(self) -> str:
        return self.model.model

    @property
    def variant(self) -> str:
        """The prompt variant with its decoding (``must-call+constrained``), stored with the gate's result."""
        return variant_label(self.prompt, self.constrained)

    async def __call__(
        self,
        tool: Tool,
        description: str,
        distractors: Sequence[tuple[Tool, str]],
        heldout: Sequence[Exemplar],
    ) -> Measurement:
        """Metrics (%) on ``heldout`` with ``tool`` shown as ``description`` beside ``distractors``,
        the other tools called instead (how often) and each query's outcome."""
        shown = [(tool, description), *distractors]
        bench = Bench(
            root=Path("."),
            tools=[
                BenchTool(name=t.name, mcp_name=t.name, description=text, parameters=t.input_schema)
                for t, text in shown
            ],
            items=[
                BenchItem(id=ex.id, query=ex.query, tool=ex.tool, mcp_name=ex.tool, arguments=ex.arguments)
                for ex in heldout
            ],
        )
        config = EvalConfig(
            setting="base",
            shown="all",
            prompt=self.prompt,
            constrained=self.constrained,
            concurrency=self.concurrency,
        )
        result = await run_eval(self.model, bench, bench.items, config)
        if result.errors:
            first = next(p["error"] for p in result.predictions if "error" in p)
            raise EvaluatorError(
                f"description gate for {tool.name!r}: {result.errors} evaluator request(s) failed: {first}"
            )
        s = result.summary
        wrong = Counter(
            i.called for i in s.items if i.tool == tool.name and i.called and i.called != tool.name
        )
        return Measurement(
            # API match over every query asked, as the outcomes count it: the eval's own convention (of the
            # well-formed answers) would score a description better for making answers ill-formed
            metrics={"correct": s.correct, "api_match": s.api_match_all, "wellformed": s.wellformed},
            confused_with=dict(wrong),
            outcomes={i.id: tuple(bool(getattr(i, m)) for m in METRICS) for i in s.items},
        )


async def gate_evaluators(app: App) -> list[ModelEvaluator]:
    """The description gate's evaluators: the app's model, then ``llm.evaluators`` (``App.evaluator_models``),
    each decoding as ``memory.gate_decoding`` says."""
    constrained = app.settings.memory.gate_decoding == "constrained"
    return [ModelEvaluator(model, constrained=constrained) for model in await app.evaluator_models()]
