"""The deterministic checks after the judge (``memory/checks.py``): failed results, invented numbers and
ignored quantities caught on examples from real runs, no false alarm on good trials, and the Exploiter
refusing such a trial (with real LanceDB) unless ``memory.judge_checks`` is empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ste_mcp.memory.checks import (
    added_ask,
    check_call,
    check_trial,
    float_noise,
    placeholder_arguments,
    soft_failure,
    spelled_out,
    ungrounded_answer,
    unstated_numbers,
    unused_request_numbers,
)
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


def test_an_invented_date_is_named_though_its_numbers_are_in_the_result() -> None:
    # 2026, 12 and 12 are all numbers of the result's "2026-12-06"; the day 2026-12-12 is in no source
    reason = ungrounded_answer(
        "The next Monday after today is 2026-12-12.",
        '"2026-12-06"',
        "Find the date of the next Monday after today.",
        {},
    )
    assert (
        reason == "the answer states 2026-12-12, found neither in the result, the request nor the arguments"
    )


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
        # a date the result, the request or a timestamp argument writes, in any form
        ("Today is 2026-12-06.", '"December 6, 2026"', "What is today's date?", {}),
        ("It was 2023-06-15.", '"ok"', "What happened on June 15, 2023?", {}),
        ("That is 2023-11-14.", '{"zone": "UTC"}', "Time zone then?", {"timestamp": 1699999999}),
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
        # a number is found whole in an argument's text, not as the last digit of "2023-10-15" (session 40's run)
        (
            "Add 5 days to 2023-10-15 and also subtract 2 days from 2023-10-15.",
            {"date": "2023-10-15", "days": -2},
            "the call ignores 5",
        ),
        (
            "Add 5 days to the date one year from today",
            {"date": "2023-04-01", "days": 55},
            "the call ignores 5",
        ),
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
        ("What is 10 days after 2023-10-15?", {"date": "2023-10-15", "days": 10}),
        ("A token that expires in 15 minutes", {"expires_in": 900}),  # in seconds
        ("Scale 2.50 by -3", {"factor": 2.5, "by": -3}),
        ("How many COVID-19 cases in France, per the MP3 archive?", {"country": "France"}),  # names
        ("Find the latitude and longitude of Paris", {}),
    ],
)
def test_used_request_numbers_pass(query: str, arguments: dict) -> None:
    assert unused_request_numbers(query, arguments) is None


# ---- placeholder_arguments -----------------------------------------------------------------------
# the shapes of STE-50's RapidAPI schemas: a required parameter's "default" is an example value
TZ = {
    "type": "object",
    "properties": {
        "lat": {"type": "number", "default": 37.4666405},
        "lng": {"type": "number", "default": -85.89465},
        "timestamp": {"type": "integer", "default": 1589932800},  # optional: a real default
    },
    "required": ["lat", "lng"],
}
MXN = {
    "type": "object",
    "properties": {
        "moneda": {"type": "string", "default": "DOLARES"},
        "monto": {"type": "string", "default": "1000"},
    },
    "required": ["moneda", "monto"],
}
PLACE = {"type": "object", "properties": {"name": {"type": "string", "example": "London"}}}
FACT = {
    "type": "object",
    "properties": {"number": {"type": "string", "default": "1729"}},
    "required": ["number"],
}
BART = {"type": "object", "properties": {"cmd": {"type": "string", "default": "bsa"}}, "required": ["cmd"]}


@pytest.mark.parametrize(
    ("query", "arguments", "schema", "reason"),
    [
        (
            "Find the time zone for a specific location, including any special offset.",
            {"lat": 37.4666405, "lng": -85.89465, "timestamp": 1589932800},
            TZ,
            "the call sends lat = 37.4666405, lng = -85.89465: the spec's example, which the request does "
            "not state",
        ),
        (
            "What is the time zone at latitude 37.4666405 and longitude -85.89465?",
            {"lat": 37.4666405, "lng": -85.89465},
            TZ,
            "the request quotes the spec's example lat = 37.4666405, lng = -85.89465: no user's own value",
        ),
        (
            "Write 2,500 Mexican pesos in Spanish words.",
            {"moneda": "DOLARES", "monto": "2500"},
            MXN,
            'the call sends moneda = "DOLARES": the spec\'s example, which the request does not state',
        ),
        (
            "Where on the map is a big city?",
            {"name": "London"},
            PLACE,
            'the call sends name = "London": the spec\'s example',
        ),
        ("Tell me something fun about a number", {"number": "1729"}, FACT, 'the call sends number = "1729"'),
    ],
)
def test_the_specs_example_values_are_named(query: str, arguments: dict, schema: dict, reason: str) -> None:
    found = placeholder_arguments(query, arguments, schema)
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize(
    ("query", "arguments", "schema"),
    [
        ("Which time zone is New York in?", {"lat": 40.7128, "lng": -74.006, "timestamp": 1589932800}, TZ),
        ("Write 1000 dollars in Spanish words.", {"moneda": "DOLARES", "monto": "1000"}, MXN),  # a spelling
        ("Escribe 300 dólares con letras.", {"moneda": "DOLARES", "monto": "300"}, MXN),  # accents
        ("Spell out 1,000 pesos", {"moneda": "PESOS", "monto": "1000"}, MXN),  # a round number is no example
        ("Coordinates of London, UK", {"name": "London"}, PLACE),  # a user may ask about the example
        ("A fun fact about the number 1729?", {"number": "1729"}, FACT),
        ("Any BART service advisories right now?", {"cmd": "bsa"}, BART),  # a code, not a value
        ("Which time zone is Paris in?", {"lat": 48.85, "lng": 2.35}, None),  # no schema: nothing to check
    ],
)
def test_values_of_the_request_pass(query: str, arguments: dict, schema: dict | None) -> None:
    assert placeholder_arguments(query, arguments, schema) is None


def test_check_call_reads_only_the_request_and_the_call() -> None:
    copied = {"lat": 37.4666405, "lng": -85.89465}
    assert check_call("The time zone of some place", copied, TZ).startswith("placeholder_arguments: ")
    assert check_call("The time zone of some place", copied, TZ, ["soft_failure", "grounded_answer"]) is None
    assert check_call("Time zone of 2 places", copied, TZ) == (
        "request_numbers: the call ignores 2 stated in the request"
    )


# ---- stated_numbers ------------------------------------------------------------------------------
ADD_DATE = {
    "type": "object",
    "properties": {"date": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["date", "days"],
}
LENGTH = {"type": "object", "properties": {"length": {"type": "string"}}, "required": ["length"]}
PAGED = {
    "type": "object",
    "properties": {
        "make": {"type": "string"},
        "page": {"type": "integer"},
        "limit": {"type": "integer"},
        "year": {"type": "integer", "enum": [2022, 2023, 2024]},
    },
    "required": ["make", "page", "year"],
}


@pytest.mark.parametrize(
    ("query", "arguments", "schema", "sent"),
    [  # approved in the 1.5B teacher's runs before this check
        (
            "Please convert '2023-10-15' to its equivalent in the format 'dd/mm/yyyy'.",
            {"date": "2023-10-15", "days": 3},
            ADD_DATE,
            "days = 3",
        ),
        ("How many sides does a cube have?", {"number": "6"}, FACT, 'number = "6"'),
        (
            "What is the smallest prime number that can be written as the sum of five consecutive whole numbers?",
            {"number": "2"},
            FACT,
            'number = "2"',
        ),
        ("Extend the date to December 12, 2026", {"date": "2026-12-05", "days": 7}, ADD_DATE, "days = 7"),
        ("Generate a strong password for my bank account", {"length": "16"}, LENGTH, 'length = "16"'),
        (  # an optional parameter sent at the spec's default (session 42)
            "Generate a strong password that includes at least one uppercase letter, one digit and one symbol.",
            {"length": "50"},
            {"type": "object", "properties": {"length": {"type": "string", "default": "50"}}},
            'length = "50"',
        ),
        ("What date is a week after 2024-03-01?", {"date": "2024-03-01", "days": 10}, ADD_DATE, "days = 10"),
    ],
)
def test_a_number_the_request_does_not_give_is_named(
    query: str, arguments: dict, schema: dict, sent: str
) -> None:
    assert (
        unstated_numbers(query, arguments, schema)
        == f"the call sends {sent}, which the request does not give"
    )
    assert check_call(query, arguments, schema).startswith("stated_numbers: ")


@pytest.mark.parametrize(
    ("query", "arguments", "schema"),
    [
        ("Add 10 days to March 15, 2023", {"date": "2023-03-15", "days": 10}, ADD_DATE),
        ("What was the date 10 days before 2023-03-15?", {"date": "2023-03-15", "days": -10}, ADD_DATE),
        ("Add seven days to December 5, 2026", {"date": "2026-12-05", "days": 7}, ADD_DATE),
        ("What is the date two weeks after 2024-01-01?", {"date": "2024-01-01", "days": 14}, ADD_DATE),
        ("Twenty-five days after 2024-01-01, please", {"date": "2024-01-01", "days": 25}, ADD_DATE),
        ("The day after tomorrow, counted from 2024-01-01", {"date": "2024-01-01", "days": 2}, ADD_DATE),
        ("One fortnight from 2024-01-01", {"date": "2024-01-01", "days": 14}, ADD_DATE),
        ("A year after 2024-01-01", {"date": "2024-01-01", "days": 366}, ADD_DATE),  # a calendar year
        ("Add 3 months to 2021-01-01", {"date": "2021-01-01", "days": 90}, ADD_DATE),
        ("What happened next week?", {"date": "2021-01-01", "days": 7}, ADD_DATE),
        ("Generate a password of 2,048 characters", {"length": "2048"}, LENGTH),
        ("A fact about a dozen", {"number": "12"}, FACT),
        ("Cafés within 2 km", {"radius": 2000}, {"properties": {"radius": {}}, "required": ["radius"]}),
        ("Write two hundred fifty pesos in words", {"moneda": "PESOS", "monto": "250"}, None),  # no schema
        ("Add two hundred days to 2024-01-01", {"date": "2024-01-01", "days": 200}, ADD_DATE),
        (
            "Tesla models, please",
            {"make": "Tesla", "page": 1, "limit": 50, "year": 2024},
            PAGED,
        ),  # 1, paging, enum
        ("A password", {"length": 12.5}, LENGTH),  # a fraction: a coordinate, a conversion
        ("The time zone at 2 pm", {"lat": 40.7128, "lng": -74.006, "timestamp": 1700000000}, TZ),
        ("Any fact", {"number": "7"}, None),  # no schema: nothing is required
    ],
)
def test_numbers_the_request_gives_pass(query: str, arguments: dict, schema: dict | None) -> None:
    assert unstated_numbers(query, arguments, schema) is None


def test_number_words_are_read_as_digits() -> None:
    assert spelled_out("in two weeks, a dozen times, twenty-one days") == "in 2 weeks, 1 12 times, 21 days"
    assert spelled_out("tomorrow and the day after tomorrow") == "1 day and the 2 days"
    assert spelled_out("next month") == "1 month"
    assert spelled_out("two hundred days, a thousand pesos, 3 million") == "200 days, 1000 pesos, 3000000"
    assert spelled_out("Someone said hi") == "Someone said hi"  # no number word inside a word
    assert spelled_out("one a day, thirty an hour, forty-first") == "1 1 day, 30 1 hour, 41"


# ---- check_trial and the Exploiter ---------------------------------------------------------------
TOOL = Tool(
    name="wolfram_query",
    description="Computes answers to math questions.",
    input_schema={"type": "object", "properties": {"input": {"type": "string"}}},
    method="GET",
    path="/query",
    base_url="http://127.0.0.1:9",
)


def _trial(
    observation: str,
    answer: str,
    *,
    tool: Tool = TOOL,
    query: str = "What is the volume of a sphere with radius 5?",
    arguments: dict | None = None,
) -> TrialRecord:
    """A trial of one successful call of ``tool`` (default arguments: the query as ``input``) and its answer."""
    arguments = {"input": query} if arguments is None else arguments
    call = Turn(raw="...", kind="call", tool=tool.name, arguments=arguments, observation=observation)
    return TrialRecord(
        tool=tool.name,
        episode=0,
        slot=len(query),
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


SPELL = Tool(
    name="amount_in_words",
    description="Writes an amount of money in Spanish words.",
    input_schema=MXN,
    method="GET",
    path="/words",
    base_url="http://127.0.0.1:9",
)


def _spell_trial(query: str, arguments: dict) -> TrialRecord:
    answer = "quinientos dolares"
    return _trial('{"words": "quinientos dolares"}', answer, tool=SPELL, query=query, arguments=arguments)


@pytest.mark.anyio
async def test_the_specs_example_keeps_a_trial_and_a_paraphrase_out(data_dir: Path) -> None:
    """The judge accepts a call that copied the spec's example currency; it is refused. A kept exemplar's
    paraphrases that drop the currency the call sends, or state another amount, are left out."""
    db = open_db(data_dir / "lancedb")
    trials, exemplars = TrialStore(db), ExemplarStore(db)
    exploiter = Exploiter(trials, exemplars, DescriptionStore(db), MemorySettings(paraphrases_per_exemplar=3))
    copied = _spell_trial(
        "Write 2,500 Mexican pesos in Spanish words.", {"moneda": "DOLARES", "monto": "2500"}
    )
    kept = _spell_trial("Write 500 dollars in Spanish words.", {"moneda": "DOLARES", "monto": "500"})
    judge = judging_model(
        paraphrases=lambda q: [
            "How do I write 500 dollars out in Spanish?",  # keeps both values
            "Spell 500 in Spanish words.",  # drops the currency: the call's DOLARES is the spec's example
            "Write 600 dollars in Spanish words.",  # states another amount
            "Write this many dollars in Spanish words.",  # drops the amount the call sends
        ]
    )
    report = ExploitReport()
    for trial in (copied, kept):
        assert trials.record(trial)
        await exploiter.exploit_trial(judge, trial, {SPELL.name: SPELL}, report)

    assert (report.accepted, report.refused, report.exemplars, report.paraphrases) == (2, 1, 1, 1)
    assert trials.get(copied.id).verdict["refused"] == (
        'placeholder_arguments: the call sends moneda = "DOLARES": the spec\'s example, which the request '
        "does not state (the judge accepted it; memory.judge_checks)"
    )
    assert sorted(e.query for e in exemplars.find(SPELL.name)) == [
        "How do I write 500 dollars out in Spanish?",
        "Write 500 dollars in Spanish words.",
    ]


@pytest.mark.parametrize(
    ("paraphrase", "dropped"),
    [
        ("Create a strong password with letters and digits, my visa starts 2024-03-01.", {"length"}),
        ("I need a random 128-character password; visa from 2024-03-01.", set()),
        ("A password for my visa application, please.", {"length", "date"}),
        ("Make a 128 character password", {"date"}),
    ],
)
def test_a_paraphrase_keeps_the_values_its_original_states(paraphrase: str, dropped: set[str]) -> None:
    """Numbers and text the original states and the call sends; booleans and short text are not read."""
    from ste_mcp.memory.checks import dropped_values

    original = "Generate a 128-character password, and my visa starts 2024-03-01."
    arguments = {"length": "128", "date": "2024-03-01", "strong": True, "kind": "pw"}
    reason = dropped_values(original, paraphrase, arguments)
    if not dropped:
        assert reason is None
        return
    assert reason is not None and reason.endswith("which the original request states")
    assert {key for key in arguments if f"{key} = " in reason} == dropped


def test_one_digit_numbers_may_be_written_as_words_in_a_paraphrase() -> None:
    from ste_mcp.memory.checks import dropped_values

    arguments = {"date": "2024-03-01", "days": 7}
    assert dropped_values("Add 7 days to 2024-03-01", "Add one week to 2024-03-01", arguments) is None
    assert dropped_values("Add 17 days to 2024-03-01", "Add some days to 2024-03-01", {"days": 17}) == (
        "drops days = 17, which the original request states"
    )


@pytest.mark.parametrize(
    ("original", "paraphrase", "dropped"),
    [
        (
            "Add 7 days to January 15, 2023.",
            "My trip starts on 15 Jan 2023 and lasts 7 days: when do I fly home?",
            False,
        ),
        ("Add 7 days to 2023-01-15.", "What is the date a week after the 15th of January 2023?", False),
        (
            "Add 7 days to January 15, 2023.",
            "I am planning a holiday in February: which date should I book?",
            True,
        ),
        ("Add 7 days to January 15, 2023.", "Add 7 days to January 15, 2024.", True),
        ("Add 7 days to 15/01/2023.", "Add a week to 1/15/2023.", False),
        ("Add 7 days to today.", "Add a week to today's date.", False),  # the day is not stated: not read
    ],
)
def test_a_paraphrase_keeps_the_day_however_it_is_written(
    original: str, paraphrase: str, dropped: bool
) -> None:
    """A date argument is read as a day: "January 15, 2023", "15 Jan 2023" and 2023-01-15 are one day, and
    a paraphrase that no longer states it (or states another year) drops it."""
    from ste_mcp.memory.checks import dropped_values

    reason = dropped_values(original, paraphrase, {"date": "2023-01-15", "days": 7})
    assert (reason == 'drops date = "2023-01-15", which the original request states') is dropped
    assert dropped or reason is None


@pytest.mark.parametrize(
    ("query", "days", "reason"),
    [
        ("Add 10 days to June 10, 2023", -10, "the request counts 10 forward, the call sends days = -10"),
        (
            "What is the date 10 days after 2023-06-10?",
            -10,
            "the request counts 10 forward, the call sends days = -10",
        ),
        (
            "Which day is it in 10 days from 2023-06-10?",
            -10,
            "the request counts 10 forward, the call sends days = -10",
        ),
        (
            "What was the date 10 days before 2023-06-10?",
            10,
            "the request counts 10 back, the call sends days = 10",
        ),
        ("Subtract 10 days from 2023-06-10", 10, "the request counts 10 back, the call sends days = 10"),
        ("Add 10 days to June 10, 2023", 10, None),
        ("What was the date 10 days before 2023-06-10?", -10, None),
        ("Extend June 10, 2023 by 10 days", -10, None),  # no direction word this reader knows: not read
        ("10 days after 2023-06-10, then 10 days before that", 10, None),  # both ways: not read
    ],
)
def test_request_numbers_refuses_a_span_of_time_sent_the_other_way(
    query: str, days: int, reason: str | None
) -> None:
    assert_request_numbers(query, {"date": "2023-06-10", "days": days}, reason)


def assert_request_numbers(query: str, arguments: dict, reason: str | None) -> None:
    """``request_numbers`` alone refuses the call with ``reason`` (None: passes it)."""
    got = check_call(query, arguments, None, ["request_numbers"])
    assert got == (f"request_numbers: {reason}" if reason else None)


@pytest.mark.parametrize(
    ("query", "arguments", "reason"),
    [
        # the ablation's full run (session 33): the judge and every other check let it through
        (
            "I want to know what date will be in 30 days from June 15, 2023?",
            {"date": "2023-10-15", "days": 30},
            'the request writes the day to count from, the call sends date = "2023-10-15" (2023-10-15)',
        ),
        (
            "Add two weeks to June 15, 2023",
            {"date": "2023-10-15", "days": 14},
            'the request writes the day to count from, the call sends date = "2023-10-15" (2023-10-15)',
        ),
        (
            "Add 10 days to 10/03/2023",  # 10 March or 3 October: neither is the day sent
            {"date": "2023-03-20", "days": 10},
            'the request writes the day to count from, the call sends date = "2023-03-20" (2023-03-20)',
        ),
        (
            "I want to know what date will be in 30 days from June 15, 2023?",
            {"date": "2023-06-15", "days": 30},
            None,
        ),
        ("Add 10 days to 10/03/2023", {"date": "2023-03-10", "days": 10}, None),  # either reading
        ("Add 10 days to 10/03/2023", {"date": "2023-10-03", "days": 10}, None),
        ("30 days after the 15th of June", {"date": "2026-06-15", "days": 30}, None),  # no year: any year
        ("What is the date 30 days from today?", {"date": "2026-12-06", "days": 30}, None),  # no day written
    ],
)
def test_request_numbers_refuses_a_span_counted_from_another_day(
    query: str, arguments: dict, reason: str | None
) -> None:
    assert_request_numbers(query, arguments, reason)


# ---- request_units -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "arguments", "reason"),
    [
        (
            "Add 12 hours to 2024-03-01",
            {"date": "2024-03-01", "days": 12},
            "12 hours, the call sends days = 12",
        ),
        (
            "What date is 5 years after 2020-01-01?",
            {"date": "2020-01-01", "days": 5},
            "5 years, the call sends days",
        ),
        ("Wait 5 seconds at most", {"timeoutMs": 5}, "5 seconds, the call sends timeoutMs = 5"),
        ("Shops within a 3-mile radius", {"radius_km": "3"}, '3 mile, the call sends radius_km = "3"'),
        # a length counts characters: 128 bits are not 128 characters (run 6 and run 8's teacher)
        ("Create a secure 128-bit password", {"length": "128"}, '128 bit, the call sends length = "128"'),
        ("A password of 16 bytes", {"len": 16}, "16 bytes, the call sends len = 16"),
    ],
)
def test_a_quantity_sent_in_another_unit_is_named(query: str, arguments: dict, reason: str) -> None:
    found = check_call(query, arguments, None, ["request_units"])
    assert found is not None and found.startswith("request_units: the request states ") and reason in found


@pytest.mark.parametrize(
    ("query", "arguments"),
    [
        ("Add 12 days to 2024-03-01", {"date": "2024-03-01", "days": 12}),
        ("Add 36 hours to 2024-03-01", {"date": "2024-03-01", "days": 1.5}),  # converted
        ("A token that expires in 15 minutes", {"expiry_seconds": 900}),
        ("Generate a 24-character password", {"length": "24"}),  # a length counts characters
        ("Generate a 24 chars password", {"min_length": 24}),
        ("A 64-bit key, please", {"count": 64}),  # the name gives no unit
        ("Add 2 weeks to 2024-03-01", {"date": "2024-03-01", "days": 14}),
        ("Shops within 3 km and open 24 hours", {"radius_km": 3}),  # 24 hours: no parameter of that kind
    ],
)
def test_quantities_in_their_own_units_pass(query: str, arguments: dict) -> None:
    assert check_call(query, arguments, None, ["request_units"]) is None


@pytest.mark.parametrize(
    ("query", "arguments", "reason"),
    [
        ("Add 3 weeks to 2024-01-01", {"date": "2024-01-01", "days": 21}, None),  # converted
        ("Add 90 minutes to the timer", {"hours": 1.5}, None),
        ("Add 2 months to 2021-01-01", {"date": "2021-01-01", "days": 61}, None),  # months vary
        ("Run within 100 feet", {"radius_meters": 30.5}, None),  # rounded
        (
            "Add 3 weeks to 2024-01-01",
            {"date": "2024-01-01", "days": 20},
            "request_numbers: the call ignores 3",
        ),
        (
            "Add 3 weeks to 2024-01-01",
            {"date": "2024-01-01", "days": 3},
            "request_units: the request states 3 weeks",
        ),
    ],
)
def test_a_quantity_converted_to_the_parameters_unit_is_used(query: str, arguments: dict, reason) -> None:
    found = check_call(query, arguments, None)
    assert found == reason if reason is None else found.startswith(reason)


# ---- added_asks ----------------------------------------------------------------------------------
# requests of the 1.5B teacher's runs (bench/learned/) that its judge passed, hand-labelled bad
@pytest.mark.parametrize(
    ("query", "arguments", "clause"),
    [
        (
            "Add 10 days to July 20, 2022, but only for weekdays.",
            {"date": "2022-07-20", "days": 10},
            "but only",
        ),
        (
            "Convert the number 12345678901234567890 to words and include the number of digits. Also, provide "
            "the number in binary format.",
            {"text": "12345678901234567890"},
            "Also, provide",
        ),
        (
            "Find the mathematical property of the number 100, specifically about its prime factorization.",
            {"number": "100", "json": "true"},
            "specifically about",
        ),
        (
            "Find the names of attractions at Central Park, sorted by the number of reviews.",
            {"name": "Central Park"},
            "sorted by",
        ),
        (
            "Convertir el monto de 1000 pesos mexicanos en letras en español y también en inglés",
            {"moneda": "pesos", "monto": "1000"},
            "también en",
        ),
        ("I need a list of car makes, but only those based in Europe.", {}, "but only"),
    ],
)
def test_a_request_that_asks_for_more_than_its_call_is_named(
    query: str, arguments: dict, clause: str
) -> None:
    found = check_call(query, arguments, None, ["added_asks"])
    assert (
        found is not None and found.startswith(f'added_asks: "{clause}') and "none of its arguments" in found
    )


@pytest.mark.parametrize(
    ("query", "arguments"),
    [
        ("Add 10 days to July 20, 2022.", {"date": "2022-07-20", "days": 10}),
        ("Convert 1000 pesos into Spanish words", {"moneda": "pesos", "monto": "1000"}),
        # the part after the word is what the call sends
        ("Make a password of 16 characters, but only 12 if that is too long", {"length": "12"}),
        ("Weather for the coast, but only in Brest", {"city": "Brest"}),
        ("Give me the makes, then the models of BMW", {"make": "BMW"}),
        ("Make me a password. Only letters are fine.", {"length": "10", "charset": "letters"}),
        ("List the cities of France only.", {"country": "FR"}),  # the last word narrows what came before
        # words that contain a marker are not one: "butter", "thence", "alsoran", "exceptional"
        ("How many calories in 100 g of butter?", {"food": "butter", "grams": 100}),
        ("An exceptional wine under 20 dollars", {"max_price": 20}),
    ],
)
def test_a_request_its_call_serves_passes_added_asks(query: str, arguments: dict) -> None:
    assert added_ask(query, arguments) is None


# ---- float_noise ---------------------------------------------------------------------------------
# the 1.5B teacher sent "2500.00000000000001" for "2500 pesos" (bench/learned/), and the 0.5B student shown
# that call sent "610.00000000000001" for 610
@pytest.mark.parametrize(
    ("query", "arguments", "noise"),
    [
        (
            "Convertir 2500 pesos MXN a letras en inglés",
            {"moneda": "pesos", "monto": "2500.00000000000001"},
            "2500.00000000000001",
        ),
        ("Add 0.1 and 0.2", {"a": "0.30000000000000004"}, "0.30000000000000004"),
        ("Add 0.1 and 0.2", {"a": 0.1 + 0.2}, "0.30000000000000004"),  # a JSON number keeps it too
        ("Convert 20 dollars", {"amount": {"value": "19.999999999999996"}}, "19.999999999999996"),
        ("Move back 3 units", {"offset": "-2.9999999999999996"}, "2.9999999999999996"),
    ],
)
def test_a_number_with_a_floats_rounding_noise_is_refused(query: str, arguments: dict, noise: str) -> None:
    found = check_call(query, arguments, None, ["float_noise"])
    assert (
        found
        == f"float_noise: the call sends {noise}: a float's rounding noise, not a number the request writes"
    )


def test_float_noise_is_a_default_call_check() -> None:
    """On by default and among the call checks (imports, paraphrases, recheck): the teacher's exemplar,
    which every other check passed, is refused."""
    assert "float_noise" in MemorySettings().judge_checks
    found = check_call(
        "Convertir 2500 pesos MXN a letras en inglés",
        {"moneda": "pesos", "monto": "2500.00000000000001"},
        None,
    )
    assert found is not None and found.startswith("float_noise: the call sends 2500.00000000000001")


@pytest.mark.parametrize(
    ("query", "arguments"),
    [
        ("Convertir 2500 pesos a letras", {"moneda": "pesos", "monto": "2500"}),
        ("The time zone at 37.4666405, -122.1433", {"lat": "37.4666405", "lng": "-122.1433"}),
        ("Pay 100.00 euros", {"amount": "100.000000"}),  # trailing zeros are not noise
        ("Round 1.0000001 to six places", {"x": "1.0000001"}),  # the request writes it so
        ("Timestamp 1700000000", {"ts": "1700000000"}),
    ],
)
def test_plain_numbers_pass_float_noise(query: str, arguments: dict) -> None:
    assert float_noise(query, arguments) is None


@pytest.mark.anyio
async def test_the_exploiter_refuses_float_noise_without_a_repair(data_dir: Path) -> None:
    """A call with a float's noise that the judge accepts is refused, on real LanceDB; hindsight's repair
    (the default) does not restate it: the call, not the request, is what is wrong."""
    db = open_db(data_dir / "lancedb")
    trials, exemplars = TrialStore(db), ExemplarStore(db)
    settings = MemorySettings(paraphrases_per_exemplar=0)
    assert settings.hindsight == "repair"
    exploiter = Exploiter(trials, exemplars, DescriptionStore(db), settings)
    trial = _spell_trial(
        "Write 500 dollars in Spanish words.", {"moneda": "dolares", "monto": "500.00000000000001"}
    )
    assert trials.record(trial)

    report = ExploitReport()
    await exploiter.exploit_trial(judging_model(), trial, {SPELL.name: SPELL}, report)
    verdict = trials.get(trial.id).verdict
    assert (report.accepted, report.refused, report.exemplars) == (1, 1, 0) and exemplars.find() == []
    assert verdict["refused"].startswith("float_noise: the call sends 500.00000000000001")
    assert "repairs" not in verdict
