"""The MCP server with the SDK's in-memory client: tools/list, tools/call, extensions, list_changed."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPError

from ste_mcp.app import App
from ste_mcp.config import load_settings
from ste_mcp.server.extensions import BaseExtension
from ste_mcp.server.server import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app(upstream_spec, data_dir):
    settings = load_settings(data_dir=str(data_dir), specs=[str(upstream_spec)])
    async with App(settings, features=[]) as app:
        yield app


def by_name(tools: list[types.Tool]) -> dict[str, types.Tool]:
    return {t.name: t for t in tools}


async def test_list_tools_schemas_and_annotations(app):
    async with Client(build_server(app)) as client:
        tools = by_name((await client.list_tools()).tools)
    weather = tools["get_weather"]
    assert weather.description == "Weather forecast for a city."
    assert weather.input_schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {
                "type": "integer",
                "minimum": 1,
                "maximum": 7,
                "default": 1,
                "description": "Number of days",
            },
        },
        "required": ["city"],
    }
    assert weather.annotations.read_only_hint is True
    delete = tools["delete_items_item_id"]
    assert delete.annotations.read_only_hint is False and delete.annotations.destructive_hint is True
    put = tools["put_item"]
    assert put.annotations.idempotent_hint is True and put.annotations.destructive_hint is False
    assert tools["create_item"].annotations.idempotent_hint is False


async def test_call_tool_and_errors(app, upstream):
    async with Client(build_server(app)) as client:
        ok = await client.call_tool("get_weather", {"city": "Oslo", "days": 2})
        assert not ok.is_error
        assert json.loads(ok.content[0].text)["city"] == "Oslo"
        assert ok.structured_content["forecast"][1]["temp_c"] == 21
        assert upstream.count == 1

        bad = await client.call_tool("get_weather", {"city": "Oslo", "days": "x"})
        assert bad.is_error
        assert "argument 'days': 'x' is not of type 'integer'" in bad.content[0].text
        missing = await client.call_tool("get_weather", {})
        assert missing.is_error and "argument 'city': required argument is missing" in missing.content[0].text
        extra = await client.call_tool("get_weather", {"city": "Oslo", "zzz": 1})
        assert extra.is_error and "argument 'zzz'" in extra.content[0].text
        assert upstream.count == 1  # none of the invalid calls reached the upstream

        failed = await client.call_tool("get_status", {"code": 503})
        assert failed.is_error and "HTTP 503" in failed.content[0].text

        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("no_such_tool", {})


async def test_descriptions_are_computed_per_request_and_hidden_tools(app):
    async with Client(build_server(app)) as client:
        app.describe = lambda tool: f"LIVE: {tool.description}"
        tools = by_name((await client.list_tools()).tools)
        assert tools["get_weather"].description == "LIVE: Weather forecast for a city."
        app.toolset.get("get_text").hidden = True
        tools = by_name((await client.list_tools()).tools)
        assert "get_text" not in tools
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("get_text", {})


class EchoExtension(BaseExtension):
    name = "echo"

    def __init__(self) -> None:
        self.ran = anyio.Event()

    def list_tools(self) -> list[types.Tool]:
        return [types.Tool(name="echo", description="Echo.", input_schema={"type": "object"})]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult | None:
        if name == "boom":
            raise RuntimeError("secret internals")
        if name != "echo":
            return None
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(arguments))])

    def list_resources(self) -> list[types.Resource]:
        return [types.Resource(uri="ste-mcp://echo/status", name="status")]

    async def read_resource(self, uri: str) -> str | None:
        return '{"ok": true}' if uri == "ste-mcp://echo/status" else None

    def background(self):
        async def job() -> None:
            self.ran.set()
            await anyio.sleep_forever()

        return [job]


async def test_extension_tools_resources_and_background(app):
    ext = EchoExtension()
    app.add_extension(ext)
    async with Client(build_server(app)) as client:
        assert "echo" in by_name((await client.list_tools()).tools)
        result = await client.call_tool("echo", {"a": 1})
        assert json.loads(result.content[0].text) == {"a": 1}
        boom = await client.call_tool("boom", {})
        assert boom.is_error and "secret internals" not in boom.content[0].text
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["ste-mcp://echo/status"]
        read = await client.read_resource("ste-mcp://echo/status")
        assert read.contents[0].text == '{"ok": true}'
        with anyio.fail_after(5):
            await ext.ran.wait()


async def test_list_changed_reaches_new_protocol_listener(app):
    async with Client(build_server(app)) as client, client.listen(tools_list_changed=True) as sub:
        await app.notify_tools_changed()
        with anyio.fail_after(5):
            event = await sub.__aiter__().__anext__()
    assert type(event).__name__ == "ToolsListChanged"


async def test_list_changed_reaches_old_protocol_session(app):
    received = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            received.set()

    async with Client(build_server(app), mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.tools.list_changed is True
        await client.list_tools()
        assert app.notifier.legacy_sessions == 1
        await app.notify_tools_changed()
        with anyio.fail_after(5):
            await received.wait()
    assert app.notifier.legacy_sessions == 0
