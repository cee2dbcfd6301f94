"""Leave-tools-out (``finetune.heldout_tools``): a round does not learn a few tools, and the gate refuses a
candidate that answers their requests worse than the current model (orchestration; the training process
is scripted here, ``test_finetune_model`` runs the real one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ste_mcp.finetune.dataset import DatasetBuilder, left_out_tools
from ste_mcp.finetune.gate import decide, left_out_loss, split_scores
from ste_mcp.finetune.registry import AdapterRegistry
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.memory.exemplars import Exemplar
from tests.fixtures.finetune import fake_adapter, make_tool
from tests.test_finetune_demos import words

NAMES = ["weather", "population", "translate", "stock", "define", "currency", "time_in", "distance"]
TOOLS = [make_tool(n, "q", f"The {n} tool.") for n in NAMES]
SERVED = [*TOOLS, make_tool("horoscope", "q", "Nobody explored this one.")]  # a partly explored API
SUBJECTS = ["alpha", "bravo", "charlie", "delta", "echo"]


def pool(tools=NAMES, per_tool: int = 5, query: str = "Please tell me the {t} for {s}.") -> list[Exemplar]:
    return [
        Exemplar(
            id=f"{t}-{s}",
            tool=t,
            query=query.format(t=t, s=s),
            arguments={"q": s},
            status="approved",
        )
        for t in tools
        for s in SUBJECTS[:per_tool]
    ]


def settings(**kw) -> FinetuneSettings:
    base = {"heldout_fraction": 0.0, "include_final_answer": False, "heldout_tools": 2}
    return FinetuneSettings(**{**base, **kw})


def test_left_out_tools_are_few_stable_and_never_learned_ones():
    exemplars = pool()
    chosen = left_out_tools(exemplars, 2)
    assert len(chosen) == 2 and set(chosen) <= set(NAMES)
    assert left_out_tools(exemplars[::-1], 2) == chosen  # stable: by the names' hashes, not the order
    assert left_out_tools(exemplars, 5) == left_out_tools(exemplars, 2)  # at most a quarter of 8 tools
    assert left_out_tools(pool(NAMES[:3]), 2) == []  # three explored tools: none to spare
    others = left_out_tools(exemplars, 2, spent=chosen)
    assert len(others) == 2 and not set(others) & set(chosen)  # a tool is left out once per lineage
    taught = {ex.id for ex in exemplars if ex.tool in chosen[:1]}
    assert chosen[0] not in left_out_tools(exemplars, 2, learned=taught)  # nor one the lineage learned
    assert left_out_tools(exemplars, 0) == []


def test_a_left_out_tool_is_never_trained_nor_shown_and_the_gate_asks_it_unexplored_and_served():
    s = settings(prompt="must-call", demonstrations=3, foreign_examples=0.0, tools_in_prompt=4)
    near = pool(query="Please tell me the {t} for {s}, the {t} only.")  # a tool's requests are nearest
    data = DatasetBuilder(SERVED, s, embed=words).build(near, learned=set(), earlier=[])
    out = set(data.left_out)
    assert len(out) == 2
    assert not out & {r["tool"] for r in data.rows} and not out & {
        i.split("-")[0] for i in data.new_exemplar_ids
    }
    for row in data.rows:  # no training row shows a left-out tool's example (it may be listed)
        examples = row["prompt"][0]["content"].split("Examples of correct calls")[-1]
        assert not any(f"Action: {t}\n" in examples for t in out)
    unexplored = [h for h in data.heldout if h.get("unexplored")]
    assert {h["tool"] for h in unexplored} == out and len(unexplored) == 10
    for item in unexplored:  # asked as an unexplored tool is served: listed, with other tools' examples only
        system = item["prompt"][0]["content"]
        assert f"{item['tool']}:" in system and f"Action: {item['tool']}\n" not in system
        assert "Examples of correct calls" in system
    served = [h for h in data.heldout if h.get("served")]
    assert sorted(h["id"] for h in served) == sorted(h["id"] for h in unexplored)  # each asked twice
    for item in served:  # as the pool serves it until the next round: its own exemplars among the examples
        examples = item["prompt"][0]["content"].split("Examples of correct calls")[-1]
        assert f"Action: {item['tool']}\n" in examples and item["query"] not in examples
    assert data.counts == {"new": 30, "replay": 0, "heldout": 0, "unexplored": 10, "served": 10}
    capped = DatasetBuilder(SERVED, s.model_copy(update={"max_heldout": 3}), embed=words).build(
        near, set(), []
    )
    assert sorted(h["id"] for h in capped.heldout if h.get("served")) == sorted(
        h["id"] for h in capped.heldout if h.get("unexplored")
    )  # the cap keeps both questions of the same exemplars
    assert capped.counts["unexplored"] == 3
    bare = DatasetBuilder(SERVED, settings()).build(pool(), set(), [])
    assert bare.counts["unexplored"] == 10 and "served" not in bare.counts  # no examples: one question
    plain = DatasetBuilder(SERVED, s.model_copy(update={"heldout_tools": 0}), embed=words).build(
        pool(), set(), []
    )
    assert plain.left_out == [] and len(plain.rows) == 40 and "unexplored" not in plain.counts


def test_the_next_round_of_the_lineage_learns_the_left_out_tools():
    first = DatasetBuilder(SERVED, settings()).build(pool(), learned=set(), earlier=[])
    learned = set(first.new_exemplar_ids)
    second = DatasetBuilder(SERVED, settings()).build(
        pool(), learned=learned, earlier=[first.new_exemplar_ids], spent=first.left_out
    )
    assert second.left_out == []  # every tool was learned or left out once
    assert {r["tool"] for r in second.rows if r["source"] == "new"} == set(first.left_out)
    # a tool that gains its first exemplars later may be left out, but never when it is all that is new
    news = [make_tool("news", "q", "News."), make_tool("sport", "q", "Sport.")]
    taught = learned | set(second.new_exemplar_ids)
    alone = DatasetBuilder(SERVED + news, settings()).build(
        pool() + pool(["news"]), learned=taught, earlier=[], spent=first.left_out
    )
    assert alone.left_out == [] and {r["tool"] for r in alone.rows} == {"news"}
    two = DatasetBuilder(SERVED + news, settings()).build(
        pool() + pool(["news", "sport"]), learned=taught, earlier=[], spent=first.left_out
    )
    assert len(two.left_out) == 1 and {r["tool"] for r in two.rows} == {"news", "sport"} - set(two.left_out)


def test_leave_tools_out_and_the_foreign_share_act_only_while_a_served_tool_is_unexplored():
    """auto: what a fully explored API serves (every tool with examples) is what its rows show."""
    s = settings(prompt="must-call", demonstrations=3, foreign_examples="auto", tools_in_prompt=4)
    partly = DatasetBuilder(SERVED, s, embed=words).build(pool(), learned=set(), earlier=[])
    assert len(partly.left_out) == 2 and partly.foreign == 0.5
    full = DatasetBuilder(TOOLS, s, embed=words).build(pool(), learned=set(), earlier=[])
    assert full.left_out == [] and full.foreign == 0.0 and len(full.rows) == 40
    zero = DatasetBuilder(TOOLS, s.model_copy(update={"foreign_examples": 0.0}), embed=words).build(
        pool(), set(), []
    )
    assert full.rows == zero.rows  # every tool explored: the rows as with no foreign share
    half = DatasetBuilder(SERVED, s.model_copy(update={"foreign_examples": 0.5}), embed=words).build(
        pool(), set(), []
    )
    assert partly.rows == half.rows and partly.heldout == half.heldout
    own = [sum(f"Action: {r['tool']}\n" in r["prompt"][0]["content"] for r in d.rows) for d in (zero, half)]
    assert own[0] > own[1] * 40 / len(half.rows)  # half the rows show only other tools' examples
    with pytest.raises(ValueError, match="auto"):
        FinetuneSettings(foreign_examples=1.5)  # a share, or auto


def answers(items: list[dict], right: set[str]) -> list[str]:
    """must-call outputs: the right call for the ids in ``right``, the next tool's otherwise."""

    def tool(item: dict) -> str:
        return item["tool"] if item["id"] in right else NAMES[(NAMES.index(item["tool"]) + 1) % len(NAMES)]

    return [f"Action: {tool(i)}\nAction Input: {json.dumps(i['arguments'])}" for i in items]


