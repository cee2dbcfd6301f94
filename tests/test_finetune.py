"""Fine-tuning without a model: dataset, registry, gate decisions, CLI, trigger."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from ste_mcp.cli import main
from ste_mcp.finetune.dataset import DatasetBuilder, is_heldout
from ste_mcp.finetune.gate import decide
from ste_mcp.finetune.registry import AdapterRegistry, RegistryError
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.llm.protocols import ReActProtocol, parse_react
from ste_mcp.memory.exemplars import Exemplar
from tests.fixtures.finetune import TOOLS, fake_adapter, manifest

CITIES = ["Paris", "Rome", "Madrid", "Berlin", "Lisbon", "Vienna", "Oslo", "Dublin", "Prague", "Warsaw"]


def weather(city: str, **kw) -> Exemplar:
    return Exemplar(
        id=f"ex-{city.lower()}",
        tool="get_weather",
        query=f"What is the weather like in {city} right now?",
        arguments={"city": city},
        observation=f'{{"city": "{city}", "temp_c": 21}}',
        final_answer=f"It is 21 °C in {city}.",
        status="approved",
        **kw,
    )


def test_rows_have_the_papers_shape_in_the_protocols_format():
    settings = FinetuneSettings(heldout_fraction=0.0, tools_in_prompt=3)
    data = DatasetBuilder(TOOLS, settings).build([weather("Paris")], learned=set(), earlier=[])
    call, answer = data.rows
    system, user = call["prompt"]
    assert system["role"] == "system" and "get_weather" in system["content"]
    assert system["content"].count("Parameters:") == 3  # the target tool and two others
    assert user == {"role": "user", "content": "What is the weather like in Paris right now?"}
    parsed = parse_react(call["completion"][0]["content"], [t.name for t in TOOLS])
    assert (parsed.tool, parsed.arguments) == ("get_weather", {"city": "Paris"})
    # same system prompt builder as the explorer / evaluation
    text = "\n" + system["content"]
    shown = sorted((t for t in TOOLS if f"\n{t.name}: " in text), key=lambda t: text.index(f"\n{t.name}: "))
    assert system["content"] == ReActProtocol().system_prompt(shown)
    # second row: + the call and the observation -> final answer
    assert answer["prompt"][:2] == call["prompt"]
    assert answer["prompt"][2] == {"role": "assistant", "content": call["completion"][0]["content"]}
    assert answer["prompt"][3]["content"].startswith("Observation:")
    assert answer["completion"][0]["content"] == "Final Answer: It is 21 °C in Paris."
    assert data.new_exemplar_ids == ["ex-paris"]


def test_heldout_groups_are_stable_and_never_trained_on():
    settings = FinetuneSettings(heldout_fraction=0.4, include_final_answer=False)
    originals = [weather(c) for c in CITIES]
    paraphrases = [
        weather(c).model_copy(
            update={"id": f"ex-{c.lower()}-p", "query": f"Weather in {c}?", "variant_of": f"ex-{c.lower()}"}
        )
        for c in CITIES
    ]
    exemplars = originals + paraphrases
    data = DatasetBuilder(TOOLS, settings).build(exemplars, learned=set(), earlier=[])
    held = {h["id"] for h in data.heldout}
    trained = {r["exemplar_id"] for r in data.rows}
    assert held and trained and not held & trained
    for ex in paraphrases:  # a paraphrase goes where its original goes
        assert (ex.id in held) == (ex.variant_of in held)
    assert {
        h["id"] for h in DatasetBuilder(TOOLS, settings).build(exemplars[::-1], set(), []).heldout
    } == held
    assert all(is_heldout(ex, 0.4) == (ex.id in held) for ex in exemplars)
    item = data.heldout[0]
    assert (
        set(item) >= {"id", "tool", "query", "arguments", "prompt"} and item["prompt"][-1]["role"] == "user"
    )


def test_later_rounds_learn_only_new_exemplars_and_replay_earlier_rounds():
    settings = FinetuneSettings(
        heldout_fraction=0.0, include_final_answer=False, replay="fraction", replay_fraction=0.25
    )
    builder = DatasetBuilder(TOOLS, settings)
    first = builder.build([weather(c) for c in CITIES[:8]], learned=set(), earlier=[])
    assert len(first.rows) == 8
    exemplars = [weather(c) for c in CITIES]  # two new ones
    second = builder.build(exemplars, learned=set(first.new_exemplar_ids), earlier=[first.new_exemplar_ids])
    assert sorted(second.new_exemplar_ids) == ["ex-prague", "ex-warsaw"]
    replay = [r for r in second.rows if r["source"] == "replay"]
    assert len(replay) == 2  # ceil(25% of 8)
    assert {r["exemplar_id"] for r in replay} <= set(first.new_exemplar_ids)
    # no replay when asked for none; revoked exemplars are never replayed
    none = DatasetBuilder(TOOLS, settings.model_copy(update={"replay_fraction": 0.0}))
    assert all(
        r["source"] == "new"
        for r in none.build(exemplars, set(first.new_exemplar_ids), [first.new_exemplar_ids]).rows
    )
    full = DatasetBuilder(TOOLS, settings.model_copy(update={"replay_fraction": 1.0}))
    kept = full.build(exemplars[2:], set(first.new_exemplar_ids), [first.new_exemplar_ids])
    assert {r["exemplar_id"] for r in kept.rows if r["source"] == "replay"} == {e.id for e in exemplars[2:8]}


def test_cumulative_replay_trains_every_earlier_rounds_rows_again():
    """replay = cumulative (the default): round 3 trains on rounds 1 and 2's rows again, never on a held-out
    exemplar (even one trained on before a larger heldout_fraction), the same rows every time."""
    assert FinetuneSettings().replay == "cumulative"
    settings = FinetuneSettings(heldout_fraction=0.0)
    builder = DatasetBuilder(TOOLS, settings)
    batches = [CITIES[:4], CITIES[4:7], CITIES[7:]]
    rounds: list = []
    learned: set[str] = set()
    for i, batch in enumerate(batches):
        exemplars = [weather(c) for b in batches[: i + 1] for c in b]
        earlier = [r.new_exemplar_ids for r in reversed(rounds)]  # the lineage, newest first
        data = builder.build(exemplars, learned, earlier)
        assert sorted(data.new_exemplar_ids) == sorted(f"ex-{c.lower()}" for c in batch)
        learned |= set(data.new_exemplar_ids)
        rounds.append(data)
    third = rounds[2]
    replayed = [r for r in third.rows if r["source"] == "replay"]
    earlier_new = [r for r in rounds[0].rows + rounds[1].rows if r["source"] == "new"]
    assert len(replayed) == len(earlier_new) == 2 * 7  # call + final-answer row of each of 7 exemplars
    key = lambda r: json.dumps([r["prompt"], r["completion"]], sort_keys=True)  # noqa: E731
    assert sorted(map(key, replayed)) == sorted(map(key, earlier_new))
    assert third.counts == {"new": 6, "replay": 14, "heldout": 0}
    # deterministic: the same inputs give the same rows, in the same order (and so the same adapter id)
    again = builder.build(
        [weather(c) for c in CITIES],
        learned - set(third.new_exemplar_ids),
        [rounds[1].new_exemplar_ids, rounds[0].new_exemplar_ids],
    )
    assert again.rows == third.rows and again.data_hash() == third.data_hash()
    # a larger held-out share later: exemplars trained on before but held out now are not replayed
    wider = DatasetBuilder(TOOLS, settings.model_copy(update={"heldout_fraction": 0.5}))
    data = wider.build([weather(c) for c in CITIES], learned, [r.new_exemplar_ids for r in reversed(rounds)])
    held = {h["id"] for h in data.heldout}
    assert held and not held & {r["exemplar_id"] for r in data.rows}
    assert {r["exemplar_id"] for r in data.rows} == {f"ex-{c.lower()}" for c in CITIES} - held
    # rows of exemplars no longer approved are not replayed
    fewer = builder.build(
        [weather(c) for c in CITIES[2:]], learned, [r.new_exemplar_ids for r in reversed(rounds)]
    )
    assert {r["exemplar_id"] for r in fewer.rows} == {f"ex-{c.lower()}" for c in CITIES[2:]}


def test_replay_writes_earlier_rounds_again_in_this_rounds_settings():
    """A lineage trains in one format: after finetune.prompt changed, round 2's replayed rows are written in
    the new prompt like its new ones, and a secret configured since round 1 is redacted from them too."""
    secret = "orchid-lamp-7731"  # not shaped like a key: only the configured list redacts it
    first_batch = [
        weather(c).model_copy(update={"query": f"Weather in {c}? My key is {secret}"}) for c in CITIES[:3]
    ]
    paper = FinetuneSettings(heldout_fraction=0.0, include_final_answer=False)
    first = DatasetBuilder(TOOLS, paper).build(first_batch, learned=set(), earlier=[])
    assert all(secret in r["prompt"][-1]["content"] for r in first.rows)  # not yet a configured secret
    must_call = paper.model_copy(update={"prompt": "must-call"})
    second = DatasetBuilder(TOOLS, must_call, secrets=[secret]).build(
        [*first_batch, weather("Oslo")], learned=set(first.new_exemplar_ids), earlier=[first.new_exemplar_ids]
    )
    replayed = [r for r in second.rows if r["source"] == "replay"]
    assert sorted(r["exemplar_id"] for r in replayed) == sorted(first.new_exemplar_ids)
    for row in second.rows:
        assert row["completion"][0]["content"].startswith("Action: get_weather")
        assert "Answer by calling exactly one of the APIs above" in row["prompt"][0]["content"]
        assert "Thought" not in row["prompt"][0]["content"]
        assert secret not in json.dumps(row)


def test_every_round_re_warms_the_learning_rate():
    from ste_mcp.finetune.train import optimizer_steps, warmup_steps

    settings = FinetuneSettings(batch_size=4, epochs=2.0, warmup_ratio=0.03, warmup_steps=2)
    assert optimizer_steps(settings, 40) == 20 and warmup_steps(settings, 40) == 2
    assert warmup_steps(settings, 4000) == 60  # the ratio, where it is more (0.03 x 2,000 steps)
    assert warmup_steps(settings.model_copy(update={"max_steps": 3}), 40) == 1  # at most half the round
    accumulated = settings.model_copy(update={"gradient_accumulation_steps": 4, "epochs": 1.0})
    assert optimizer_steps(accumulated, 40) == 2 and warmup_steps(accumulated, 40) == 1


def test_rows_too_long_list_fewer_tools_and_always_the_target():
    """A scripted token counter (a token per character); test_finetune_model counts with a real tokenizer."""

    def listed(row: dict) -> set[str]:
        return {t.name for t in TOOLS if f"{t.name}:" in row["prompt"][0]["content"]}

    def build(max_length: int):
        settings = FinetuneSettings(heldout_fraction=0.0, tools_in_prompt=4, max_length=max_length)
        count = lambda messages: sum(len(m["content"]) for m in messages)  # noqa: E731
        return DatasetBuilder(TOOLS, settings, count_tokens=count).build([weather("Oslo")], set(), [])

    roomy = build(100_000)
    assert roomy.shortened == 0 and all(len(listed(r)) == 4 for r in roomy.rows)
    lengths = [sum(len(m["content"]) for m in r["prompt"] + r["completion"]) for r in roomy.rows]
    tight = build(max(lengths) - 1)  # one character short: one tool fewer is enough
    assert tight.shortened == 1 and all(len(listed(r)) == 3 for r in tight.rows)
    assert all("get_weather" in listed(r) for r in tight.rows)
    hopeless = build(64)  # not even the target alone fits: kept at one tool, the trainer drops it
    assert hopeless.shortened == 1 and [listed(r) for r in hopeless.rows] == [{"get_weather"}] * 2
    # without a counter (no tokenizer in the model folder) nothing is shortened
    plain = DatasetBuilder(TOOLS, FinetuneSettings(heldout_fraction=0.0, max_length=64))
    assert plain.build([weather("Oslo")], set(), []).shortened == 0


def test_exemplars_of_unknown_tools_are_skipped():
    ghost = weather("Paris").model_copy(update={"tool": "removed_tool", "id": "ex-ghost"})
    data = DatasetBuilder(TOOLS, FinetuneSettings(heldout_fraction=0.0)).build([ghost], set(), [])
    assert data.rows == [] and data.skipped["unknown_tool"] == 1


def test_exemplars_right_only_on_their_day_are_not_trained_on():
    """A request counted from today whose call sends the day it was made would teach that day for good."""
    dated = weather("Oslo").model_copy(
        update={
            "id": "ex-dated",
            "query": "What will the weather be in Oslo 3 days from today?",
            "arguments": {"city": "Oslo", "date": "2026-12-08"},
        }
    )
    stated = dated.model_copy(
        update={"id": "ex-stated", "query": "What will the weather be in Oslo on 2026-12-08?"}
    )
    data = DatasetBuilder(TOOLS, FinetuneSettings(heldout_fraction=0.0)).build([dated, stated], set(), [])
    assert data.skipped["dated"] == 1 and data.new_exemplar_ids == ["ex-stated"]
    assert data.rows and all("3 days from today" not in r["prompt"][-1]["content"] for r in data.rows)


def test_a_call_right_on_any_day_is_trained_without_its_dated_answer():
    """A call like get_today_date {} for "what is today's date?" is right on every day; its answer is not.
    Leaving it out taught an adapter to answer such requests with another tool's call."""
    today = Exemplar(
        id="ex-today",
        tool="get_weather",
        query="What is the weather in Oslo today, and what is today's date?",
        arguments={"city": "Oslo"},
        observation='{"date": "2026-12-05", "temp_c": 3}',
        final_answer="It is 3 °C in Oslo on 2026-12-05.",
        status="approved",
    )
    data = DatasetBuilder(TOOLS, FinetuneSettings(heldout_fraction=0.0)).build([today], set(), [])
    assert data.skipped["dated"] == 0 and data.new_exemplar_ids == ["ex-today"]
    assert [r["completion"][0]["content"].split(":")[0] for r in data.rows] == ["Thought"]  # no answer row


