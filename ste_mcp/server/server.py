"""The MCP server (low-level ``mcp.server.Server``) over an ``App``.

``tools/list`` is computed on every request by ``list_tools(app)``: the visible upstream tools with
``app.describe(tool)`` as description, then every extension's tools — or, in search listing
(``server.tool_listing``), only ``search_tools`` and ``call_tool``: a client finds tools by asking,
and calls them by name (directly or through ``call_tool``). Upstream failures come back as ``isError``
results with a specific message, never as raw exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp import types
from mcp.server import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError

from ste_mcp import __version__
from ste_mcp.app import App
from ste_mcp.server.extensions import CALL_TOOL, SEARCH_TOOL
from ste_mcp.upstream.tools import Tool, ToolResult

log = logging.getLogger(__name__)

SERVER_NAME = "ste-mcp"
INSTRUCTIONS = (
    "Tools of HTTP APIs proxied by ste-mcp. Descriptions may improve while you are connected "
    f"(tools/list_changed). For a large API the list holds only {SEARCH_TOOL} and {CALL_TOOL}: call "
    f"{SEARCH_TOOL} with what you want to do to get the best matching tools with their input schemas, "
    f"then call one of them by name with {CALL_TOOL}."
)
MAX_NAME_ECHO = 80  # characters of an unknown tool name repeated in an error

_CALL_TOOL_DEF = types.Tool(
    name=CALL_TOOL,
    description=(
        f"Call one of this server's tools by name. Find the right tool and its arguments first with "
        f"{SEARCH_TOOL}."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": f"The tool's name, as {SEARCH_TOOL} returned it."},
            "arguments": {
                "type": "object",
                "description": "The tool's arguments, matching its input schema.",
                "default": {},
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    annotations=types.ToolAnnotations(open_world_hint=True),
)


def annotations(tool: Tool) -> types.ToolAnnotations:
    """Hints from the HTTP method (or the spec's read_only override)."""
    read_only = tool.is_read_only
    return types.ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=None if read_only else tool.method.upper() == "DELETE",
        idempotent_hint=None if read_only else tool.is_idempotent,
        open_world_hint=True,
    )


def mcp_tool(app: App, tool: Tool) -> types.Tool:
    try:
        description = app.describe(tool)
    except Exception:  # a broken description provider must not break tools/list
        log.exception("describe(%s) failed; using the spec's description", tool.name)
        description = tool.description
    return types.Tool(
        name=tool.name,
        description=description,
        input_schema=tool.served_schema,
        annotations=annotations(tool),
    )


def search_listing(app: App) -> bool:
    """Whether ``tools/list`` is in search mode: by setting, and only where a search tool is served."""
    mode = app.settings.server.tool_listing
    if mode == "all":
        return False
    if mode == "auto" and len(app.toolset.visible()) <= app.settings.server.search_listing_above:
        return False
    return any(t.name == SEARCH_TOOL for ext in app.extensions for t in ext.list_tools())


def list_tools(app: App) -> list[types.Tool]:
    """THE tools/list: visible upstream tools (live descriptions) + every extension's tools.

    In search mode: the search tool and ``call_tool`` only.
    """
    extra = [t for ext in app.extensions for t in ext.list_tools()]
    if search_listing(app):
        return [*(t for t in extra if t.name == SEARCH_TOOL), _CALL_TOOL_DEF]
    return [mcp_tool(app, t) for t in app.toolset.visible()] + extra


def input_schema(app: App, name: str) -> dict[str, Any] | None:
    """The input schema of the tool ``name`` as ``tools/list`` would show it, or None if it is not served.

    The SDK asks this on every modern ``tools/call`` with arguments (to check ``Mcp-Param-*`` headers);
    without it, it would build a whole ``tools/list`` per call.
    """
    tool = app.toolset.get(name)
    if tool is not None and not tool.hidden:
        return tool.served_schema
    if name == CALL_TOOL:
        return _CALL_TOOL_DEF.input_schema
    for ext in app.extensions:
        for t in ext.list_tools():
            if t.name == name:
                return t.input_schema
    return None


