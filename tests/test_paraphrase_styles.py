"""Paraphrase styles (``memory.paraphrase_situations``) and `ste-mcp exemplars paraphrase`: a reworded request
and a user's situation, each checked like a live exemplar's paraphrases, on a real LanceDB store on disk.
Scripted models for the orchestration; the model test asks the session's packaged SmolLM2 server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import ste_mcp.llm as llm_module
from ste_mcp.cli import main
from ste_mcp.memory.checks import check_call, dropped_values
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.exploit import Exploiter
from ste_mcp.memory.paraphrase import EXAMPLES, paraphrase_messages
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialStore
from tests.fixtures.models import ScriptedModel
from tests.test_exemplars_transfer import SECRET, SECRET_ENV, exemplar, seeded, spec  # noqa: F401

DATE_CALL = {"city": "Paris"}


def rewrites(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
    """Two rewrites in the asked style: a situation that keeps the city and one that drops it."""
    request = messages[-1]["content"].splitlines()[1]
    if messages[0]["content"].startswith("You rewrite user requests as different real users"):
        city = "Paris" if "Paris" in request else "the city"
        kept = f"I am packing for a weekend in {city}. {request}"
        return json.dumps({"paraphrases": [kept, "I am packing for a trip. What will the weather be?"]})
    return json.dumps({"paraphrases": [f"Please tell me: {request}", request]})  # the second repeats it


def test_situation_messages_show_one_worked_example_and_reword_is_unchanged() -> None:
    reword = paraphrase_messages("Will it rain in Paris tomorrow?", 3)
    assert [m["role"] for m in reword] == ["system", "user"]
    assert reword[1]["content"].startswith("Write 3 different paraphrases of this request:\nWill it rain")
    situation = paraphrase_messages("Will it rain in Paris tomorrow?", 2, "situation")
    assert [m["role"] for m in situation] == ["system", "user", "assistant", "user"]
    example, answers = EXAMPLES["situation"]
    assert example in situation[1]["content"] and json.loads(situation[2]["content"]) == {
        "paraphrases": answers
    }
    assert situation[3]["content"].splitlines()[:2] == [
        "Write 2 rewrites of this request, each from another user's situation:",
        "Will it rain in Paris tomorrow?",
    ]


@pytest.mark.anyio
async def test_live_paraphrases_split_between_styles_and_are_checked(tmp_path: Path) -> None:
    store = ExemplarStore(open_db(tmp_path / "lancedb"))
    settings = MemorySettings(paraphrases_per_exemplar=3, paraphrase_situations=1)
    db = open_db(tmp_path / "lancedb")
    exploiter = Exploiter(TrialStore(db), store, DescriptionStore(db), settings)
    model = ScriptedModel.answering(rewrites)
    rain = exemplar("get_weather", "Will it rain in Paris tomorrow?", DATE_CALL)

    variants = await exploiter.paraphrases(model, rain, ["convert_currency"])

    asked = [
        (c["messages"][0]["content"].split()[3], c["messages"][-1]["content"].split()[1]) for c in model.calls
    ]
    assert asked == [("requests.", "2"), ("requests", "1")]  # 2 reworded, then 1 situation
    assert [v.query for v in variants] == [
        "Please tell me: Will it rain in Paris tomorrow?",
        "I am packing for a weekend in Paris. Will it rain in Paris tomorrow?",
    ]  # the repeat and the situation without the city are left out
    assert all(
        v.variant_of == rain.id and v.arguments == DATE_CALL and v.status == "approved" for v in variants
    )

    none = exploiter.settings.model_copy(update={"paraphrases_per_exemplar": 0})
    assert (
        await Exploiter(TrialStore(db), store, DescriptionStore(db), none).paraphrases(model, rain, []) == []
    )


class Teacher:
    """A fake ``open_model`` answering with ``rewrites``; which models were opened is recorded."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    @asynccontextmanager
    async def __call__(self, settings: Any, **kwargs: Any) -> AsyncIterator[ScriptedModel]:
        self.opened.append(settings.llm.model)
        yield ScriptedModel.answering(rewrites, model="teacher")


@pytest.fixture
def teacher(monkeypatch: pytest.MonkeyPatch) -> Teacher:
    fake = Teacher()
    monkeypatch.setattr(llm_module, "open_model", fake)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return fake


def paraphrase_cli(data_dir: Path, spec: Path, *extra: str) -> int:  # noqa: F811
    args = ["exemplars", "paraphrase", "--data-dir", str(data_dir), "--spec", str(spec), "--no-progress"]
    return main([*args, "--model", "packaged:teacher", *extra])