def test_secrets_never_reach_the_training_data():
    configured = "s3cr3t-value-from-env-42"
    leaky = weather("Paris").model_copy(
        update={
            "query": f"weather in Paris with key {configured}",
            "arguments": {"city": "Paris", "token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
            "observation": f"Authorization: Bearer {configured} ok; api_key=ZXhhbXBsZVNlY3JldEtleTEyMzQ1Njc4OTA",
        }
    )
    data = DatasetBuilder(TOOLS, FinetuneSettings(heldout_fraction=0.0), secrets=[configured]).build(
        [leaky], set(), []
    )
    blob = json.dumps(data.rows + data.heldout)
    assert "Paris" in blob and "[REDACTED]" in blob
    for secret in (
        configured,
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "ZXhhbXBsZVNlY3JldEtleTEyMzQ1Njc4OTA",
    ):
        assert secret not in blob


# ---- gate ---------------------------------------------------------------------------------------


def metrics(correct: float, api: float = 50.0, wf: float = 90.0, n: int = 10) -> dict:
    return {"correct": correct, "api_match": api, "wellformed": wf, "n": n}


def test_gate_promotes_only_a_better_candidate():
    assert decide(metrics(60), metrics(40)).promote
    worse = decide(metrics(30), metrics(40))
    assert not worse.promote and "correct 30.0% vs 40.0%" in worse.reason
    assert not decide(metrics(40), metrics(40)).promote  # equal is not better
    assert decide(metrics(40, api=70), metrics(40, api=60)).promote  # tie on correct, better API match
    assert not decide(metrics(45), metrics(40), min_delta=10).promote
    assert decide(metrics(60), metrics(40)).judged and decide(metrics(30), metrics(40)).judged


def test_gate_does_not_judge_on_too_few_held_out_rows():
    """Two rows swing 'correct' by 50 points: the gate leaves such a candidate to the operator."""
    few = decide(metrics(100, n=2), metrics(0, n=2), min_heldout=8)
    assert not few.promote and not few.judged
    assert "2 held-out exemplars, fewer than the 8" in few.reason and "gate_min_heldout" in few.reason
    assert not decide(metrics(0, n=2), metrics(100, n=2), min_heldout=8).judged  # nor rejected
    assert decide(metrics(100, n=8), metrics(0, n=8), min_heldout=8).promote
    none = decide(metrics(0, n=0), metrics(0, n=0), min_heldout=0)
    assert not none.promote and not none.judged and "0 held-out" in none.reason


# ---- registry -----------------------------------------------------------------------------------


def test_registry_register_promote_rollback(tmp_path: Path):
    reg = AdapterRegistry(tmp_path / "adapters")
    assert reg.list() == [] and reg.current() is None
    incomplete = tmp_path / "partial"
    incomplete.mkdir()
    (incomplete / "adapter_config.json").write_text("{}")
    with pytest.raises(RegistryError, match=r"missing adapter_model\.safetensors"):
        reg.register(incomplete, manifest("bad"))
    reg.register(fake_adapter(tmp_path, "a"), manifest("a"))
    reg.register(fake_adapter(tmp_path, "b"), manifest("b", parent="a"))
    reg.work_dir("c").mkdir(parents=True)  # a round in progress is never listed
    assert [m.id for m in reg.list()] == ["a", "b"]
    assert [m.id for m in reg.lineage("b")] == ["b", "a"]
    reg.promote("a")
    reg.promote("b")
    assert reg.current().id == "b" and reg.get("a").status == "retired"
    assert reg.rollback().id == "a"
    assert reg.get("b").status == "retired" and reg.get("a").status == "promoted"
    assert reg.rollback() is None and reg.current() is None
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    with pytest.raises(RegistryError, match=r"no adapter 'zz'.*known: a, b"):
        reg.get("zz")


def test_status_fields_name_the_promoted_adapter_per_tool(tmp_path: Path):
    from ste_mcp.config import load_settings
    from ste_mcp.finetune.registry import status_fields

    settings = load_settings(data_dir=tmp_path)
    assert status_fields(settings) == {}
    reg = AdapterRegistry(settings.adapters_dir)
    per_tool = {"get_weather": {"correct": 75.0}}
    reg.register(
        fake_adapter(tmp_path, "a"),
        manifest("a", tools=["get_weather"], metrics={"eval": {"per_tool": per_tool}}),
    )
    reg.register(fake_adapter(tmp_path, "b"), manifest("b", parent="a", tools=["translate"]))
    reg.promote("b")
    assert status_fields(settings) == {
        "get_weather": {"adapter": "b", "adapter_correct": 75.0},
        "translate": {"adapter": "b"},
    }


def test_registry_export_writes_peft_folder_manifest_and_tarball(tmp_path: Path):
    reg = AdapterRegistry(tmp_path / "adapters")
    reg.register(
        fake_adapter(tmp_path, "a"), manifest("a", exemplar_ids=["ex-1"], base_model_path="/local/x")
    )
    folder, tarball = reg.export("a", tmp_path / "out" / "my-adapter")
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "ste-mcp-manifest.json",
    ]
    exported = json.loads((folder / "ste-mcp-manifest.json").read_text())
    assert exported["id"] == "a" and "exemplar_ids" not in exported and "base_model_path" not in exported
    with tarfile.open(tarball) as tar:
        assert "my-adapter/adapter_model.safetensors" in tar.getnames()
    with pytest.raises(RegistryError, match="not empty"):
        reg.export("a", folder)


