"""The App runtime: default toolbox, feature factories, the lazy model, and secret-free logs."""

from __future__ import annotations

import logging
import sys
import types as pytypes
from contextlib import asynccontextmanager

import anyio
import pytest

from ste_mcp.app import App, ModelUnavailable
from ste_mcp.config import load_settings
from ste_mcp.server.extensions import BaseExtension
from ste_mcp.server.logs import setup_logging

pytestmark = pytest.mark.anyio


async def test_no_specs_serves_the_offline_toolbox(data_dir):
    async with App(load_settings(data_dir=str(data_dir)), features=[]) as app:
        assert app.toolbox_url and app.toolbox_url.startswith("http://127.0.0.1:")
        assert len(app.toolset.visible()) == 13
        result = await app.upstream.call(app.toolset.get("get_today_date"), {})
        assert not result.is_error and result.status == 200
    assert not app.started


async def test_feature_factories(data_dir, upstream_spec, monkeypatch):
    module = pytypes.ModuleType("fake_feature")

    class Ext(BaseExtension):
        name = "fake"

    module.create = lambda app: Ext()
    module.create_none = lambda app: None
    monkeypatch.setitem(sys.modules, "fake_feature", module)
    features = ["fake_feature:create", "fake_feature:create_none", "not_installed_feature.extension:create"]
    settings = load_settings(data_dir=str(data_dir), specs=[str(upstream_spec)])
    async with App(settings, features=features) as app:
        assert [e.name for e in app.extensions] == ["fake"]


async def test_model_unavailable_is_a_clear_error(data_dir, upstream_spec):
    settings = load_settings(
        data_dir=str(data_dir),
        specs=[str(upstream_spec)],
        llm={"base_url": "http://127.0.0.1:9/v1", "retries": 0},
    )
    async with App(settings, features=[]) as app:
        with pytest.raises(ModelUnavailable, match="cannot open model"):
            await app.get_model()
        assert len(app.toolset) > 0  # the proxy keeps working


async def test_model_open_failure_backs_off(data_dir, upstream_spec, monkeypatch):
    """A failed open is remembered: fail fast, one shared in-flight open, a real retry after the window."""
    import ste_mcp.app as app_module
    import ste_mcp.llm as llm_module

    calls: list[int] = []
    outcome = {"fail": True}
    model = object()

    @asynccontextmanager
    async def fake_open_model(settings):
        calls.append(1)
        await anyio.sleep(0.05)  # an in-flight open the concurrent callers must share
        if outcome["fail"]:
            raise ConnectionError("model server at http://127.0.0.1:9 refused the connection")
        yield model

    now = [1000.0]
    monkeypatch.setattr(llm_module, "open_model", fake_open_model)
    settings = load_settings(data_dir=str(data_dir), specs=[str(upstream_spec)])
    async with App(settings, features=[], clock=lambda: now[0]) as app:
        errors: list[str] = []

        async def call() -> None:
            with pytest.raises(ModelUnavailable) as info:
                await app.get_model()
            errors.append(str(info.value))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(call)
        assert len(calls) == 1  # concurrent callers shared the one failed open
        assert "refused the connection" in errors[0] and "next attempt after" in errors[0]
        assert len(set(errors)) == 1

        now[0] += app_module.MODEL_RETRY_FIRST_S - 1
        with pytest.raises(ModelUnavailable, match="next attempt after") as info:
            await app.get_model()
        assert str(info.value) == errors[0]
        assert isinstance(info.value.__cause__, ConnectionError)
        assert len(calls) == 1  # failed fast, no new open

        now[0] += 2  # past the window: one real retry, which fails again and doubles the backoff
        with pytest.raises(ModelUnavailable, match="failed 2 time"):
            await app.get_model()
        assert len(calls) == 2
        now[0] += app_module.MODEL_RETRY_FIRST_S + 1  # within the doubled window
        with pytest.raises(ModelUnavailable):
            await app.get_model()
        assert len(calls) == 2

        outcome["fail"] = False
        now[0] += app_module.MODEL_RETRY_FIRST_S  # past the doubled window
        assert await app.get_model() is model
        assert await app.get_model() is model
        assert len(calls) == 3
        [slot] = app._models.values()  # one model: no role names another
        assert slot.error is None and slot.failures == 0  # success reset the backoff


def test_logs_never_contain_secrets(data_dir, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", "k3y-value-123456")
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        path = setup_logging(data_dir / "logs", secrets=lambda: ["k3y-value-123456"])
        logging.getLogger("ste_mcp.test").warning(
            "calling with key=%s and Bearer abcdefgh12345678", "k3y-value-123456"
        )
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers[len(before) :]:
            handler.close()
            root.removeHandler(handler)
    text = path.read_text()
    assert "calling with key=" in text
    assert "k3y-value-123456" not in text and "abcdefgh12345678" not in text


def test_every_setting_is_documented():
    from pydantic import BaseModel

    from ste_mcp.config import Settings
    from tests.fixtures.common import REPO

    doc = (REPO / "docs" / "CONFIG.md").read_text()
    missing = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            missing += [f"{name}.{sub}" for sub in annotation.model_fields if f"`{name}.{sub}`" not in doc]
        elif f"`{name}`" not in doc:
            missing.append(name)
    assert not missing, f"add these settings to docs/CONFIG.md: {missing}"
