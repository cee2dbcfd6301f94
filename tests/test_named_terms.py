"""``named_terms`` (``memory/terms.py``): every name a request gives is in its call, the call's result or the
tool's own documentation. Unit cases, then the Exploiter on real LanceDB with the toolbox's car-makes and
places endpoints on 127.0.0.1 and a scripted judge that accepts everything (as the packaged 1.5B did)."""

from __future__ import annotations

import pytest

from ste_mcp.cli import main
from ste_mcp.memory.checks import ALL_CHECKS, CALL_CHECKS, check_trial
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.exploit import REPAIRABLE, ExploitReport
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.terms import added_names, documentation_of, named_terms, unnamed_terms
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs.toolset import load_spec, toolbox_spec_path
from tests.fixtures.exemplars import record_trial, stores
from tests.fixtures.models import judging_model
from tests.test_exemplars_transfer import exemplar

MAKES = "Car_database__Makes"
PLACES = "Places__Geographic_coordinates_by_placename"


@pytest.mark.parametrize(
    ("request_text", "names"),
    [
        ("I need a list of all car manufacturers that are based in Europe.", ["Europe"]),
        ("Generate a password for user 'JohnDoe', please", ["JohnDoe"]),
        ("Convertir 1500 pesos MXN a letras en Francos Ecuatorianos", ["MXN", "Francos", "Ecuatorianos"]),
        ("Where is Paris? Show me the coordinates.", ["Paris"]),  # "Show" starts a sentence
        ("What day is Monday, January 5? I'm curious", []),  # calendar words and "I" name nothing
        ("Convert 12 to words in Spanish", []),  # a language: result_language reads it
        ('Translate "buenos días" for me', ["buenos días"]),  # a quoted value, whatever its case
        ("List every car make, then the ones from the U.S.", ["U.S"]),
        ("Give me the date 10 days after 2024-07-09", []),
    ],
)
def test_the_names_a_request_gives(request_text: str, names: list[str]) -> None:
    assert named_terms(request_text) == names


@pytest.mark.parametrize(
    ("request_text", "arguments", "observation", "missing"),
    [
        # the teacher's kept bad ones: a filter, a language, a currency no call sends
        (
            "I need a list of all car manufacturers that are based in Europe.",
            {},
            '["Audi", "BMW"]',
            ["Europe"],
        ),
        ("Convert the number 12 to words in Swedish.", {"text": "12"}, '{"value": "twelve"}', ["Swedish"]),
        ("Today's date as JSON", {}, "2026-12-07 (Monday)", ["JSON"]),  # a result that is not JSON
        (
            "I need the latest car models from the top three car manufacturers in the United States.",
            {},
            '["Audi", "Ford"]',
            ["United", "States"],
        ),
    ],
)
def test_a_name_nothing_deals_with_is_refused(
    request_text: str, arguments: dict, observation: str, missing: list[str]
) -> None:
    reason = unnamed_terms(request_text, arguments, observation)
    assert reason is not None
    assert all(f'"{name}"' in reason for name in missing)


@pytest.mark.parametrize(
    ("request_text", "arguments", "observation", "documentation"),
    [
        ("Find the coordinates of Central Park", {"name": "central park"}, "{}", ""),  # sent (any case)
        ("Is Audi among the car makes?", {}, '["Audi", "BMW"]', ""),  # in the result
        ("Which makes does the Car database list?", {}, "[]", "Car database Makes"),  # the tool's own words
        ("Find the coordinates of Tokyo, Japan in English.", {"name": "Tokyo"}, '{"lat": 35.6}', ""),
        ("The coordinates of Central Park in the United States", {"name": "Central Park"}, "{}", ""),
        ("Convertir 1000 pesos a letras en español", {"moneda": "PESOS", "monto": "1000"}, '"MIL PESOS"', ""),
        ("Write 1000 dolares as Spanish words", {"moneda": "DÓLARES", "monto": "1000"}, "{}", ""),
        (
            "A 16-character password, returned as JSON",
            {"length": "16"},
            '{"password": "x"}',
            "",
        ),  # its format
    ],
)
def test_a_name_the_call_result_or_tool_deals_with_passes(
    request_text: str, arguments: dict, observation: str, documentation: str
) -> None:
    assert unnamed_terms(request_text, arguments, observation, documentation) is None


