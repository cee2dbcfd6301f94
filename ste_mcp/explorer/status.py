"""What ste-mcp knows and is doing, per tool: the data behind ``ste-mcp status`` and ``ste-mcp://status``.

The explorer contributes ``trials``, ``successful_trials``, ``episodes`` (and more) from the trial
store. Other features add their own per-tool fields (exemplars, description version, adapter) with
a *status contributor*: a function ``(settings) -> {tool: {field: value}}``, either declared by its
feature (``Feature.status`` in ``ste_mcp/extensions.py``; a feature that is not installed is skipped)
or registered at run time with ``register_status_contributor``. A failing contributor is reported,
never fatal.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ste_mcp.extensions import load, status_contributors

if TYPE_CHECKING:
    from ste_mcp.config import Settings
    from ste_mcp.explorer.scheduler import Explorer
    from ste_mcp.memory.trials import TrialStore

log = logging.getLogger(__name__)

StatusContributor = Callable[["Settings"], dict[str, dict[str, Any]]]

_registered: dict[str, StatusContributor] = {}

PAUSE_MARKER = "explorer.paused"
LIVE_STATUS = "explorer-status.json"


def register_status_contributor(name: str, contributor: StatusContributor) -> None:
    """Add per-tool status fields computed by ``contributor(settings)`` (replaces one of the same name)."""
    _registered[name] = contributor


def pause_marker(settings: Settings) -> Path:
    """While this file exists, exploration (in ``serve`` or ``explore``) is paused."""
    return settings.data_dir / PAUSE_MARKER


def live_status_file(settings: Settings) -> Path:
    """Where a running explorer (``serve`` or ``explore``) leaves its live status."""
    return settings.data_dir / LIVE_STATUS


def _live_status(settings: Settings) -> dict[str, Any] | None:
    """The live status another process left, while that process is alive."""
    path = live_status_file(settings)
    try:
        status = json.loads(path.read_text())
        os.kill(int(status["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return status


def _contributors() -> dict[str, StatusContributor]:
    found: dict[str, StatusContributor] = {}
    for feature, ref in status_contributors():
        fn = load(ref, feature=feature)
        if fn is not None:
            found[ref] = fn
    found.update(_registered)
    return found


def collect_status(
    settings: Settings, *, store: TrialStore | None = None, explorer: Explorer | None = None
) -> dict[str, Any]:
    """The status document: ``tools`` (per tool fields), ``totals``, ``explorer`` (live state when
    running in this process), ``paused`` and ``errors`` (contributors that failed). Synchronous."""
    if store is None:
        from ste_mcp.memory.db import Memory

        store = Memory.open(settings).trials
    tools: dict[str, dict[str, Any]] = {name: dict(s) for name, s in store.stats().items()}
    errors: dict[str, str] = {}
    for name, contributor in _contributors().items():
        try:
            fields = contributor(settings)
        except Exception as exc:  # one feature's trouble must not hide the rest
            log.warning("status contributor %s failed: %s", name, exc)
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        for tool, values in fields.items():
            tools.setdefault(tool, {"trials": 0, "successful_trials": 0, "episodes": 0}).update(values)
    totals = {
        key: sum(t.get(key, 0) for t in tools.values())
        for key in ("trials", "successful_trials", "episodes", "calls", "tokens")
    }
    totals["success_rate"] = (
        round(totals["successful_trials"] / totals["trials"], 4) if totals["trials"] else 0.0
    )
    return {
        "tools": dict(sorted(tools.items())),
        "totals": totals,
        "paused": pause_marker(settings).exists() or bool(explorer and explorer.paused),
        "explorer": explorer.status() if explorer is not None else _live_status(settings),
        "errors": errors,
    }
