"""The runtime shared by the MCP server and the features: settings, tools, upstream client, model.

``App`` is an async context manager (or ``await app.start()`` / ``await app.stop()``)::

    async with App(settings) as app:
        result = await app.upstream.call(app.toolset.get("add"), {"a": 1, "b": 2})

With no specs configured it starts the offline toolbox and serves its packaged spec. Features
(explorer, memory, finetune; ``server.features``, default: those declared in ``ste_mcp/extensions.py``)
plug in through factories ``create(app) -> ServerExtension | None``; a feature whose module is not
installed is skipped. Features reach each other through the app's typed hooks: ``app.describe`` (from
a ``DescriptionProvider``) and ``app.active_adapter()`` (from an ``AdapterProvider``).

Models are opened lazily, one per role: ``await app.model_for("judge")`` is the app's own model unless
``llm.judge`` names another (``LLMSettings.for_role``); roles naming the same model share one client
and server. The app owns them all and closes them on stop.
"""

from __future__ import annotations

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
from ste_mcp.extensions import AdapterProvider, DescriptionProvider, load
from ste_mcp.server.extensions import ServerExtension
from ste_mcp.server.notifications import ToolsChangedNotifier
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs import Toolset, load_toolset
from ste_mcp.upstream.tools import Tool

if TYPE_CHECKING:
    from ste_mcp.llm.base import ChatModel
    from ste_mcp.llm.settings import LLMSettings, Role

__all__ = ["App", "ModelUnavailable"]

log = logging.getLogger(__name__)

MODEL_RETRY_FIRST_S = 30.0
"""After a failed model open, ``get_model()`` fails fast this long before one real retry ..."""
MODEL_RETRY_MAX_S = 600.0
"""... doubling after each further failure up to this; a success resets it."""


class ModelUnavailable(RuntimeError):
    """The model side is missing or cannot be reached; the proxy keeps working without it."""


def default_describe(tool: Tool) -> str:
    return tool.description


class _ModelSlot:
    """One model server / client (shared by the roles that name it) and its open-failure backoff."""

    def __init__(self, llm: LLMSettings, role: str, setting: str) -> None:
        self.llm = llm
        self.role = role  # the first role that asked for it: names its log folder ...
        self.setting = setting  # ... and, as its setting (llm.judge, llm.evaluators #1), error messages
        self.model: ChatModel | None = None
        self.lock = anyio.Lock()  # one in-flight open, shared by concurrent callers
        self.error: tuple[str, Exception] | None = None  # last open failure, re-raised ...
        self.retry_at = 0.0  # ... until this (``App.clock()``)
        self.failures = 0