def test_a_country_qualifies_only_a_name_the_call_sends() -> None:
    """ "Tokyo, Japan" is the place the call looks up; "in Japan" after a name the call does not send is
    another ask."""
    assert unnamed_terms("Coordinates of Kyoto, Japan", {"name": "Kyoto"}, "{}") is None
    assert unnamed_terms("Coordinates of Kyoto, Japan", {"name": "Osaka"}, "{}") is not None
    assert '"Japan"' in unnamed_terms("The car makers of Japan", {}, '["Audi"]')


def test_named_terms_is_a_default_repairable_trial_check() -> None:
    """It reads the result, so it is a trial check (not run on imports or paraphrases), on by default, and
    hindsight's repair may restate the request from the call."""
    assert "named_terms" in ALL_CHECKS and "named_terms" not in CALL_CHECKS
    assert "named_terms" in MemorySettings().judge_checks
    assert "named_terms" in REPAIRABLE


@pytest.fixture
def toolbox_tools(toolbox):
    return {t.name: t for t in load_spec(toolbox_spec_path(), variables={"TOOLBOX_URL": toolbox.url})}


@pytest.mark.anyio
async def test_the_exploiter_refuses_a_filter_the_makes_list_does_not_apply(data_dir, toolbox_tools) -> None:
    """The real makes endpoint lists every make; "based in Europe" is in neither the call nor the list."""
    trials, exemplars, exploiter = stores(
        data_dir, MemorySettings(paraphrases_per_exemplar=0, hindsight="off")
    )
    async with UpstreamClient() as client:
        trial = await record_trial(
            trials,
            client,
            toolbox_tools[MAKES],
            {},
            "I need a list of all car manufacturers based in Europe.",
        )
        kept = await record_trial(
            trials, client, toolbox_tools[MAKES], {}, "Which car makes does Audi compete with?", slot=1
        )
        report = ExploitReport()
        await exploiter.exploit_trial(judging_model(), trial, toolbox_tools, report)
        await exploiter.exploit_trial(judging_model(), kept, toolbox_tools, report)
    assert (report.accepted, report.exemplars, report.refused) == (2, 1, 1)
    assert trials.get(trial.id).verdict["refused"].startswith('named_terms: the request names "Europe"')
    assert [e.query for e in exemplars.find()] == ["Which car makes does Audi compete with?"]
    # the tool's documentation is what the Exploiter passes: its own name passes, without it the check refuses
    tool = toolbox_tools[MAKES]
    named = await _trial_about(trials, tool, "What does the Car database hold?")
    assert check_trial(named, ["named_terms"]) is not None
    assert check_trial(named, ["named_terms"], documentation=documentation_of(tool)) is None


@pytest.mark.anyio
async def test_a_place_qualified_by_its_country_is_kept(data_dir, toolbox_tools) -> None:
    trials, _, exploiter = stores(data_dir, MemorySettings(paraphrases_per_exemplar=0, hindsight="off"))
    async with UpstreamClient() as client:
        trial = await record_trial(
            trials,
            client,
            toolbox_tools[PLACES],
            {"name": "Edinburgh", "lang": "en"},
            "Coordinates of Edinburgh, Scotland",
        )
        report = ExploitReport()
        await exploiter.exploit_trial(judging_model(), trial, toolbox_tools, report)
    assert not trial.last_call.is_error
    assert (report.exemplars, report.refused) == (1, 0), trials.get(trial.id).verdict


async def _trial_about(trials, tool, query: str):
    async with UpstreamClient() as client:
        return await record_trial(trials, client, tool, {}, query, slot=2)


