"""Roles: which model the explorer, the judge and the paraphraser use (``llm.explorer`` / ``llm.judge`` /
``llm.paraphrase``), how the App opens them (lazily, one client per distinct model, owned and closed by
the app) and how ``Explorer.from_app`` wires the explorer's. Fake models stand in for the servers; the
real-model check is ``tests/test_learn.py::test_judge_role_on_its_own_managed_vllm``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import ste_mcp.llm as llm_module
from ste_mcp.app import App, ModelUnavailable
from ste_mcp.config import ConfigError, load_settings
from ste_mcp.explorer.scheduler import Explorer, context_budget
from ste_mcp.llm.settings import LLMSettings
from tests.fixtures.models import ScriptedModel

pytestmark = pytest.mark.anyio

STUDENT = "packaged:qwen2.5-coder-0.5b-instruct"
TEACHER = "packaged:qwen2.5-1.5b-instruct"


def test_a_role_without_a_model_of_its_own_is_the_apps_model() -> None:
    llm = LLMSettings(model=STUDENT)
    for role in ("main", "explorer", "judge", "paraphrase"):
        assert llm.for_role(role) is llm
    same = LLMSettings(model=STUDENT, judge={"model": STUDENT})
    assert same.for_role("judge") is same  # naming the app's own model changes nothing


def test_a_role_with_its_own_model_gets_its_own_server_settings() -> None:
    llm = LLMSettings(
        model=STUDENT,
        base_url="http://127.0.0.1:8000/v1",
        max_model_len=2048,
        explorer={"model": TEACHER},
        judge={"base_url": "http://10.0.0.2:8000/v1", "served_model_name": "big", "api_key_env": "JUDGE_KEY"},
    )
    explorer = llm.for_role("explorer")
    assert explorer is not llm
    assert (explorer.model, explorer.base_url, explorer.served_model_name) == (TEACHER, None, None)
    assert explorer.max_model_len == 2048 and explorer.api_key_env == llm.api_key_env  # shared fields
    judge = llm.for_role("judge")
    assert (judge.model, judge.base_url, judge.served_model_name, judge.api_key_env) == (
        STUDENT,
        "http://10.0.0.2:8000/v1",
        "big",
        "JUDGE_KEY",
    )
    assert llm.for_role("paraphrase") is llm


def test_role_settings_come_from_toml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ste-mcp.toml"
    config.write_text(f'[llm.explorer]\nmodel = "{TEACHER}"\n[[llm.evaluators]]\nmodel = "{TEACHER}"\n')
    monkeypatch.setenv("STE_MCP_LLM__JUDGE__MODEL", TEACHER)
    settings = load_settings(config, data_dir=str(tmp_path / "data"))
    assert settings.llm.explorer.model == TEACHER and settings.llm.judge.model == TEACHER
    assert settings.llm.for_role("explorer").server_key() == settings.llm.for_role("judge").server_key()
    assert settings.llm.for_evaluator(0).server_key() == settings.llm.for_role("judge").server_key()
    config.write_text("[llm.judge]\nmodle = 'typo'\n")
    with pytest.raises(ConfigError, match="modle"):
        load_settings(config, data_dir=str(tmp_path / "data"))


class Opened:
    """A fake ``open_model``: one ScriptedModel per model source, every open and close recorded."""

    def __init__(self, failing: set[str] = frozenset()) -> None:
        self.failing = failing
        self.opens: list[tuple[str, Path | None]] = []
        self.closed: list[str] = []

    @asynccontextmanager
    async def __call__(self, settings: Any, *, logs_dir: Path | None = None) -> AsyncIterator[ScriptedModel]:
        source = settings.llm.model
        self.opens.append((source, logs_dir))
        await anyio.sleep(0.01)  # an in-flight open that concurrent callers must share
        if source in self.failing:
            raise ConnectionError(f"cannot start vLLM for {source}")
        try:
            yield ScriptedModel(["ok"], model=source.removeprefix("packaged:"), repeat_last=True)
        finally:
            self.closed.append(source)


def role_settings(data_dir: Path, spec: Path, **llm: Any) -> Any:
    return load_settings(data_dir=str(data_dir), specs=[str(spec)], llm={"model": STUDENT, **llm})


async def test_roles_share_one_client_per_model_opened_lazily_and_closed_with_the_app(
    data_dir: Path, upstream_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = Opened()
    monkeypatch.setattr(llm_module, "open_model", opened)
    settings = role_settings(data_dir, upstream_spec, judge={"model": TEACHER}, paraphrase={"model": TEACHER})
    async with App(settings, features=[]) as app:
        assert opened.opens == []  # nothing opened before a role asks
        judges = []
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(lambda: _append(judges, app.model_for("judge")))
        assert len({id(m) for m in judges}) == 1 and judges[0].model == "qwen2.5-1.5b-instruct"
        assert opened.opens == [(TEACHER, settings.logs_dir / "judge")]  # its own log folder
        assert await app.model_for("paraphrase") is judges[0]  # the same model: the same client
        main = await app.get_model()
        assert await app.model_for("explorer") is main and main.model == "qwen2.5-coder-0.5b-instruct"
        assert opened.opens[1] == (STUDENT, None)  # the app's own model logs where it always did
        assert app.uses_main_model("explorer") and not app.uses_main_model("judge")
        assert opened.closed == []
    assert sorted(opened.closed) == sorted([TEACHER, STUDENT])


async def _append(out: list[Any], awaitable: Any) -> None:
    out.append(await awaitable)


async def test_a_roles_model_failing_leaves_the_others_working(
    data_dir: Path, upstream_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = Opened(failing={TEACHER})
    monkeypatch.setattr(llm_module, "open_model", opened)
    settings = role_settings(data_dir, upstream_spec, judge={"model": TEACHER})
    async with App(settings, features=[]) as app:
        with pytest.raises(
            ModelUnavailable, match=rf"cannot open model '{TEACHER}' \(llm.judge\).*next attempt"
        ):
            await app.model_for("judge")
        with pytest.raises(ModelUnavailable):  # backing off: no second open
            await app.model_for("judge")
        assert [source for source, _ in opened.opens] == [TEACHER]
        assert (await app.get_model()).model == "qwen2.5-coder-0.5b-instruct"


async def test_the_gates_evaluators_are_the_apps_model_then_llm_evaluators(
    data_dir: Path, upstream_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = Opened(failing={"packaged:broken"})
    monkeypatch.setattr(llm_module, "open_model", opened)
    # the app's own model named again is not asked twice; the teacher twice is one client
    settings = role_settings(
        data_dir,
        upstream_spec,
        evaluators=[{"model": TEACHER}, {"model": STUDENT}, {"model": TEACHER}],
        explorer={"model": TEACHER},
    )
    assert settings.llm.for_evaluator(1) is settings.llm
    async with App(settings, features=[]) as app:
        models = await app.evaluator_models()
        assert [m.model for m in models] == ["qwen2.5-coder-0.5b-instruct", "qwen2.5-1.5b-instruct"]
        assert models[0] is await app.get_model()
        assert models[1] is await app.model_for("explorer")  # one server for one model, whoever asks
        assert (TEACHER, settings.logs_dir / "evaluator-1") in opened.opens
    broken = role_settings(data_dir, upstream_spec, evaluators=[{"model": "packaged:broken"}])
    async with App(broken, features=[]) as app:
        with pytest.raises(ModelUnavailable, match=r"'packaged:broken' \(llm.evaluators #1\)"):
            await app.evaluator_models()
    with pytest.raises(ConfigError, match="modle"):
        load_settings(data_dir=str(data_dir), llm={"evaluators": [{"modle": TEACHER}]})


async def test_explorer_from_app_uses_the_explorer_role(
    data_dir: Path, upstream_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_module, "open_model", Opened())
    settings = role_settings(data_dir, upstream_spec, explorer={"model": TEACHER}, protocol="native")
    async with App(settings, features=[]) as app:
        explorer = await Explorer.from_app(app)
        assert explorer.model.model == "qwen2.5-1.5b-instruct"
        assert explorer.adapter is None  # an adapter of the student does not fit the teacher
        assert type(explorer.protocol).__name__ == "NativeToolProtocol"  # llm.protocol, as serve uses it
        assert explorer.context_chars == context_budget(settings)
        assert explorer.status_file == settings.data_dir / "explorer-status.json"
        assert {t.name for t in explorer._tools()} == {t.name for t in app.toolset.visible()}

    student = role_settings(data_dir, upstream_spec)
    async with App(student, features=[]) as app:
        explorer = await Explorer.from_app(app, tools=[], settings=student.explorer.model_copy())
        assert explorer.model is await app.get_model()
        assert explorer.adapter is not None and explorer.adapter() is None  # no finetune feature here
        assert explorer.selected() == []
