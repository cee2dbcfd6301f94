"""``result_language`` (``memory/language.py``): the language a request asks for, the language a result is
written in, and the Exploiter moving an exemplar to the sibling tool whose real result answers in the
asked language (the toolbox's Spanish- and English-words endpoints on 127.0.0.1, real LanceDB, a
scripted judge that accepts everything, as the packaged 1.5B did)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ste_mcp.app import App
from ste_mcp.cli import main
from ste_mcp.config import load_settings
from ste_mcp.memory.checks import check_trial, dropped_values
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore, exemplar_id
from ste_mcp.memory.exploit import Exploiter, ExploitReport
from ste_mcp.memory.language import (
    answering_sibling,
    asked_language,
    language_problem,
    result_text,
    sibling_caller,
)
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs.toolset import load_spec, toolbox_spec_path
from ste_mcp.upstream.tools import Tool
from tests.fixtures.exemplars import record_trial, stores
from tests.fixtures.models import judging_model
from tests.test_exemplars_transfer import exemplar

SPANISH = "NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_Espanol"
ENGLISH = "NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_Ingles"


@pytest.mark.parametrize(
    ("request_text", "language"),
    [
        ("Write 830 dollars out as words in English.", "ENGLISH"),
        ("Convert the number 1234567890 into Spanish words.", "SPANISH"),
        ("Convertir 1000 pesos mexicanos a letras en español", "SPANISH"),
        ("¿Cuánto es 1000 pesos en palabra española?", "SPANISH"),
        ("Convertir 1500 dólares en texto español", "SPANISH"),  # session 36: kept from the English endpoint
        ("Convertir 1000 pesos mexicanos en texto inglés", "ENGLISH"),
        ("Translate 'good morning' to French", "FRENCH"),
        ("Say it auf Deutsch, bitte", "GERMAN"),
        ("Convert 1000 pesos to letters in Spanish and give the currency in English.", None),  # two
        ("Find Spanish restaurants in Madrid", None),  # a topic, not the answer's language
        ("How do you say 'hello' in Spain?", None),  # a country
        ("Spell out 1000 pesos", None),
    ],
)
def test_the_language_a_request_asks_for(request_text: str, language: str | None) -> None:
    assert asked_language(request_text) == language


def test_a_results_words_are_its_string_values() -> None:
    observation = json.dumps({"value": "MIL PESOS 00/100 M.N.", "currency": {"code": "MXN", "n": 1000}})
    assert result_text(observation) == "mil pesos mxn"  # not the keys; no numbers, no single letters
    assert result_text("plain text, 42 times") == "plain text times"


@pytest.mark.parametrize(
    ("request_text", "observation", "problem"),
    [
        (
            "Put 4500 pesos into English words for the receipt.",
            '{"value": "CUATRO MIL QUINIENTOS PESOS 00/100 M.N."}',
            "the request asks for English, the result is in Spanish",
        ),
        (
            "Convert the number 1234567890 into Spanish words.",
            '{"value": "ONE BILLION TWO HUNDRED THIRTY FOUR MILLION FIVE HUNDRED SIXTY SEVEN THOUSAND EIGHT '
            'HUNDRED NINETY PESOS 00/100 M.N."}',
            "the request asks for Spanish, the result is in English",
        ),
        ("Put 4500 pesos into English words.", '{"value": "FOUR THOUSAND FIVE HUNDRED PESOS"}', None),
        ("Say 1000 euros in English", '{"value": "MIL"}', None),  # too short to tell
        # number words say the language where a detector cannot (the 1.5B teacher's kept exemplars)
        (
            "Convert the number '1000000000000000000' into words in Spanish.",
            '{"text": "One quintillion"}',
            "the request asks for Spanish, the result is in English",
        ),
        (
            "Convert the amount 1000 Euros to words in English.",
            '{"value": "MIL EUROS 00/100"}',
            "the request asks for English, the result is in Spanish",
        ),
        ("Convert 25 pesos to Spanish words", '{"value": "VEINTICINCO PESOS 00/100 M.N."}', None),
        ("Tres leches recipe in English", '{"value": "Tres leches cake with milk"}', None),  # a name
        (
            "List the car makes in English",
            '["Toyota", "Honda", "Ford", "Volkswagen"]',
            None,
        ),  # names: not clear
        ("Spell out 4500 pesos", '{"value": "CUATRO MIL QUINIENTOS PESOS"}', None),  # no language asked
    ],
)
def test_a_result_in_another_language(request_text: str, observation: str, problem: str | None) -> None:
    assert language_problem(request_text, observation) == problem


# ---- the Exploiter, with the toolbox's two endpoints ---------------------------------------------
@pytest.fixture
def words_tools(toolbox) -> dict[str, Tool]:
    tools = load_spec(toolbox_spec_path(), variables={"TOOLBOX_URL": toolbox.url})
    return {t.name: t for t in tools}


PESOS_4500 = {"moneda": "PESOS", "monto": "4500"}


async def _judge(data_dir: Path, tools: dict[str, Tool], query: str, allowed=(SPANISH, ENGLISH), **settings):
    """A trial of the Spanish-words endpoint for 4500 pesos asking ``query``, judged (accepted) by an
    Exploiter whose siblings are the toolbox's tools of ``allowed``; returns the stores, the report, the
    sibling calls made and the trial."""
    trials, exemplars, exploiter = stores(data_dir, MemorySettings(paraphrases_per_exemplar=0, **settings))
    calls: list[str] = []
    async with UpstreamClient() as client:

        async def call(tool: Tool, arguments: dict) -> object:
            calls.append(tool.name)
            return await client.call(tool, arguments, purpose="explore")

        exploiter.siblings = sibling_caller(lambda: tools.values(), call, lambda t: t.name in allowed)
        trial = await record_trial(trials, client, tools[SPANISH], PESOS_4500, query)
        report = ExploitReport()
        await exploiter.exploit_trial(judging_model(), trial, tools, report)
    return trials, exemplars, report, calls, trial


@pytest.mark.anyio
async def test_an_exemplar_moves_to_the_sibling_that_answers_in_the_asked_language(data_dir, words_tools):
    # the teacher's mistake: English asked of the Spanish endpoint
    trials, exemplars, report, calls, trial = await _judge(
        data_dir, words_tools, "Put 4500 pesos into English words for the receipt."
    )
    assert "CUATRO MIL" in trial.last_call.observation
    assert calls == [ENGLISH]  # the one tool with the same parameters
    assert (report.accepted, report.exemplars, report.refused) == (1, 1, 0)
    [moved] = exemplars.find()
    assert moved.tool == ENGLISH and moved.id == exemplar_id(trial.id)
    assert moved.arguments == PESOS_4500
    # the English result's typed summary ("FOUR THOUSAND FIVE HUNDRED PESOS 00/100 M.N."), not the Spanish one's (39)
    assert moved.observation == '{"value":"string of 44 characters"}'
    assert moved.final_answer == ""  # written from the Spanish result
    assert moved.provenance.trial_ids == [trial.id] and moved.provenance.verdict["moved_from"] == SPANISH
    assert "moved from" in moved.status_reason and moved.status == "approved"
    verdict = trials.get(trial.id).verdict
    assert verdict["moved_to"] == ENGLISH and verdict["exemplar"] == moved.id
    assert trials.get(trial.id).tool == SPANISH  # the trial itself stays what was explored


@pytest.mark.anyio
async def test_a_request_in_the_results_language_calls_no_sibling(data_dir, words_tools):
    _, exemplars, _, calls, _ = await _judge(data_dir, words_tools, "Escribe 4500 pesos en español")
    assert calls == [] and [e.tool for e in exemplars.find()] == [SPANISH]


@pytest.mark.anyio
async def test_without_a_sibling_that_answers_a_clear_mismatch_is_refused(data_dir, words_tools):
    trials, exemplars, report, calls, trial = await _judge(
        data_dir, words_tools, "Put 4500 pesos into English words for the receipt.", allowed=()
    )
    assert calls == []
    assert (report.exemplars, report.refused) == (0, 1) and exemplars.find() == []
    assert (
        trials.get(trial.id)
        .verdict["refused"]
        .startswith("result_language: the request asks for English, the result is in Spanish")
    )
    assert check_trial(trial, ["result_language"]) is not None
    assert check_trial(trial, ["soft_failure"]) is None


@pytest.mark.anyio
async def test_the_check_turned_off_keeps_the_exemplar_where_it_was(data_dir, words_tools):
    _, exemplars, _, calls, _ = await _judge(
        data_dir, words_tools, "Put 4500 pesos into English words for the receipt.", judge_checks=[]
    )
    assert calls == [] and [e.tool for e in exemplars.find()] == [SPANISH]


@pytest.mark.anyio
async def test_the_served_memory_calls_only_siblings_exploration_may_call(data_dir, monkeypatch):
    """The wiring ``serve`` and ``learn`` use: the app's toolset and upstream, exploration's rule and
    its rate limit per upstream."""
    from ste_mcp.explorer.budget import RateLimiter

    paced: list[str] = []
    acquire = RateLimiter.acquire

    async def record(self, base_url: str) -> None:
        paced.append(base_url)
        await acquire(self, base_url)

    monkeypatch.setattr(RateLimiter, "acquire", record)
    settings = load_settings(data_dir=str(data_dir), specs=[])
    async with App(settings, features=["ste_mcp.memory.extension:create"]) as app:
        memory = app.extension("memory")
        exploiter: Exploiter = memory.exploiter
        tools = {t.name: t for t in app.toolset.visible()}
        found = await exploiter.siblings(tools[SPANISH], {"moneda": "EUROS", "monto": "21"})
        assert [(t.name, "VEINTIUN" in text.upper()) for t, text in found] == [(ENGLISH, False)]
        assert paced == [tools[ENGLISH].base_url]  # the sibling's call waited its turn
        assert "TWENTY" in found[0][1].upper()
        assert await exploiter.siblings(tools["get_today_date"], {}) == []  # no parameters: no siblings
        # a tool exploration may not call is never called as a sibling
        app.settings.explorer.explore_tools = []
        tools[ENGLISH].explore.allowed = False
        assert await exploiter.siblings(tools[SPANISH], {"moneda": "EUROS", "monto": "21"}) == []


@pytest.mark.parametrize(
    ("paraphrase", "problem"),
    [
        ("Express 4500 pesos as English text", None),
        ("¿Cómo se escribe 4500 pesos en español?", "asks for Spanish, the original for English"),
        ("Write 4500 pesos out in words", "does not ask for English, as the original does"),
    ],
)
def test_a_paraphrase_asks_for_the_language_its_original_asks_for(
    paraphrase: str, problem: str | None
) -> None:
    arguments = {"moneda": "PESOS", "monto": "4500"}
    assert dropped_values("Put 4500 pesos into English words.", paraphrase, arguments) == problem
    assert dropped_values("Spell out 4500 pesos", "Escribe 4500 pesos en español", arguments) is None


# ---- stored exemplars: `ste-mcp exemplars recheck --call` on the offline toolbox ----------------------
def test_recheck_with_calls_moves_and_rejects_stored_exemplars(tmp_path, capsys):
    data_dir = tmp_path / "data"
    english = exemplar(
        SPANISH, "Convert 1000 euros to words in English.", {"moneda": "EUROS", "monto": "1000"}
    )
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    store.add(
        [
            english,
            exemplar(
                SPANISH,
                "Write 1000 euros out in English words",
                {"moneda": "EUROS", "monto": "1000"},
                variant_of=english.id,
            ),
            exemplar(SPANISH, "Escribe 4500 pesos en español", {"moneda": "PESOS", "monto": "4500"}),
            exemplar(
                "Numbers_Translator__Numbers_Translator",
                "Write the number 4500 in Spanish words",
                {"text": "4500"},
            ),
            exemplar(ENGLISH, "Spell out 4500 pesos", {"moneda": "PESOS", "monto": "4500"}),  # no language
        ]
    )

    def run(*extra: str) -> str:
        assert main(["exemplars", "recheck", "--call", "--data-dir", str(data_dir), *extra]) == 0
        return capsys.readouterr().out

    before = {(e.tool, e.query, e.status) for e in store.find()}
    dry = run("--dry-run")
    assert f"would move to {ENGLISH}" in dry
    assert "result_language: the request asks for Spanish, the result is in English" in dry
    assert dry.strip().endswith("3 original(s) called again: 1 would move to a sibling, 1 would be rejected")
    assert {(e.tool, e.query, e.status) for e in store.find()} == before

    assert (
        run()
        .strip()
        .endswith(
            "3 original(s) called again: 1 moved to a sibling, 1 rejected (3 rows with their paraphrases)"
        )
    )
    after = {e.query: e for e in store.find()}
    for query in ("Convert 1000 euros to words in English.", "Write 1000 euros out in English words"):
        moved = after[query]
        assert (moved.tool, moved.status, moved.final_answer) == (ENGLISH, "approved", "")
        assert moved.observation == '{"value":"ONE THOUSAND EUROS 00/100"}'  # the sibling's typed summary
        assert moved.provenance.verdict["moved_from"] == SPANISH and "moved from" in moved.status_reason
    assert after["Write the number 4500 in Spanish words"].status == "rejected"
    assert after["Escribe 4500 pesos en español"].tool == SPANISH
    assert after["Spell out 4500 pesos"].tool == ENGLISH
    # a second run: the moved one and the Spanish one are called again and pass; the rejected one is not
    assert "2 original(s) called again: 0 moved to a sibling, 0 rejected (0 rows" in run()


@pytest.mark.anyio
async def test_a_result_whose_number_words_are_another_language_is_moved_not_only_refused() -> None:
    """lingua reads "ten pesos" as Spanish, its number word is English: the check and the sibling search
    read it alike, so a Spanish sibling's result is found before the check refuses the trial."""
    request, own = "Write 10 pesos in Spanish words", '{"value": "TEN PESOS 00/100 M.N."}'
    assert language_problem(request, own) == "the request asks for Spanish, the result is in English"
    sibling = Tool(
        name="in_spanish",
        description="",
        input_schema={},
        method="GET",
        path="/",
        base_url="http://127.0.0.1:9",
    )
    spanish = '{"value": "DIEZ PESOS 00/100 M.N."}'

    async def siblings(tool: Tool, arguments: dict) -> list[tuple[Tool, str]]:
        return [(sibling, spanish)]

    found = await answering_sibling(request, own, sibling, {"monto": "10"}, siblings)
    assert found == (sibling, spanish)
