"""Run the MCP server over stdio or Streamable HTTP.

Over HTTP a bearer token (from the env var named by ``server.auth_token_env``) is required whenever
the server binds beyond loopback, and checked whenever it is set; a token must be at least
``MIN_TOKEN_CHARS`` printable characters without blanks. The ``Origin`` header is checked against
loopback origins (with or without a port) plus ``server.allowed_origins``.
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ste_mcp.app import App
from ste_mcp.config import ConfigError
from ste_mcp.server.server import build_server

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOOPBACK_ORIGINS = [
    *(f"http://{host}{port}" for host in ("127.0.0.1", "localhost", "[::1]") for port in (":*", ""))
]
MCP_PATH = "/mcp"
MIN_TOKEN_CHARS = 16
MIN_TOKEN_DISTINCT = 6  # distinct characters: "aaaaaaaaaaaaaaaa" or "abababab..." is no secret


def check_token(token: str, env: str) -> None:
    """Raise ``ConfigError`` unless ``token`` (from ``$env``) is strong enough to guard the server."""
    if len(token) < MIN_TOKEN_CHARS:
        problem = f"has {len(token)} characters; at least {MIN_TOKEN_CHARS} are required"
    elif not all("!" <= c <= "~" for c in token):
        problem = "may only hold printable ASCII characters without spaces (it is sent in an HTTP header)"
    elif len(set(token)) < MIN_TOKEN_DISTINCT:
        problem = f"repeats too few characters (fewer than {MIN_TOKEN_DISTINCT} different ones)"
    else:
        return
    raise ConfigError(
        f"the bearer token in {env} is too weak: it {problem}; generate one, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    )


async def serve_stdio(app: App) -> None:
    """Start ``app`` and serve one client on stdin/stdout until it disconnects.

    The app starts inside ``stdio_server``, which points fd 1 at stderr meanwhile, so stray output
    of any component (toolbox, features) can never corrupt the protocol stream.
    """
    server = build_server(app)
    async with stdio_server() as (read_stream, write_stream), app:
        await server.run(read_stream, write_stream, server.create_initialization_options())


class StaticTokenVerifier:
    """Accepts exactly one bearer token (compared in constant time)."""

    def __init__(self, token: str):
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token.encode()):
            return AccessToken(token="redacted", client_id="ste-mcp-client", scopes=[])
        return None


class OriginCheck:
    """ASGI middleware refusing browser requests from origins that are not allowed (403)."""

    def __init__(self, app: ASGIApp, allowed: list[str]):
        self.app = app
        self.allowed = allowed

    def _ok(self, origin: str) -> bool:
        for pattern in self.allowed:
            if origin == pattern:
                return True
            prefix = pattern[:-1]  # "http://localhost:*" -> "http://localhost:", then digits only
            if pattern.endswith(":*") and origin.startswith(prefix) and origin[len(prefix) :].isdigit():
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin", b"").decode("latin-1")
            if origin and not self._ok(origin):
                await PlainTextResponse("Origin not allowed", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_app(app: App, *, host: str, port: int) -> Any:
    """The Starlette app serving MCP at ``/mcp`` (and the dashboard at ``/ui``); raises ConfigError when
    a token is needed but unset."""
    from ste_mcp.ui.routes import ui_routes

    settings = app.settings.server
    token = os.environ.get(settings.auth_token_env) or None
    if token is not None:
        check_token(token, settings.auth_token_env)
    loopback = host in LOOPBACK_HOSTS
    if not loopback and not token:
        raise ConfigError(
            f"binding to {host} (beyond loopback) requires a bearer token: set the environment variable "
            f"{settings.auth_token_env}"
        )
    auth_kwargs: dict[str, Any] = {}
    if token:
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        auth_kwargs = {
            "auth": AuthSettings(issuer_url=url, resource_server_url=None),
            "token_verifier": StaticTokenVerifier(token),
        }
    allowed_origins = [*LOOPBACK_ORIGINS, *settings.allowed_origins]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=loopback,  # the Host check only makes sense for loopback binds
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=allowed_origins,
    )
    server = build_server(app)
    starlette_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        json_response=settings.http_json_response,
        stateless_http=settings.http_stateless,
        transport_security=security,
        host=host,
        custom_starlette_routes=ui_routes(app, token=token, security=security),  # /ui
        **auth_kwargs,
    )
    return OriginCheck(starlette_app, allowed_origins)


async def serve_asgi(asgi: Any, *, host: str, port: int) -> None:
    """Serve an ``http_app`` with uvicorn until it is told to stop (SIGINT/SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", lifespan="on")
    log.info("ste-mcp listening on http://%s:%d%s", host, port, MCP_PATH)
    await uvicorn.Server(config).serve()
