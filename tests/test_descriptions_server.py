"""Live descriptions through the real server and the SDK's client, both protocol generations:
the background loop judges a trial, an operator approves the exemplar (CLI, another connection),
the client is notified and sees the new description; a rollback notifies again and restores it."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest
from mcp import Client, types

from ste_mcp.app import App
from ste_mcp.cli import main
from ste_mcp.config import load_settings
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import SECTION_HEADER
from ste_mcp.memory.trials import TrialStore
from ste_mcp.server.server import build_server
from ste_mcp.upstream.specs import Toolset
from tests.fixtures.exemplars import (
    record_trial,
    started_upstream,  # noqa: F401 (the upstream fixture)
)
from tests.fixtures.models import judging_model

pytestmark = pytest.mark.anyio
QUERY = "How much is 100 dollars in euros?"


@pytest.fixture
async def app(upstream, data_dir):
    settings = load_settings(data_dir=str(data_dir), memory={"approval": "manual", "poll_s": 0.1})
    toolset = Toolset(upstream.tools())
    async with App(settings, toolset=toolset, features=["ste_mcp.memory.extension:create"]) as app:
        model = judging_model()

        async def model_for(role):  # every role (judge, paraphrase) plays the fake
            return model

        app.model_for = model_for
        yield app


def cli(*argv: str) -> int:
    return main(list(argv))


@pytest.mark.parametrize("mode", ["modern", "legacy"])
async def test_approval_and_rollback_reach_connected_clients(app, data_dir, mode):
    trials = TrialStore(open_db(data_dir / "lancedb"))
    convert = app.toolset.get("convert_currency")
    trial = await record_trial(trials, app.upstream, convert, {"amount": "100", "to": "EUR"}, QUERY)
    notifications: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            notifications.append("legacy")

    async with AsyncExitStack() as stack:
        if mode == "legacy":
            client = await stack.enter_async_context(
                Client(build_server(app), mode="legacy", message_handler=on_message)
            )
        else:
            client = await stack.enter_async_context(Client(build_server(app)))
            sub = await stack.enter_async_context(client.listen(tools_list_changed=True))

            async def pump() -> None:
                async for event in sub:
                    notifications.append(type(event).__name__)

            tg = await stack.enter_async_context(anyio.create_task_group())
            tg.start_soon(pump)
            stack.callback(tg.cancel_scope.cancel)

        async def description() -> str:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            return tools["convert_currency"].description

        async def next_change() -> None:
            seen = len(notifications)
            with anyio.fail_after(15):
                while len(notifications) == seen:
                    await anyio.sleep(0.02)

        original = await description()
        assert original == convert.description
        with anyio.fail_after(15):  # the background loop judges the trial: a candidate, not yet served
            while trials.get(trial.id).verdict is None:
                await anyio.sleep(0.05)
        assert await description() == original

        assert (
            await anyio.to_thread.run_sync(
                cli, "exemplars", "approve", "--all-candidates", "--data-dir", str(data_dir)
            )
            == 0
        )
        await next_change()
        learned = await description()
        assert learned.startswith(original) and SECTION_HEADER in learned and QUERY in learned

        found = await client.call_tool("find_tool_examples", {"task": "convert dollars into euros", "k": 3})
        assert not found.is_error
        [best] = json.loads(found.content[0].text)["examples"]  # paraphrases of one exemplar count once
        assert best["tool"] == "convert_currency" and best["arguments"] == {"amount": "100", "to": "EUR"}
        resource = await client.read_resource("ste-mcp://exemplars/convert_currency")
        assert QUERY in resource.contents[0].text

        assert (
            await anyio.to_thread.run_sync(
                cli, "descriptions", "rollback", "convert_currency", "--data-dir", str(data_dir)
            )
            == 0
        )
        await next_change()
        assert await description() == original


async def test_judging_waits_for_the_model_without_breaking_the_loop(app, data_dir, caplog):
    from ste_mcp.app import ModelUnavailable

    [ext] = app.extensions
    trials = TrialStore(open_db(data_dir / "lancedb"))
    trial = await record_trial(
        trials, app.upstream, app.toolset.get("convert_currency"), {"amount": "1"}, QUERY
    )
    working_model_for = app.model_for

    async def unavailable(role):
        raise ModelUnavailable("cannot open model 'x': connection refused")

    app.model_for = unavailable
    assert await ext.step() == set()
    assert await ext.step() == set()
    assert trials.get(trial.id).verdict is None
    assert sum("judging postponed" in r.message for r in caplog.records) == 1  # said once, not every pass

    app.model_for = working_model_for
    await ext.step()
    assert trials.get(trial.id).verdict["accepted"] is True
