"""Memory: trials, exemplars and live descriptions in LanceDB (safety code lives in ``ste_mcp.safety``).

Public names are imported lazily (``from ste_mcp.memory import ExemplarStore``) so that reading
settings does not load LanceDB or the embedding model.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "open_db": "ste_mcp.memory.db",
    "Exemplar": "ste_mcp.memory.exemplars",
    "ExemplarStore": "ste_mcp.memory.exemplars",
    "Provenance": "ste_mcp.memory.exemplars",
    "Embedder": "ste_mcp.memory.embeddings",
    "get_embedder": "ste_mcp.memory.embeddings",
    "DescriptionStore": "ste_mcp.memory.descriptions",
    "LiveDescriptions": "ste_mcp.memory.descriptions",
    "render_description": "ste_mcp.memory.descriptions",
    "select_diverse": "ste_mcp.memory.descriptions",
    "Exploiter": "ste_mcp.memory.exploit",
    "MemorySettings": "ste_mcp.memory.settings",
    "TrialStore": "ste_mcp.memory.trials",
    "TrialRecord": "ste_mcp.memory.trials",
    "Turn": "ste_mcp.memory.trials",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ste_mcp.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
