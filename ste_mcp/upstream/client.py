"""Calls to upstream HTTP APIs through one pooled ``httpx2.AsyncClient``.

httpx2 is the maintained httpx fork the MCP SDK itself uses; its connection pool stays fast under
concurrency, where httpx 0.28's pool rescans every connection per request (several times fewer
calls/s at 64 concurrent calls here, see docs/BENCHMARKS.md).

``UpstreamClient.call`` never raises for upstream trouble: it returns a ``ToolResult`` with
``is_error=True``, an ``error_kind`` and a specific message (an unexpected exception too: ``internal``).
Arguments are validated before any request (scalars bound for a string query/path/header parameter are
first written as OpenAPI serialises them: ``true`` -> ``"true"``); the tool's base URL is an allowlist
(see ``urls.py``); a redirect is followed only inside it (same origin and base path). JSON responses
nested deeper than ``MAX_JSON_DEPTH`` come back as text only (no structured content).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from functools import lru_cache
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx2

from ste_mcp.safety.redact import Redactor
from ste_mcp.upstream.settings import UpstreamSettings
from ste_mcp.upstream.tools import Tool, ToolResult
from ste_mcp.upstream.urls import (
    InvalidArgument,
    RequestParts,
    UnsafeRequest,
    build_request,
    origin,
    within_base,
)
from ste_mcp.upstream.validation import MAX_JSON_DEPTH, coerce_scalars, json_depth, validate_arguments

log = logging.getLogger(__name__)

EXPLORER_HEADER = "X-STE-MCP-Explorer"
MAX_REDIRECTS = 5
SHORT_BODY = 500
RETRY_STATUSES = frozenset({502, 503, 504})
BACKOFF_S = 0.2


class UpstreamClient:
    """The one pooled HTTP client for all upstream calls (async context manager)."""

    def __init__(self, settings: UpstreamSettings | None = None):
        self.settings = settings or UpstreamSettings()
        self._http: httpx2.AsyncClient | None = None
        self.stats: dict[str, dict[str, int]] = defaultdict(lambda: {"calls": 0, "errors": 0, "requests": 0})

    async def __aenter__(self) -> UpstreamClient:
        s = self.settings
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(s.read_timeout_s, connect=s.connect_timeout_s),
            limits=httpx2.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_connections
            ),
            follow_redirects=False,
            trust_env=False,  # never route upstream calls through environment proxies
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def call(
        self,
        tool: Tool,
        arguments: dict[str, Any] | None,
        *,
        purpose: Literal["client", "explore"] = "client",
    ) -> ToolResult:
        """Call ``tool`` with ``arguments``; upstream trouble becomes an ``is_error`` result."""
        if self._http is None:
            raise RuntimeError("UpstreamClient used outside 'async with'")
        arguments = {} if arguments is None else arguments
        base_url = (tool.explore.sandbox_base_url if purpose == "explore" else None) or tool.base_url
        key = "{}://{}:{}".format(*origin(base_url))
        stats = self.stats[key]
        stats["calls"] += 1
        started = time.perf_counter()
        deadline = self.settings.call_timeout_s
        try:
            with anyio.fail_after(deadline):
                result = await self._call(tool, arguments, base_url, purpose, stats)
        except TimeoutError:
            result = ToolResult(
                is_error=True,
                error_kind="timeout",
                text=f"{tool.name}: the upstream gave no complete answer within {deadline:g} s "
                "(upstream.call_timeout_s, retries included)",
            )
        except Exception as exc:  # a bug must reach the client as an error result, not a protocol error
            log.exception("tool %s: unexpected error", tool.name)
            result = ToolResult(
                is_error=True,
                error_kind="internal",
                text=f"ste-mcp failed to call {tool.name}: {type(exc).__name__} (details are in its log)",
            )
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        if result.is_error:
            stats["errors"] += 1
            log.info("tool %s: %s error (%s)", tool.name, result.error_kind, result.status)
        return result

    async def _call(
        self, tool: Tool, arguments: dict[str, Any], base_url: str, purpose: str, stats: dict[str, int]
    ) -> ToolResult:
        arguments = coerce_scalars(tool, arguments)
        problem = validate_arguments(tool, arguments)
        if problem:
            return ToolResult(is_error=True, error_kind="validation", text=f"Invalid arguments: {problem}")
        try:
            parts = build_request(tool, arguments, base_url)
        except InvalidArgument as exc:
            return ToolResult(is_error=True, error_kind="validation", text=f"Invalid arguments: {exc}")
        except UnsafeRequest as exc:
            return ToolResult(is_error=True, error_kind="ssrf", text=f"Refused: {exc}")
        secrets: list[str] = []
        for auth in tool.auth:
            value = os.environ.get(auth.env)
            if not value:
                return ToolResult(
                    is_error=True,
                    error_kind="auth",
                    text=f"Auth not configured: environment variable {auth.env} is not set",
                )
            secrets.append(value)
            if auth.kind == "bearer":
                parts.headers["Authorization"] = f"Bearer {value}"
            elif auth.kind == "header":
                parts.headers[auth.name] = value
            else:
                parts.params.append((auth.name, value))
        if purpose == "explore":
            parts.headers[EXPLORER_HEADER] = "1"
        redactor = _redactor(tuple(sorted(set(secrets)))) if secrets else None
        attempts = 1 + (self.settings.retries if tool.is_idempotent else 0)
        result = ToolResult(is_error=True, error_kind="internal", text="no attempt made")
        for attempt in range(attempts):
            if attempt:
                await anyio.sleep(BACKOFF_S * 2 ** (attempt - 1))
            result = await self._attempt(parts, base_url, stats, redactor)
            retryable = result.error_kind in ("connect", "timeout") or (
                result.error_kind == "http" and result.status in RETRY_STATUSES
            )
            if not retryable:
                break
        return result

    async def _attempt(
        self, parts: RequestParts, base_url: str, stats: dict[str, int], redactor: Redactor | None
    ) -> ToolResult:
        assert self._http is not None
        try:
            request = self._http.build_request(
                parts.method,
                parts.url,
                params=parts.params,
                headers=parts.headers,
                json=parts.json,
                data=parts.data,
            )
        except httpx2.InvalidURL as exc:
            return ToolResult(
                is_error=True, error_kind="validation", text=f"Invalid arguments: {_too_long(parts, exc)}"
            )
        except ValueError as exc:  # a value HTTP cannot carry (e.g. a non-ASCII auth header value)
            return ToolResult(
                is_error=True,
                error_kind="validation",
                text=f"Invalid arguments: the request cannot be encoded ({type(exc).__name__}: {exc})",
            )
        for _ in range(MAX_REDIRECTS + 1):
            try:
                stats["requests"] += 1
                response = await self._http.send(request, stream=True)
            except httpx2.ConnectError:
                return ToolResult(
                    is_error=True,
                    error_kind="connect",
                    text=f"Upstream {_where(base_url)} refused the connection",
                )
            except httpx2.TimeoutException as exc:
                phase = "connecting" if isinstance(exc, httpx2.ConnectTimeout) else "waiting for the response"
                return ToolResult(
                    is_error=True, error_kind="timeout", text=f"Upstream {_where(base_url)} timed out {phase}"
                )
            except httpx2.HTTPError as exc:
                return ToolResult(
                    is_error=True,
                    error_kind="connect",
                    text=f"Upstream {_where(base_url)} failed: {type(exc).__name__}",
                )
            try:
                if response.is_redirect and response.next_request is not None:
                    target = response.next_request
                    if not within_base(target.url, base_url):
                        where = (
                            f"to another origin ({target.url.scheme}://{target.url.host})"
                            if origin(target.url) != origin(base_url)
                            else f"outside the tool's base URL {base_url} (to {target.url.path[:200]})"
                        )
                        return ToolResult(
                            is_error=True,
                            status=response.status_code,
                            error_kind="ssrf",
                            text=f"Refused: upstream redirected {where}",
                        )
                    request = target
                    continue
                return await self._read(response, redactor)
            except httpx2.TimeoutException:
                return ToolResult(
                    is_error=True,
                    error_kind="timeout",
                    text=f"Upstream {_where(base_url)} timed out sending the body",
                )
            except httpx2.HTTPError as exc:
                return ToolResult(
                    is_error=True,
                    error_kind="connect",
                    text=f"Upstream {_where(base_url)} failed mid-response: {type(exc).__name__}",
                )
            finally:
                await response.aclose()
        return ToolResult(
            is_error=True, error_kind="redirect", text=f"Too many redirects (more than {MAX_REDIRECTS})"
        )

    async def _read(self, response: httpx2.Response, redactor: Redactor | None) -> ToolResult:
        """The result of ``response``: an upstream may echo the credential (e.g. in an error message),
        in any encoding, so it is redacted before the body is cut (a cut could split it)."""
        cap = self.settings.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                truncated = True
                break
        body = b"".join(chunks)
        try:
            text = body.decode(response.encoding or "utf-8", errors="replace")
        except LookupError:  # an unknown charset
            text = body.decode("utf-8", errors="replace")
        if redactor is not None:
            text = redactor.redact_known(text)
        if truncated:
            text = text.encode("utf-8")[:cap].decode("utf-8", errors="ignore")
        content_type = response.headers.get("content-type")
        structured = (
            _json_or_none(text) if not truncated and content_type and "json" in content_type else None
        )
        status = response.status_code
        if truncated:
            text += f"\n[truncated: the response exceeded {cap} bytes; only the first {cap} bytes are shown]"
        if not 200 <= status < 300:
            short = text[:SHORT_BODY] + ("…" if len(text) > SHORT_BODY else "")
            reason = response.reason_phrase
            if redactor is not None:
                reason = redactor.redact_known(reason)
            return ToolResult(
                is_error=True,
                error_kind="http",
                status=status,
                content_type=content_type,
                text=f"Upstream returned HTTP {status} {reason}" + (f": {short}" if short else ""),
            )
        return ToolResult(
            status=status, text=text, content_type=content_type, structured=structured, truncated=truncated
        )


def _json_or_none(text: str) -> Any:
    """Parsed JSON, or None when ``text`` is not JSON, nests deeper than ``MAX_JSON_DEPTH`` or holds
    an unpaired surrogate (such a value could not be serialised back to a client)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if json_depth(value) > MAX_JSON_DEPTH:
        return None
    try:  # a lone surrogate (JSON "\ud800") cannot be sent on as UTF-8: keep the text only
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


@lru_cache(maxsize=64)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def _too_long(parts: RequestParts, exc: Exception) -> str:
    """Which argument made the URL too long for HTTP (httpx refuses URL parts over 65,536 characters)."""
    longest = max(parts.params, key=lambda p: len(p[1]), default=None)
    if longest is not None and len(longest[1]) >= len(parts.url.raw_path):
        culprit = f"query parameter '{longest[0]}' has {len(longest[1]):,} characters"
    else:
        culprit = f"the path has {len(parts.url.raw_path):,} characters"
    return f"the request URL would be too long ({exc}; {culprit})"


def _where(base_url: str) -> str:
    scheme, host, port = origin(base_url)
    return f"{scheme}://{host}:{port}"
