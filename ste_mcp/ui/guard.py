"""Who may use the dashboard and how: the ``/mcp`` rules (bearer token, Host and Origin checks) plus a
login cookie for browsers, CSRF protection and the read-only mode.

- **Token**: when the server has a bearer token (``server.auth_token_env``), a request is let in with
  ``Authorization: Bearer <token>`` (checked by the SDK's middleware, as for ``/mcp``) or with the
  session cookie that ``/ui/login`` sets after checking the same token with the same verifier.
  Sessions live in this process only (a restart logs everyone out).
- **Host / Origin**: the ``TransportSecuritySettings`` of ``/mcp`` (DNS-rebinding protection on
  loopback binds) are applied to every dashboard request.
- **CSRF**: every state-changing request is a POST carrying this process's random token (hidden field
  ``csrf`` or header ``X-CSRF-Token``) and, when the browser says where it comes from (``Origin``,
  ``Sec-Fetch-Site``), coming from this very origin (or one of ``server.allowed_origins``, e.g. a
  reverse proxy's).
- **Read-only** (``ui.read_only``): every POST but the login is refused (403).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ste_mcp.server.transports import StaticTokenVerifier

BASE = "/ui"
SESSION_COOKIE = "ste_mcp_ui"
MAX_SESSIONS = 1000
MAX_FLASHES = 200
# no inline script or style at all: even a text that escaped escaping could not run
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" makes browsers send "Origin: null"
    (b"cache-control", b"no-store"),
]
OPEN_PATHS = ("/login", "/static/")  # reachable before logging in (the Host check still applies)


class Refused(Exception):
    """A state-changing request that must not run; ``status`` and ``message`` say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Guard:
    """The dashboard's access rules for one process (see the module docstring)."""

    def __init__(
        self,
        *,
        token: str | None,
        security: TransportSecuritySettings,
        read_only: bool = False,
        proxy_origins: Sequence[str] = (),
    ) -> None:
        self.verifier = StaticTokenVerifier(token) if token else None
        self.proxy_origins = set(proxy_origins)  # server.allowed_origins: e.g. a TLS reverse proxy's origin
        self.transport_security = TransportSecurityMiddleware(security)
        self.read_only = read_only
        self.csrf_token = secrets.token_urlsafe(32)
        self._sessions: OrderedDict[str, None] = OrderedDict()
        self._flashes: OrderedDict[str, str] = OrderedDict()

    # ---- authentication ------------------------------------------------------------------------
    @property
    def needs_login(self) -> bool:
        return self.verifier is not None

    def authenticated(self, conn: HTTPConnection) -> bool:
        """No token configured, a valid bearer header (the SDK's middleware), or a session cookie."""
        if self.verifier is None or isinstance(conn.scope.get("user"), AuthenticatedUser):
            return True
        session = conn.cookies.get(SESSION_COOKIE, "")
        return bool(session) and any(hmac.compare_digest(session, known) for known in self._sessions)

    async def login(self, token: str) -> str | None:
        """A new session id when ``token`` is the server's bearer token, else ``None``."""
        if self.verifier is None or await self.verifier.verify_token(token) is None:
            return None
        session = secrets.token_urlsafe(32)
        self._sessions[session] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def logout(self, conn: HTTPConnection) -> None:
        self._sessions.pop(conn.cookies.get(SESSION_COOKIE, ""), None)

    # ---- state-changing requests ---------------------------------------------------------------
    def check_change(self, request: Request, form: Any, *, allow_read_only: bool = False) -> None:
        """Raise ``Refused`` unless this POST may change state (CSRF token, same origin, not read-only)."""
        sent = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
        if not hmac.compare_digest(sent.encode(), self.csrf_token.encode()):
            raise Refused(
                403, "CSRF check failed: the form is stale or came from another site; reload the page"
            )
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        origin = request.headers.get("origin")
        if origin is not None and origin != own and origin not in self.proxy_origins:
            raise Refused(403, f"CSRF check failed: Origin {origin} is not this dashboard ({own})")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise Refused(403, "CSRF check failed: the request came from another site")
        if self.read_only and not allow_read_only:
            raise Refused(403, "the dashboard is read-only (ui.read_only = true): nothing was changed")

    # ---- one-time messages after a redirect ----------------------------------------------------
    def flash(self, message: str) -> str:
        key = secrets.token_urlsafe(8)
        self._flashes[key] = message
        while len(self._flashes) > MAX_FLASHES:
            self._flashes.popitem(last=False)
        return key

    def take_flash(self, key: str | None) -> str | None:
        return self._flashes.pop(key, None) if key else None


class GuardMiddleware:
    """Applies ``Guard`` to every request of the dashboard app and adds the security headers."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        request = Request(scope)
        refusal = await self.guard.transport_security.validate_request(request, is_post=False)
        if refusal is None and not self._open(scope) and not self.guard.authenticated(request):
            refusal = self._login_required(request)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _open(scope: Scope) -> bool:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        local = path[len(root) :] if root and path.startswith(root) else path
        return local.startswith(OPEN_PATHS) or path.startswith(tuple(BASE + p for p in OPEN_PATHS))

    @staticmethod
    def _login_required(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(f"{BASE}/login", status_code=303)
        return PlainTextResponse("authentication required: log in at /ui/login", status_code=401)