def test_recheck_with_calls_rejects_a_stored_exemplar_whose_names_nothing_deals_with(tmp_path, capsys):
    """``exemplars recheck --call`` calls each original that gives a name again (the served toolbox on
    127.0.0.1): the makes "based in Europe" is rejected with its paraphrase; a name the result gives stays."""
    data_dir = tmp_path / "data"
    europe = exemplar(MAKES, "List the car manufacturers based in Europe.", {})
    store = _stored(
        data_dir,
        europe,
        exemplar(MAKES, "Which carmakers are European?", {}, variant_of=europe.id),
        exemplar(MAKES, "Is Audi among the makes you know?", {}),
        exemplar(MAKES, "List every car make", {}),  # no name: not called
    )

    def run(*extra: str) -> str:
        assert main(["exemplars", "recheck", "--call", "--data-dir", str(data_dir), *extra]) == 0
        return capsys.readouterr().out

    dry = run("--dry-run")
    assert 'named_terms: the request names "Europe"' in dry
    assert dry.strip().endswith("2 original(s) called again: 0 would move to a sibling, 1 would be rejected")
    assert {e.status for e in store.find()} == {"approved"}
    assert "1 rejected (2 rows with their paraphrases)" in run()
    status = {e.query: e.status for e in store.find()}
    assert status == {
        "List the car manufacturers based in Europe.": "rejected",
        "Which carmakers are European?": "rejected",
        "Is Audi among the makes you know?": "approved",
        "List every car make": "approved",
    }


@pytest.mark.parametrize(
    ("paraphrase", "added"),
    [
        ("Where on the map is Tokyo?", None),  # the original's name
        ("Coordinates of Tokyo, Japan please", None),  # a country qualifying the name the call sends
        ("Where is Tokyo? I'm flying from Canada", '"Canada"'),
        ("Coordinates of Нижний Новгород", '"Нижний"'),  # a name neither the request nor the call has
    ],
)
def test_a_paraphrase_may_give_only_names_its_original_or_call_has(
    paraphrase: str, added: str | None
) -> None:
    problem = added_names("Find the coordinates of Tokyo", paraphrase, {"name": "Tokyo"}, '{"lat": 35.6}')
    assert problem is None if added is None else added in problem


@pytest.mark.anyio
async def test_the_exploiter_drops_a_paraphrase_that_adds_a_name(data_dir, toolbox_tools) -> None:
    trials, exemplars, exploiter = stores(
        data_dir, MemorySettings(paraphrases_per_exemplar=2, hindsight="off")
    )
    added = "Which makes exist? I'm shopping in Germany"
    model = judging_model(paraphrases=lambda q: ["What car makes are there?", added])
    async with UpstreamClient() as client:
        trial = await record_trial(trials, client, toolbox_tools[MAKES], {}, "Which car makes do you know?")
        await exploiter.exploit_trial(model, trial, toolbox_tools, ExploitReport())
    assert sorted(e.query for e in exemplars.find()) == [
        "What car makes are there?",
        "Which car makes do you know?",
    ]
    # the check turned off keeps it
    trials, exemplars, exploiter = stores(
        data_dir / "off", MemorySettings(paraphrases_per_exemplar=2, hindsight="off", judge_checks=[])
    )
    async with UpstreamClient() as client:
        trial = await record_trial(trials, client, toolbox_tools[MAKES], {}, "Which car makes do you know?")
        await exploiter.exploit_trial(model, trial, toolbox_tools, ExploitReport())
    assert added in {e.query for e in exemplars.find()}


def test_recheck_rejects_a_stored_paraphrase_that_adds_a_name(tmp_path, capsys):
    data_dir = tmp_path / "data"
    original = exemplar(MAKES, "Which car makes do you know?", {})
    store = _stored(
        data_dir,
        original,
        exemplar(MAKES, "Name the car makes you know", {}, variant_of=original.id),
        exemplar(MAKES, "Which makes exist? I'm shopping in Germany", {}, variant_of=original.id),
    )
    assert main(["exemplars", "recheck", "--data-dir", str(data_dir)]) == 0
    assert 'the paraphrase names "Germany"' in capsys.readouterr().out
    status = {e.query: e.status for e in store.find()}
    assert status == {
        "Which car makes do you know?": "approved",
        "Name the car makes you know": "approved",
        "Which makes exist? I'm shopping in Germany": "rejected",
    }


def _stored(data_dir, *rows) -> ExemplarStore:
    """An exemplar store on ``data_dir/lancedb`` holding ``rows``."""
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    store.add(list(rows))
    return store