def items(tool: str, n: int, part: str = "") -> list[dict]:
    """``n`` held-out items of ``tool``; ``part``: the left-out question they belong to ("": explored)."""
    return [
        {"id": f"{tool}-{k}", "tool": tool, "arguments": {"q": str(k)}, **({part: True} if part else {})}
        for k in range(n)
    ]


def test_a_candidate_that_takes_the_unexplored_tools_requests_is_refused():
    held = items("translate", 10) + items("stock", 10, "unexplored")
    ids = [i["id"] for i in held]
    explored_right = set(ids[:10])
    # the candidate is better on the explored tools and loses 6 of 8 unexplored answers the base gave
    candidate = answers(held, explored_right | {"stock-0", "stock-1"})
    baseline = answers(held, set(ids[:5]) | {f"stock-{k}" for k in range(8)})
    result = split_scores(held, candidate, baseline, NAMES)
    assert (
        result["eval"]["n"] == 10
        and result["eval"]["correct"] == 100.0
        and result["baseline"]["correct"] == 50.0
    )
    un = result["unexplored"]
    assert (
        un["tools"] == ["stock"] and un["candidate"]["correct"] == 20.0 and un["baseline"]["correct"] == 80.0
    )
    assert un["paired"]["correct"] == [0, 6]
    assert sum(1 for p in result["predictions"] if p.get("unexplored")) == 10
    verdict = decide(result["eval"], result["baseline"], unexplored=un, worse_p=0.2)
    assert not verdict.promote and verdict.judged
    assert "the tools it was not trained on (stock), asked as tools nobody explored" in verdict.reason
    assert "6 lost, 0 gained" in verdict.reason and "correct 20.0% vs 80.0%" in verdict.reason
    # without the unexplored part the same candidate would have been promoted
    assert decide(result["eval"], result["baseline"]).promote


