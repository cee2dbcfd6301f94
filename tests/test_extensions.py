"""The extension surface (ste_mcp/extensions.py) is the single source of commands, features and status."""

from __future__ import annotations

import argparse
import logging
import sys
import types as pytypes

import pytest

from ste_mcp import extensions
from ste_mcp.app import App
from ste_mcp.cli import build_parser
from ste_mcp.config import load_settings
from ste_mcp.explorer import status as status_module
from ste_mcp.extensions import FEATURES, Feature, commands, load, server_factories, status_contributors
from ste_mcp.llm.base import SupportsLora
from ste_mcp.server.extensions import BaseExtension
from ste_mcp.server.settings import ServerSettings


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_every_command_comes_from_a_declared_feature() -> None:
    assert _subcommands(build_parser()) == list(commands())
    assert list(commands()) == [
        "serve",
        "claude-config",
        "toolbox",
        "model",
        "explore",
        "learn",
        "status",
        "exemplars",
        "descriptions",
        "train",
        "adapters",
        "eval",
        "ui",
    ]
    assert len({name for f in FEATURES for name in f.commands}) == sum(len(f.commands) for f in FEATURES)


def test_server_features_and_status_contributors_are_the_declared_ones() -> None:
    declared = server_factories()
    assert declared == [
        "ste_mcp.explorer.extension:create",
        "ste_mcp.memory.extension:create",
        "ste_mcp.finetune.extension:create",
    ]
    assert ServerSettings().features == declared
    refs = [ref for _, ref in status_contributors()]
    assert refs == [
        "ste_mcp.memory.exemplars:status_fields",
        "ste_mcp.memory.descriptions:status_fields",
        "ste_mcp.finetune.registry:status_fields",
    ]
    assert all(callable(load(ref)) for ref in refs)


def test_a_feature_with_a_missing_dependency_is_skipped_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its command, server extension and status fields all disappear; the warning names what is missing."""
    module = tmp_path / "needs_missing_dep.py"
    module.write_text("import not_an_installed_distribution_xyz\nHELP = 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = Feature(
        "broken",
        commands={"broken": "needs_missing_dep"},
        server="needs_missing_dep:create",
        status=("needs_missing_dep:status_fields",),
    )
    monkeypatch.setattr(extensions, "FEATURES", (*FEATURES, broken))
    with caplog.at_level(logging.WARNING, logger="ste_mcp.extensions"):
        assert "broken" in commands()
        assert "broken" not in _subcommands(build_parser())
        assert "needs_missing_dep:status_fields" not in status_module._contributors()
        assert load("not_installed_feature.extension:create", feature="absent") is None
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "feature broken skipped: needs_missing_dep needs 'not_an_installed_distribution_xyz', "
        "which is not installed" in messages
    )
    assert "feature absent skipped: not_installed_feature.extension is not installed" in messages


def test_a_missing_module_of_ste_mcp_itself_is_a_bug_not_a_missing_feature(tmp_path, monkeypatch) -> None:
    (tmp_path / "imports_a_typo.py").write_text("import ste_mcp.no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match=r"ste_mcp\.no_such_module"):
        load("imports_a_typo", feature="typo")


@pytest.mark.anyio
async def test_features_meet_through_typed_hooks(data_dir, upstream_spec, monkeypatch) -> None:
    """A DescriptionProvider chooses app.describe; an AdapterProvider answers app.active_adapter()."""

    class Describer(BaseExtension):
        name = "describer"

        def describe(self, tool) -> str:
            return f"LEARNED: {tool.name}"

    class Adapters(BaseExtension):
        name = "adapters"
        active_adapter: str | None = None

    module = pytypes.ModuleType("hooked_feature")
    module.describer = lambda app: Describer()
    module.adapters = lambda app: Adapters()
    monkeypatch.setitem(sys.modules, "hooked_feature", module)
    settings = load_settings(data_dir=str(data_dir), specs=[str(upstream_spec)])
    async with App(settings, features=[]) as plain:
        assert plain.active_adapter() is None
        tool = plain.toolset.visible()[0]
        assert plain.describe(tool) == tool.description
    async with App(settings, features=["hooked_feature:describer", "hooked_feature:adapters"]) as app:
        tool = app.toolset.visible()[0]
        assert app.describe(tool) == f"LEARNED: {tool.name}"
        assert app.active_adapter() is None
        app.extension("adapters").active_adapter = "round-3"
        assert app.active_adapter() == "round-3"


def test_lora_loading_is_a_declared_capability() -> None:
    from ste_mcp.llm.client import OpenAIChatModel

    assert issubclass(OpenAIChatModel, SupportsLora)
    assert not isinstance(object(), SupportsLora)
