"""`ste-mcp ui`: the review dashboard on its own port, for stdio users (or next to any `serve`).

It reads and writes the same data dir as ``serve``/``explore``/the CLI, so it may run while they do;
a running server picks every change up within ``memory.poll_s``. The rules of ``/mcp``
apply: a bearer token (``$STE_MCP_TOKEN``) is required beyond loopback and checked whenever set,
Host and Origin are checked.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ste_mcp.config import Settings

HELP = "the review dashboard in a browser (trials, exemplars, descriptions, adapters, evals)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default 127.0.0.1); beyond loopback needs a token")
    parser.add_argument("--port", type=int, help="port (default 8767, or ui.port)")
    parser.add_argument("--read-only", action="store_true", help="show everything, change nothing")


def build_app(settings: Settings) -> Any:
    """The dashboard at ``/ui`` behind the same token, Host and Origin rules as ``serve``'s ``/mcp``;
    raises ``ConfigError`` when a token is needed but unset or too weak."""
    from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route

    from ste_mcp.config import ConfigError
    from ste_mcp.server.transports import (
        LOOPBACK_HOSTS,
        LOOPBACK_ORIGINS,
        OriginCheck,
        StaticTokenVerifier,
        check_token,
    )
    from ste_mcp.ui.guard import BASE
    from ste_mcp.ui.routes import ui_app

    env = settings.server.auth_token_env
    token = os.environ.get(env) or None
    if token is not None:
        check_token(token, env)
    host = settings.ui.host
    loopback = host in LOOPBACK_HOSTS
    if not loopback and not token:
        raise ConfigError(
            f"binding the dashboard to {host} (beyond loopback) requires a bearer token: set the environment "
            f"variable {env}"
        )
    allowed_origins = [*LOOPBACK_ORIGINS, *settings.server.allowed_origins]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=loopback,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=allowed_origins,
    )
    middleware = []
    if token:  # Authorization: Bearer works here as on /mcp (scripts, reverse proxies)
        middleware = [
            Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(StaticTokenVerifier(token)))
        ]
    ui = ui_app(settings, token=token, security=security)

    app = Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse(f"{BASE}/tools", status_code=303)),
            Mount(BASE, ui),
        ],
        middleware=middleware,
    )
    return OriginCheck(app, allowed_origins)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ste_mcp.cli import settings_from_args

    ui: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.read_only:
        ui["read_only"] = True
    settings = settings_from_args(args, ui=ui)
    asgi = build_app(settings)
    s = settings.ui
    shown = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
    print(f"ste-mcp dashboard on http://{shown}:{s.port}/ui (data dir {settings.data_dir})", file=sys.stderr)
    uvicorn.run(asgi, host=s.host, port=s.port, log_level="warning")
    return 0
