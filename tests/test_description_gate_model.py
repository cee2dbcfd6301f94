"""End to end on the packaged model (SmolLM2-135M on managed vLLM) and the real toolbox upstream:
usage notes written from real trials of add_date, checked, and gated by the evaluator on held-out
exemplars with the nearest toolbox tools as distractors, by two evaluators (the app's model and an
``llm.evaluators`` entry: a second client of the same server, through another key variable).

A 135M model's notes and answers are weak, so this asserts the pipeline: the notes are bullet lines
within the budget that echo nothing the upstream returned, and the stored version (refused or
promoted) carries the gate's numbers on the held-out queries.
"""

from __future__ import annotations

import pytest

from ste_mcp.app import App
from ste_mcp.cli import main
from ste_mcp.config import load_settings
from ste_mcp.evaluate.description_gate import gate_evaluators
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import APPROVED, REFUSED, DescriptionStore, notes_of
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore, Provenance
from ste_mcp.memory.gate import Rewriter, split_heldout
from ste_mcp.memory.notes import check_notes, upstream_texts
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.safety.sanitize import typed_summary

pytestmark = [pytest.mark.model, pytest.mark.anyio]

CALLS = [
    ("2024-07-09", 45),
    ("2019-11-30", 365),
    ("2025-03-01", 90),
    ("2023-01-15", 10),
    ("2022-12-25", 7),
    ("2024-02-28", 2),
    ("2020-06-01", 30),
    ("2021-09-10", 100),
    ("2018-04-04", 14),
    ("2026-01-01", 60),
]


async def test_rewrite_from_real_trials_on_the_packaged_model(chat_model, vllm_server, data_dir, capsys):
    server = {"base_url": vllm_server.base_url, "served_model_name": vllm_server.model}
    evaluator = {**server, "api_key_env": "STE_MCP_TEST_SECOND_EVALUATOR_KEY"}
    llm = {"model": str(vllm_server.model_dir), **server, "evaluators": [evaluator]}
    settings = load_settings(data_dir=str(data_dir), specs=[], llm=llm)
    async with App(settings, features=[]) as app:
        tools = app.toolset.visible()
        add_date = app.toolset.get("add_date")
        db = open_db(settings.db_dir)
        trials, exemplars = TrialStore(db), ExemplarStore(db)
        for slot, (date, days) in enumerate(CALLS):
            args = {"date": date, "days": days}
            result = await app.upstream.call(add_date, args, purpose="explore")
            assert not result.is_error, result.text
            query = f"Which date is {days} days after {date}?"
            trial = TrialRecord(
                tool="add_date",
                episode=0,
                slot=slot,
                query=query,
                turns=[Turn(raw="", kind="call", tool="add_date", arguments=args, observation=result.text)],
                final_answer="Done.",
            )
            trials.record(trial)
            exemplars.add(
                [
                    Exemplar(
                        tool="add_date",
                        query=query,
                        arguments=args,
                        observation=typed_summary(result.text),
                        status="approved",
                        provenance=Provenance(trial_ids=[trial.id]),
                    )
                ]
            )
        memory = MemorySettings(description_render="both", gate_min_heldout=3, notes_budget_tokens=80)
        rewriter = Rewriter(trials, exemplars, DescriptionStore(db), memory)
        models = await app.evaluator_models()
        assert len(models) == 2 and models[0] is await app.get_model()
        evaluators = await gate_evaluators(app)  # memory.gate_decoding: under the grammar by default
        assert [e.model for e in evaluators] == models and all(e.constrained for e in evaluators)
        outcome = await rewriter.rewrite(add_date, tools, writer=chat_model, evaluator=evaluators)

    assert outcome.notes is not None and outcome.notes.model == chat_model.model
    if outcome.notes.refused:  # the filter refused what the model wrote: nothing is stored
        assert outcome.version is None and outcome.message.startswith("notes refused")
        return
    notes = outcome.notes.text
    assert notes and all(line.startswith("- ") for line in notes.splitlines())
    assert len(notes) <= memory.notes_budget_tokens * 4
    assert check_notes(notes, upstream=upstream_texts(trials.trials("add_date"))) is None
    if outcome.version is None:  # the notes changed nothing
        return
    version = outcome.version
    assert version.status in (APPROVED, REFUSED) and notes_of(version.text) == notes
    gate = version.gate_result
    _, heldout = split_heldout(exemplars.approved("add_date"), memory.gate_heldout_fraction)
    assert gate["n"] == len(heldout)
    if len(heldout) >= memory.gate_min_heldout:
        assert set(gate["candidate"]) == {"correct", "api_match", "wellformed"}
        assert gate["evaluator"] == chat_model.model and len(gate["distractors"]) == memory.gate_distractors
        assert [score["evaluator"] for score in gate["scores"]] == [chat_model.model] * 2
        assert gate["prompt"] == "must-call+constrained"
        verdicts = [score.verdict for score in outcome.gate.scores]
        assert gate["promote"] == ("better" in verdicts and "worse" not in verdicts)
        assert (version.status == APPROVED) == gate["promote"]
    assert main(["descriptions", "history", "add_date", "--data-dir", str(data_dir)]) == 0
    assert f"v{version.version}" in capsys.readouterr().out