def test_a_loss_on_the_unexplored_tools_within_noise_vetoes_nothing():
    held = items("translate", 10) + items("stock", 10, "unexplored")
    candidate = answers(held, {f"translate-{k}" for k in range(10)} | {"stock-0", "stock-1", "stock-2"})
    baseline = answers(held, {"translate-0"} | {"stock-1", "stock-2", "stock-3", "stock-4"})
    un = split_scores(held, candidate, baseline, NAMES)["unexplored"]
    assert un["paired"]["correct"] == [1, 2]  # p = 0.5: noise
    assert left_out_loss(un, 0.2) == ""
    better = {"correct": 100.0, "api_match": 100.0, "wellformed": 100.0, "n": 10}
    assert decide(better, {**better, "correct": 10.0}, unexplored=un, worse_p=0.2).promote
    assert "2 lost, 1 gained" in left_out_loss(un, 1.0)  # 1.0: any loss refuses
    gained = split_scores(held, baseline, candidate, NAMES)["unexplored"]
    assert left_out_loss(gained, 1.0) == ""  # a gain is never a loss


def test_a_candidate_that_ignores_a_left_out_tools_own_examples_is_refused():
    """Right where the left-out tool is asked as unexplored, wrong where it is served with its own
    examples (session 31's share-0.5 adapter: it trusted its weights over the examples)."""
    held = items("translate", 10) + items("stock", 8, "unexplored") + items("stock", 8, "served")
    half = {f"stock-{k}" for k in range(4)}  # both models: half the stock requests asked as unexplored
    candidate = answers(held[:18], {f"translate-{k}" for k in range(10)} | half) + answers(held[18:], set())
    baseline = answers(held[:18], half) + answers(held[18:], {f"stock-{k}" for k in range(8)})
    result = split_scores(held, candidate, baseline, NAMES)
    assert result["unexplored"]["paired"]["correct"] == [0, 0]  # the same answers asked as unexplored
    assert result["served"]["paired"]["correct"] == [0, 8] and result["served"]["tools"] == ["stock"]
    assert result["eval"]["n"] == 10 and sum(1 for p in result["predictions"] if p.get("served")) == 8
    verdict = decide(
        result["eval"], result["baseline"], unexplored=result["unexplored"], served=result["served"]
    )
    assert not verdict.promote and verdict.judged
    assert "asked as served until the next round, with their own examples" in verdict.reason
    assert "8 lost, 0 gained" in verdict.reason
    assert decide(result["eval"], result["baseline"], unexplored=result["unexplored"]).promote  # before


