"""Keep the model server's loaded LoRA adapter in step with the registry's promoted one.

vLLM started with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (the managed server
is) loads an adapter through ``POST /v1/load_lora_adapter``; afterwards ``model=<adapter id>`` selects
it. The LLM layer's client does the HTTP (``load_lora`` / ``unload_lora``); this module decides what.
"""

from __future__ import annotations

import logging
from typing import Any

from ste_mcp.finetune.registry import AdapterRegistry

log = logging.getLogger(__name__)


class ServingError(Exception):
    """The adapter could not be loaded into the model server."""


class AdapterServing:
    """Loads the promoted adapter into a model server and remembers which one is live."""

    def __init__(self, model: Any, registry: AdapterRegistry) -> None:
        self.model = model
        self.registry = registry
        self.active: str | None = None  # the adapter name requests can use as ``model=``

    async def sync(self) -> str | None:
        """Load the promoted adapter (unloading the previous one); returns the live adapter name."""
        current = self.registry.current()
        wanted = current.id if current is not None else None
        if wanted == self.active:
            return self.active
        if not hasattr(self.model, "load_lora"):
            raise ServingError(
                f"model client {type(self.model).__name__} cannot load LoRA adapters at run time"
            )
        if wanted is not None:
            try:
                await self.model.load_lora(wanted, str(self.registry.path(wanted)))
            except Exception as exc:
                raise ServingError(f"could not load adapter {wanted} into the model server: {exc}") from exc
        previous, self.active = self.active, wanted
        if previous is not None:
            try:
                await self.model.unload_lora(previous)
            except Exception as exc:  # the old adapter staying loaded is harmless
                log.warning("could not unload adapter %s: %s", previous, exc)
        return self.active