def test_adapters_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = tmp_path / "data"
    reg = AdapterRegistry(data / "adapters")
    reg.register(fake_adapter(tmp_path, "a"), manifest("a", metrics={"eval": metrics(50)}))
    reg.register(fake_adapter(tmp_path, "b"), manifest("b", parent="a"))
    common = ["--data-dir", str(data)]
    assert main(["adapters", "promote", "a", *common]) == 0
    assert main(["adapters", "promote", "b", *common]) == 0
    capsys.readouterr()
    assert main(["adapters", "list", "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["status"]) for r in rows] == [("a", "retired"), ("b", "promoted")]
    assert rows[0]["metrics"]["eval"]["correct"] == 50 and rows[0]["base_model"] == "org/base"
    assert rows[1]["path"] == str(reg.path("b"))
    assert main(["adapters", "rollback", *common]) == 0
    assert reg.current().id == "a"
    assert main(["adapters", "export", "a", str(tmp_path / "exp"), *common]) == 0
    assert (tmp_path / "exp" / "adapter_config.json").is_file() and (tmp_path / "exp.tar.gz").is_file()
    assert main(["adapters", "promote", "nope", *common]) == 1
    assert "no adapter 'nope'" in capsys.readouterr().err


# ---- the trigger in `serve` ----------------------------------------------------------------------


class FakeLoraModel:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def load_lora(self, name: str, path: str) -> None:
        self.calls.append(("load", name, path))

    async def unload_lora(self, name: str) -> None:
        self.calls.append(("unload", name))


class StubApp:
    def __init__(self, data_dir: Path, **finetune) -> None:
        from ste_mcp.config import load_settings

        self.settings = load_settings(data_dir=data_dir, finetune=finetune)
        self.toolset = TOOLS
        self.model = FakeLoraModel()

    async def get_model(self) -> FakeLoraModel:
        return self.model


def test_trigger_counts_new_exemplars_and_honours_the_schedule(tmp_path: Path):
    from ste_mcp.finetune.extension import create

    ext = create(StubApp(tmp_path, train_every_n_exemplars=5))
    assert not ext.due(3) and ext.due(5)
    scheduled = create(StubApp(tmp_path, train_every_n_exemplars=1000, schedule_minutes=0.001))
    scheduled._last_round -= 1.0
    assert scheduled.due(0)
    assert create(StubApp(tmp_path, enabled_in_serve=False)) is None


@pytest.mark.anyio
async def test_a_promoted_round_is_loaded_into_the_model_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import ste_mcp.finetune.extension as extension
    from ste_mcp.finetune.rounds import RoundResult

    app = StubApp(tmp_path)
    reg = AdapterRegistry(app.settings.adapters_dir)
    reg.register(fake_adapter(tmp_path, "a"), manifest("a"))
    reg.register(fake_adapter(tmp_path, "b"), manifest("b", parent="a"))
    reg.promote("a")

    async def fake_round(settings, *, toolset, log):
        assert toolset is app.toolset and log.name.endswith("finetune.log")
        return RoundResult(status="promoted", reason="better", adapter=reg.promote("b"))

    monkeypatch.setattr(extension, "round_from_settings", fake_round)
    monkeypatch.setattr(extension, "approved_count", lambda app: 7)
    ext = extension.create(app)
    await ext.sync_adapter()  # at start: the promoted adapter is served
    assert ext.active_adapter == "a"
    assert (await ext.run_once()).status == "promoted"
    assert ext.active_adapter == "b"
    assert app.model.calls == [
        ("load", "a", str(reg.path("a"))),
        ("load", "b", str(reg.path("b"))),
        ("unload", "a"),
    ]
    status = json.loads(await ext.read_resource("ste-mcp://adapters"))
    assert status["active"] == "b" and [a["id"] for a in status["adapters"]] == ["a", "b"]
    reg.rollback()  # e.g. `ste-mcp adapters rollback` in another process
    await ext.sync_adapter()
    assert ext.active_adapter == "a"


@pytest.mark.anyio
@pytest.mark.parametrize(("held_out", "status", "current"), [(2, "registered", None), (8, "promoted", "new")])
async def test_a_round_with_too_few_held_out_rows_is_left_to_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_out: int, status: str, current: str | None
):
    """Orchestration only (the training process is scripted; test_finetune_model runs the real one)."""
    from ste_mcp.finetune import rounds

    async def scripted_training(cmd, log, pid_file, threads) -> int:
        work = Path(cmd[-1]).parent
        fake_adapter(work, "x").rename(work / "adapter")
        scores = {"eval": metrics(100, n=held_out), "baseline": metrics(0, n=held_out), "train": {}}
        (work / "result.json").write_text(json.dumps(scores))
        return 0

    monkeypatch.setattr(rounds, "_run_process", scripted_training)
    result = await rounds.run_round(
        adapters_dir=tmp_path / "adapters",
        base=rounds.BaseModelRef(path=str(tmp_path), base_id="org/base"),
        tools=TOOLS,
        exemplars=[weather(c) for c in CITIES],
        settings=FinetuneSettings(general_examples=0, gate_min_heldout=8),
    )
    assert result.status == status and result.adapter is not None
    registry = AdapterRegistry(tmp_path / "adapters")
    assert registry.get(result.adapter.id).status == {"registered": "candidate"}.get(status, status)
    assert (registry.current() and registry.current().id) == (current and result.adapter.id)
    if status == "registered":
        assert "not judged: 2 held-out exemplars" in result.reason


@pytest.mark.anyio
async def test_an_adapter_records_the_exemplars_it_was_not_trained_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Orchestration only: the round's manifest counts the dated exemplar it left out (skipped_dated)."""
    from ste_mcp.finetune import rounds

    async def scripted_training(cmd, log, pid_file, threads) -> int:
        work = Path(cmd[-1]).parent
        fake_adapter(work, "x").rename(work / "adapter")
        scores = {"eval": metrics(100, n=8), "baseline": metrics(0, n=8), "train": {}}
        (work / "result.json").write_text(json.dumps(scores))
        return 0

    monkeypatch.setattr(rounds, "_run_process", scripted_training)
    dated = weather("Oslo").model_copy(
        update={
            "id": "ex-dated",
            "query": "Weather in Oslo 3 days from today?",
            "arguments": {"city": "Oslo", "date": "2026-12-08"},
        }
    )
    result = await rounds.run_round(
        adapters_dir=tmp_path / "adapters",
        base=rounds.BaseModelRef(path=str(tmp_path), base_id="org/base"),
        tools=TOOLS,
        exemplars=[*(weather(c) for c in CITIES), dated],
        settings=FinetuneSettings(general_examples=0, gate_min_heldout=8),
    )
    counts = AdapterRegistry(tmp_path / "adapters").get(result.adapter.id).counts
    assert counts["skipped_dated"] == 1 and "skipped_unknown_tool" not in counts
    assert "ex-dated" not in result.adapter.exemplar_ids


def test_train_command_skips_a_round_with_nothing_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    model_dir = tmp_path / "model"  # a Hugging Face folder as far as model preparation is concerned
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    assert main(["train", "--data-dir", str(tmp_path / "data"), "--model", str(model_dir)]) == 0
    assert "skipped: 0 new approved exemplars" in capsys.readouterr().out
    assert AdapterRegistry(tmp_path / "data" / "adapters").list() == []


@pytest.mark.parametrize(
    ("flag", "mode", "fraction"), [([], "cumulative", 0.1), (["--replay", "0.3"], "fraction", 0.3)]
)
def test_train_replays_every_earlier_round_unless_given_a_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: list[str], mode: str, fraction: float
):
    from ste_mcp.finetune import rounds

    seen = []

    async def fake_round(settings, *, gate, from_scratch):
        seen.append(settings.finetune)
        return rounds.RoundResult(status="skipped", reason="scripted")

    monkeypatch.setattr(rounds, "round_from_settings", fake_round)
    assert main(["train", *flag, "--data-dir", str(tmp_path)]) == 0
    assert (seen[0].replay, seen[0].replay_fraction) == (mode, fraction)


