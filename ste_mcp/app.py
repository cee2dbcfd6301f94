"""The runtime shared by the MCP server and the features: settings, tools, upstream client, model.

``App`` is an async context manager (or ``await app.start()`` / ``await app.stop()``)::

    async with App(settings) as app:
        result = await app.upstream.call(app.toolset.get("add"), {"a": 1, "b": 2})

With no specs configured it starts the offline toolbox and serves its packaged spec. Features
(explorer, memory, finetune; ``server.features``, default ``FEATURES``) plug in through factories
``create(app) -> ServerExtension | None``; a feature whose module is not installed is skipped.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from ste_mcp.config import Settings
from ste_mcp.server.extensions import ServerExtension
from ste_mcp.server.notifications import ToolsChangedNotifier
from ste_mcp.server.settings import FEATURES
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs import Toolset, load_toolset
from ste_mcp.upstream.tools import Tool

if TYPE_CHECKING:
    from ste_mcp.llm.base import ChatModel

__all__ = ["FEATURES", "App", "ModelUnavailable"]

log = logging.getLogger(__name__)

MODEL_RETRY_FIRST_S = 30.0
"""After a failed model open, ``get_model()`` fails fast this long before one real retry ..."""
MODEL_RETRY_MAX_S = 600.0
"""... doubling after each further failure up to this; a success resets it."""

_monotonic = time.monotonic  # the backoff clock (tests replace it; the event loop keeps its own)


class ModelUnavailable(RuntimeError):
    """The model side is missing or cannot be reached; the proxy keeps working without it."""


def default_describe(tool: Tool) -> str:
    return tool.description


class App:
    """Settings, toolset, upstream client, extensions and (lazily) the model, opened together."""

    def __init__(
        self,
        settings: Settings,
        *,
        toolset: Toolset | None = None,
        features: list[str] | None = None,
    ):
        self.settings = settings
        self._given_toolset = toolset
        self.features = settings.server.features if features is None else features
        self.toolset: Toolset = toolset or Toolset([])
        self.upstream = UpstreamClient(settings.upstream)
        self.extensions: list[ServerExtension] = []
        self.describe: Callable[[Tool], str] = default_describe
        self.notifier = ToolsChangedNotifier()
        self.toolbox_url: str | None = None
        self._stack: AsyncExitStack | None = None
        self._model: ChatModel | None = None
        self._model_lock = anyio.Lock()  # one in-flight open, shared by concurrent callers
        self._model_error: tuple[str, Exception] | None = None  # last open failure, re-raised ...
        self._model_retry_at = 0.0  # ... until this (``_monotonic()``)
        self._model_failures = 0

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def started(self) -> bool:
        return self._stack is not None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> App:
        """Start the toolbox (when no specs), load the toolset, open the upstream client, create features."""
        if self._stack is not None:
            return self
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            variables: dict[str, str] = {}
            if self._given_toolset is None and not self.settings.specs:
                variables["TOOLBOX_URL"] = await self._start_toolbox(stack)
            if self._given_toolset is None:
                self.toolset = await anyio.to_thread.run_sync(
                    lambda: load_toolset(self.settings, variables=variables)
                )
            await stack.enter_async_context(self.upstream)
            for factory in self.features:
                ext = _create_feature(factory, self)
                if ext is not None:
                    self.add_extension(ext)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        log.info("ste-mcp ready: %d tools (%d visible)", len(self.toolset), len(self.toolset.visible()))
        return self

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        self._model = None
        self._model_error, self._model_retry_at, self._model_failures = None, 0.0, 0
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> App:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _start_toolbox(self, stack: AsyncExitStack) -> str:
        from ste_mcp.toolbox.server import start_toolbox

        if inspect.iscoroutinefunction(start_toolbox):
            handle = await start_toolbox(host="127.0.0.1", port=0)
        else:  # a thread-backed server: wait for it off the event loop
            handle = await anyio.to_thread.run_sync(lambda: start_toolbox(host="127.0.0.1", port=0))

        async def stop_toolbox() -> None:
            stopped = handle.stop()
            if inspect.isawaitable(stopped):
                await stopped

        stack.push_async_callback(stop_toolbox)
        self.toolbox_url = handle.url
        log.info("offline toolbox at %s", handle.url)
        return handle.url

    # ------------------------------------------------------------ features

    def add_extension(self, ext: ServerExtension) -> None:
        self.extensions.append(ext)

    async def notify_tools_changed(self) -> None:
        """Tell every connected client (both protocol generations) that tools/list changed."""
        await self.notifier.notify()

    def extension(self, name: str) -> ServerExtension | None:
        """The installed feature called ``name`` (``memory``, ``finetune``, ...), if any."""
        return next((e for e in self.extensions if getattr(e, "name", "") == name), None)

    async def get_model(self) -> ChatModel:
        """The chat model, opened on first use with ``ste_mcp.llm.open_model(settings)``.

        A failed open is remembered: until the backoff (``MODEL_RETRY_FIRST_S`` doubling to
        ``MODEL_RETRY_MAX_S``) has passed, calls raise the same ``ModelUnavailable`` at once, naming
        when the next attempt will be made; then one call really retries. Success resets the backoff.
        """
        if self._stack is None:
            raise RuntimeError("App.get_model() before App.start()")
        async with self._model_lock:
            if self._model is not None:
                return self._model
            if self._model_error is not None and _monotonic() < self._model_retry_at:
                message, cause = self._model_error
                raise ModelUnavailable(message) from cause
            try:
                from ste_mcp.llm import open_model
            except ImportError as exc:
                raise ModelUnavailable(f"the model side is not installed: {exc}") from exc
            try:
                self._model = await self._stack.enter_async_context(open_model(self.settings))
            except Exception as exc:
                delay = min(MODEL_RETRY_FIRST_S * 2**self._model_failures, MODEL_RETRY_MAX_S)
                self._model_failures += 1
                self._model_retry_at = _monotonic() + delay
                when = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
                message = (
                    f"cannot open model {self.settings.llm.model!r}: {exc} (failed "
                    f"{self._model_failures} time(s); next attempt after {when}, backoff {delay:.0f} s)"
                )
                self._model_error = (message, exc)
                raise ModelUnavailable(message) from exc
            self._model_error, self._model_retry_at, self._model_failures = None, 0.0, 0
            return self._model


def _create_feature(factory: str, app: App) -> ServerExtension | None:
    module_name, _, attr = factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            log.debug("feature %s not installed", module_name)
            return None
        raise
    return getattr(module, attr)(app)
