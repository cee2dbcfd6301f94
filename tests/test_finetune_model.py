"""Fine-tuning end to end on the packaged SmolLM2-135M (CPU): train, reload, gate, export, crash, resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from ste_mcp.finetune.dataset import read_jsonl
from ste_mcp.finetune.gate import decide, evaluate_adapters, generate
from ste_mcp.finetune.registry import AdapterRegistry
from ste_mcp.finetune.rounds import BaseModelRef, RoundError, RoundResult, run_round
from ste_mcp.finetune.serving import AdapterServing
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.llm.protocols import ParsedCall, parse_react
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from tests.fixtures.finetune import TOOLS

pytestmark = [pytest.mark.model, pytest.mark.slow]

BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TOOL_NAMES = [t.name for t in TOOLS]
CITIES = [
    "Paris",
    "Rome",
    "Madrid",
    "Berlin",
    "Lisbon",
    "Vienna",
    "Oslo",
    "Dublin",
    "Prague",
    "Athens",
    "Cairo",
    "Lima",
]
COUNTRIES = [
    "France",
    "Italy",
    "Spain",
    "Germany",
    "Portugal",
    "Austria",
    "Norway",
    "Ireland",
    "Greece",
    "Egypt",
]
SETTINGS = FinetuneSettings(
    max_steps=14,
    cpu_threads=None,  # every core: 355 -> 217 s for the first round on 2 cores (session 42)
    batch_size=4,
    learning_rate=2e-3,
    max_length=512,
    save_steps=2,
    general_examples=2,
    include_final_answer=False,
    tools_in_prompt=2,
    heldout_fraction=0.25,  # 8 of these 22 exemplars
    gate_min_heldout=4,
    eval_max_new_tokens=40,
)


def exemplars() -> list[Exemplar]:
    out = [
        Exemplar(tool="get_weather", query=f"What is the weather in {c} today?", arguments={"city": c})
        for c in CITIES
    ]
    out += [
        Exemplar(tool="get_population", query=f"How many people live in {c}?", arguments={"country": c})
        for c in COUNTRIES
    ]
    return out


def approve(store: ExemplarStore, items: list[Exemplar]) -> list[Exemplar]:
    stored = store.add(items)
    store.set_status([ex.id for ex in stored], "approved")
    return store.approved()


@pytest.fixture(scope="module")
def first_round(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One real round from approved exemplars in a real LanceDB: (registry, result, store, base)."""
    root = tmp_path_factory.mktemp("finetune")
    store = ExemplarStore(open_db(root / "db"))
    base = BaseModelRef(path=str(smollm2_dir), base_id=BASE_ID)
    approved = approve(store, exemplars())
    result = asyncio.run(
        run_round(
            adapters_dir=root / "adapters", base=base, tools=TOOLS, exemplars=approved, settings=SETTINGS
        )
    )
    return AdapterRegistry(root / "adapters"), result, store, base


