"""The deterministic checks after the judge (``memory/checks.py``): failed results, invented numbers and
ignored quantities caught on examples from real runs, no false alarm on good trials, and the Exploiter
refusing such a trial (with real LanceDB) unless ``memory.judge_checks`` is empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ste_mcp.memory.checks import check_trial, soft_failure, ungrounded_answer, unused_request_numbers
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.exploit import Exploiter, ExploitReport
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.upstream.tools import Tool
from tests.fixtures.models import judging_model

WOLFRAM_FAILED = json.dumps(
    {"queryresult": {"success": False, "error": False, "numpods": 0, "datatypes": "", "timing": 0.4}}
)
PARIS = json.dumps({"name": "Paris", "lat": 48.85341, "lon": 2.3488, "population": 2138551})


# ---- soft_failure --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        (WOLFRAM_FAILED, "the result says it failed: queryresult.success = false"),
        ('{"ok": false, "data": null}', "the result says it failed: ok = false"),
        ('{"error": "invalid api key"}', 'the result says it failed: error = "invalid api key"'),
        ('{"error": true}', "the result says it failed: error = true"),
        ('{"data": {"error": {"code": 7}}}', 'the result says it failed: data.error = {"code": 7}'),
        ('{"status": "FAILED", "id": 3}', 'the result says it failed: status = "FAILED"'),
    ],
)
def test_a_result_that_says_it_failed(observation: str, reason: str) -> None:
    assert soft_failure(observation) == reason


@pytest.mark.parametrize(
    "observation",
    [
        '{"error": null, "result": 4}',
        '{"error": "", "result": 4}',
        '{"success": true, "status": "ok"}',
        '{"status": 200, "items": [{"success": false}]}',  # two levels down: an item, not the call
        "Sunny, 21 degrees",  # not JSON
        "[1, 2, 3]",
        "",
    ],
)
def test_a_result_that_does_not_say_it_failed(observation: str) -> None:
    assert soft_failure(observation) is None


# ---- grounded_answer -----------------------------------------------------------------------------
def test_invented_numbers_are_named() -> None:
    fact = "10 is the highest score possible in Olympic gymnastics competitions."
    reason = ungrounded_answer(
        "The sum of the first 10 prime numbers is 28",
        fact,
        "Find the sum of the first 10 prime numbers",
        {"number": "10"},
    )
    assert reason == "the answer states 28, found neither in the result, the request nor the arguments"
    sphere = ungrounded_answer(
        "The volume is 523.598 cubic units, or about 524.",
        WOLFRAM_FAILED,
        "What is the volume of a sphere with radius 5?",
        {"input": "volume of a sphere with radius 5"},
    )
    assert sphere is not None and "523.598, 524" in sphere


@pytest.mark.parametrize(
    ("answer", "observation", "query", "arguments"),
    [
        ("48.85341 and 2.3488", PARIS, "Find the latitude and longitude of Paris", {"q": "Paris"}),
        ("about 48.85, 2.35", PARIS, "Where is Paris?", {"q": "Paris"}),  # rounded
        ("Paris has 2,138,551 people (about 2.1 million).", PARIS, "How many live in Paris?", {}),
        ("2.0 is the answer", '{"result": 2}', "What is 1+1?", {}),
        ("MIL PESOS", '{"texto": "MIL PESOS"}', "Convert 1000 pesos to words", {"monto": "1000"}),
        ("There are 3 results.", "[]", "Any news?", {}),  # one significant digit: not checked
        ("Tomorrow is 2023-04-26.", '{"date": "2023-04-26"}', "What day is tomorrow?", {}),
        ("Your 12-character password is ok", '{"password": "x"}', "A 12-character password", {"length": 12}),
        ("No results.", "not json", "Anything?", {}),
    ],
)
def test_grounded_answers_pass(answer: str, observation: str, query: str, arguments: dict) -> None:
    assert ungrounded_answer(answer, observation, query, arguments) is None


# ---- request_numbers -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "arguments", "reason"),
    [
        ("I need a token with an expiration of 15 minutes", {}, "the call ignores 15 stated in the request"),
        ("I need a token with an expiration of 15 minutes", {"expires_in": 300}, "the call ignores 15"),
        ("What are the car makes from the year 2020?", {}, "the call ignores 2020"),
        ("What's the day after the 25th of April?", {"date": "2023-04-26", "days": 1}, "the call ignores 25"),
        ("Scale 2.5 by -3", {"factor": 2.5}, "the call ignores 3"),
    ],
)
def test_ignored_request_numbers_are_named(query: str, arguments: dict, reason: str) -> None:
    found = unused_request_numbers(query, arguments)
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize(
    ("query", "arguments"),
    [
        ("Convert 1000 pesos to words", {"monto": "1000"}),
        ("Convert 1,000 pesos to words", {"monto": 1000}),
        ("Generate a 12-character password", {"length": "12"}),
        ("What day of the week is the 15th of April 2023?", {"date": "2023-04-15"}),
        ("A token that expires in 15 minutes", {"expires_in": 900}),  # in seconds
        ("Scale 2.50 by -3", {"factor": 2.5, "by": -3}),
        ("How many COVID-19 cases in France, per the MP3 archive?", {"country": "France"}),  # names
        ("Find the latitude and longitude of Paris", {}),
    ],
)
def test_used_request_numbers_pass(query: str, arguments: dict) -> None:
    assert unused_request_numbers(query, arguments) is None


# ---- check_trial and the Exploiter ---------------------------------------------------------------
TOOL = Tool(
    name="wolfram_query",
    description="Computes answers to math questions.",
    input_schema={"type": "object", "properties": {"input": {"type": "string"}}},
    method="GET",
    path="/query",
    base_url="http://127.0.0.1:9",
)


def _trial(observation: str, answer: str) -> TrialRecord:
    query = "What is the volume of a sphere with radius 5?"
    call = Turn(raw="...", kind="call", tool=TOOL.name, arguments={"input": query}, observation=observation)
    return TrialRecord(
        tool=TOOL.name,
        episode=0,
        slot=0,
        query=query,
        turns=[call, Turn(raw=f"Final Answer: {answer}", kind="final")],
        final_answer=answer,
        reflection="yes",
        model="explorer",
    )


def test_check_trial_names_the_first_failed_check() -> None:
    bad = _trial(WOLFRAM_FAILED, "It is 523.6 cubic units.")
    assert check_trial(bad) == "soft_failure: the result says it failed: queryresult.success = false"
    assert check_trial(bad, ["grounded_answer"]).startswith("grounded_answer: the answer states 523.6")
    assert check_trial(bad, []) is None
    assert check_trial(_trial('{"result": 523.5988}', "It is 523.6 cubic units.")) is None


@pytest.mark.anyio
@pytest.mark.parametrize("checks", [None, []])
async def test_the_exploiter_refuses_an_accepted_soft_failure(data_dir: Path, checks: list | None) -> None:
    db = open_db(data_dir / "lancedb")
    trials, exemplars = TrialStore(db), ExemplarStore(db)
    settings = MemorySettings(paraphrases_per_exemplar=0)
    if checks is not None:
        settings = settings.model_copy(update={"judge_checks": checks})
    exploiter = Exploiter(trials, exemplars, DescriptionStore(db), settings)
    trial = _trial(WOLFRAM_FAILED, "The volume is 0.4 cubic units.")  # grounded in the result, but failed
    assert trials.record(trial)

    report = ExploitReport()
    await exploiter.exploit_trial(judging_model(), trial, {TOOL.name: TOOL}, report)
    verdict = trials.get(trial.id).verdict
    assert report.accepted == 1 and verdict["accepted"] is True
    if checks is None:  # the default: all checks
        assert (report.refused, report.exemplars) == (1, 0) and exemplars.find() == []
        assert verdict["refused"] == (
            "soft_failure: the result says it failed: queryresult.success = false "
            "(the judge accepted it; memory.judge_checks)"
        )
        assert "exemplar" not in verdict
    else:
        [stored] = exemplars.find()
        assert (report.refused, report.exemplars) == (0, 1) and verdict["exemplar"] == stored.id
