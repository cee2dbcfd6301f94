"""The App runtime: default toolbox, feature factories, the lazy model, and secret-free logs."""

from __future__ import annotations

import logging
import sys
import types as pytypes

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
