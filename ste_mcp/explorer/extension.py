"""The explorer inside ``ste-mcp serve``: background STE exploration and the ``ste-mcp://status`` resource.

Exploration waits for the model, then runs for the server's lifetime in the server's event loop
without blocking it (store access runs in worker threads, model and upstream calls are async).
Turn it off with ``server.explore_in_background = false`` (``serve --no-explore``); pause it by creating the pause
marker (``ste-mcp explore --pause``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
from mcp import types

from ste_mcp.explorer.status import collect_status, pause_marker
from ste_mcp.server.extensions import BaseExtension

if TYPE_CHECKING:
    from pathlib import Path

    from ste_mcp.app import App
    from ste_mcp.explorer.scheduler import Explorer

log = logging.getLogger(__name__)

STATUS_URI = "ste-mcp://status"
MODEL_RETRY_S = 30.0
PAUSE_POLL_S = 2.0


def create(app: App) -> ExplorerExtension:
    return ExplorerExtension(app)


async def follow_pause_marker(explorer: Explorer, marker: Path) -> None:
    """Pause / resume ``explorer`` as the marker file appears / disappears (runs until cancelled)."""
    while True:
        exists = await anyio.to_thread.run_sync(marker.exists)
        if exists and not explorer.paused:
            log.info("explorer paused (%s exists)", marker)
            explorer.pause()
        elif not exists and explorer.paused:
            log.info("explorer resumed")
            explorer.resume()
        await anyio.sleep(PAUSE_POLL_S)


class ExplorerExtension(BaseExtension):
    """Background exploration + the status resource."""

    name = "explorer"

    def __init__(self, app: App) -> None:
        self.app = app
        self.explorer: Explorer | None = None
        self.state = "waiting for the model"

    def list_resources(self) -> list[types.Resource]:
        return [
            types.Resource(
                uri=STATUS_URI,
                name="status",
                title="ste-mcp status",
                description="Per tool: STE trials, successful trials, episodes (and what other features add); "
                "what the explorer is doing now.",
                mime_type="application/json",
            )
        ]

    async def read_resource(self, uri: str) -> str | None:
        if uri != STATUS_URI:
            return None
        status = await anyio.to_thread.run_sync(
            lambda: collect_status(
                self.app.settings,
                store=self.explorer.store if self.explorer else None,
                explorer=self.explorer,
            )
        )
        status["explorer_state"] = self.state
        return json.dumps(status, indent=2, default=str)

    def background(self) -> list[Callable[[], Awaitable[None]]]:
        return [self.run] if self.app.settings.server.explore_in_background else []

    async def run(self) -> None:
        """Explore for the server's lifetime: wait for the model, explore, then look for new work."""
        from ste_mcp.app import ModelUnavailable
        from ste_mcp.explorer.scheduler import Explorer, ExplorerError

        settings = self.app.settings
        while True:
            try:
                explorer = await Explorer.from_app(self.app)
                break
            except ModelUnavailable as exc:
                self.state = f"model unavailable: {exc}"
                log.warning("explorer waiting: %s", exc)
                await anyio.sleep(MODEL_RETRY_S)
        self.explorer = explorer
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow_pause_marker, explorer, pause_marker(settings))
            while True:
                self.state = "exploring"
                try:
                    summary = await explorer.run()
                    self.state = "idle: " + (
                        "; ".join(summary.stopped.values()) or "every tool has its episodes"
                    )
                except ExplorerError as exc:
                    self.state = f"error: {exc}"
                    log.warning("explorer: %s", exc)
                await anyio.sleep(settings.explorer.poll_s)