def test_cli_adds_checked_situations_to_approved_originals_once(tmp_path, spec, teacher, capsys):  # noqa: F811
    data_dir = tmp_path / "data"
    store = seeded(data_dir)
    before = {ex.id: ex for ex in store.find()}

    assert paraphrase_cli(data_dir, spec, "--tool", "get_weather", "--style", "situation") == 0
    assert capsys.readouterr().out.strip() == "1 exemplar(s) paraphrased: 1 situation paraphrase(s) added"
    added = [ex for ex in store.find() if ex.id not in before]
    rain = next(ex for ex in before.values() if ex.query == "Will it rain in Paris tomorrow?")
    assert [(ex.query, ex.variant_of, ex.status) for ex in added] == [
        ("I am packing for a weekend in Paris. Will it rain in Paris tomorrow?", rain.id, "approved")
    ]
    assert added[0].provenance.models == [*rain.provenance.models, "teacher"]
    assert all(store.get(i) == ex for i, ex in before.items())  # nothing stored before is changed

    # again: the model repeats itself, so nothing new; every tool's approved originals are asked about
    assert paraphrase_cli(data_dir, spec, "--style", "situation") == 0
    out = capsys.readouterr().out
    assert "2 exemplar(s) paraphrased" in out  # the candidate and the rejected one are not
    assert len([ex for ex in store.find() if ex.id not in before]) == 1 + 1  # convert_currency's situation
    assert paraphrase_cli(data_dir, spec, "-n", "1") == 0  # reword, the default
    assert "2 exemplar(s) paraphrased: 2 reword paraphrase(s) added" in capsys.readouterr().out


def test_cli_stops_at_a_model_error_and_keeps_what_was_added(tmp_path, spec, monkeypatch, capsys):  # noqa: F811
    """The model server dies after its first answer: exit 1 naming the error; the paraphrase written
    before it is stored."""
    from ste_mcp.llm import ModelError

    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv("STE_MCP_MEMORY__JUDGE_CONCURRENCY", "1")

    def dies(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
        raise ModelError("model server at http://127.0.0.1:9/v1 is unreachable")

    @asynccontextmanager
    async def once(settings: Any, **kwargs: Any) -> AsyncIterator[ScriptedModel]:
        yield ScriptedModel([rewrites, dies], repeat_last=True)

    monkeypatch.setattr(llm_module, "open_model", once)
    data_dir = tmp_path / "data"
    store = seeded(data_dir)
    before = len(store.find())
    assert paraphrase_cli(data_dir, spec) == 1
    assert capsys.readouterr().err.strip().endswith("is unreachable; 1 paraphrase(s) added before")
    assert len(store.find()) == before + 1


def test_cli_errors(tmp_path, spec, teacher, capsys):  # noqa: F811
    data_dir = tmp_path / "data"
    assert paraphrase_cli(data_dir, spec) == 0
    assert capsys.readouterr().out.strip() == "no exemplars stored: nothing to paraphrase"
    seeded(data_dir)
    assert paraphrase_cli(data_dir, spec, "--tool", "no_such_tool") == 1
    assert "no served tool named no_such_tool" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        paraphrase_cli(data_dir, spec, "-n", "7")
    assert teacher.opened == []  # no model opened for any of these


@pytest.mark.anyio
async def test_situations_from_the_packaged_model_are_checked(chat_model: Any, tmp_path: Path) -> None:
    """The real pipeline on the session's SmolLM2 server: whatever it writes, what is kept still asks for
    the call (its values stated, no tool named, the call checks pass) and belongs to the original."""
    db = open_db(tmp_path / "lancedb")
    settings = MemorySettings(paraphrases_per_exemplar=3, paraphrase_situations=3)
    exploiter = Exploiter(TrialStore(db), ExemplarStore(db), DescriptionStore(db), settings)
    query = "Add 45 days to 2024-07-09."
    call = {"date": "2024-07-09", "days": 45}
    original = exemplar("add_date", query, call)
    variants = await exploiter.paraphrases(chat_model, original, ["get_today_date"])
    assert chat_model.usage.completion_tokens > 0  # the model was asked (and a ModelError was not swallowed)
    for v in variants:
        assert v.variant_of == original.id and v.arguments == call and v.query != query
        assert dropped_values(query, v.query, call) is None and check_call(v.query, call, None) is None
        assert "add_date" not in v.query
    assert len(variants) <= 3
