"""`ste-mcp learn`: the loop in the foreground (explore -> judge -> exemplars -> descriptions -> a round)
against the offline toolbox. Orchestration with scripted models standing in for a student and a
teacher (judge + paraphraser); the model test runs the judge role on its own managed vLLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import ste_mcp.llm as llm_module
from ste_mcp.cli import main
from ste_mcp.finetune.rounds import RoundError, RoundResult
from ste_mcp.memory.dates import goes_stale
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.trials import TrialStore
from tests.fixtures.llm import canned_llm_server
from tests.fixtures.models import ScriptedModel

TOOLS = ["get_today_date", "Numbers_Translator__Numbers_Translator"]  # toolbox tools without required args
STUDENT = "packaged:student"
TEACHER = "packaged:teacher"

VERDICT = {
    key: {"reason": "the answer uses the tool's output", "answer": "yes"}
    for key in ("informative", "faithful", "appropriate")
}


REQUESTS = [
    "What day is it today? I am planning a trip abroad.",
    "Write the amount on my rent cheque out in words.",
    "Which date is it now, so I can book the ferry?",
    "How do you say one million in English words?",
    "Tell me today's date for my diary entry.",
    "Spell out the guest count in words for a wedding invitation.",
    "I need the current date to fill in a customs form.",
    "Turn the year of my birth into words for a school exercise.",
]


def play(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
    """Every part: the explorer (a request, one call, a final answer, yes), the judge, the paraphraser."""
    system, last = messages[0]["content"] or "", messages[-1]["content"] or ""
    if system.startswith("You review attempts"):
        return json.dumps(VERDICT)
    if system.startswith("You rewrite user requests"):
        request = last.splitlines()[1]
        return json.dumps({"paraphrases": [f"Please tell me: {request}", f"I would like to know {request}"]})
    if last.startswith("Observation:"):
        return "Thought: done\nFinal Answer: here is what it returned."
    if "Answer yes or no" in last:
        return "yes"
    if last.startswith("Now fulfil"):
        tool = next(t for t in TOOLS if f"\n{t}:" in system)
        return f"Thought: call it\nAction: {tool}\nAction Input: {{}}"
    play.counter += 1  # type: ignore[attr-defined]
    # distinct requests: near-identical ones with the same call are refused as repeats (memory/requests.py);
    # none states a number, which the call (no arguments) would ignore (memory/checks.py)
    return REQUESTS[play.counter % len(REQUESTS)]  # type: ignore[attr-defined]


play.counter = 0  # type: ignore[attr-defined]


class Models:
    """A fake ``open_model``: the student and the teacher as scripted models; opens and closes recorded."""

    def __init__(self, failing: str | None = None) -> None:
        self.failing = failing
        self.models: dict[str, ScriptedModel] = {}
        self.events: list[str] = []

    @asynccontextmanager
    async def __call__(self, settings: Any, **kwargs: Any) -> AsyncIterator[ScriptedModel]:
        source = settings.llm.model
        self.events.append(f"open {source}")
        if source == self.failing:
            raise ConnectionError(f"vLLM for {source} exited with code 1")
        model = self.models[source] = ScriptedModel([play], model=source.split(":")[1], repeat_last=True)
        try:
            yield model
        finally:
            self.events.append(f"close {source}")

    def calls(self, source: str) -> list[str]:
        """The system prompts' first words of every request ``source`` answered."""
        return [" ".join((c["messages"][0]["content"] or "").split()[:2]) for c in self.models[source].calls]


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> Models:
    fake = Models()
    monkeypatch.setattr(llm_module, "open_model", fake)
    monkeypatch.setenv("STE_MCP_LLM__JUDGE__MODEL", TEACHER)
    monkeypatch.setenv("STE_MCP_LLM__PARAPHRASE__MODEL", TEACHER)
    monkeypatch.setenv("STE_MCP_EXPLORER__NUM_STM_SLOTS", "2")
    monkeypatch.setenv("STE_MCP_EXPLORER__UPSTREAM_RATE_PER_S", "0")
    monkeypatch.setenv("STE_MCP_MEMORY__PARAPHRASES_PER_EXEMPLAR", "2")
    return fake


