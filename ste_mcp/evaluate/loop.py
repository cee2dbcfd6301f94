"""The whole STE loop in one process, for benchmarks: explore -> judge -> exemplars -> descriptions ->
adapter, evaluating on STE-50 between stages. One ``App`` (toolbox, upstream client, memory) and one
model server serve every stage, so the numbers of different stages differ only by what was learned.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from ste_mcp.config import Settings
from ste_mcp.evaluate.bench import Bench, BenchItem
from ste_mcp.evaluate.run import EvalConfig, EvalResult, exemplar_retriever, run_eval, served_descriptions
from ste_mcp.llm.base import SupportsLora
from ste_mcp.llm.sources import DEFAULT_MODEL


def add_run_arguments(parser: argparse.ArgumentParser, repo: Path) -> None:
    """The benchmark scripts' common options: the bench folder, the model and an optional external server."""
    parser.add_argument("--bench", default=str(repo / "bench" / "ste50"))
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--llm-url", help="an already running OpenAI-compatible server (default: managed vLLM)"
    )


def run_llm_settings(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The ``llm`` settings section for ``add_run_arguments``' options (plus ``extra`` fields)."""
    return {
        "model": args.model,
        "base_url": args.llm_url,
        # an external server serves a packaged model under its short name
        "served_model_name": args.model.removeprefix("packaged:") if args.llm_url else None,
        # two shared CPU cores: a long ReAct answer to a 15-tool prompt can take minutes under load
        "timeout_s": 900.0,
        **extra,
    }


def share_models_cache(data_dir: Path, cache: Path) -> None:
    """Point ``data_dir/models`` at an existing prepared-models cache so a benchmark converts nothing again."""
    models = data_dir / "models"
    if cache.is_dir() and not models.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        models.symlink_to(cache.resolve(), target_is_directory=True)


class LoopError(Exception):
    """A stage of the loop cannot run; the message says which and why."""


class LearningLoop:
    """Stages over an open ``App`` whose toolset serves (some of) the bench's tools."""

    def __init__(self, app: Any, model: Any, bench: Bench) -> None:
        self.app = app
        self.model = model
        self.bench = bench
        from ste_mcp.explorer.learn import LearnError, memory_of

        try:
            self.memory = memory_of(app)
        except LearnError as exc:
            raise LoopError("the memory feature is not installed: no exemplars or live descriptions") from exc
        names = set(bench.tool_names)
        self.tools = [t for t in app.toolset.visible() if t.name in names]
        if not self.tools:
            raise LoopError("the toolset serves none of the bench's tools (the toolbox serves 13)")

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, bench: Bench) -> AsyncIterator[LearningLoop]:
        from ste_mcp.app import App

        async with App(settings) as app:
            yield cls(app, await app.get_model(), bench)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    async def explore(self, tools: Sequence[str], episodes: int) -> Any:
        """Explore ``tools`` until each has ``episodes`` episodes in total (with the explorer role's model,
        wired as ``serve`` wires it); returns the run summary."""
        from ste_mcp.explorer.scheduler import Explorer

        settings = self.settings.explorer.model_copy(update={"tools": list(tools)})
        explorer = await Explorer.from_app(self.app, tools=self.tools, settings=settings)
        return await explorer.run(episodes=episodes)

    async def exploit(self) -> dict[str, int]:
        """Judge every new trial into exemplars (with paraphrases; the roles' models, as ``ste-mcp learn``)
        and re-render descriptions; approved per tool."""
        from ste_mcp.explorer.learn import judge_pending

        await judge_pending(self.app)  # all of them: one serve pass judges a bounded batch only
        await self.memory.step()  # descriptions: render, serve
        return self.approved_counts()

    def approved_counts(self) -> dict[str, int]:
        counts = self.memory.exemplars.counts()
        return {tool: counts.get(tool, {}).get("approved", 0) for tool in self.tool_names}

    async def train(self, *, replay_fraction: float | None = None, from_scratch: bool = False) -> Any:
        """One fine-tuning round on the approved exemplars (gated); returns the round result.

        ``replay_fraction``: replay that share of earlier rounds (``finetune.replay = "fraction"``)
        instead of the configured replay.
        """
        from ste_mcp.finetune.rounds import round_from_settings

        settings = self.settings
        if replay_fraction is not None:
            update = {"replay": "fraction", "replay_fraction": replay_fraction}
            finetune = settings.finetune.model_copy(update=update)
            settings = settings.model_copy(update={"finetune": finetune})
        return await round_from_settings(settings, toolset=self.app.toolset, from_scratch=from_scratch)

    def promote(self, adapter_id: str | None) -> None:
        """Make ``adapter_id`` the current adapter again (``None``: leave as is)."""
        if adapter_id is None:
            return
        from ste_mcp.finetune.registry import AdapterRegistry

        AdapterRegistry(self.settings.adapters_dir).promote(
            adapter_id, reason="benchmark: restore starting point"
        )

    async def evaluate(
        self,
        items: Sequence[BenchItem],
        setting: str,
        *,
        adapter: str | None = None,
        progress: Callable[[], None] | None = None,
        **config: Any,
    ) -> EvalResult:
        """Evaluate ``items`` in a setting (``adapter``: that adapter, loaded for the run and unloaded after).

        ``progress`` is called once per answered item; ``config`` holds ``EvalConfig`` fields.
        """
        describe = retrieve = None
        if setting == "descriptions":
            await anyio.to_thread.run_sync(self.memory.live.refresh)
            describe = served_descriptions(self.app)
        if setting == "retrieval":
            retrieve = exemplar_retriever(self.memory.exemplars)
        cfg = EvalConfig(setting=setting, adapter=adapter, **config)  # type: ignore[arg-type]
        if adapter is None:
            return await run_eval(
                self.model, self.bench, items, cfg, describe=describe, retrieve=retrieve, progress=progress
            )
        from ste_mcp.finetune.registry import AdapterRegistry

        if not isinstance(self.model, SupportsLora):
            raise LoopError(f"model client {type(self.model).__name__} cannot load LoRA adapters")
        path = AdapterRegistry(self.settings.adapters_dir).path(adapter)
        await self.model.load_lora(adapter, str(path))
        try:
            return await run_eval(self.model, self.bench, items, cfg, progress=progress)
        finally:
            await self.model.unload_lora(adapter)