@pytest.fixture(scope="module")
def base_model(smollm2_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    return AutoModelForCausalLM.from_pretrained(smollm2_dir), tokenizer


def test_round_trains_gates_and_promotes_an_adapter(first_round):
    registry, result, _, _ = first_round
    assert result.status == "promoted", result.reason
    adapter = result.adapter
    assert registry.current().id == adapter.id and adapter.parent is None
    train = adapter.metrics["train"]
    assert train["steps"] == SETTINGS.max_steps and train["loss_last"] < train["loss_first"] / 2
    assert adapter.metrics["eval"]["correct"] > adapter.metrics["baseline"]["correct"]
    assert adapter.counts["heldout"] > 0 and adapter.counts["general"] == 2
    folder = registry.path(adapter.id)
    # both were asked as the evaluation asks: the reply prefilled with "Thought:", never cut to nothing
    asked = read_jsonl(folder / "predictions.jsonl")
    assert asked and all(p["baseline"].startswith("Thought:") for p in asked)
    assert all(p["candidate"].startswith("Thought:") for p in asked)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == BASE_ID
    assert not (registry.root / ".work" / adapter.id).exists()


def test_adapter_reloads_with_peft_and_emits_the_trained_call(first_round, base_model):
    from peft import PeftModel

    registry, result, _, _ = first_round
    model, tokenizer = base_model
    trained = [
        r for r in read_jsonl(registry.path(result.adapter.id) / "dataset.jsonl") if r["source"] == "new"
    ]
    row = next(r for r in trained if r["tool"] == "get_weather")
    expected = parse_react(row["completion"][0]["content"], TOOL_NAMES)
    before = generate(model, tokenizer, [row["prompt"]], max_new_tokens=40)[0]
    assert parse_react(before, TOOL_NAMES) != expected
    peft_model = PeftModel.from_pretrained(model, str(registry.path(result.adapter.id)))
    try:
        after = generate(peft_model, tokenizer, [row["prompt"]], max_new_tokens=40)[0]
    finally:
        peft_model.unload()  # give the shared base model back unchanged
    assert parse_react(after, TOOL_NAMES) == expected, after
    assert isinstance(expected, ParsedCall)


def test_gate_refuses_a_deliberately_worse_adapter(first_round, base_model, tmp_path: Path):
    from peft import LoraConfig, get_peft_model

    registry, result, _, _ = first_round
    model, tokenizer = base_model
    noisy = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=512, target_modules="all-linear", init_lora_weights=False)
    )
    noisy.save_pretrained(str(tmp_path / "worse"))
    noisy.unload()
    heldout = read_jsonl(registry.path(result.adapter.id) / "heldout.jsonl")
    scores = evaluate_adapters(
        model,
        tokenizer,
        heldout,
        candidate=str(tmp_path / "worse"),
        baseline=str(registry.path(result.adapter.id)),
        tool_names=TOOL_NAMES,
        max_new_tokens=SETTINGS.eval_max_new_tokens,
    )
    decision = decide(scores["eval"], scores["baseline"])
    assert not decision.promote and decision.reason.startswith("refused")
    assert scores["baseline"]["correct"] > scores["eval"]["correct"]


def test_export_is_a_peft_folder_for_vllm(first_round, tmp_path: Path):
    registry, result, _, _ = first_round
    folder, tarball = registry.export(result.adapter.id, tmp_path / "export")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == BASE_ID and config["peft_type"] == "LORA"
    assert (folder / "adapter_model.safetensors").stat().st_size > 0
    assert tarball.is_file()


@pytest.mark.anyio
async def test_managed_vllm_loads_the_promoted_adapter_at_run_time(first_round, chat_model):
    registry, result, _, _ = first_round
    serving = AdapterServing(chat_model, registry)
    assert await serving.sync() == result.adapter.id
    row = next(
        r for r in read_jsonl(registry.path(result.adapter.id) / "dataset.jsonl") if r["source"] == "new"
    )
    response = await chat_model.chat(
        row["prompt"], model=result.adapter.id, max_tokens=40, stop=["Observation:"]
    )
    assert response.model == result.adapter.id
    assert parse_react(response.text, TOOL_NAMES) == parse_react(row["completion"][0]["content"], TOOL_NAMES)
    assert await serving.sync() == result.adapter.id  # unchanged registry: nothing reloaded


