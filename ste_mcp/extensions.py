"""The extension surface: what a feature may provide, and the one list of features.

A feature is a package of ``ste_mcp`` declared once, in ``FEATURES``, by a ``Feature``:

- ``commands``: ``ste-mcp`` subcommands, name -> module with ``HELP``, ``add_arguments(parser)`` and
  ``run(args) -> int`` (see ``cli.py``); ``ste-mcp --help`` lists exactly these, in this order.
- ``server``: a factory ``"module:function"``, ``create(app) -> ServerExtension | None``, that ``App``
  calls at start (the default of ``server.features``). The ``ServerExtension``
  (``server/extensions.py``) serves extra MCP tools and resources and runs background tasks.
- ``status``: status contributors ``"module:function"``, ``(settings) -> {tool: {field: value}}``,
  merged into ``ste-mcp status`` and ``ste-mcp://status``.

Features reach each other only through typed hooks an extension may implement, looked up by type by
``App`` (never by a feature's name and ``getattr``): ``DescriptionProvider`` (the tool descriptions
``tools/list`` serves) and ``AdapterProvider`` (the LoRA adapter served on the app's own model).
An optional model capability is a protocol of the model side too: ``ste_mcp.llm.base.SupportsLora``.

``load(ref)`` is the one "import, skip if missing" step: a feature whose module, or an optional
dependency of it, is not installed is skipped with a warning naming the feature and what is missing.
This module imports only the standard library, so every layer (and ``ste-mcp --help``) may use it.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ste_mcp.upstream.tools import Tool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feature:
    """What one feature provides (every field optional)."""

    name: str
    commands: dict[str, str] = field(default_factory=dict)
    """``ste-mcp`` subcommand -> the module implementing it."""
    server: str | None = None
    """``"module:function"`` creating the feature's ``ServerExtension`` (or ``None``) for an ``App``."""
    status: tuple[str, ...] = ()
    """``"module:function"`` status contributors: ``(settings) -> {tool: {field: value}}``."""


FEATURES: tuple[Feature, ...] = (
    Feature(
        "proxy", commands={"serve": "ste_mcp.server.cli_serve", "claude-config": "ste_mcp.server.cli_claude"}
    ),
    Feature("toolbox", commands={"toolbox": "ste_mcp.toolbox.cli"}),
    Feature("llm", commands={"model": "ste_mcp.llm.cli"}),
    Feature(
        "explorer",
        commands={
            "explore": "ste_mcp.explorer.cli_explore",
            "learn": "ste_mcp.explorer.cli_learn",
            "status": "ste_mcp.explorer.cli_status",
        },
        server="ste_mcp.explorer.extension:create",
    ),
    Feature(
        "memory",
        commands={
            "exemplars": "ste_mcp.memory.cli_exemplars",
            "descriptions": "ste_mcp.memory.cli_descriptions",
        },
        server="ste_mcp.memory.extension:create",
        status=("ste_mcp.memory.exemplars:status_fields", "ste_mcp.memory.descriptions:status_fields"),
    ),
    Feature(
        "finetune",
        commands={"train": "ste_mcp.finetune.cli_train", "adapters": "ste_mcp.finetune.cli_adapters"},
        server="ste_mcp.finetune.extension:create",
        status=("ste_mcp.finetune.registry:status_fields",),
    ),
    Feature("evaluate", commands={"eval": "ste_mcp.evaluate.cli"}),
    Feature("ui", commands={"ui": "ste_mcp.ui.cli_ui"}),
)
"""Every feature, in the order their commands, extensions and status fields appear."""


def commands() -> dict[str, tuple[str, str]]:
    """Every declared subcommand: name -> (feature, module)."""
    return {name: (f.name, module) for f in FEATURES for name, module in f.commands.items()}


def server_factories() -> list[str]:
    """The factories ``App`` loads by default (``server.features``)."""
    return [f.server for f in FEATURES if f.server]


def status_contributors() -> list[tuple[str, str]]:
    """Every declared status contributor: (feature, ``"module:function"``)."""
    return [(f.name, ref) for f in FEATURES for ref in f.status]


def load(ref: str, *, feature: str = "") -> Any | None:
    """The module ``ref`` names (``"module"``), or its attribute (``"module:attr"``); ``None`` when that
    module, a package above it or a third-party module it imports is not installed (logged as a warning
    naming ``feature``). A missing module of ``ste_mcp`` itself other than those is a bug and raises."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        own = module_name == missing or module_name.startswith(missing + ".")
        if not missing or (missing.split(".")[0] == "ste_mcp" and not own):
            raise
        what = "is not installed" if own else f"needs {missing!r}, which is not installed"
        log.warning("feature %s skipped: %s %s", feature or module_name, module_name, what)
        return None
    return getattr(module, attr) if attr else module


@runtime_checkable
class DescriptionProvider(Protocol):
    """An extension that chooses each tool's description (``App.describe``; the memory feature's
    learned, approved descriptions). The last one added wins."""

    def describe(self, tool: Tool) -> str: ...


@runtime_checkable
class AdapterProvider(Protocol):
    """An extension serving a LoRA adapter on the app's own model (``App.active_adapter()``; the
    finetune feature). Requests made with the app's model pass it as ``model=``."""

    @property
    def active_adapter(self) -> str | None: ...