@pytest.mark.anyio
async def test_a_round_records_what_it_left_out_and_its_gate_refuses_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ste_mcp.finetune import rounds

    seen: list[list[dict]] = []

    async def scripted_training(cmd, log, pid_file, threads) -> int:
        """The candidate answers every held-out row right and every unexplored one wrong; the base
        model the opposite: better where it trained, worse where it never did."""
        work = Path(cmd[-1]).parent
        held = [json.loads(line) for line in (work / "heldout.jsonl").read_text().splitlines()]
        seen.append(held)
        fake_adapter(work, "x").rename(work / "adapter")
        ids = {h["id"] for h in held}
        left = {h["id"] for h in held if h.get("unexplored")}
        result = split_scores(held, answers(held, ids - left), answers(held, left), NAMES)
        (work / "result.json").write_text(json.dumps({**result, "train": {}}))
        return 0

    monkeypatch.setattr(rounds, "_run_process", scripted_training)

    async def round_(**kw):
        return await rounds.run_round(
            adapters_dir=tmp_path / "adapters",
            base=rounds.BaseModelRef(path=str(tmp_path), base_id="org/base"),
            tools=SERVED,
            exemplars=pool(),
            settings=settings(general_examples=0, heldout_fraction=0.3, gate_min_heldout=2, **kw),
        )

    refused = await round_()
    assert refused.status == "rejected" and "not trained on" in refused.reason
    manifest = AdapterRegistry(tmp_path / "adapters").get(refused.adapter.id)
    assert len(manifest.left_out) == 2 and manifest.counts["unexplored"] == 10
    assert manifest.metrics["unexplored"]["paired"]["correct"] == [0, 10]
    assert not set(manifest.left_out) & set(manifest.tools)
    assert AdapterRegistry(tmp_path / "adapters").current() is None
    from ste_mcp.finetune.cli_adapters import _unexplored  # the `adapters list` column

    assert _unexplored(manifest.model_dump()) == "0.0 vs 100.0"
    # the operator who wants the explored tools' gate alone turns leave-tools-out off
    promoted = await round_(heldout_tools=0)
    assert promoted.status == "promoted" and promoted.adapter.left_out == []
    assert not any(h.get("unexplored") for h in seen[-1])
    assert _unexplored(promoted.adapter.model_dump()) == "-"


@pytest.mark.anyio
async def test_a_round_with_examples_asks_the_left_out_tools_as_served_and_records_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ste_mcp.finetune import rounds
    from ste_mcp.finetune.cli_adapters import _unexplored

    async def scripted_training(cmd, log, pid_file, threads) -> int:
        """The candidate is right everywhere but where a left-out tool is served with its own examples."""
        work = Path(cmd[-1]).parent
        held = [json.loads(line) for line in (work / "heldout.jsonl").read_text().splitlines()]
        fake_adapter(work, "x").rename(work / "adapter")
        candidate = [answers([h], set() if h.get("served") else {h["id"]})[0] for h in held]
        result = split_scores(held, candidate, answers(held, {h["id"] for h in held}), NAMES)
        (work / "result.json").write_text(json.dumps({**result, "train": {}}))
        return 0

    monkeypatch.setattr(rounds, "_run_process", scripted_training)
    s = settings(prompt="must-call", demonstrations=3, general_examples=0, heldout_fraction=0.3)
    result = await rounds.run_round(
        adapters_dir=tmp_path / "adapters",
        base=rounds.BaseModelRef(path=str(tmp_path), base_id="org/base"),
        tools=SERVED,
        exemplars=pool(),
        settings=s.model_copy(update={"gate_min_heldout": 2}),
        embed=words,
    )
    assert result.status == "rejected" and "asked as served until the next round" in result.reason
    manifest = result.adapter
    assert manifest.counts["served"] == manifest.counts["unexplored"] == 10
    assert manifest.metrics["unexplored"]["paired"]["correct"] == [0, 0]
    assert manifest.metrics["served"]["paired"]["correct"] == [0, 10]
    assert _unexplored(manifest.model_dump()) == "100.0 vs 100.0; served 0.0 vs 100.0"


def test_the_two_questions_share_one_noise_budget():
    """4 lost and 1 gained (sign test p 0.19) refuses when it is the only question asked, and is noise
    when both are: each question gets half of gate_worse_p."""
    held = items("translate", 10) + items("stock", 6, "unexplored") + items("stock", 6, "served")
    explored = {f"translate-{k}" for k in range(10)}
    candidate = answers(held[:16], explored) + answers(held[16:], {"stock-0", "stock-1"})
    baseline = answers(held[:16], set()) + answers(held[16:], {f"stock-{k}" for k in range(1, 6)})
    result = split_scores(held, candidate, baseline, NAMES)
    assert result["unexplored"]["paired"]["correct"] == [0, 0]
    assert result["served"]["paired"]["correct"] == [1, 4]
    both = decide(
        result["eval"], result["baseline"], unexplored=result["unexplored"], served=result["served"]
    )
    assert both.promote
    alone = decide(result["eval"], result["baseline"], served=result["served"])
    assert not alone.promote and "4 lost, 1 gained; sign test p = 0.188" in alone.reason
    anyloss = decide(
        result["eval"],
        result["baseline"],
        unexplored=result["unexplored"],
        served=result["served"],
        worse_p=1.0,
    )
    assert not anyloss.promote  # 1.0: any loss refuses, however many questions