@pytest.mark.anyio
async def test_the_merged_adapter_served_by_the_restarted_vllm_answers_as_the_lora_does(
    first_round, chat_model, vllm_server, tmp_path: Path
):
    """The promoted adapter merged into the base weights, the managed vLLM restarted on that folder:
    greedy answers equal those of base + runtime LoRA on trained prompts. (Not bit-equal logits: vLLM
    serves bfloat16 on a CPU with AVX512-BF16, and W + BA rounded once to bfloat16 is not x W + (x A) B
    rounded per product. Trained prompts are far from a tie; a held-out one need not be: CI once saw the
    merged model pick get_population where the LoRA picked get_weather for "Greece".)"""
    from ste_mcp.finetune.merge import MergedModels

    server = vllm_server.managed
    if server is None:
        pytest.skip("an external test server (STE_MCP_TEST_LLM_URL) cannot be restarted")
    registry, result, _, _ = first_round
    adapter = result.adapter.id
    folder = registry.path(adapter)
    trained = [r for r in read_jsonl(folder / "dataset.jsonl") if r["source"] == "new"]
    weather, population = (
        [r for r in trained if r["tool"] == t][:2] for t in ("get_weather", "get_population")
    )
    rows = weather + population
    prompts = [r["prompt"] for r in rows]

    async def answers(model: str | None) -> list[str]:
        return [
            (await chat_model.chat(p, model=model, max_tokens=40, stop=["Observation:"])).text
            for p in prompts
        ]

    lora = AdapterServing(chat_model, registry, serve_merged="never")
    assert await lora.sync() == adapter
    with_lora = await answers(adapter)
    learned = parse_react(rows[0]["completion"][0]["content"], TOOL_NAMES)
    assert parse_react(with_lora[0], TOOL_NAMES) == learned  # the adapter is in use
    await chat_model.unload_lora(adapter)
    base_dir, generation = server.model_dir, server.generation
    merged = AdapterServing(
        chat_model, registry, serve_merged="always", merged=MergedModels(tmp_path / "merged"), server=server
    )
    try:
        assert await merged.sync() is None  # requests name no adapter: the served model is the learned one
        assert server.model_dir == tmp_path / "merged" / adapter and server.generation == generation + 1
        assert await chat_model.list_models() == [vllm_server.model]  # no LoRA loaded, same served name
        assert await answers(None) == with_lora
    finally:
        await asyncio.to_thread(server.switch_model, base_dir)  # the session's other tests expect the base
    assert server.model_dir == base_dir


def test_rows_too_long_for_max_length_are_left_out_not_cut(smollm2_dir: Path, first_round):
    from transformers import AutoTokenizer

    from ste_mcp.finetune.dataset import load_chat_tokens
    from ste_mcp.finetune.train import rows_that_fit

    def row(question: str) -> dict:
        return {
            "prompt": [{"role": "user", "content": question}],
            "completion": [{"role": "assistant", "content": "Final Answer: yes"}],
        }

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    short, long = row("Is it cold in Oslo?"), row("Is it cold in Oslo? " * 300)
    assert rows_that_fit([short, long, short], tokenizer, 1024) == [short, short]
    # the dataset builder measures rows as the trainer does, from the model folder alone
    count = load_chat_tokens(smollm2_dir)
    text = tokenizer.apply_chat_template(long["prompt"] + long["completion"], tokenize=False)
    tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert count is not None and count(long["prompt"] + long["completion"]) == tokens > 1024
    assert load_chat_tokens(smollm2_dir.parent) is None  # no tokenizer there: nothing to measure
    assert rows_that_fit([short, long], tokenizer, 4096) == [short, long]
    _, result, _, _ = first_round
    assert result.adapter.metrics["train"]["too_long"] == 0  # the round's own rows all fit


def test_kill_9_during_training_registers_nothing_and_the_round_resumes(first_round):
    registry, first, store, base = first_round
    more = [
        Exemplar(tool="get_weather", query=f"Is it cold in {c} this week?", arguments={"city": c})
        for c in CITIES
    ]
    approved = approve(store, more)
    # save_steps out of reach: the checkpoints come from save_minutes (after every step here)
    settings = SETTINGS.model_copy(update={"max_steps": 6, "save_steps": 1000, "save_minutes": 1e-4})
    before = [m.id for m in registry.list()]

    async def kill_during_training() -> None:
        task = asyncio.create_task(
            run_round(
                adapters_dir=registry.root, base=base, tools=TOOLS, exemplars=approved, settings=settings
            )
        )
        work = registry.root / ".work"
        deadline = time.monotonic() + 300
        # before the last step (6): saved by time, not by the end of training
        while not any(work.glob("*/checkpoints/checkpoint-[1-5]/trainer_state.json")):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.5)
        pid = int(next(work.glob("*/train.pid")).read_text())
        os.killpg(pid, signal.SIGKILL)
        with pytest.raises(RoundError, match=r"exited with status -9: killed \(SIGKILL\) .*out-of-memory"):
            await task

    asyncio.run(kill_during_training())
    assert [m.id for m in registry.list()] == before  # nothing partial registered
    assert registry.current().id == first.adapter.id  # the current adapter still serves

    resumed: RoundResult = asyncio.run(
        run_round(
            adapters_dir=registry.root,
            base=base,
            tools=TOOLS,
            exemplars=approved,
            settings=settings,
            gate=False,
        )
    )
    assert resumed.adapter is not None and resumed.adapter.metrics["train"]["resumed"]
    assert resumed.adapter.parent == first.adapter.id and resumed.adapter.round == 2
    assert resumed.adapter.counts["replay"] > 0  # continual learning: earlier round replayed
    assert resumed.status == "registered" and resumed.adapter.status == "candidate"
    assert registry.current().id == first.adapter.id  # an ungated candidate is never promoted