def test_the_gate_prefills_like_the_evaluation():
    from ste_mcp.evaluate.prompts import MUST_CALL_PREFIX
    from ste_mcp.finetune.gate import PREFIX
    from ste_mcp.llm.protocols import REACT_PREFIX

    assert PREFIX == {"paper": REACT_PREFIX, "must-call": MUST_CALL_PREFIX}


def test_the_training_process_needs_no_database_or_server_stack():
    """The trainer runs on a training box with only torch/transformers/peft/trl (+ pydantic): importing
    what it imports must not pull in LanceDB, the MCP SDK or the upstream client."""
    import subprocess
    import sys

    code = (
        "import sys, ste_mcp.finetune.train, ste_mcp.finetune.dataset, ste_mcp.finetune.gate, "
        "ste_mcp.finetune.registry, ste_mcp.finetune.merge, ste_mcp.evaluate.score\n"  # the gate scores with it
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'lancedb', 'mcp', 'httpx', 'httpx2', 'pyarrow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet counts as gone)."""
    import os

    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("pdeathsig", [True, False], ids=["prctl", "watcher-thread"])
def test_the_training_process_dies_with_its_parent(tmp_path: Path, pdeathsig: bool):
    """A SIGKILLed ``ste-mcp serve`` / ``train`` leaves no orphan training process behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    ready = tmp_path / "ready"
    child = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ste_mcp.finetune.train import die_with_parent\n"
        f"die_with_parent(pdeathsig={pdeathsig})\n"
        f"Path({str(ready)!r}).write_text('ok')\n"
        "time.sleep(600)\n"
    )
    parent = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from ste_mcp.finetune.rounds import _run_process\n"
        "asyncio.run(_run_process([sys.executable, '-c', sys.argv[1]], None, Path(sys.argv[2]), None))\n"
    )
    pid_file = tmp_path / "train.pid"
    proc = subprocess.Popen([sys.executable, "-c", parent, child, str(pid_file)])
    child_pid = None
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and ready.exists()):
            assert time.monotonic() < deadline and proc.poll() is None, "the training process never started"
            time.sleep(0.1)
        child_pid = int(pid_file.read_text())
        assert _alive(child_pid)
        proc.kill()  # SIGKILL: the parent gets no chance to clean up
        proc.wait()
        deadline = time.monotonic() + 20
        while _alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child_pid), "the training process outlived its SIGKILLed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if child_pid is not None and _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_die_with_parent_does_nothing_without_a_parent_pid(monkeypatch: pytest.MonkeyPatch):
    """Run by hand (no parent pid in the environment) the training process arms nothing."""
    import threading

    from ste_mcp.finetune import train

    monkeypatch.delenv(train.PARENT_PID_ENV, raising=False)
    before = {t.name for t in threading.enumerate()}
    train.die_with_parent()
    assert {t.name for t in threading.enumerate()} == before


def test_training_dtype_is_bfloat16_only_where_the_device_computes_it(monkeypatch):
    from ste_mcp import hardware
    from ste_mcp.finetune.train import pick_dtype

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert pick_dtype("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert pick_dtype("auto", "cpu") == "float32"
    assert pick_dtype("bfloat16", "cpu") == "bfloat16" and pick_dtype("float32", "cuda") == "float32"


def test_a_memory_setting_does_not_make_a_new_round():
    """A round killed for memory resumes after gradient checkpointing is turned on (same adapter id)."""
    from ste_mcp.finetune.rounds import hyperparameters, round_key

    plain = FinetuneSettings(gradient_checkpointing=False)
    assert round_key(plain) == round_key(plain.model_copy(update={"gradient_checkpointing": True}))
    assert round_key(plain) == round_key(plain.model_copy(update={"gate_min_heldout": 2}))  # after training
    assert round_key(plain) != round_key(plain.model_copy(update={"batch_size": 2}))
    assert round_key(plain) != round_key(plain.model_copy(update={"learning_rate": 1e-3}))
    assert hyperparameters(plain)["gradient_checkpointing"] is False  # still recorded in the manifest
    assert "cpu_threads" not in round_key(plain) and "cpu_threads" not in hyperparameters(plain)


def test_a_slow_round_checkpoints_by_time_as_well_as_by_steps(monkeypatch: pytest.MonkeyPatch):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from ste_mcp.finetune import train

    clock = [1000.0]
    monkeypatch.setattr(train.time, "monotonic", lambda: clock[0])
    callback = train.checkpoint_every(600)
    args, state = TrainingArguments(output_dir="unused", report_to=[]), TrainerState()

    clock[0] += 599
    assert not callback.on_step_end(args, state, TrainerControl()).should_save
    clock[0] += 2  # ten minutes since the start
    assert callback.on_step_end(args, state, TrainerControl()).should_save
    callback.on_save(args, state, TrainerControl())
    clock[0] += 300
    assert not callback.on_step_end(args, state, TrainerControl()).should_save  # counted from the save
    assert FinetuneSettings().save_minutes == 10.0
