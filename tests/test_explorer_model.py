"""STE exploration end to end with the real packaged model (SmolLM2-135M on managed vLLM, CPU)
against the offline toolbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ste_mcp.explorer import prompts
from ste_mcp.explorer.scheduler import Explorer
from ste_mcp.explorer.settings import ExplorerSettings
from ste_mcp.llm.protocols import protocol_for
from ste_mcp.memory.trials import TrialStore
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs import load_spec, toolbox_spec_path

pytestmark = [pytest.mark.anyio, pytest.mark.model]

TOOLS = ["get_today_date", "Numbers_Translator__Numbers_Translator"]  # no required arguments


class Recording:
    """Passes requests to the real model and keeps the conversations it was sent."""

    def __init__(self, model: Any) -> None:
        self.inner = model
        self.sent: list[list[dict[str, Any]]] = []

    @property
    def model(self) -> str:
        return self.inner.model

    async def chat(self, messages, **kwargs):
        self.sent.append([dict(m) for m in messages])
        return await self.inner.chat(messages, **kwargs)


async def test_short_exploration_of_two_tools(chat_model, toolbox, data_dir: Path) -> None:
    tools = [
        t for t in load_spec(toolbox_spec_path(), variables={"TOOLBOX_URL": toolbox.url}) if t.name in TOOLS
    ]
    store = TrialStore.open(data_dir / "lancedb")
    model = Recording(chat_model)
    settings = ExplorerSettings(
        temperature=0.0,  # deterministic: the test must not depend on a lucky sample
        num_episodes=1,
        num_stm_slots=2,
        max_turn=2,
        max_tokens=64,
        upstream_rate_per_s=0,
    )
    async with UpstreamClient() as upstream:
        explorer = Explorer(
            tools,
            model=model,
            upstream=upstream,
            store=store,
            settings=settings,
            protocol=protocol_for(model.model),
        )
        summary = await explorer.run()
        assert summary.trials == 4 and summary.errors == 0

        trials = store.trials()
        assert sorted(t.id for t in trials) == sorted(f"{n}:0:{s}" for n in TOOLS for s in (0, 1))
        for t in trials:
            assert t.query and t.turns and t.model == chat_model.model and t.prompt_tokens > 0
            assert t.prompt_version == prompts.PROMPT_VERSION and t.protocol == "react"
            assert t.reflection in ("yes", "no", "")
        calls = [turn for t in trials for turn in t.turns if turn.kind == "call"]
        assert calls, "the model never called a tool"
        answered = [c for c in calls if c.http_status is not None]  # a real toolbox response
        assert answered and all(c.observation for c in answered)

        # LTM: a later episode's imagination prompt lists the queries already tried (read from the store)
        model.sent.clear()
        more = ExplorerSettings(
            temperature=0.0,
            num_episodes=2,
            num_stm_slots=1,
            max_turn=2,
            max_tokens=64,
            upstream_rate_per_s=0,
            tools=[TOOLS[0]],
        )
        explorer = Explorer(
            tools,
            model=model,
            upstream=upstream,
            store=store,
            settings=more,
            protocol=protocol_for(model.model),
        )
        await explorer.run()
    imagine = model.sent[0][-1]["content"]
    assert "Requests already tried" in imagine
    for t in trials:
        if t.tool == TOOLS[0]:
            assert " ".join(t.query.split())[:150] in imagine
    assert store.count() == 5
