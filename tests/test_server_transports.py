"""`ste-mcp serve` as a real subprocess: the SDK client over stdio and over Streamable HTTP."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.fixtures.common import REPO, STE_MCP, child_env, free_port, serve_app_http, serve_http
from tests.fixtures.upstream import openapi_spec

pytestmark = pytest.mark.anyio
TOKEN = "test-token-5d1f8a"


async def exercise(client: Client, upstream) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["get_weather"].annotations.read_only_hint is True
    ok = await client.call_tool("get_weather", {"city": "Lima", "days": 1})
    assert not ok.is_error and json.loads(ok.content[0].text)["city"] == "Lima"
    bad = await client.call_tool("get_weather", {"city": "Lima", "days": "two"})
    assert bad.is_error and "argument 'days'" in bad.content[0].text
    assert upstream.count == 1


async def test_stdio_subprocess(upstream, upstream_spec, data_dir):
    params = StdioServerParameters(
        command=STE_MCP,
        args=["serve", "--spec", str(upstream_spec), "--no-explore"],
        env=child_env(data_dir),
        cwd=str(REPO),
    )
    async with Client(params) as client:
        await exercise(client, upstream)
    log = (data_dir / "logs" / "ste-mcp.log").read_text()
    assert "ste-mcp ready" in log


@pytest.fixture(scope="module")
def http_server(_upstream_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("http")
    upstream_spec = root / "upstream.json"
    upstream_spec.write_text(json.dumps(openapi_spec(_upstream_server.url)))
    data_dir = root / "data"
    args = ["--spec", str(upstream_spec), "--no-explore"]
    with serve_http(args, child_env(data_dir, STE_MCP_TOKEN=TOKEN), root / "serve.stderr.log") as server:
        yield server.url


async def test_streamable_http_with_token(http_server, upstream):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(http_server, http_client=http)) as client,
    ):
        await exercise(client, upstream)


def test_http_refuses_missing_token_and_foreign_origin(http_server):
    init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    no_token = httpx.post(http_server, json=init, headers=headers)
    assert no_token.status_code == 401
    assert "Bearer" in no_token.headers["www-authenticate"]
    wrong = httpx.post(http_server, json=init, headers={**headers, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    for origin in ("http://evil.example", "http://localhost:80.evil.example"):
        evil = httpx.post(
            http_server, json=init, headers={**headers, "Authorization": f"Bearer {TOKEN}", "Origin": origin}
        )
        assert evil.status_code == 403, origin
    local = httpx.post(
        http_server,
        json=init,
        headers={**headers, "Authorization": f"Bearer {TOKEN}", "Origin": "http://localhost:3000"},
    )
    assert local.status_code not in (401, 403)


def test_binding_beyond_loopback_needs_a_token(upstream_spec, data_dir):
    command = [STE_MCP, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())]
    proc = subprocess.run(
        [*command, "--spec", str(upstream_spec), "--no-explore"],
        env=child_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "requires a bearer token" in proc.stderr and "STE_MCP_TOKEN" in proc.stderr


def test_bad_spec_is_a_clear_startup_error(tmp_path, data_dir):
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        "openapi: 3.0.0\nservers: [{url: 'http://127.0.0.1:9'}]\npaths:\n  /x:\n    get:\n      parameters: [{$ref: '#/nope'}]\n"
    )
    proc = subprocess.run(
        [STE_MCP, "serve", "--spec", str(spec), "--no-explore"],
        env=child_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "broken.yaml#/paths/~1x/get/parameters/0" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_claude_config_prints_a_working_entry(tmp_path, upstream, upstream_spec):
    out = subprocess.run(
        [
            STE_MCP,
            "claude-config",
            "--data-dir",
            str(tmp_path / "d"),
            "--spec",
            str(upstream_spec),
            "--no-explore",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    entry = json.loads(out)["mcpServers"]["ste-mcp"]
    assert Path(entry["command"]).is_absolute() and os.access(entry["command"], os.X_OK)
    assert entry["args"][:3] == ["serve", "--transport", "stdio"]
    assert str(upstream_spec) in entry["args"] and "--no-explore" in entry["args"]
    assert entry["env"]["STE_MCP_DATA_DIR"] == str(tmp_path / "d")
    # start it the way Claude Desktop does: that command, those args, that env, from another directory
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=entry["env"], cwd="/")
    async with Client(params) as client:
        await exercise(client, upstream)
    assert (tmp_path / "d" / "logs" / "ste-mcp.log").is_file()


@pytest.fixture
async def inprocess_http(upstream_spec, data_dir):
    """ste-mcp's HTTP app served by uvicorn inside the test's event loop (to reach the App directly)."""
    async with serve_app_http(upstream_spec, data_dir) as pair:
        yield pair


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_list_changed_over_http(inprocess_http, mode):
    import anyio
    from mcp import types

    app, url = inprocess_http
    received = anyio.Event()

    async def on_message(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            received.set()

    async with Client(url, mode=mode, message_handler=on_message) as client:
        await client.list_tools()
        if mode == "legacy":
            assert client.server_capabilities.tools.list_changed is True
            await app.notify_tools_changed()
            with anyio.fail_after(10):
                await received.wait()
        else:
            async with client.listen(tools_list_changed=True) as sub:
                await app.notify_tools_changed()
                with anyio.fail_after(10):
                    event = await sub.__aiter__().__anext__()
            assert type(event).__name__ == "ToolsListChanged"


async def test_stdio_with_embedded_defaults_serves_the_toolbox(data_dir):
    params = StdioServerParameters(
        command=STE_MCP, args=["serve", "--no-explore"], env=child_env(data_dir), cwd=str(REPO)
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"get_today_date", "add_date", "Car_database__Makes"} <= names
        today = await client.call_tool("get_today_date", {})
    assert not today.is_error and today.content[0].text.strip('"')[:2] == "20"
