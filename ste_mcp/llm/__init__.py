"""The model side: one OpenAI-compatible client, a managed vLLM server, packaged models, call protocols.

``open_model(settings)`` is the entry point: it connects to ``settings.llm.base_url`` when one is
configured, else prepares ``settings.llm.model`` and serves it with a managed vLLM.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from ste_mcp.llm.base import (
    ChatModel,
    ChatResponse,
    Choice,
    ContextTooLong,
    Message,
    ModelError,
    ToolCall,
    Usage,
)
from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.llm.managed import ManagedVLLM
from ste_mcp.llm.protocols import (
    FinalAnswer,
    NativeToolProtocol,
    ParsedCall,
    ParseError,
    ReActProtocol,
    format_react_call,
    protocol_for,
    tool_def,
)
from ste_mcp.llm.sources import ChecksumError, ModelSourceError, PreparedModel, prepare_model, served_name

if TYPE_CHECKING:
    from ste_mcp.config import Settings

__all__ = [
    "ChatModel",
    "ChatResponse",
    "ChecksumError",
    "Choice",
    "ContextTooLong",
    "FinalAnswer",
    "ManagedVLLM",
    "Message",
    "ModelError",
    "ModelSourceError",
    "NativeToolProtocol",
    "OpenAIChatModel",
    "ParseError",
    "ParsedCall",
    "PreparedModel",
    "ReActProtocol",
    "ToolCall",
    "Usage",
    "format_react_call",
    "managed_server",
    "open_model",
    "prepare_model",
    "protocol_for",
    "served_name",
    "tool_def",
]


def managed_server(
    settings: Settings, prepared: PreparedModel, *, logs_dir: Path | None = None
) -> ManagedVLLM:
    """A (not yet started) managed vLLM for ``prepared`` configured from ``settings``; its log goes to
    ``logs_dir`` (default ``settings.logs_dir``)."""
    llm = settings.llm
    return ManagedVLLM(
        prepared.path,
        llm.served_model_name or prepared.name,
        logs_dir=logs_dir or settings.logs_dir,
        max_model_len=llm.max_model_len,
        kv_cache_gib=llm.kv_cache_gib,
        startup_timeout_s=llm.startup_timeout_s,
        enforce_eager=llm.enforce_eager,
        max_lora_rank=llm.max_lora_rank,
        max_loras=llm.max_loras,
        dtype=llm.dtype,
        reserved_cores=llm.cpu_reserved_cores,
    )


def _client(
    settings: Settings, base_url: str, model: str, server: ManagedVLLM | None = None
) -> OpenAIChatModel:
    llm = settings.llm
    return OpenAIChatModel(
        base_url,
        model,
        api_key=os.environ.get(llm.api_key_env) or None,
        max_concurrency=llm.max_concurrency,
        timeout_s=llm.timeout_s,
        retries=llm.retries,
        ensure_ready=server.wait_ready if server else None,
        replica_urls=llm.replica_urls if server is None else (),
    )


@contextlib.asynccontextmanager
async def open_model(
    settings: Settings, *, progress: bool = True, logs_dir: Path | None = None
) -> AsyncIterator[OpenAIChatModel]:
    """Yield a ``ChatModel`` for ``settings``: an external server, or a managed vLLM stopped on exit
    (``logs_dir``: where it logs, default ``settings.logs_dir``; a second server needs its own).

    Raises ``ModelError`` (server unreachable / failed to start) or ``ModelSourceError`` (bad model).
    """
    llm = settings.llm
    if llm.base_url:
        model = _client(settings, llm.base_url, llm.served_model_name or served_name(llm.model))
        try:
            await model.list_models()  # fail now, with the server's address, if it is unreachable
            yield model
        finally:
            await model.aclose()
        return
    try:
        prepared = await asyncio.to_thread(prepare_model, llm.model, settings.models_dir, progress=progress)
    except asyncio.CancelledError:  # a thread cannot be stopped: say why the exit waits for it
        print(
            f"[ste-mcp model] stopping: waiting for the preparation of {llm.model} to end first"
            " (a first-run conversion takes about a minute; what it writes is kept for the next start)",
            file=sys.stderr,
            flush=True,
        )
        raise
    server = managed_server(settings, prepared, logs_dir=logs_dir)
    if not progress:
        server.progress = None
    atexit.register(server.stop)
    try:
        await asyncio.to_thread(server.start)
        model = _client(settings, server.base_url, server.served_name, server)
        try:
            yield model
        finally:
            await model.aclose()
    finally:
        await asyncio.to_thread(server.stop)
        atexit.unregister(server.stop)
