"""The fast HTTP modes (issue 21): JSON responses, stateless serving, no tools/list per tools/call.

A real ste-mcp HTTP app (uvicorn in the test's event loop) in front of the real upstream on
127.0.0.1, driven by the official SDK client in both protocol generations.
"""

from __future__ import annotations

import json

import anyio
import httpx2
import pytest
from mcp import Client, types

from ste_mcp.server.extensions import CALL_TOOL
from ste_mcp.server.server import input_schema
from tests.fixtures.common import serve_app_http

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stateless(upstream_spec, data_dir):
    async with serve_app_http(upstream_spec, data_dir, http_stateless=True) as pair:
        yield pair


@pytest.fixture
async def stateful(upstream_spec, data_dir):
    async with serve_app_http(upstream_spec, data_dir) as pair:
        yield pair


async def calls_work(client: Client, upstream) -> None:
    ok = await client.call_tool("get_weather", {"city": "Lima", "days": 2})
    assert not ok.is_error and json.loads(ok.content[0].text)["city"] == "Lima"
    bad = await client.call_tool("get_weather", {"city": "Lima", "days": "two"})
    assert bad.is_error and "argument 'days'" in bad.content[0].text
    assert upstream.count == 1  # the invalid call never left ste-mcp


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stateless_calls_work_in_both_protocols(stateless, upstream, mode):
    _, url = stateless
    async with Client(url, mode=mode) as client:
        assert "get_weather" in {t.name for t in (await client.list_tools()).tools}
        await calls_work(client, upstream)
        with pytest.raises(Exception, match="Unknown tool: 'no_such_tool'"):
            await client.call_tool("no_such_tool", {})


async def test_stateless_legacy_handshake_opens_no_session(stateless):
    _, url = stateless
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    async with httpx2.AsyncClient() as http:
        r = await http.post(url, json=init, headers={"Accept": "application/json, text/event-stream"})
    assert r.status_code == 200
    assert "mcp-session-id" not in r.headers
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["result"]["capabilities"]["tools"]["listChanged"] is True


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_json_response_mode_answers_each_post_with_one_json_body(stateful, upstream, mode):
    from mcp.client.streamable_http import streamable_http_client

    _, url = stateful
    content_types: list[str] = []

    async def record(response: httpx2.Response) -> None:
        if response.request.method == "POST" and response.status_code == 200:
            content_types.append(response.headers["content-type"])

    async with (
        httpx2.AsyncClient(timeout=30, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        await calls_work(client, upstream)
    assert content_types and all(c.startswith("application/json") for c in content_types)


async def test_a_call_does_not_build_the_tool_list(stateful, upstream):
    """The SDK checks Mcp-Param headers against the called tool's schema: from a lookup, not tools/list."""
    app, url = stateful
    described: list[str] = []
    plain_describe = app.describe

    def counting_describe(tool):
        described.append(tool.name)
        return plain_describe(tool)

    app.describe = counting_describe
    async with Client(url) as client:
        await client.list_tools()  # the client lists once itself (it caches output schemas)
        assert "get_weather" in described
        described.clear()
        for days in (1, 2, 3):
            ok = await client.call_tool("get_weather", {"city": "Lima", "days": days})
            assert not ok.is_error
    assert described == []


async def test_input_schema_lookup(stateful):
    app, _ = stateful
    tool = app.toolset.get("get_weather")
    assert input_schema(app, "get_weather") == tool.input_schema
    assert input_schema(app, CALL_TOOL)["required"] == ["name"]
    assert input_schema(app, "no_such_tool") is None


async def test_list_changed_reaches_a_stream_holder_in_stateless_mode(stateless):
    app, url = stateless
    async with Client(url) as client, client.listen(tools_list_changed=True) as sub:
        await app.notify_tools_changed()
        with anyio.fail_after(10):
            event = await sub.__aiter__().__anext__()
    assert type(event).__name__ == "ToolsListChanged"


async def test_list_changed_reaches_a_legacy_session_in_json_mode(stateful):
    app, url = stateful
    received = anyio.Event()

    async def on_message(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            received.set()

    async with Client(url, mode="legacy", message_handler=on_message) as client:
        await client.list_tools()
        with anyio.fail_after(10):
            while app.notifier.legacy_sessions == 0:  # the session is tracked once its stream is open
                await anyio.sleep(0.02)
        await app.notify_tools_changed()
        with anyio.fail_after(10):
            await received.wait()
