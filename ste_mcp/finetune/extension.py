"""The fine-tuning feature in ``ste-mcp serve``: periodic rounds and the live adapter.

Every ``finetune.poll_s`` it serves the promoted adapter if that changed (also after ``ste-mcp
adapters promote|rollback`` in another process): loaded as a runtime LoRA, or merged into the base
weights with the managed vLLM restarted on them (``finetune.serve_merged``), and it starts a round when
``train_every_n_exemplars`` new approved exemplars arrived since the last one, or when
``schedule_minutes`` passed. The round trains in a child process, so serving never stalls.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ste_mcp.finetune.merge import MergedModels, merged_dir
from ste_mcp.finetune.registry import AdapterRegistry
from ste_mcp.finetune.rounds import RoundError, RoundResult, round_from_settings
from ste_mcp.finetune.serving import AdapterServing, ServingError
from ste_mcp.server.extensions import BaseExtension

if TYPE_CHECKING:
    from ste_mcp.app import App

log = logging.getLogger(__name__)

STATUS_URI = "ste-mcp://adapters"


def create(app: App) -> FinetuneExtension | None:
    return FinetuneExtension(app) if app.settings.finetune.enabled_in_serve else None


def approved_count(app: App) -> int:
    from ste_mcp.memory.db import Memory

    counts = Memory.open(app.settings).exemplars.counts()
    return sum(c.get("approved", 0) for c in counts.values())


class FinetuneExtension(BaseExtension):
    """Triggers rounds and keeps the served adapter current."""

    name = "finetune"

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings.finetune
        self.registry = AdapterRegistry(app.settings.adapters_dir)
        self.serving: AdapterServing | None = None
        self.last_result: RoundResult | None = None
        self._baseline: int | None = None  # approved exemplars when the last round started
        self._last_round = time.monotonic()

    @property
    def active_adapter(self) -> str | None:
        """The adapter name to pass as ``model=`` (None: the served model, base or merged adapter)."""
        return self.serving.active if self.serving else None

    def due(self, approved: int) -> bool:
        """Whether a round should start now, given the number of approved exemplars."""
        if self._baseline is None:  # first look: what exists now was there before this server
            self._baseline = approved if self.registry.current() is not None else 0
        if approved - self._baseline >= self.settings.train_every_n_exemplars:
            return True
        schedule = self.settings.schedule_minutes
        return schedule is not None and time.monotonic() - self._last_round >= schedule * 60

    async def sync_adapter(self) -> None:
        """Load the promoted adapter into the model server when it changed."""
        if self.serving is None:
            if self.registry.current() is None:
                return  # nothing to serve: do not open the model just for this
            settings = self.app.settings
            self.serving = AdapterServing(
                await self.app.get_model(),
                self.registry,
                serve_merged=self.settings.serve_merged,
                merged=MergedModels(merged_dir(settings)),
                log_path=settings.logs_dir / "finetune.log",
            )
        await self.serving.sync()

    async def run_once(self) -> RoundResult:
        """One round now (the training runs in a child process), then serve the result."""
        self._baseline = await anyio.to_thread.run_sync(approved_count, self.app)
        self._last_round = time.monotonic()
        self.app.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        with (self.app.settings.logs_dir / "finetune.log").open("a") as logfile:
            result = await round_from_settings(self.app.settings, toolset=self.app.toolset, log=logfile)
        self.last_result = result
        log.info("fine-tuning round: %s (%s)", result.status, result.reason)
        await self.sync_adapter()
        return result

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync_adapter()
                if self.due(await anyio.to_thread.run_sync(approved_count, self.app)):
                    await self.run_once()
            except (RoundError, ServingError) as exc:
                log.warning("fine-tuning: %s", exc)
            except Exception as exc:  # the server must keep serving whatever a round does
                log.exception("fine-tuning loop error: %s", exc)
            await anyio.sleep(self.settings.poll_s)

    def background(self) -> list[Callable[[], Awaitable[None]]]:
        return [self._loop]

    def list_resources(self):
        from mcp import types

        return [
            types.Resource(
                uri=STATUS_URI,
                name="adapters",
                description="Fine-tuned LoRA adapters: which one is served, and each one's metrics and status.",
                mime_type="application/json",
            )
        ]

    async def read_resource(self, uri: str) -> str | None:
        if uri != STATUS_URI:
            return None
        current = self.registry.current()
        return json.dumps(
            {
                "active": self.active_adapter,
                "merged": self.serving.merged_id if self.serving else None,
                "promoted": current.id if current else None,
                "last_round": self.last_result.model_dump(mode="json") if self.last_result else None,
                "adapters": [
                    m.model_dump(
                        mode="json", include={"id", "status", "status_reason", "base_model", "metrics"}
                    )
                    for m in self.registry.list()
                ],
            },
            indent=2,
        )