def learn(data_dir: Path, *extra: str) -> int:
    args = ["learn", "--data-dir", str(data_dir), "--model", STUDENT, "--no-progress", "--tools", *TOOLS]
    return main([*args, *extra])


def test_learn_explores_judges_and_renders_with_each_roles_model(
    data_dir: Path, models: Models, capsys: pytest.CaptureFixture[str]
) -> None:
    assert learn(data_dir, "--episodes", "1") == 0
    out = capsys.readouterr().out

    trials = TrialStore.open(data_dir / "lancedb").trials()
    assert sorted(t.id for t in trials) == sorted(f"{tool}:0:{slot}" for tool in TOOLS for slot in (0, 1))
    assert all(t.model == "student" and t.success and t.verdict["accepted"] for t in trials)
    assert {t.verdict["model"] for t in trials} == {"teacher"}

    db = open_db(data_dir / "lancedb")
    exemplars = ExemplarStore(db).find()
    originals = [ex for ex in exemplars if ex.variant_of is None]
    paraphrases = [ex for ex in exemplars if ex.variant_of is not None]
    assert len(originals) == 4 and len(paraphrases) == 8
    assert all(ex.status == "approved" for ex in exemplars)
    assert all(ex.provenance.models == ["student", "teacher"] for ex in originals)  # explorer, judge
    assert all(ex.provenance.models == ["student", "teacher", "teacher"] for ex in paraphrases)
    current = DescriptionStore(db).current_all()
    assert set(current) == set(TOOLS)
    rendered = 0
    for tool, version in current.items():  # examples rendered, but none counted from today (dates.goes_stale)
        renderable = {ex.id for ex in exemplars if ex.tool == tool and not goes_stale(ex)}
        assert set(version.exemplar_ids) <= renderable and bool(version.exemplar_ids) == bool(renderable)
        rendered += bool(renderable)
    assert current["Numbers_Translator__Numbers_Translator"].exemplar_ids

    # each role's requests went to its model: the student explored, the teacher judged and paraphrased
    assert set(models.calls(STUDENT)) <= {"You are"}  # the explorer's instructions
    assert set(models.calls(TEACHER)) == {"You review", "You rewrite"}
    assert models.events[:2] == [f"open {STUDENT}", f"open {TEACHER}"]

    for tool in TOOLS:
        assert f"{tool}" in out
    assert "explored: 2 episode(s), 4 trial(s), 4 successful" in out
    assert "judged: 4 trial(s), 4 accepted, 0 refused as unsafe, 4 exemplar(s) + 8 paraphrase(s)" in out
    assert f"descriptions: {rendered} new version(s)" in out
    assert "training:" not in out

    # run again: nothing new to explore or judge, the totals stay
    assert learn(data_dir, "--episodes", "1") == 0
    again = capsys.readouterr()
    assert "nothing to explore" in again.err
    assert "judged: 0 trial(s)" in again.out and "descriptions: 0 new version(s)" in again.out
    assert TrialStore.open(data_dir / "lancedb").count() == 4


