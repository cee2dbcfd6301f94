"""``OpenAIChatModel``: the one client for OpenAI-compatible servers (vLLM managed or external).

Async over httpx, with a concurrency limit, retries with exponential backoff and jitter on 429 / 5xx
/ connection errors, cumulative token accounting, and errors that name the server and the failure.
vLLM extras: ``structured`` (sent as ``structured_outputs``: json / regex / choice / grammar), ``prefix``
(the reply's start, continued by the model) and runtime LoRA adapters (``load_lora`` / ``unload_lora``; then ``model=<adapter name>``).

A fleet: ``base_url`` may be a router (any OpenAI-compatible load balancer) over several vLLM replicas.
A router forwards ``/v1/load_lora_adapter`` to ONE replica, so with ``replica_urls`` adapters are loaded
into (and unloaded from) every replica directly; chat still goes through ``base_url``. A replica that
answers 404 for a loaded adapter (it restarted and lost it) gets every adapter again, and the request is
retried once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from ste_mcp.llm.base import ChatResponse, Choice, ContextTooLong, Message, ModelError, ToolCall, Usage

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# connection-level failures worth another try; a read timeout is not retried (the request may be running)
RETRY_EXCEPTIONS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
log = logging.getLogger(__name__)


class _NotFound(ModelError):
    """The server answered 404 (for a chat request: it does not serve that model name)."""


def api_root(base_url: str) -> str:
    """``http://host:port/v1`` from a base URL given with or without ``/v1``."""
    url = base_url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


