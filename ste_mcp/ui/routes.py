"""The dashboard's Starlette app (mounted at ``/ui``): pages, actions, static files.

Actions do what the CLI does, with the same functions: ``ExemplarStore.set_status`` (``ste-mcp
exemplars approve|reject``), ``DescriptionStore.approve|rollback`` (``ste-mcp descriptions``),
``AdapterRegistry.promote|rollback|export`` (``ste-mcp adapters``) and the pause marker
(``ste-mcp explore --pause|--resume``). A running ``serve`` picks each change up by itself.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import jinja2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ste_mcp.ui import views
from ste_mcp.ui.guard import BASE, SESSION_COOKIE, Guard, GuardMiddleware, Refused

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

    from ste_mcp.app import App
    from ste_mcp.config import Settings

HERE = Path(__file__).parent
PAGES = [
    ("tools", "Tools"),
    ("trials", "Trials"),
    ("exemplars", "Exemplars"),
    ("descriptions", "Descriptions"),
    ("adapters", "Adapters"),
    ("evals", "Evals"),
]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: all upstream-derived text is escaped
        undefined=jinja2.ChainableUndefined,  # an optional status field may be absent
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "-" if v is None else f"{float(v):.0%}" if float(v) <= 1 else f"{v:.1f}"
    env.filters["pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2)  # a str: autoescaped
    env.filters["num"] = lambda v: "-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)
    return env


class Dashboard:
    """Renders the pages and runs the actions for one data dir."""

    def __init__(
        self, settings: Settings, guard: Guard, served_tools: Callable[[], list[str]] | None = None
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.served_tools = served_tools  # the serving process's visible tools (mounted in serve)
        self.env = _environment()

    # ---- helpers -------------------------------------------------------------------------------
    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        page = template.split(".")[0]
        html = self.env.get_template(template).render(
            base=BASE,
            pages=PAGES,
            page=page,
            csrf=self.guard.csrf_token,
            read_only=self.guard.read_only,
            needs_login=self.guard.needs_login,
            flash=self.guard.take_flash(request.query_params.get("flash")),
            data_dir=str(self.settings.data_dir),
            poll_s=self.settings.memory.poll_s,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def done(self, path: str, message: str) -> RedirectResponse:
        """Back to ``path`` (303, so a reload does not repeat the POST) with a one-time message."""
        separator = "&" if "?" in path else "?"
        return RedirectResponse(f"{BASE}{path}{separator}flash={self.guard.flash(message)}", status_code=303)

    def refused(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.render(request, "refused.html", status_code=status, message=message)

    def stores(self) -> views.Stores:
        return views.Stores(self.settings)

    def action(
        self, handler: Callable[[Request, Any], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A POST endpoint: CSRF, same-origin and read-only checks first, then ``handler(request, form)``."""

        async def endpoint(request: Request) -> Response:
            form = await request.form()
            try:
                self.guard.check_change(request, form)
                return await handler(request, form)
            except Refused as exc:
                return self.refused(request, exc.status, exc.message)
            except LookupError as exc:  # the stores' "no such version / exemplar" errors
                return self.refused(request, 400, str(exc.args[0]))

        return endpoint

    # ---- login ---------------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        if not self.guard.needs_login:
            return RedirectResponse(f"{BASE}/tools", status_code=303)
        return self.render(request, "login.html", error="")

    async def login(self, request: Request) -> Response:
        form = await request.form()
        try:
            self.guard.check_change(request, form, allow_read_only=True)
        except Refused as exc:
            return self.refused(request, exc.status, exc.message)
        session = await self.guard.login(str(form.get("token") or ""))
        if session is None:
            return self.render(
                request, "login.html", status_code=401, error="That is not the server's token."
            )
        response = RedirectResponse(f"{BASE}/tools", status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            SESSION_COOKIE, session, httponly=True, samesite="strict", secure=secure, path=BASE
        )
        return response

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        try:
            self.guard.check_change(request, form, allow_read_only=True)
        except Refused as exc:
            return self.refused(request, exc.status, exc.message)
        self.guard.logout(request)
        response = RedirectResponse(f"{BASE}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=BASE)
        return response

    # ---- tools ---------------------------------------------------------------------------------
    async def tools(self, request: Request) -> Response:
        tools = self.served_tools() if self.served_tools else []
        status = await anyio.to_thread.run_sync(views.tools_page, self.settings, tools)
        return self.render(request, "tools.html", status=status)

    async def explorer(self, request: Request) -> Response:
        """The live exploration panel alone (htmx polls it)."""
        status = await anyio.to_thread.run_sync(views.tools_page, self.settings)
        return self.render(request, "explorer.html", status=status)

    async def pause(self, request: Request, form: Any) -> Response:
        paused = request.url.path.endswith("/pause")
        marker = await anyio.to_thread.run_sync(views.set_paused, self.settings, paused)
        return self.done("/tools", f"exploration {'paused' if paused else 'resumed'} ({marker})")

    # ---- trials --------------------------------------------------------------------------------
    async def trials(self, request: Request) -> Response:
        q = request.query_params
        data = await anyio.to_thread.run_sync(
            views.trials_page, self.stores(), q.get("tool"), q.get("outcome")
        )
        return self.render(request, "trials.html", **data)

    async def trial(self, request: Request) -> Response:
        trial_id = request.path_params["trial_id"]
        data = await anyio.to_thread.run_sync(views.trial_page, self.stores(), trial_id)
        if data is None:
            return self.refused(request, 404, f"no trial with id {trial_id!r}")
        return self.render(request, "trial.html", **data)

    # ---- exemplars -----------------------------------------------------------------------------
    async def exemplars(self, request: Request) -> Response:
        q = request.query_params
        status = q.get("status", "candidate")
        data = await anyio.to_thread.run_sync(views.exemplars_page, self.stores(), q.get("tool"), status)
        return self.render(request, "exemplars.html", **data)

    async def set_exemplars(self, request: Request, form: Any) -> Response:
        verb = "approve" if request.url.path.endswith("/approve") else "reject"
        status = "approved" if verb == "approve" else "rejected"
        tool = str(form.get("tool") or "") or None
        stores = self.stores()
        ids = await anyio.to_thread.run_sync(
            views.exemplar_ids_for, stores, _chosen(form), form.get("all_candidates") == "1", tool
        )
        reason = str(form.get("reason") or "") or f"{verb}d by operator (dashboard)"
        changed = await anyio.to_thread.run_sync(views.set_exemplar_status, stores, ids, status, reason)
        back = f"/exemplars?tool={tool}" if tool else "/exemplars"
        return self.done(
            back,
            f"{changed} exemplar(s) (with paraphrases) now {status}; a running server re-renders the "
            f"descriptions within {self.settings.memory.poll_s:g} s",
        )

    # ---- descriptions --------------------------------------------------------------------------
    async def descriptions(self, request: Request) -> Response:
        data = await anyio.to_thread.run_sync(views.descriptions_page, self.stores())
        return self.render(request, "descriptions.html", **data)

    async def description(self, request: Request) -> Response:
        tool = request.path_params["tool"]
        q = request.query_params
        data = await anyio.to_thread.run_sync(
            views.description_page, self.stores(), tool, _int(q.get("from")), _int(q.get("to"))
        )
        if data is None:
            return self.refused(request, 404, f"tool {tool!r} has no stored descriptions")
        return self.render(request, "description.html", **data)

    async def change_description(self, request: Request, form: Any) -> Response:
        tool = request.path_params["tool"]
        verb = "approve" if request.url.path.endswith("/approve") else "rollback"
        store = await anyio.to_thread.run_sync(self.stores().descriptions)
        version = _int(str(form.get("version") or ""))
        if verb == "approve":
            v = await anyio.to_thread.run_sync(store.approve, tool, version)
            message = f"{tool}: v{v.version} approved"
        else:
            v = await anyio.to_thread.run_sync(store.rollback, tool, version)
            message = f"{tool}: v{v.version} now serves the text of {v.reason.removeprefix('rollback to ')}"
        poll = self.settings.memory.poll_s
        return self.done(f"/descriptions/{tool}", f"{message}; a running server serves it within {poll:g} s")

    # ---- adapters ------------------------------------------------------------------------------
    async def adapters(self, request: Request) -> Response:
        data = await anyio.to_thread.run_sync(views.adapters_page, self.stores())
        return self.render(request, "adapters.html", **data)

    async def change_adapter(self, request: Request, form: Any) -> Response:
        from ste_mcp.finetune.registry import RegistryError

        registry = self.stores().adapters()
        try:
            if request.url.path.endswith("/promote"):
                adapter_id = str(form.get("id") or "")
                await anyio.to_thread.run_sync(registry.promote, adapter_id)
                message = f"{adapter_id} is now the promoted adapter"
            else:
                now = await anyio.to_thread.run_sync(registry.rollback)
                message = f"rolled back; in use now: {now.id if now else 'the base model'}"
        except RegistryError as exc:
            return self.refused(request, 409, str(exc))
        return self.done("/adapters", message)

    async def export_adapter(self, request: Request) -> Response:
        """The adapter as ``ste-mcp adapters export ID DIR`` writes it: DIR.tar.gz, downloaded."""
        from ste_mcp.finetune.registry import RegistryError

        adapter_id = request.path_params["adapter_id"]
        work = Path(tempfile.mkdtemp(prefix="ste-mcp-export-"))
        try:
            _, tarball = await anyio.to_thread.run_sync(
                self.stores().adapters().export, adapter_id, work / adapter_id
            )
        except RegistryError as exc:
            shutil.rmtree(work, ignore_errors=True)
            return self.refused(request, 404, str(exc))
        return FileResponse(
            tarball,
            media_type="application/gzip",
            filename=tarball.name,
            background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
        )

    # ---- evals ---------------------------------------------------------------------------------
    async def evals(self, request: Request) -> Response:
        data = await anyio.to_thread.run_sync(views.evals_page, self.settings)
        return self.render(request, "evals.html", **data)

    async def eval_png(self, request: Request) -> Response:
        path = views.eval_file(self.settings, request.path_params["path"])
        if path is None:
            return self.refused(request, 404, "no such chart")
        return FileResponse(path, media_type="image/png")

    # ---- routing -------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        post = ["POST"]
        return [
            Route("/", lambda r: RedirectResponse(f"{BASE}/tools", status_code=303)),
            Route("/login", self.login_form),
            Route("/login", self.login, methods=post),
            Route("/logout", self.logout, methods=post),
            Route("/tools", self.tools),
            Route("/tools/explorer", self.explorer),
            Route("/explorer/pause", self.action(self.pause), methods=post),
            Route("/explorer/resume", self.action(self.pause), methods=post),
            Route("/trials", self.trials),
            Route("/trials/{trial_id:path}", self.trial),
            Route("/exemplars", self.exemplars),
            Route("/exemplars/approve", self.action(self.set_exemplars), methods=post),
            Route("/exemplars/reject", self.action(self.set_exemplars), methods=post),
            Route("/descriptions", self.descriptions),
            Route("/descriptions/{tool:str}", self.description),
            Route("/descriptions/{tool:str}/approve", self.action(self.change_description), methods=post),
            Route("/descriptions/{tool:str}/rollback", self.action(self.change_description), methods=post),
            Route("/adapters", self.adapters),
            Route("/adapters/{adapter_id:str}/export", self.export_adapter),
            Route("/adapters/promote", self.action(self.change_adapter), methods=post),
            Route("/adapters/rollback", self.action(self.change_adapter), methods=post),
            Route("/evals", self.evals),
            Route("/evals/file/{path:path}", self.eval_png),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]


def _chosen(form: Any) -> list[str]:
    """The exemplar of a row's own button, else the ticked ones."""
    one = str(form.get("one") or "")
    return [one] if one else [str(i) for i in form.getlist("ids")]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def ui_app(
    settings: Settings,
    *,
    token: str | None,
    security: TransportSecuritySettings,
    served_tools: Callable[[], list[str]] | None = None,
) -> Starlette:
    """The dashboard app (mount it at ``/ui``) with ``/mcp``'s token and Host/Origin rules;
    ``served_tools`` lists the tools a server in this process shows (each gets a row on Tools)."""
    guard = Guard(
        token=token,
        security=security,
        read_only=settings.ui.read_only,
        proxy_origins=settings.server.allowed_origins,
    )
    dashboard = Dashboard(settings, guard, served_tools)
    return Starlette(routes=dashboard.routes(), middleware=[Middleware(GuardMiddleware, guard=guard)])


def ui_routes(app: App, *, token: str | None, security: TransportSecuritySettings) -> list[BaseRoute]:
    """``/ui`` for ``server.streamable_http_app(custom_starlette_routes=...)`` of ``app``'s server; none
    when ``ui.enabled`` is false."""
    if not app.settings.ui.enabled:
        return []

    def served_tools() -> list[str]:
        return [tool.name for tool in app.toolset.visible()]

    return [Mount(BASE, app=ui_app(app.settings, token=token, security=security, served_tools=served_tools))]
