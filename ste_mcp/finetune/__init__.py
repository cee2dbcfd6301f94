"""Fine-tuning: LoRA adapters from approved exemplars, gated promotion, registry, export, hot-load.

A round (``run_round`` / ``round_from_settings``) builds the paper-shaped dataset with replay of earlier
rounds, trains in a child process (``python -m ste_mcp.finetune.train``, TRL + peft), gates the
candidate against the current adapter on held-out exemplars, and registers it atomically. The promoted
adapter is served as a runtime LoRA or merged into the base weights (``merge``, ``serving``).
Public names are imported lazily so that reading settings does not load torch or LanceDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FinetuneSettings": "ste_mcp.finetune.settings",
    "DatasetBuilder": "ste_mcp.finetune.dataset",
    "RoundData": "ste_mcp.finetune.dataset",
    "AdapterRegistry": "ste_mcp.finetune.registry",
    "Manifest": "ste_mcp.finetune.registry",
    "RegistryError": "ste_mcp.finetune.registry",
    "Decision": "ste_mcp.finetune.gate",
    "decide": "ste_mcp.finetune.gate",
    "evaluate_adapters": "ste_mcp.finetune.gate",
    "TrainJob": "ste_mcp.finetune.train",
    "BaseModelRef": "ste_mcp.finetune.rounds",
    "RoundError": "ste_mcp.finetune.rounds",
    "RoundResult": "ste_mcp.finetune.rounds",
    "run_round": "ste_mcp.finetune.rounds",
    "round_from_settings": "ste_mcp.finetune.rounds",
    "AdapterServing": "ste_mcp.finetune.serving",
    "MergedModels": "ste_mcp.finetune.merge",
    "MergeError": "ste_mcp.finetune.merge",
    "ServingError": "ste_mcp.finetune.serving",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ste_mcp.finetune' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
