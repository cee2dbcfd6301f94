"""The eval runner, bench loading, CLI and plots, with a scripted model (the real model: test_evaluate_model.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ste_mcp.cli import main
from ste_mcp.evaluate.bench import BenchError, load_bench
from ste_mcp.evaluate.cli import compare_runs
from ste_mcp.evaluate.run import (
    EvalConfig,
    PromptBuilder,
    bench_schemas,
    read_predictions,
    run_eval,
    write_results,
)
from ste_mcp.evaluate.score import score
from ste_mcp.llm.base import ModelError, ToolCall
from tests.fixtures.models import ScriptedModel

ADD_DATE_CALL = 'Thought: add days\nAction: add_date\nAction Input: {"date": "2022-10-14", "days": 90}'


@dataclass
class Demo:
    tool: str
    query: str
    arguments: dict


@pytest.fixture(scope="module")
def bench(ste50_dir):
    return load_bench(ste50_dir)


def test_bench_loads_and_selects(bench):
    assert len(bench.items) == 750 and len(bench.tools) == 50
    assert len(bench.select(["add_date", "Numbers%%Get math fact"])) == 30
    spread = bench.select(limit=6)
    assert len(spread) == 6 and len({it.mcp_name for it in spread}) == 6  # one per tool first
    item = bench.items[0]
    cands = bench.shown_names(item, "candidates")
    assert len(cands) == 15 and item.mcp_name in cands
    assert sorted(bench.shown_names(item, "all")) == sorted(bench.tool_names)
    with pytest.raises(BenchError, match="no tool 'nope'"):
        bench.select(["nope"])


def test_bad_bench_files_are_named(tmp_path, ste50_dir):
    with pytest.raises(BenchError, match="does not exist"):
        load_bench(tmp_path / "missing")
    (tmp_path / "tools.json").write_text((ste50_dir / "tools.json").read_text())
    (tmp_path / "test.jsonl").write_text('{"id": "a-0", "query": "q", "tool": "a", "mcp_name": "a"}\n')
    with pytest.raises(BenchError, match=r"test.jsonl:1: tool 'a' is not in tools.json"):
        load_bench(tmp_path)
    (tmp_path / "test.jsonl").write_text('{"id": "a-0"}\n')
    with pytest.raises(BenchError, match=r"test.jsonl:1:"):
        load_bench(tmp_path)


def test_prompt_shows_candidates_or_all_tools(bench):
    item = bench.select(["add_date"])[0]
    messages, kwargs = PromptBuilder(bench, EvalConfig()).request(item)
    system = messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": item.query}
    assert kwargs["stop"] == ["Observation:"] and "structured" not in kwargs  # unconstrained by default
    shown = [n for n in bench.tool_names if f"\n{n}: " in f"\n{system}"]
    assert sorted(shown) == sorted(bench.candidates["add_date"])
    messages, _ = PromptBuilder(bench, EvalConfig(shown="all")).request(item)
    assert all(f"\n{n}: " in f"\n{messages[0]['content']}" for n in bench.tool_names)


def test_descriptions_setting_uses_served_text_and_retrieval_never_shows_test_queries(bench):
    item = bench.select(["add_date"])[0]
    served = {"add_date": ("Adds days. Examples: 'in 3 days from 2020-01-01'", {"type": "object"})}
    builder = PromptBuilder(bench, EvalConfig(setting="descriptions"), describe=served.get)
    system = builder.request(item)[0][0]["content"]
    assert "Adds days. Examples" in system and "Date should be pass as" not in system

    leaked = bench.select(["add_date"])[3].query
    demos = [
        Demo("add_date", leaked, {"date": "x", "days": 1}),
        Demo("Car_database__Makes", "list car makes", {}),  # not shown for add_date items
        Demo("add_date", "What day is 3 days after 2020-02-27?", {"date": "2020-02-27", "days": 3}),
    ]
    builder = PromptBuilder(bench, EvalConfig(setting="retrieval", k=3), retrieve=lambda q, k: demos)
    system = builder.request(item)[0][0]["content"]
    assert "What day is 3 days after 2020-02-27?" in system
    assert leaked not in system
    assert "list car makes" not in system
    with pytest.raises(ValueError, match="retrieval setting needs"):
        PromptBuilder(bench, EvalConfig(setting="retrieval"))


def test_served_descriptions_beside_retrieved_examples(bench):
    """What a client of the product reads: the served (learned) descriptions and the examples together."""
    item = bench.select(["add_date"])[0]
    served = {"add_date": ("Adds days to a date. Usage: days may be negative.", {"type": "object"})}
    demo = Demo("add_date", "What day is 3 days after 2020-02-27?", {"date": "2020-02-27", "days": 3})
    config = EvalConfig(setting="retrieval", k=1, served_descriptions=True)
    builder = PromptBuilder(bench, config, describe=served.get, retrieve=lambda q, k: [demo])
    system = builder.request(item)[0][0]["content"]
    assert "days may be negative" in system and "What day is 3 days after 2020-02-27?" in system
    plain = PromptBuilder(
        bench, EvalConfig(setting="retrieval", k=1), describe=served.get, retrieve=lambda q, k: [demo]
    )
    assert "days may be negative" not in plain.request(item)[0][0]["content"]
    with pytest.raises(ValueError, match="served descriptions need"):
        PromptBuilder(bench, config, retrieve=lambda q, k: [demo])


def test_demonstrations_nearest_first_or_next_to_the_query(bench):
    item = bench.select(["add_date"])[0]
    demos = [
        Demo("add_date", f"What day is {n} days after 2020-02-27?", {"date": "2020-02-27", "days": n})
        for n in (1, 2, 3)
    ]
    for order, expected in (("nearest-first", [1, 2]), ("nearest-last", [2, 1])):
        config = EvalConfig(setting="retrieval", k=2, demo_order=order)
        system = PromptBuilder(bench, config, retrieve=lambda q, k: demos).request(item)[0][0]["content"]
        at = [system.index(f"What day is {n} days after") for n in expected]
        assert at == sorted(at) and "What day is 3 days" not in system


@pytest.mark.anyio
async def test_run_eval_scores_first_calls_and_files_rescore_equal(bench, tmp_path):
    items = bench.select(["add_date", "get_today_date"])
    errors = {items[1].query}

    def reply(messages, kwargs):
        if messages[-1]["content"] in errors:
            raise ModelError("model server at http://127.0.0.1:1 unreachable")
        return ADD_DATE_CALL

    model = ScriptedModel.answering(reply)
    result = await run_eval(model, bench, items, EvalConfig(concurrency=3))
    assert len(model.calls) == 30
    assert all(r["temperature"] == 0.0 and r["max_tokens"] == 256 and r["model"] is None for r in model.calls)
    s = result.summary
    assert result.errors == 1
    assert s.per_tool["add_date"].n == 15 and s.per_tool["add_date"].n_wellformed == 14
    assert s.per_tool["add_date"].n_correct == 1  # only add_date-0 asks for 2022-10-14 + 90
    assert s.per_tool["get_today_date"].api_match == 0.0 and s.per_tool["get_today_date"].wellformed == 100.0
    assert [p["id"] for p in result.predictions] == [it.id for it in items]  # item order kept

    out = write_results(result, tmp_path / "base")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setting"] == "base" and summary["errors"] == 1 and summary["n"] == 30
    again = score(
        read_predictions(out / "predictions.jsonl"),
        [it.model_dump() for it in items],
        bench.tool_names,
        bench_schemas(bench),
    )
    assert again.model_dump(exclude={"items"}) == {k: summary[k] for k in again.model_dump(exclude={"items"})}
    assert len((out / "scores.jsonl").read_text().splitlines()) == 30


@pytest.mark.anyio
async def test_native_protocol_and_adapter_name_are_passed(bench):
    items = bench.select(["add_date"], limit=2)
    model = ScriptedModel.answering(
        lambda messages, kwargs: ToolCall(name="add_date", arguments='{"date": "2022-10-14", "days": 90}')
    )
    result = await run_eval(model, bench, items, EvalConfig(prompt="native", adapter="a1"))
    assert result.model == "a1" and model.calls[0]["model"] == "a1"
    assert len(model.calls[0]["tools"]) == 15 and model.calls[0]["tool_choice"] == "auto"
    assert result.summary_json()["prompt"] == "native" and result.summary_json()["protocol"] == "native"
    assert result.predictions[0]["tool_calls"][0]["name"] == "add_date"
    assert result.summary.correct == 50.0


def test_cli_scores_a_file_and_draws_comparison(bench, ste50_dir, tmp_path, capsys):
    items = bench.select(["add_date"])
    gold = [{"id": it.id, "tool_calls": [{"name": "add_date", "arguments": it.arguments}]} for it in items]
    half = [
        {"id": it.id, "output": "Final Answer: sorry"} if i % 2 else g
        for i, (it, g) in enumerate(zip(items, gold, strict=True))
    ]
    runs = tmp_path / "runs"
    for name, preds in (("gold", gold), ("half", half)):
        src = tmp_path / f"{name}.jsonl"
        src.write_text("".join(json.dumps(p) + "\n" for p in preds))
        rc = main(
            [
                "eval",
                "--bench",
                str(ste50_dir),
                "--tools",
                "add_date",
                "--score",
                str(src),
                "--out",
                str(runs / name),
            ]
        )
        assert rc == 0
    assert json.loads((runs / "gold" / "summary.json").read_text())["correct"] == 100.0
    assert json.loads((runs / "half" / "summary.json").read_text())["wellformed"] == pytest.approx(53.33)
    assert (runs / "settings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "overall" in capsys.readouterr().out
    assert compare_runs(tmp_path / "nothing-here") is None


def test_cli_rejects_bad_input(ste50_dir, tmp_path, capsys):
    assert main(["eval", "--bench", str(tmp_path / "nope"), "--score", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "--bench", str(ste50_dir), "--limit", "0", "--score", "x"]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "add_date-0", "output": ""}\nnot json\n')
    assert main(["eval", "--bench", str(ste50_dir), "--score", str(bad)]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err


def test_written_files_are_plain(tmp_path: Path):
    # nothing of the item scores' internals leaks into predictions.jsonl
    from ste_mcp.evaluate.run import EvalResult
    from ste_mcp.evaluate.score import summarize

    result = EvalResult(
        config=EvalConfig(), model="m", predictions=[{"id": "a", "output": "x"}], summary=summarize([])
    )
    out = write_results(result, tmp_path)
    assert read_predictions(out / "predictions.jsonl") == [{"id": "a", "output": "x"}]


def test_report_section_is_replaced_in_place(tmp_path):
    from ste_mcp.evaluate.report import replace_section, table

    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## LLM\n\nkeep me\n\n## Learning curve\n\nold\n\n## Other\n\nkeep too\n")
    replace_section(md, "Learning curve", table(["a", "b"], [[1.234, None], ["x|y", 2]]))
    text = md.read_text()
    assert "old" not in text and "keep me" in text and "keep too" in text
    assert "| 1.2 | – |" in text and "| x\\|y | 2 |" in text
    assert text.index("## Learning curve") < text.index("## Other")
    replace_section(md, "Continual learning", "new")
    assert md.read_text().rstrip().endswith("## Continual learning\n\nnew")


def test_served_descriptions_cover_only_served_visible_tools():
    from types import SimpleNamespace

    from ste_mcp.evaluate.run import served_descriptions
    from ste_mcp.upstream.tools import Tool

    def tool(name: str, schema: dict, hidden: bool = False) -> Tool:
        return Tool(
            name=name,
            description="orig",
            input_schema=schema,
            method="GET",
            path="/",
            base_url="http://x",
            hidden=hidden,
        )

    schema = {
        "type": "object",
        "properties": {"date": {"type": "string", "default": "2023-01-15"}},
        "required": ["date"],
    }
    tools = {"add_date": tool("add_date", schema), "get_today_date": tool("get_today_date", {}, hidden=True)}
    app = SimpleNamespace(
        toolset=SimpleNamespace(get=tools.get), describe=lambda t: t.description + " + learned"
    )
    describe = served_descriptions(app)
    # the schema as clients are shown it: the spec's example of a required value is no default
    served = {
        "type": "object",
        "properties": {"date": {"type": "string", "examples": ["2023-01-15"]}},
        "required": ["date"],
    }
    assert describe("add_date") == ("orig + learned", served)
    assert describe("get_today_date") is None and describe("search_general") is None


def test_must_call_prompt_lists_the_apis_and_asks_for_exactly_one_call(bench):
    item = bench.select(["add_date"])[0]
    messages, kwargs = PromptBuilder(bench, EvalConfig(prompt="must-call")).request(item)
    system = messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": item.query}
    assert system.startswith("You have access to the following APIs:")
    assert "Answer by calling exactly one of the APIs above, in this format:" in system
    assert "Final Answer" not in system and "Thought" not in system
    names_line = system.splitlines()[-2]
    assert names_line.startswith("Action: <the API name, one of: ")
    assert all(name in names_line for name in bench.candidates["add_date"])
    assert kwargs == {"stop": ["Observation:"], "prefix": "Action:"}
    _, kwargs = PromptBuilder(bench, EvalConfig(prompt="must-call", prefill=False)).request(item)
    assert "prefix" not in kwargs
    _, kwargs = PromptBuilder(bench, EvalConfig(prompt="must-call", constrained=True)).request(item)
    grammar = kwargs["structured"]["grammar"]
    assert grammar.split("\n")[0] == "root ::= action"  # a call, never an answer, and no thought
    _, kwargs = PromptBuilder(bench, EvalConfig()).request(item)
    assert kwargs["prefix"] == "Thought:"  # the paper's variant is unchanged


def test_learned_settings_are_framed_by_the_prompt_variant(bench):
    item = bench.select(["add_date"])[0]
    demo = Demo("add_date", "What day is 3 days after 2020-02-27?", {"date": "2020-02-27", "days": 3})
    expected = {
        "paper": 'Thought: add_date fits this request.\nAction: add_date\nAction Input: {"date": "2020-02-27"',
        "must-call": 'What day is 3 days after 2020-02-27?\nAction: add_date\nAction Input: {"date"',
        "native": 'What day is 3 days after 2020-02-27?\nAction: add_date\nAction Input: {"date"',
    }
    for prompt, shot in expected.items():
        config = EvalConfig(setting="retrieval", prompt=prompt, k=1)
        messages, kwargs = PromptBuilder(bench, config, retrieve=lambda q, k: [demo]).request(item)
        system = messages[0]["content"]
        assert "Examples of correct calls for similar requests:" in system and shot in system, prompt
        assert ("tools" in kwargs) is (prompt == "native")
    served = {"add_date": ("Adds days to a date.", {"type": "object"})}
    config = EvalConfig(setting="descriptions", prompt="must-call")
    system = PromptBuilder(bench, config, describe=served.get).request(item)[0][0]["content"]
    assert "add_date: Adds days to a date." in system and "exactly one of the APIs" in system


@pytest.mark.anyio
async def test_strict_metric_is_in_the_run_summary(bench, tmp_path):
    items = bench.select(["add_date"], limit=3)
    calls = iter(
        [
            'Action: add_date\nAction Input: {"date": "2022-10-14", "days": 90}',  # item 0: strict
            'Action: add-date\nAction Input: {"date": "2022-10-14", "days": 90}',  # near name: lenient only
            'Action: add_date\nAction Input: {"date": "2022-10-14", "days": "90", "x": 1}',
        ]
    )
    first = {it.id: it for it in items}[items[0].id]

    def reply(messages, kwargs):
        text = next(calls)
        # every item gets item 0's ground truth; the others' are not matched either way
        return text if messages[-1]["content"] == first.query else text.replace("2022-10-14", "1999-01-01")

    result = await run_eval(
        ScriptedModel.answering(reply), bench, items, EvalConfig(prompt="must-call", concurrency=1)
    )
    s = result.summary
    assert (s.n_correct, s.n_strict_correct, s.n_exact_name) == (1, 1, 2)
    summary = json.loads((write_results(result, tmp_path) / "summary.json").read_text())
    assert summary["strict_correct"] == pytest.approx(33.33) and summary["prompt"] == "must-call"
    assert summary["per_tool"]["add_date"]["exact_name"] == pytest.approx(66.67)


def test_cli_score_reports_strict_and_refuses_best_without_a_model(ste50_dir, tmp_path, capsys):
    items = load_bench(ste50_dir).select(["add_date"])
    preds = [
        {"id": it.id, "output": f"Action: AddDate\nAction Input: {json.dumps(it.arguments)}"} for it in items
    ]
    src = tmp_path / "near.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in preds))
    args = ["eval", "--bench", str(ste50_dir), "--tools", "add_date", "--score", str(src)]
    assert main([*args, "--out", str(tmp_path / "near")]) == 0
    out = capsys.readouterr().out
    assert "strict" in out and "exact" in out
    summary = json.loads((tmp_path / "near" / "summary.json").read_text())
    assert (summary["correct"], summary["exact_name"], summary["strict_correct"]) == (100.0, 0.0, 0.0)
    assert main([*args, "--prompt", "best"]) == 2
    assert "--prompt best and --decoding best are measured with a model" in capsys.readouterr().err
    assert main([*args, "--prompt", "must-call", "--decoding", "best"]) == 2


class PromptSensitiveModel(ScriptedModel):
    """Calls the right tool (with the dev item's ground truth) only when asked with the must-call prompt.

    ``loose``: without a grammar it adds an argument the tool does not have (right by the paper's lenient
    metric, wrong by the strict one); the grammar holds it to the schema.
    """

    def __init__(self, items, name: str = "scripted", loose: bool = False):
        truth = {it.query: it for it in items}

        def reply(messages, kwargs):
            item = truth[messages[-1]["content"]]
            if "exactly one of the APIs" in messages[0]["content"]:
                arguments = item.arguments
                if loose and "structured" not in kwargs:
                    arguments = {**arguments, "verbose": True}
                return f"Action: {item.mcp_name}\nAction Input: {json.dumps(arguments)}"
            return "Thought: no idea\nFinal Answer: no idea"

        super().__init__([reply], model=name, repeat_last=True)


@pytest.mark.anyio
async def test_best_prompt_is_measured_once_per_model_and_cached(tmp_path):
    from ste_mcp.evaluate.best import CACHE_NAME, DEV_BENCH, best_prompt, dev_correct

    dev = load_bench(DEV_BENCH)
    model = PromptSensitiveModel(dev.items)
    config, entry = await best_prompt(model, dev, EvalConfig(setting="adapter", adapter="a1"), tmp_path)
    assert (config.prompt, config.constrained, config.setting, config.adapter) == (
        "must-call",
        False,
        "adapter",
        "a1",
    )
    assert dev_correct(entry) == {"paper": 0.0, "must-call": 100.0, "native": 0.0}
    assert config.prompt_dev == dev_correct(entry)
    assert len(model.calls) == 3 * len(dev.items)
    assert all(r["model"] is None for r in model.calls)  # measured zero-shot, without the adapter
    assert (tmp_path / CACHE_NAME).is_file()

    again = PromptSensitiveModel(dev.items)
    assert (await best_prompt(again, dev, EvalConfig(), tmp_path))[0].prompt == "must-call"
    assert again.calls == []  # read back, not measured again
    other = PromptSensitiveModel(dev.items, name="another-model")
    await best_prompt(other, dev, EvalConfig(), tmp_path)
    assert len(other.calls) == 3 * len(dev.items)
    changed = PromptSensitiveModel(dev.items)
    await best_prompt(changed, dev, EvalConfig(max_tokens=64), tmp_path)
    assert len(changed.calls) == 3 * len(dev.items)  # other decoding options: another key
    listed = PromptSensitiveModel(dev.items)
    await best_prompt(listed, dev, EvalConfig(shown="search"), tmp_path)
    assert listed.calls == []  # search runs are measured with the candidates, already cached


@pytest.mark.anyio
async def test_best_variant_also_chooses_the_decoding(tmp_path):
    from ste_mcp.evaluate.best import DEV_BENCH, best_prompt, chosen_label, dev_correct

    dev = load_bench(DEV_BENCH)
    model = PromptSensitiveModel(dev.items, loose=True)
    config, entry = await best_prompt(model, dev, EvalConfig(), tmp_path, decodings=(False, True))
    assert (config.prompt, config.constrained, chosen_label(entry)) == (
        "must-call",
        True,
        "must-call+constrained",
    )
    # equal by the lenient metric; the grammar's strict answers break the tie
    assert dev_correct(entry) == {
        "paper": 0.0,
        "paper+constrained": 0.0,
        "must-call": 100.0,
        "must-call+constrained": 100.0,
        "native": 0.0,
    }
    assert entry["results"]["must-call"]["strict_correct"] == 0.0
    assert entry["results"]["must-call+constrained"]["strict_correct"] == 100.0
    assert len(model.calls) == 5 * len(dev.items)  # native has no grammar of its own: measured free only
    free_only = PromptSensitiveModel(dev.items, loose=True)
    config, _ = await best_prompt(free_only, dev, EvalConfig(), tmp_path)
    assert (config.prompt, config.constrained) == ("must-call", False)  # another set of variants, another key
    assert len(free_only.calls) == 3 * len(dev.items)
    again = PromptSensitiveModel(dev.items, loose=True)
    config, _ = await best_prompt(again, dev, EvalConfig(), tmp_path, decodings=(False, True))
    assert config.constrained and again.calls == []  # the decoding is read back with the prompt
    one = PromptSensitiveModel(dev.items, loose=True)
    config, entry = await best_prompt(
        one, dev, EvalConfig(), tmp_path, prompts=("native",), decodings=(True,)
    )
    assert (config.prompt, config.constrained, list(dev_correct(entry))) == ("native", False, ["native"])


def test_best_prompt_ties_go_to_strict_then_to_the_paper():
    from types import SimpleNamespace

    from ste_mcp.evaluate.best import pick

    def result(correct, strict):
        return SimpleNamespace(summary=SimpleNamespace(correct=correct, strict_correct=strict))

    assert pick({"paper": result(10, 5), "must-call": result(10, 8), "native": result(9, 9)}) == "must-call"
    assert pick({"paper": result(10, 8), "must-call": result(10, 8), "native": result(10, 8)}) == "paper"
    assert pick({"paper": result(1, 1), "must-call": result(2, 0), "native": result(3, None)}) == "native"


@pytest.mark.anyio
async def test_dev_bench_covers_every_toolbox_tool_and_the_proxy_answers_its_ground_truth(data_dir):
    from collections import Counter

    from mcp import Client

    from ste_mcp.app import App
    from ste_mcp.config import load_settings
    from ste_mcp.evaluate.best import DEV_BENCH
    from ste_mcp.server.server import build_server
    from ste_mcp.toolbox.api import catalog

    dev = load_bench(DEV_BENCH)
    per_tool = Counter(it.mcp_name for it in dev.items)
    assert set(per_tool) == set(catalog()) and min(per_tool.values()) >= 4 and len(dev.items) >= 60
    assert len({it.query for it in dev.items}) == len(dev.items)
    settings = load_settings(data_dir=str(data_dir), specs=[])
    async with App(settings, features=[]) as app, Client(build_server(app)) as client:
        for item in dev.items:
            result = await client.call_tool(item.mcp_name, item.arguments)
            text = result.content[0].text
            assert not result.is_error, (item.id, text)
            if item.mcp_name == "getWolframAlphaResults":  # an answer, not "no result"
                assert json.loads(text)["queryresult"]["success"] is True, (item.id, text)


def opened_models(monkeypatch, items, **options) -> list[PromptSensitiveModel]:
    """Each model the CLI opens (``ste_mcp.llm.open_model``) is a new ``PromptSensitiveModel``, kept here."""
    from contextlib import asynccontextmanager

    import ste_mcp.llm

    models: list[PromptSensitiveModel] = []

    @asynccontextmanager
    async def open_model(settings, **kwargs):
        models.append(PromptSensitiveModel(items, **options))
        yield models[-1]

    monkeypatch.setattr(ste_mcp.llm, "open_model", open_model)
    return models


def test_cli_prompt_best_measures_on_the_dev_bench_then_evaluates_with_the_winner(
    tmp_path, monkeypatch, capsys
):
    from ste_mcp.evaluate.best import CACHE_NAME, DEV_BENCH

    dev = load_bench(DEV_BENCH)
    models = opened_models(monkeypatch, dev.items)
    args = ["eval", "--bench", str(DEV_BENCH), "--tools", "add_date", "--prompt", "best"]
    args += ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "runs" / "best")]
    assert main(args) == 0
    assert "best variant: must-call (" in capsys.readouterr().out
    summary = json.loads((tmp_path / "runs" / "best" / "summary.json").read_text())
    assert summary["prompt"] == "must-call" and summary["n"] == 5 and summary["strict_correct"] == 100.0
    assert summary["constrained"] is False  # a tie in every metric goes to the free decoding
    assert summary["prompt_dev"] == {
        "paper": 0.0,
        "paper+constrained": 0.0,
        "must-call": 100.0,
        "must-call+constrained": 100.0,
        "native": 0.0,
    }
    assert len(models[0].calls) == 5 * len(dev.items) + 5  # --prompt best chooses the decoding too
    assert (tmp_path / "data" / "eval" / CACHE_NAME).is_file()
    assert main(args) == 0
    assert len(models[1].calls) == 5  # the choice is read back from the data dir
    assert main([*args, "--decoding", "free"]) == 0
    assert len(models[2].calls) == 3 * len(dev.items) + 5  # the prompt alone, free: measured again


def test_cli_decoding_best_with_a_fixed_prompt_runs_under_the_grammar_when_it_wins(
    tmp_path, monkeypatch, capsys
):
    from ste_mcp.evaluate.best import DEV_BENCH

    dev = load_bench(DEV_BENCH)
    models = opened_models(monkeypatch, dev.items, loose=True)
    args = ["eval", "--bench", str(DEV_BENCH), "--tools", "add_date", "--prompt", "must-call"]
    args += ["--decoding", "best", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    assert main(args) == 0
    assert "best variant: must-call+constrained (" in capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["prompt"], summary["constrained"], summary["strict_correct"]) == (
        "must-call",
        True,
        100.0,
    )
    assert summary["prompt_dev"] == {"must-call": 100.0, "must-call+constrained": 100.0}
    assert len(models[0].calls) == 2 * len(dev.items) + 5
    assert all("structured" in call for call in models[0].calls[-5:])
    fixed = [
        *args[:7],
        "--constrained",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "fixed"),
    ]
    assert main(fixed) == 0
    assert json.loads((tmp_path / "fixed" / "summary.json").read_text())["constrained"] is True
    assert len(models[1].calls) == 5  # --constrained: no measurement