class App:
    """Settings, toolset, upstream client, extensions and (lazily) the model, opened together."""

    def __init__(
        self,
        settings: Settings,
        *,
        toolset: Toolset | None = None,
        features: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``toolset``: serve these tools instead of loading ``settings.specs``; ``features``: instead of
        ``settings.server.features``; ``clock``: the model-open backoff's clock (seconds, monotonic)."""
        self.settings = settings
        self.clock = clock
        self._given_toolset = toolset
        self.features = settings.server.features if features is None else features
        self.toolset: Toolset = toolset or Toolset([])
        self.upstream = UpstreamClient(settings.upstream)
        self.extensions: list[ServerExtension] = []
        self.describe: Callable[[Tool], str] = default_describe
        self.notifier = ToolsChangedNotifier()
        self.toolbox_url: str | None = None
        self._stack: AsyncExitStack | None = None
        self._models: dict[tuple[str, str | None, str | None, str], _ModelSlot] = {}  # by server key

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
                create = load(factory)
                ext = create(self) if create is not None else None
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
        self._models.clear()
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
        """Serve ``ext``; a ``DescriptionProvider`` also chooses the descriptions (``app.describe``)."""
        self.extensions.append(ext)
        if isinstance(ext, DescriptionProvider):
            self.describe = ext.describe

    def active_adapter(self) -> str | None:
        """The LoRA adapter an ``AdapterProvider`` serves on the app's own model now (``model=``), if any."""
        for ext in self.extensions:
            if isinstance(ext, AdapterProvider) and (adapter := ext.active_adapter) is not None:
                return adapter
        return None

    async def notify_tools_changed(self) -> None:
        """Tell every connected client (both protocol generations) that tools/list changed."""
        await self.notifier.notify()

    def extension(self, name: str) -> ServerExtension | None:
        """The installed feature called ``name`` (``memory``, ``finetune``, ...), if any."""
        return next((e for e in self.extensions if getattr(e, "name", "") == name), None)

    async def get_model(self) -> ChatModel:
        """The app's own model (the one served and trained): ``model_for("main")``."""
        return await self.model_for("main")

    def uses_main_model(self, role: Role) -> bool:
        """Whether ``role`` is played by the app's own model (then it may use the served adapter)."""
        return self.settings.llm.for_role(role) is self.settings.llm

    async def model_for(self, role: Role) -> ChatModel:
        """The model ``role`` uses, opened on first use with ``ste_mcp.llm.open_model``.

        ``main`` and every role without a model of its own get the same client; a role with one
        (``llm.explorer`` / ``llm.judge`` / ``llm.paraphrase``) gets an external client or a managed
        vLLM of its own, logging under ``logs/<role>/``. A failed open is remembered per model: until
        the backoff (``MODEL_RETRY_FIRST_S`` doubling to ``MODEL_RETRY_MAX_S``) has passed, calls
        raise the same ``ModelUnavailable`` at once, naming when the next attempt will be made; then
        one call really retries. Success resets the backoff.
        """
        return await self._open(self.settings.llm.for_role(role), role, f"llm.{role}")

    async def evaluator_models(self) -> list[ChatModel]:
        """The models the description gate asks: the app's own, then each of ``llm.evaluators`` (one
        that names the app's model is not asked twice), opened as ``model_for`` opens a role's model;
        an extra evaluator logs under ``logs/evaluator-N/``."""
        models = [await self.get_model()]
        for i in range(len(self.settings.llm.evaluators)):
            llm = self.settings.llm.for_evaluator(i)
            model = await self._open(llm, f"evaluator-{i + 1}", f"llm.evaluators #{i + 1}")
            if all(model is not m for m in models):
                models.append(model)
        return models

    async def _open(self, llm: LLMSettings, role: str, setting: str) -> ChatModel:
        """The model of ``llm`` (one slot per server key), opened on first use with backoff; ``role``
        names its log folder, ``setting`` the configuration that chose it (in error messages)."""
        if self._stack is None:
            raise RuntimeError(f"App.model_for({role!r}) before App.start()")
        slot = self._models.get(llm.server_key())
        if slot is None:
            slot = self._models[llm.server_key()] = _ModelSlot(llm, role, setting)
        async with slot.lock:
            if slot.model is not None:
                return slot.model
            if slot.error is not None and self.clock() < slot.retry_at:
                message, cause = slot.error
                raise ModelUnavailable(message) from cause
            try:
                from ste_mcp.llm import open_model
            except ImportError as exc:
                raise ModelUnavailable(f"the model side is not installed: {exc}") from exc
            own = llm is self.settings.llm
            opener = (
                open_model(self.settings)
                if own
                else open_model(
                    self.settings.model_copy(update={"llm": llm}),
                    logs_dir=self.settings.logs_dir / slot.role,
                )
            )
            try:
                slot.model = await self._stack.enter_async_context(opener)
            except Exception as exc:
                delay = min(MODEL_RETRY_FIRST_S * 2**slot.failures, MODEL_RETRY_MAX_S)
                slot.failures += 1
                slot.retry_at = self.clock() + delay
                when = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
                whose = "" if own else f" ({slot.setting})"
                message = (
                    f"cannot open model {llm.model!r}{whose}: {exc} (failed "
                    f"{slot.failures} time(s); next attempt after {when}, backoff {delay:.0f} s)"
                )
                slot.error = (message, exc)
                raise ModelUnavailable(message) from exc
            slot.error, slot.retry_at, slot.failures = None, 0.0, 0
            return slot.model