def test_a_round_in_the_served_setting_trains_and_gates_with_examples(smollm2_dir: Path, tmp_path: Path):
    """``prompt = must-call`` + ``demonstrations``: the rows carry the nearest other exemplars (found with
    the store's real embedder) as worked examples, and the gate asks in the same prompt ("Action:").
    With four explored tools one is left out (``heldout_tools``): never trained or shown, the real gate
    asks its exemplars apart, as unexplored and as served (its own exemplars as examples), and records
    both models' paired outcomes on each."""
    store = ExemplarStore(open_db(tmp_path / "db"))
    more = [
        Exemplar(tool="translate", query=f"Say '{w}' in French, please.", arguments={"text": w})
        for w in ("good night", "thank you", "see you soon", "welcome")
    ] + [
        Exemplar(tool="stock_price", query=f"How much is one {s} share today?", arguments={"symbol": s})
        for s in ("AAPL", "MSFT", "NVDA", "TSLA")
    ]
    approved = approve(store, exemplars() + more)
    settings = SETTINGS.model_copy(
        update={
            "prompt": "must-call",
            "demonstrations": 2,
            "max_steps": 3,
            "max_length": 768,
            "heldout_tools": 1,
            "gate_stop_early": False,  # every row asked, both questions recorded in full
        }
    )
    result = asyncio.run(
        run_round(
            adapters_dir=tmp_path / "adapters",
            base=BaseModelRef(path=str(smollm2_dir), base_id=BASE_ID),
            tools=TOOLS,
            exemplars=approved,
            settings=settings,
            embed=store.embedder.embed,
        )
    )
    assert result.adapter is not None and result.adapter.metrics["train"]["steps"] == 3, result.reason
    folder = AdapterRegistry(tmp_path / "adapters").path(result.adapter.id)
    rows = [r for r in read_jsonl(folder / "dataset.jsonl") if r["source"] == "new"]
    for row in rows:
        system, user = row["prompt"]
        shots = (
            system["content"].split("Examples of correct calls for similar requests:\n\n")[1].split("\n\n")
        )
        assert len(shots) == 2 and all(s.startswith("Query: ") for s in shots)
        assert user["content"] not in system["content"]  # never its own request as an example
        assert row["completion"][0]["content"].startswith(f"Action: {row['tool']}\nAction Input: {{")
    asked = read_jsonl(folder / "predictions.jsonl")
    assert asked and all(p["candidate"].startswith("Action:") for p in asked)
    (left,) = result.adapter.left_out
    assert left not in {r["tool"] for r in rows} and left not in result.adapter.tools
    assert not any(f"Action: {left}\n" in r["prompt"][0]["content"] for r in rows)  # never shown either
    unexplored = result.adapter.metrics["unexplored"]
    assert (
        unexplored["tools"] == [left]
        and unexplored["candidate"]["n"] == result.adapter.counts["unexplored"] > 0
    )
    gained, lost = unexplored["paired"]["correct"]
    assert 0 <= gained + lost <= unexplored["candidate"]["n"]
    assert sum(1 for p in asked if p.get("unexplored")) == unexplored["candidate"]["n"]
    served = result.adapter.metrics["served"]  # asked again with their own exemplars as examples
    assert served["tools"] == [left] and served["candidate"]["n"] == unexplored["candidate"]["n"]
    held = read_jsonl(folder / "heldout.jsonl")
    assert any(f"Action: {left}\n" in h["prompt"][0]["content"] for h in held if h.get("served"))
    assert sum(1 for p in asked if p.get("served")) == served["candidate"]["n"]
