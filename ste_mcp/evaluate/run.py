"""The eval runner: ask a model each STE-50 query with the tools shown, score its first call.

Settings (what differs between runs, everything else equal):

- ``base``: the bench's original descriptions.
- ``descriptions``: the descriptions the server currently renders (``App.describe``) for the tools it
  serves; the bench's for the others.
- ``retrieval``: ``base`` plus the nearest approved exemplars (explorer-made, never test queries) as
  in-context demonstrations.
- ``adapter``: ``base`` with ``model=<adapter>`` (a LoRA adapter loaded in the model server).

The prompt is a variant of ``ste_mcp.evaluate.prompts`` (``paper``: the ReAct protocol the LLM layer
builds, the format STE explores and fine-tunes with; ``must-call``; ``native`` tool calls), in every
setting: the tools in the system message (or the request's ``tools``), the query as the user message.
Greedy decoding by default (the paper sampled all-50 runs at temperature 1.0), at most 256 new tokens,
stop at "Observation:". Every run is scored by the paper's lenient metrics and the strict one (the
bench's parameters as the tools' input schemas).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
from pydantic import BaseModel, Field

from ste_mcp.evaluate.bench import Bench, BenchItem
from ste_mcp.evaluate.prompts import (
    Prompt,
    format_demo,
    protocol_for_prompt,
    protocol_name,
    with_demonstrations,
)
from ste_mcp.evaluate.score import Summary, score
from ste_mcp.evaluate.search import SearchTools, recall_at
from ste_mcp.llm.base import ChatModel, ModelError
from ste_mcp.memory.dates import as_of

if TYPE_CHECKING:
    from ste_mcp.memory.exemplars import ExemplarStore

Setting = Literal["base", "descriptions", "retrieval", "adapter"]
SETTINGS: tuple[str, ...] = ("base", "descriptions", "retrieval", "adapter")
STOP = "Observation:"


class Demo(Protocol):
    """A worked example shown in the retrieval setting (an ``Exemplar`` fits)."""

    tool: str
    query: str
    arguments: dict[str, Any]


# mcp_name -> (description, JSON schema) as served, or None to keep the bench's
Describe = Callable[[str], tuple[str, dict[str, Any]] | None]
Retrieve = Callable[[str, int], Sequence[Demo]]


def exemplar_retriever(store: ExemplarStore, per_tool: int = 0) -> Retrieve:
    """``Retrieve`` over ``store``'s approved exemplars, at most ``per_tool`` of a tool, as the server shows
    them (``dates.as_of``: one counted from today with today's days)."""
    return lambda query, k: [as_of(ex) for ex in store.search(query, k, per_tool=per_tool)]


class EvalConfig(BaseModel):
    setting: Setting = "base"
    shown: Literal["all", "candidates", "search"] = "candidates"
    search_k: int = Field(5, ge=1, description="--shown search: tools shown per query (the index's top k)")
    search_among: Literal["all", "candidates"] = Field(
        "all",
        description="--shown search: rank all the bench's tools, or only the item's candidates (the API a "
        "server in search mode would serve)",
    )
    prompt: Prompt = Field("paper", description="the prompt variant (ste_mcp.evaluate.prompts)")
    constrained: bool = Field(
        False, description="constrain text replies with a grammar (not the paper's protocol)"
    )
    prefill: bool = Field(
        True,
        description="start unconstrained text replies with 'Thought:' (paper) or 'Action:' (must-call) "
        "(vLLM continue_final_message)",
    )
    prompt_dev: dict[str, float] | None = Field(
        None, description="--prompt best: each variant's correct % on bench/dev that chose this one"
    )
    served_descriptions: bool = Field(
        False,
        description="show the descriptions as the server serves them now (learned notes included) with any "
        "setting, as a client of the product reads them beside its examples; the descriptions setting does "
        "this always",
    )
    temperature: float = 0.0
    max_tokens: int = 256
    k: int = Field(3, description="demonstrations per query in the retrieval setting")
    per_tool: int = Field(
        0, ge=0, description="retrieval: at most this many demonstrations of any one tool (0: no cap)"
    )
    demo_order: Literal["nearest-first", "nearest-last"] = Field(
        "nearest-first", description="retrieval: the nearest demonstration first, or last (next to the query)"
    )
    adapter: str | None = None
    concurrency: int = 4

    @property
    def shows_served_descriptions(self) -> bool:
        return self.setting == "descriptions" or self.served_descriptions


class EvalResult(BaseModel):
    config: EvalConfig
    model: str
    predictions: list[dict[str, Any]]
    summary: Summary
    errors: int = 0
    recall: dict[str, float] | None = Field(
        None, description="--shown search: recall@k (%) of the right tool in the index's ranking"
    )

    def summary_json(self) -> dict[str, Any]:
        """What summary.json holds: the run's settings, overall metrics and metrics per tool."""
        return {
            "setting": self.config.setting,
            "shown": self.config.shown,
            "search_k": self.config.search_k if self.config.shown == "search" else None,
            "search_among": self.config.search_among if self.config.shown == "search" else None,
            "recall": self.recall,
            "model": self.model,
            "adapter": self.config.adapter,
            "served_descriptions": self.config.shows_served_descriptions,
            "prompt": self.config.prompt,
            "prompt_dev": self.config.prompt_dev,
            "protocol": protocol_name(self.config.prompt),
            "constrained": self.config.constrained,
            "prefill": self.config.prefill,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "k": self.config.k if self.config.setting == "retrieval" else None,
            "per_tool": self.config.per_tool if self.config.setting == "retrieval" else None,
            "demo_order": self.config.demo_order if self.config.setting == "retrieval" else None,
            "errors": self.errors,
            **self.summary.model_dump(exclude={"items"}),
        }


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def served_descriptions(app: Any) -> Describe:
    """``Describe`` for the tools the app serves: (description as rendered now, input schema as served)."""

    def describe(name: str) -> tuple[str, dict[str, Any]] | None:
        tool = app.toolset.get(name)
        if tool is None or tool.hidden:
            return None
        return app.describe(tool), tool.served_schema

    return describe


class PromptBuilder:
    """Messages and request options for one item, per the configured setting."""

    def __init__(
        self,
        bench: Bench,
        config: EvalConfig,
        describe: Describe | None = None,
        retrieve: Retrieve | None = None,
        search: SearchTools | None = None,
    ) -> None:
        self.bench = bench
        self.config = config
        if config.shown == "search" and search is None:
            raise ValueError("--shown search needs a tool-search index to ask")
        self.search = search
        self._searched: dict[str, list[str]] = {}
        self.describe = describe if config.shows_served_descriptions else None
        if config.shows_served_descriptions and describe is None:
            raise ValueError("served descriptions need the server's descriptions to read")
        self.retrieve = retrieve if config.setting == "retrieval" else None
        if config.setting == "retrieval" and retrieve is None:
            raise ValueError("the retrieval setting needs an exemplar store to retrieve from")
        self.protocol = protocol_for_prompt(
            config.prompt, constrained=config.constrained, prefill=config.prefill
        )
        self._test_queries = {_normal(it.query) for it in bench.items}

    def shown_names(self, item: BenchItem) -> list[str]:
        """The tools this item's prompt lists: the bench's choice, or the search index's top k."""
        if self.config.shown != "search" or self.search is None:
            return self.bench.shown_names(item, self.config.shown)
        if item.id not in self._searched:
            self._searched[item.id] = self.search(item.query, self.config.search_k, self._among(item))
        return self._searched[item.id]

    def _among(self, item: BenchItem) -> list[str] | None:
        if self.config.search_among == "candidates":
            return self.bench.shown_names(item, "candidates")
        return None

    def search_all(self, items: Sequence[BenchItem], depth: int = 10) -> dict[str, float]:
        """--shown search: ask the index once per item (its top ``depth``), keep the top k to show.

        Returns recall@k (%) of the right tool in those rankings.
        """
        assert self.search is not None
        k = max(depth, self.config.search_k)
        rankings = [self.search(item.query, k, self._among(item)) for item in items]
        for item, ranked in zip(items, rankings, strict=True):
            self._searched[item.id] = ranked[: self.config.search_k]
        return recall_at((it.mcp_name, ranked) for it, ranked in zip(items, rankings, strict=True))

    def tools(self, item: BenchItem) -> list[dict[str, Any]]:
        out = []
        for name in self.shown_names(item):
            tool = self.bench.tool(name)
            served = self.describe(name) if self.describe else None
            description, parameters = served or (tool.description, tool.parameters)
            out.append({"name": name, "description": description, "parameters": parameters})
        return out

    def demos(self, item: BenchItem, shown: set[str]) -> list[Demo]:
        """Nearest exemplars of the shown tools; never a test query (leak guard)."""
        if self.retrieve is None or self.config.k <= 0:
            return []
        hits = self.retrieve(item.query, self.config.k * 3)
        kept = [d for d in hits if d.tool in shown and _normal(d.query) not in self._test_queries]
        kept = kept[: self.config.k]
        return kept[::-1] if self.config.demo_order == "nearest-last" else kept

    def request(self, item: BenchItem) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        tools = self.tools(item)
        system = self.protocol.system_prompt(tools)
        demos = self.demos(item, {t["name"] for t in tools})
        system = with_demonstrations(
            system, [format_demo(self.config.prompt, d.query, d.tool, d.arguments) for d in demos]
        )
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": item.query})
        kwargs = self.protocol.request_kwargs(tools)
        kwargs.setdefault("stop", [STOP])
        return messages, kwargs


async def run_eval(
    model: ChatModel,
    bench: Bench,
    items: Sequence[BenchItem],
    config: EvalConfig,
    *,
    describe: Describe | None = None,
    retrieve: Retrieve | None = None,
    search: SearchTools | None = None,
    progress: Callable[[], None] | None = None,
) -> EvalResult:
    """Ask every item once and score the first calls against all the bench's tools."""
    builder = PromptBuilder(bench, config, describe, retrieve, search)
    recall = None
    if config.shown == "search":  # the index's rankings first, off the requests' event loop
        recall = await anyio.to_thread.run_sync(builder.search_all, items)
    predictions: list[dict[str, Any] | None] = [None] * len(items)
    limiter = anyio.CapacityLimiter(max(1, config.concurrency))

    async def one(index: int, item: BenchItem) -> None:
        messages, kwargs = builder.request(item)
        async with limiter:
            try:
                response = await model.chat(
                    messages,
                    model=config.adapter,
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    **kwargs,
                )
            except ModelError as exc:
                predictions[index] = {"id": item.id, "output": "", "error": str(exc)}
            else:
                predictions[index] = _prediction(item.id, response.text, response.tool_calls)
        if progress is not None:
            progress()

    async with anyio.create_task_group() as tg:
        for index, item in enumerate(items):
            tg.start_soon(one, index, item)
    preds = [p for p in predictions if p is not None]
    summary = score(preds, [it.model_dump() for it in items], bench.tool_names, bench_schemas(bench))
    return EvalResult(
        config=config,
        model=config.adapter or model.model,
        predictions=preds,
        summary=summary,
        errors=sum(1 for p in preds if "error" in p),
        recall=recall,
    )


def bench_schemas(bench: Bench) -> dict[str, dict[str, Any]]:
    """The bench tools' input schemas by name, for the strict metric (the toolbox serves its 13 tools
    with exactly these schemas)."""
    return {t.mcp_name: t.parameters for t in bench.tools}


def _prediction(item_id: str, text: str, tool_calls: Sequence[Any]) -> dict[str, Any]:
    if tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in tool_calls]
        return {"id": item_id, "tool_calls": calls, "output": text}
    return {"id": item_id, "output": text}


def write_results(result: EvalResult, out_dir: Path | str) -> Path:
    """predictions.jsonl, scores.jsonl (why each item scored as it did) and summary.json in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "predictions.jsonl", result.predictions)
    _write_jsonl(out / "scores.jsonl", [s.model_dump() for s in result.summary.items])
    (out / "summary.json").write_text(json.dumps(result.summary_json(), indent=2, ensure_ascii=False) + "\n")
    return out


def read_predictions(path: Path | str) -> list[dict[str, Any]]:
    """Predictions from a JSON-lines file; a bad line is reported with its number."""
    path = Path(path)
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(value, Mapping) or "id" not in value:
            raise ValueError(f"{path}:{number}: expected an object with an 'id'")
        out.append(dict(value))
    return out


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
