"""STE exploration: imagine -> trial -> reflect, with short-term (episode) and long-term (store) memory.

Public API (imported lazily, so that ``ste_mcp.config`` can import the settings cheaply)::

    from ste_mcp.explorer import Explorer, run_episode, imagine, trial, reflect
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExplorerSettings": "ste_mcp.explorer.settings",
    "PROMPT_VERSION": "ste_mcp.explorer.prompts",
    "ExploreContext": "ste_mcp.explorer.episode",
    "imagine": "ste_mcp.explorer.episode",
    "trial": "ste_mcp.explorer.episode",
    "reflect": "ste_mcp.explorer.episode",
    "run_episode": "ste_mcp.explorer.episode",
    "Budget": "ste_mcp.explorer.budget",
    "BudgetExhausted": "ste_mcp.explorer.budget",
    "RateLimiter": "ste_mcp.explorer.budget",
    "Explorer": "ste_mcp.explorer.scheduler",
    "ExplorerError": "ste_mcp.explorer.scheduler",
    "RunSummary": "ste_mcp.explorer.scheduler",
    "eligibility": "ste_mcp.explorer.scheduler",
    "collect_status": "ste_mcp.explorer.status",
    "register_status_contributor": "ste_mcp.explorer.status",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ste_mcp.explorer' has no attribute {name!r}")