class OpenAIChatModel:
    """A ``ChatModel`` over an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        ensure_ready: Callable[[], Awaitable[int]] | None = None,
        replica_urls: Sequence[str] = (),
    ) -> None:
        """``replica_urls``: the servers behind ``base_url`` (a router) that adapters are loaded into."""
        self.base_url = api_root(base_url)
        self.replicas = [api_root(url) for url in replica_urls]
        self._model = model
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._semaphore = asyncio.Semaphore(max_concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )
        self.usage = Usage()
        self.requests = 0
        self.loras: dict[str, str] = {}  # adapters this client loaded: name -> path
        # managed servers: waits while the server (re)starts and returns its start count
        self._ensure_ready = ensure_ready
        self._generation: int | None = None
        self._reload_lock = asyncio.Lock()

    @property
    def model(self) -> str:
        return self._model

    @property
    def server_root(self) -> str:
        return self.base_url.removesuffix("/v1")

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        stop: list[str] | None = None,
        n: int = 1,
        response_format: dict[str, Any] | None = None,
        structured: dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        prefix: str | None = None,
    ) -> ChatResponse:
        """One chat completion. ``prefix``: the reply starts with this text and the model continues it
        (vLLM's ``continue_final_message``); the response's text includes it."""
        if prefix:
            messages = [*messages, {"role": "assistant", "content": prefix}]
        payload: dict[str, Any] = {
            "model": model or self._model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "n": n,
        }
        optional = {
            "stop": stop,
            "response_format": response_format,
            "structured_outputs": structured,
            "tools": tools,
            "tool_choice": tool_choice,
        }
        payload.update({k: v for k, v in optional.items() if v is not None})
        if prefix:
            payload.update(add_generation_prompt=False, continue_final_message=True)
        t0 = time.perf_counter()
        try:
            body = await self._request("POST", "/chat/completions", payload)
        except _NotFound:
            if payload["model"] not in self.loras:
                raise
            log.warning(
                "a model server lost adapter %s (restarted?): loading adapters again", payload["model"]
            )
            await self._reload_loras()
            body = await self._request("POST", "/chat/completions", payload)
        response = _parse_completion(body, payload["model"], self.base_url)
        if prefix:
            for choice in response.choices:
                if not choice.tool_calls:
                    choice.text = prefix + choice.text
        response.latency_ms = (time.perf_counter() - t0) * 1000
        self.usage.prompt_tokens += response.usage.prompt_tokens
        self.usage.completion_tokens += response.usage.completion_tokens
        return response

    async def list_models(self) -> list[str]:
        """Ids the server serves: the base model and the loaded LoRA adapters."""
        body = await self._request("GET", "/models")
        return [m["id"] for m in body.get("data", [])]

    async def load_lora(self, name: str, path: str, *, replace: bool = True) -> None:
        """Load a PEFT adapter folder (a path on the server's machine: on every replica's, with
        ``replica_urls``) as model ``name``."""
        await self._server_ready()  # records the server's start count the adapter is loaded into
        payload = {"lora_name": name, "lora_path": str(path), "load_inplace": replace}
        await self._on_every_server(
            "/load_lora_adapter", payload, what=f"loading LoRA adapter {name!r} from {path}"
        )
        self.loras[name] = str(path)

    async def unload_lora(self, name: str) -> None:
        await self._on_every_server(
            "/unload_lora_adapter", {"lora_name": name}, what=f"unloading LoRA adapter {name!r}"
        )
        self.loras.pop(name, None)

    async def _on_every_server(self, path: str, payload: Any, *, what: str) -> None:
        """POST to ``base_url``, or to every replica at once; the error names each replica that failed."""
        if not self.replicas:
            await self._request("POST", path, payload, what=what)
            return
        results = await asyncio.gather(
            *(self._request("POST", path, payload, what=what, root=root) for root in self.replicas),
            return_exceptions=True,
        )
        failed = [
            (root, r) for root, r in zip(self.replicas, results, strict=True) if isinstance(r, BaseException)
        ]
        for _, error in failed:
            if not isinstance(error, Exception):
                raise error
        if failed:
            raise ModelError(
                f"{what} failed on {len(failed)} of {len(self.replicas)} replicas: "
                + "; ".join(str(error) for _, error in failed)
            )

    async def _reload_loras(self) -> None:
        for name, path in list(self.loras.items()):
            payload = {"lora_name": name, "lora_path": path, "load_inplace": True}
            await self._on_every_server(
                "/load_lora_adapter", payload, what=f"reloading LoRA adapter {name!r}"
            )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> OpenAIChatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(
        self, method: str, path: str, payload: Any = None, *, what: str = "", root: str | None = None
    ) -> Any:
        async with self._semaphore:
            return await self._send(method, path, payload, what=what, root=root)

    async def _send(
        self, method: str, path: str, payload: Any = None, *, what: str = "", root: str | None = None
    ) -> Any:
        """One request to ``root`` (default ``base_url``) with retries."""
        where = root or self.base_url
        url = where + path
        last, retry_after = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, retry_after))
                await self._server_ready()
            retry_after = None
            self.requests += 1
            try:
                r = await self._http.request(method, url, json=payload)
            except RETRY_EXCEPTIONS as exc:
                last = f"unreachable: {type(exc).__name__}: {exc}"
                continue
            except httpx.TimeoutException:
                raise ModelError(f"model server at {where} timed out after {self.timeout_s:g} s") from None
            except httpx.HTTPError as exc:
                raise ModelError(f"model server at {where} failed: {type(exc).__name__}: {exc}") from exc
            if r.status_code in RETRY_STATUS:
                last = f"answered {r.status_code}: {_error_text(r)}"
                retry_after = r.headers.get("retry-after")
                continue
            if r.status_code >= 400:
                doing = f" {what}" if what else " the request"
                text = _error_text(r)
                error: type[ModelError] = ModelError
                if r.status_code == 400 and "context length" in text:
                    error = ContextTooLong
                elif r.status_code == 404:
                    error = _NotFound
                raise error(f"model server at {where} rejected{doing} ({r.status_code}): {text}")
            if "json" not in r.headers.get("content-type", ""):
                return r.text  # e.g. vLLM's "Success: LoRA adapter ... added successfully."
            try:
                return r.json()
            except json.JSONDecodeError:
                raise ModelError(f"model server at {where} sent invalid JSON for {path}") from None
        tries = f" (after {self.retries + 1} attempts)" if self.retries else ""
        raise ModelError(f"model server at {where} {last}{tries}")

    async def _server_ready(self) -> None:
        """For a managed server: wait while it restarts, then reload this client's adapters into it."""
        if self._ensure_ready is None:
            return
        generation = await self._ensure_ready()
        if self._generation is None:
            self._generation = generation
        if generation == self._generation:
            return
        async with self._reload_lock:
            if generation != self._generation:
                self._generation = generation
                for name, path in list(self.loras.items()):
                    await self._send("POST", "/load_lora_adapter", {"lora_name": name, "lora_path": path})

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            return min(float(retry_after), 30.0)
        base = self.backoff_s * 2 ** (attempt - 1)
        return base + random.uniform(0, base)


def _error_text(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300] or r.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or error)[:300]


def _parse_completion(body: dict[str, Any], model: str, where: str) -> ChatResponse:
    try:
        choices = []
        for c in body["choices"]:
            msg = c.get("message") or {}
            calls = [
                ToolCall(
                    id=t.get("id") or "",
                    name=t["function"]["name"],
                    arguments=t["function"].get("arguments") or "",
                )
                for t in msg.get("tool_calls") or []
            ]
            choices.append(
                Choice(text=msg.get("content") or "", tool_calls=calls, finish_reason=c.get("finish_reason"))
            )
        usage = body.get("usage") or {}
        return ChatResponse(
            model=body.get("model") or model,
            choices=choices,
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            ),
        )
    except (KeyError, TypeError) as exc:
        raise ModelError(f"model server at {where} sent an unexpected completion ({exc!r})") from exc