def test_learn_stops_each_tool_at_its_target_of_exemplars(
    data_dir: Path, models: Models, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """explorer.target_exemplars: passes of one episode (2 trials, 2 originals) per tool, judged after
    each; a tool holding 3 approved originals gets no third episode though --episodes allows 5."""
    assert learn(data_dir, "--episodes", "5", "--exemplars", "3") == 0
    out, err = capsys.readouterr()
    trials = TrialStore.open(data_dir / "lancedb").trials()
    assert sorted(t.id for t in trials) == sorted(
        f"{tool}:{ep}:{slot}" for tool in TOOLS for ep in (0, 1) for slot in (0, 1)
    )
    originals = ExemplarStore(open_db(data_dir / "lancedb")).approved_originals()
    assert originals == dict.fromkeys(TOOLS, 4)
    assert "every tool holds 3 approved exemplars: exploration stops" in err
    assert "explored: 4 episode(s), 8 trial(s), 8 successful" in out
    assert "judged: 8 trial(s), 8 accepted" in out

    # the target raised (in the settings): only the episodes it takes more
    monkeypatch.setenv("STE_MCP_EXPLORER__TARGET_EXEMPLARS", "5")
    assert learn(data_dir, "--episodes", "5") == 0
    assert TrialStore.open(data_dir / "lancedb").count() == 12


def test_learn_trains_one_round_after_closing_the_models(
    data_dir: Path, models: Models, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ste_mcp.finetune.rounds as rounds

    seen: dict[str, Any] = {}

    async def fake_round(
        settings: Any, *, toolset: Any = None, log: Any = None, **kwargs: Any
    ) -> RoundResult:
        seen["events"] = list(models.events)
        seen["approved"] = len(ExemplarStore(open_db(settings.db_dir)).approved())
        seen["tools"] = {t.name for t in toolset}
        seen["log"] = log.name
        return RoundResult(status="rejected", reason="gate: +0.0 points on held-out items (needs +2.0)")

    monkeypatch.setattr(rounds, "round_from_settings", fake_round)
    assert learn(data_dir, "--episodes", "1", "--train") == 0
    out = capsys.readouterr().out
    closed = {e for e in seen["events"] if e.startswith("close")}
    assert closed == {f"close {STUDENT}", f"close {TEACHER}"}  # the trainer has the machine to itself
    assert seen["approved"] == 12 and set(TOOLS) <= seen["tools"]
    assert seen["log"].endswith("logs/learn-train.log")
    assert "training: rejected: gate: +0.0 points" in out

    async def failing_round(settings: Any, **kwargs: Any) -> RoundResult:
        raise RoundError("the training process exited with code 137 (out of memory?)")

    monkeypatch.setattr(rounds, "round_from_settings", failing_round)
    assert learn(data_dir, "--train") == 1
    err = capsys.readouterr().err
    assert "ste-mcp learn: training failed: the training process exited with code 137" in err


def test_learn_errors_and_exit_codes(
    data_dir: Path, models: Models, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["learn", "--data-dir", str(data_dir), "--tools", "no_such_tool", "--no-progress"]) == 2
    assert "unknown tool(s) no_such_tool" in capsys.readouterr().err

    models.failing = TEACHER  # the judge's model cannot start: after exploring, learn says so and fails
    assert learn(data_dir, "--episodes", "1") == 1
    err = capsys.readouterr().err
    assert f"cannot open model '{TEACHER}' (llm.judge)" in err and "exited with code 1" in err
    assert TrialStore.open(data_dir / "lancedb").count() == 4  # the trials are kept for the next run
    assert all(t.verdict is None for t in TrialStore.open(data_dir / "lancedb").trials())

    config = data_dir / "bad.toml"
    config.write_text("[llm.judge]\nmodle = 'typo'\n")
    assert main(["learn", "--config", str(config), "--data-dir", str(data_dir)]) == 2
    assert "modle" in capsys.readouterr().err


@pytest.mark.model
@pytest.mark.anyio
async def test_judge_role_on_its_own_managed_vllm(vllm_server: Any, data_dir: Path) -> None:
    """The explorer and the paraphraser use the app's model (the session's SmolLM2 server); the judge
    names a model of its own (the same weights, a local folder) and gets a managed vLLM of its own."""
    from ste_mcp.app import App
    from ste_mcp.config import load_settings
    from ste_mcp.explorer.cli_learn import MEMORY_FEATURE
    from ste_mcp.explorer.scheduler import Explorer
    from ste_mcp.memory.extension import MemoryExtension
    from ste_mcp.memory.trials import TrialRecord, Turn

    settings = load_settings(
        data_dir=str(data_dir),
        llm={
            "model": "packaged:smollm2-135m-instruct",
            "base_url": vllm_server.base_url,
            "served_model_name": vllm_server.model,
            "timeout_s": 300,
            "max_model_len": 2048,
            "kv_cache_gib": 1,
            "judge": {"model": str(vllm_server.model_dir), "served_model_name": "smollm2-judge"},
        },
        explorer={
            "num_episodes": 1,
            "num_stm_slots": 1,
            "max_turn": 2,
            "max_tokens": 64,
            "temperature": 0.0,
            "tools": ["get_today_date"],
            "upstream_rate_per_s": 0,
        },
        memory={"paraphrases_per_exemplar": 1},
    )
    async with App(settings, features=[MEMORY_FEATURE]) as app:
        explorer = await Explorer.from_app(app)
        summary = await explorer.run()
        assert summary.trials == 1 and summary.errors == 0
        [explored] = explorer.store.trials()
        assert explored.model == vllm_server.model  # the explorer played by the app's model

        # a trial the judge must read (the toolbox's real answer), recorded as the explorer records one
        tool = app.toolset.get("get_today_date")
        result = await app.upstream.call(tool, {}, purpose="explore")
        assert not result.is_error, result.text
        answer = f"Today is {result.text[:200]}"
        trial = TrialRecord(
            tool=tool.name,
            episode=1,
            slot=0,
            query="What is the date today?",
            turns=[
                Turn(raw="...", kind="call", tool=tool.name, arguments={}, observation=result.text),
                Turn(raw=f"Final Answer: {answer}", kind="final"),
            ],
            final_answer=answer,
            reflection="yes",
            model=vllm_server.model,
        )
        assert explorer.store.record(trial)

        memory = app.extension("memory")
        assert isinstance(memory, MemoryExtension)
        report = await memory.exploit([trial])
        assert report is not None and report.judged == 1 and not report.errors, report
        judge = await app.model_for("judge")
        assert judge is not await app.get_model() and judge.model == "smollm2-judge"
        assert await app.model_for("paraphrase") is await app.get_model()
        verdict = explorer.store.get(trial.id).verdict
        assert verdict["model"] == "smollm2-judge" and verdict.get("error") is None
        if verdict["accepted"]:
            exemplars = ExemplarStore(open_db(settings.db_dir)).find(tool.name)
            for ex in exemplars:
                assert ex.provenance.models[:2] == [vllm_server.model, "smollm2-judge"]
                if ex.variant_of:
                    assert ex.provenance.models[2] == vllm_server.model  # paraphrased by the app's model
        log = settings.logs_dir / "judge" / "vllm.log"
        assert "smollm2-judge" in log.read_text()  # the judge's own server, logging apart


def test_learn_judges_every_pending_trial_not_one_batch(
    data_dir: Path, models: Models, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STE_MCP_MEMORY__JUDGE_CONCURRENCY", "1")  # serve's pass: 1 x 8 trials
    monkeypatch.setenv("STE_MCP_MEMORY__PARAPHRASES_PER_EXEMPLAR", "0")
    args = ["learn", "--data-dir", str(data_dir), "--model", STUDENT, "--no-progress"]
    assert main([*args, "--tools", TOOLS[0], "--episodes", "5"]) == 0
    assert "judged: 10 trial(s), 10 accepted" in capsys.readouterr().out
    assert TrialStore.open(data_dir / "lancedb").unjudged() == []


def test_learn_as_a_process_with_the_judge_on_an_external_server_of_its_own(data_dir: Path) -> None:
    with canned_llm_server(0) as student_url, canned_llm_server(0) as judge_url:
        env = {
            **os.environ,
            "STE_MCP_EXPLORER__UPSTREAM_RATE_PER_S": "0",
            "STE_MCP_EXPLORER__NUM_STM_SLOTS": "1",
            "STE_MCP_LLM__JUDGE__BASE_URL": judge_url,
            "STE_MCP_LLM__JUDGE__SERVED_MODEL_NAME": "canned-judge",
        }
        cmd = [sys.executable, "-m", "ste_mcp", "learn", "--data-dir", str(data_dir)]
        cmd += ["--llm-url", student_url, "--model", "canned", "--tools", TOOLS[0], "--episodes", "2"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = TrialStore.open(data_dir / "lancedb").trials()
    assert len(trials) == 2 and all(t.model == "canned" and t.success for t in trials)
    # the canned server answers a judge with a request, not a verdict: read as no, from the judge's server
    assert all(t.verdict["model"] == "canned-judge" and not t.verdict["accepted"] for t in trials)
    assert "judged: 2 trial(s), 0 accepted" in done.stdout and TOOLS[0] in done.stdout
