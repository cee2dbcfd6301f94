"""Keep the model server in step with the registry's promoted adapter: as a runtime LoRA, or merged.

Runtime LoRA: vLLM started with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (the
managed server is) loads an adapter through ``POST /v1/load_lora_adapter``; afterwards
``model=<adapter id>`` selects it. The LLM layer's client does the HTTP (``load_lora`` / ``unload_lora``).

Merged (``finetune.serve_merged``; ``auto`` on a CPU): the adapter is merged into the base weights once
(``ste_mcp.finetune.merge``, a child process) and the managed vLLM restarts on that folder, same port and
served name, so requests without ``model=<adapter>`` get the learned model at base-model speed. Rolling
back restarts it on the previous adapter's merged folder (kept; older ones are merged again when
needed), or on the base model.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ste_mcp.finetune.merge import MergedModels, MergeError, ServeMode, serve_mode
from ste_mcp.finetune.registry import AdapterRegistry
from ste_mcp.llm.base import SupportsLora

log = logging.getLogger(__name__)


class ServingError(Exception):
    """The adapter could not be loaded into the model server."""


class AdapterServing:
    """Serves the promoted adapter through a model server and remembers which one is live."""

    def __init__(
        self,
        model: Any,
        registry: AdapterRegistry,
        *,
        serve_merged: str = "never",
        merged: MergedModels | None = None,
        server: Any = None,
        log_path: Path | None = None,
    ) -> None:
        """``server``: the managed vLLM behind ``model`` (found from its URL when not given); merging
        needs it and ``merged`` (where merged folders live)."""
        self.model = model
        self.registry = registry
        self.serve_merged = serve_merged
        self.merged = merged
        if server is None and merged is not None and hasattr(model, "base_url"):
            from ste_mcp.llm.managed import managed_at

            server = managed_at(model.base_url)
        self.server = server
        self.base_dir: Path | None = Path(server.model_dir) if server is not None else None
        self.log_path = log_path
        self.active: str | None = None  # the adapter name requests can use as ``model=``
        self.merged_id: str | None = None  # the adapter whose merged weights the server runs

    @property
    def live(self) -> str | None:
        """The adapter in use, however it is served (None: the base model)."""
        return self.merged_id or self.active

    def mode(self) -> ServeMode:
        from ste_mcp.hardware import has_cuda

        managed = self.server is not None and self.merged is not None
        try:
            return serve_mode(self.serve_merged, cuda=has_cuda(), managed=managed)
        except MergeError as exc:
            raise ServingError(str(exc)) from exc

    async def sync(self) -> str | None:
        """Serve the promoted adapter (retiring the previous one); returns the ``model=`` name to use
        (None: the served model itself, the base or the merged adapter)."""
        current = self.registry.current()
        wanted = current.id if current is not None else None
        if wanted == self.live:
            return self.active
        if wanted is not None and self.mode() == "merged":
            try:
                await self._serve_merged(wanted)
                return self.active
            except ServingError as exc:
                if self.serve_merged == "always":
                    raise
                log.warning("serving %s as a runtime LoRA instead of merged: %s", wanted, exc)
        await self._serve_lora(wanted)
        return self.active

    async def _serve_merged(self, wanted: str) -> None:
        assert self.merged is not None and self.server is not None and self.base_dir is not None
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a") as logfile:
                    folder = await self.merged.ensure(
                        wanted, self.registry.path(wanted), self.base_dir, log=logfile
                    )
            else:
                folder = await self.merged.ensure(wanted, self.registry.path(wanted), self.base_dir)
        except MergeError as exc:
            raise ServingError(f"could not merge adapter {wanted}: {exc}") from exc
        await self._unload(self.active)
        self.active = None
        await self._switch(folder, f"the merged adapter {wanted}")
        self.merged_id = wanted
        # keep the live folder and the one a rollback goes back to; an older one is merged again if needed
        history = self.registry.history()
        removed = self.merged.prune({wanted, *history[-1:]})
        if removed:
            log.info("removed merged models of %s", ", ".join(removed))

    async def _serve_lora(self, wanted: str | None) -> None:
        if self.merged_id is not None:  # back to the base weights first
            assert self.base_dir is not None
            await self._switch(self.base_dir, "the base model")
            self.merged_id = None
        if wanted == self.active:
            return
        if wanted is not None:
            if not isinstance(self.model, SupportsLora):
                raise ServingError(
                    f"model client {type(self.model).__name__} cannot load LoRA adapters at run time"
                )
            try:
                await self.model.load_lora(wanted, str(self.registry.path(wanted)))
            except Exception as exc:
                raise ServingError(f"could not load adapter {wanted} into the model server: {exc}") from exc
        previous, self.active = self.active, wanted
        await self._unload(previous)

    async def _switch(self, folder: Path, what: str) -> None:
        try:
            await asyncio.to_thread(self.server.switch_model, folder)
        except Exception as exc:
            raise ServingError(f"could not restart the model server on {what} ({folder}): {exc}") from exc
        log.info("model server restarted on %s (%s)", what, folder)

    async def _unload(self, name: str | None) -> None:
        if name is None:
            return
        try:
            await self.model.unload_lora(name)
        except Exception as exc:  # the old adapter staying loaded is harmless
            log.warning("could not unload adapter %s: %s", name, exc)
