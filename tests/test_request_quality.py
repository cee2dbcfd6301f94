"""Which imagined requests may become demonstrations: none that name the tool or talk about tools,
none that repeat a stored one (real LanceDB, real MiniLM embeddings, a scripted judge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.exploit import Exploiter, ExploitReport
from ste_mcp.memory.requests import request_problem
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.upstream.tools import Param, Tool
from tests.fixtures.models import judging_model

TOOL = "VehicleControlAPI_gallon_to_liter"


@pytest.mark.parametrize(
    "query",
    [
        "How can I convert gallons to liters using the VehicleControlAPI_gallon_to_liter tool?",
        "Convert 5 gallons with VehicleControl.gallonToLiter please",
        "Create a tool that activates the parking brake",
        "Write me a simple function that converts gallons",
        "What specific task do you want to automate with the car?",
        "What does this tool return for 42 gallons?",
        "Call the Vehicle API to convert 3 gallons",
        "Use add_date to add 3 days to 2024-01-01",  # another served tool, by name
        "Generate a 50-character password using the [REDACTED] tool.",  # a name the redactor took
        "Convert 3 gallons with the Vehicle Control API",
        "What is the time zone at (40.7128, -74.0060), using the Stadia Maps Time Zone API?",
        "Please create a 50-character password employing the [REDACTED] tool",
        '{"request": "Generate a strong password of length 50 that excludes the letter \'a\'}',
        # about an API itself (the 1.5B teacher's runs: kept by its judge, with a token call)
        "What are the parameters and options available for the Unlimited Language API?",
        "What are the most recent updates to the Token API?",
    ],
)
def test_requests_about_tools_are_refused(query: str) -> None:
    reason = request_problem(query, TOOL, other_tools=["add_date", "get_today_date"])
    assert reason is not None


@pytest.mark.parametrize(
    "query",
    [
        "How many liters are 12 gallons?",
        "My tank holds 15 gallons: what is that in litres?",
        "What is the function of the liver?",
        "How do I use chopsticks properly?",
        "Add 3 days to 2024-01-01",
        "Use the 24-hour clock in the answer",
        "Fill the tank with the cheapest fuel",
        "What are my options for a 3-day trip to Lisbon?",  # options, but of no API
        "Which version of Python ships with Ubuntu 24.04?",
    ],
)
def test_ordinary_requests_pass(query: str) -> None:
    assert request_problem(query, TOOL, other_tools=["add_date", "get_today_date"]) is None


def test_a_request_that_copies_the_description_is_refused() -> None:
    description = "Convierte cantidad a letras peso Mexicano, Ingles. Part of the tool 'NumbersToLetters'."
    copied = "Convierte cantidad a letras peso mexicano ingles for 1000"
    assert "copies the tool's description" in request_problem(copied, "convert", description=description)
    assert request_problem("Write 1000 pesos in English words", "convert", description=description) is None


def test_a_request_that_copies_a_parameter_description_is_refused() -> None:
    """The explorer is shown each parameter's description; the packaged 1.5B copied the math-fact tool's
    into four kept requests ("Add '?fragment=true' to return the fact as a sentence fragment …")."""
    tool = Tool(
        name="Numbers__Get_math_fact",
        description="Get a mathematical property about a number",
        input_schema={
            "type": "object",
            "properties": {
                "number": {"type": "string", "description": "The integer of interest"},
                "fragment": {
                    "type": "string",
                    "description": "Add '?fragment=true' to return the fact as a sentence fragment that can be "
                    "easily included as part of a larger sentence.",
                },
                "json": {"type": "string"},
            },
        },
        method="GET",
        path="/{number}/math",
        base_url="http://127.0.0.1:9",
    )
    assert tool.documentation.splitlines() == [
        tool.description,
        "The integer of interest",
        tool.input_schema["properties"]["fragment"]["description"],
    ]
    copied = (
        "Observe the number 1729 and get a fact about it as a sentence fragment that can be easily included"
    )
    assert request_problem(copied, tool.name, description=tool.description) is None
    assert "copies the tool's description" in request_problem(
        copied, tool.name, description=tool.documentation
    )
    fine = "Tell me a math fact about 1729, as a fragment I can put in a sentence"
    assert request_problem(fine, tool.name, description=tool.documentation) is None


def test_reasons_say_what_was_caught() -> None:
    assert "names the tool" in request_problem(f"run {TOOL} for 3 gallons", TOOL)
    assert "built" in request_problem("Please build an API that converts units", TOOL)


# ---- duplicates, on a real store ---------------------------------------------------------------------
def test_near_duplicate_on_a_real_store(data_dir: Path) -> None:
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    first = Exemplar(tool=TOOL, query="How many liters are 12 gallons?", arguments={"gallons": 12})
    (stored,) = store.add([first])
    same_words = Exemplar(tool=TOOL, query="how many LITERS are 12 gallons", arguments={"gallons": 12})
    assert store.near_duplicate(same_words, 0.95).id == stored.id
    # other arguments and other words: a new demonstration, even if the topic is the same
    other = Exemplar(
        tool=TOOL, query="My tank takes 40 gallons, how much is that in liters?", arguments={"gallons": 40}
    )
    assert store.near_duplicate(other, 0.95) is None
    # the same words for another tool are not a repeat of this one
    assert store.near_duplicate(same_words.model_copy(update={"tool": "add_date"}), 0.95) is None
    # a rejected exemplar still counts: a repeat must not slip past the operator's veto
    store.set_status([stored.id], "rejected", "operator")
    assert store.near_duplicate(same_words, 0.95).id == stored.id


# ---- the exploiter keeps neither ---------------------------------------------------------------------
def _tool() -> Tool:
    return Tool(
        name=TOOL,
        description="Convert gallons to liters.",
        input_schema={"type": "object", "properties": {"gallons": {"type": "number"}}},
        method="GET",
        path="/convert",
        base_url="http://127.0.0.1:9",
        params=[Param(name="gallons", location="query")],
    )


def _trial(query: str, gallons: float, slot: int) -> TrialRecord:
    observation = json.dumps({"liters": round(gallons * 3.785, 2)})
    return TrialRecord(
        tool=TOOL,
        episode=0,
        slot=slot,
        spec_hash="spec",
        query=query,
        turns=[
            Turn(raw="...", kind="call", tool=TOOL, arguments={"gallons": gallons}, observation=observation),
            Turn(raw="Final Answer: done", kind="final"),
        ],
        final_answer=f"That is {round(gallons * 3.785, 2)} liters.",
        reflection="yes",
        model="explorer",
    )


@pytest.mark.anyio
async def test_exploiter_refuses_tool_naming_and_repeated_requests(data_dir: Path) -> None:
    db = open_db(data_dir / "lancedb")
    trials, exemplars = TrialStore(db), ExemplarStore(db)
    settings = MemorySettings(paraphrases_per_exemplar=3)
    exploiter = Exploiter(trials, exemplars, DescriptionStore(db), settings)
    tools = {TOOL: _tool()}
    good = _trial("How many liters are 12 gallons?", 12, 0)
    naming = _trial(f"Convert 3 gallons with the {TOOL} tool", 3, 1)
    repeat = _trial("how many liters are 12 gallons", 12, 2)
    for trial in (good, naming, repeat):
        assert trials.record(trial)
    paraphrases = [
        "What is 12 gallons in liters?",
        "How many liters are 12 gallons?",  # the original again: dropped
        f"Use {TOOL} on 12 gallons",  # names the tool: dropped
    ]
    model = judging_model(paraphrases=lambda query: paraphrases, reason="fine")
    report = ExploitReport()
    for trial in (good, naming, repeat):  # in order: the repeat comes after the original is stored
        await exploiter.exploit_trial(model, trial, tools, report)
    assert report.accepted == 3 and report.exemplars == 1 and report.refused == 2
    stored = {ex.query for ex in exemplars.find(tool=TOOL)}
    assert stored == {"How many liters are 12 gallons?", "What is 12 gallons in liters?"}
    verdicts = {t.id: trials.get(t.id).verdict for t in (naming, repeat)}
    assert "names the tool" in verdicts[naming.id]["refused"]
    assert "repeats" in verdicts[repeat.id]["refused"]


@pytest.mark.anyio
async def test_exploiter_refuses_a_request_copying_a_parameter_description(data_dir: Path) -> None:
    db = open_db(data_dir / "lancedb")
    trials, exemplars = TrialStore(db), ExemplarStore(db)
    exploiter = Exploiter(trials, exemplars, DescriptionStore(db), MemorySettings(hindsight="off"))
    tool = _tool()
    tool.input_schema["properties"]["gallons"]["description"] = (
        "US liquid gallons to convert, as a decimal number"
    )
    copied = _trial("Convert 4 US liquid gallons to convert, as a decimal number", 4, 0)
    assert trials.record(copied)
    report = ExploitReport()
    await exploiter.exploit_trial(judging_model(reason="fine"), copied, {TOOL: tool}, report)
    assert report.accepted == 1 and report.exemplars == 0
    assert "copies the tool's description" in trials.get(copied.id).verdict["refused"]