def to_call_result(result: ToolResult) -> types.CallToolResult:
    structured = result.structured if isinstance(result.structured, dict) and not result.is_error else None
    return types.CallToolResult(
        content=[types.TextContent(text=result.text)], structured_content=structured, is_error=result.is_error
    )


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


async def call_tool(app: App, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
    """Route a call to the upstream tool or the extension that owns ``name``.

    Upstream tools are callable by name in every listing mode; ``call_tool`` (search mode) unwraps.
    """
    tool = app.toolset.get(name)
    if tool is not None and not tool.hidden:
        return to_call_result(await app.upstream.call(tool, arguments or {}))
    if name == CALL_TOOL and search_listing(app):
        return await _call_by_name(app, arguments or {})
    for ext in app.extensions:
        try:
            result = await ext.call_tool(name, arguments or {})
        except Exception as exc:
            log.exception("extension %s failed on tool %s", ext.name, name)
            return error_result(f"Tool {name} failed inside ste-mcp ({ext.name}): {type(exc).__name__}")
        if result is not None:
            return result
    raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {_echo(name)!r}")


def _echo(name: str) -> str:
    """A client-given name as repeated in an error: at most ``MAX_NAME_ECHO`` characters."""
    return name if len(name) <= MAX_NAME_ECHO else name[:MAX_NAME_ECHO] + "…"


async def _call_by_name(app: App, arguments: dict[str, Any]) -> types.CallToolResult:
    unknown = sorted(set(arguments) - {"name", "arguments"})
    if unknown:
        return error_result(f"unknown argument(s) for {CALL_TOOL}: {', '.join(unknown)[:200]}")
    name, inner = arguments.get("name"), arguments.get("arguments", {})
    if not isinstance(name, str) or not name:
        return error_result(f"argument 'name' of {CALL_TOOL} is required: the name of a tool to call")
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        return error_result(
            f"argument 'arguments' of {CALL_TOOL} must be an object, got {type(inner).__name__}"
        )
    tool = app.toolset.get(name)
    if tool is None or tool.hidden:
        return error_result(
            f"No tool named {_echo(name)!r} on this server: find tools with {SEARCH_TOOL} first"
        )
    return to_call_result(await app.upstream.call(tool, inner))


@asynccontextmanager
async def _lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    """Start the app if needed and run the extensions' background work for the server's lifetime."""
    started_here = not app.started
    if started_here:
        await app.start()
    try:
        async with anyio.create_task_group() as tg:
            for ext in app.extensions:
                for job in ext.background():
                    tg.start_soon(_guarded, ext.name, job)
            yield {"app": app}
            tg.cancel_scope.cancel()
    finally:
        if started_here:
            await app.stop()


async def _guarded(name: str, job: Any) -> None:
    try:
        await job()
    except Exception:
        log.exception("background work of %s stopped with an error", name)


class ProxyServer(Server[dict[str, Any]]):
    """Low-level server whose initialization options always advertise ``tools.listChanged``."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


def build_server(app: App) -> ProxyServer:
    """The MCP server for ``app`` (tools, resources, list_changed for both protocol generations)."""

    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list_tools(app))

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await call_tool(app, params.name, params.arguments)

    async def on_list_resources(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[r for ext in app.extensions for r in ext.list_resources()]
        )

    async def on_list_resource_templates(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates = [t for ext in app.extensions for t in ext.list_resource_templates()]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        for ext in app.extensions:
            text = await ext.read_resource(uri)
            if text is not None:
                mime = "application/json" if text.lstrip()[:1] in ("{", "[") else "text/markdown"
                return types.ReadResourceResult(
                    contents=[types.TextResourceContents(uri=uri, text=text, mime_type=mime)]
                )
        raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {_echo(uri)}")

    server = ProxyServer(
        SERVER_NAME,
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lambda _server: _lifespan(app),
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_resource_templates,
        on_read_resource=on_read_resource,
        on_subscriptions_listen=ListenHandler(app.notifier.bus),
        get_tool_input_schema=lambda name: input_schema(app, name),
    )
    server.middleware.append(app.notifier.middleware)
    return server
