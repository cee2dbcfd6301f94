"""Regression tests for the defects an outside probe found (issue 18: D1, D2, D4-D8, minor, interop).

Real HTTP servers on 127.0.0.1 (the ``upstream`` fixtures plus a hostile upstream defined here), real
MCP client sessions where a client would see the defect, a real LanceDB store for what reaches disk.
"""

from __future__ import annotations

import asyncio
import base64
import html
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest
import yaml
from mcp import Client
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ste_mcp.app import App
from ste_mcp.config import ConfigError, load_settings
from ste_mcp.explorer.episode import ExploreContext, run_episode
from ste_mcp.explorer.settings import ExplorerSettings
from ste_mcp.llm.protocols import ReActProtocol
from ste_mcp.memory.trials import TrialStore
from ste_mcp.safety.redact import REDACTED, Redactor
from ste_mcp.server.server import build_server
from ste_mcp.server.transports import check_token, http_app
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.settings import UpstreamSettings
from ste_mcp.upstream.specs import SpecError, Toolset, load_spec, load_toolset
from tests.fixtures.common import REPO
from tests.fixtures.models import ScriptedModel
from tests.fixtures.upstream import Upstream, openapi_spec

pytestmark = pytest.mark.anyio

# a credential with every character an encoder treats specially: quote, backslash, slash, non-ASCII
# (BMP and beyond), space, plus, ampersand, equals, percent, angle bracket
SECRET = 'Sx"q\\w/é€😀 +&k=1%2F<9z'
SECRET_ENV = "STE_TEST_LEAK_KEY"


# ---------------------------------------------------------------- a hostile upstream


def _encodings(secret: str) -> dict[str, str]:
    """The secret as upstreams echo it, each as a JSON value (what the body holds)."""
    raw = secret.encode()
    percent = quote(secret, safe="")
    return {
        "json_ascii": json.dumps(secret),  # \" \\ \u00e9 \ud83d\ude00
        "json_utf8": json.dumps(secret, ensure_ascii=False),
        "json_slash": json.dumps(secret).replace("/", "\\/"),  # PHP's json_encode
        "json_upper_hex": re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m[1].upper(), json.dumps(secret)),
        "nested_json": json.dumps(json.dumps({"key": secret})),
        "percent": json.dumps(percent),
        "percent_plus": json.dumps(quote_plus(secret)),
        "percent_lower_hex": json.dumps(re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), percent)),
        "percent_twice": json.dumps(quote(percent, safe="")),
        "html": json.dumps(html.escape(secret)),
        "base64": json.dumps(base64.b64encode(raw).decode()),
        "base64_url_unpadded": json.dumps(base64.urlsafe_b64encode(raw).decode().rstrip("=")),
        "basic_auth": json.dumps("Basic " + base64.b64encode(b"user:" + raw).decode()),
        "base64_inside": json.dumps(base64.b64encode(b"ab" + raw + b"cd").decode()),
    }


def _recoverable(text: str, secret: str) -> list[str]:
    """Every way of getting ``secret`` back out of ``text`` an attacker would try (empty: none)."""
    found = []
    candidates = {"text": text}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        for key, item in value.items():
            candidates[key] = str(item)
            with suppress(ValueError):
                candidates[key + "/json"] = json.dumps(json.loads(str(item)))
    for name, candidate in candidates.items():
        decoded = {
            "as is": candidate,
            "unquote": unquote(unquote(candidate)),
            "unquote_plus": unquote_plus(candidate),
            "html": html.unescape(candidate),
            "json": _json_unescape(candidate),
        }
        for token in re.findall(r"[A-Za-z0-9+/_=-]{8,}", candidate):
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                with suppress(ValueError):
                    decoded[f"base64 {token[:12]}"] = decode(token + "=" * (-len(token) % 4)).decode(
                        "utf-8", "replace"
                    )
        found += [f"{name} ({how})" for how, d in decoded.items() if secret in d]
    return found


def _json_unescape(text: str) -> str:
    try:
        return json.loads(f'"{text}"')
    except ValueError:
        return text


def _deep(n: int) -> str:
    """A JSON object nested ``n`` deep (an object: what becomes a result's structured content)."""
    return '{"a": ' * n + "1" + "}" * n


class HostileUpstream(Upstream):
    """The test upstream plus routes that echo credentials, nest JSON deeply and redirect in /api."""

    def _routes(self) -> list[Route]:
        async def leak(request: Request) -> Response:
            await self._record(request)
            secret = request.query_params.get("key", "")
            body = "{" + ", ".join(f'"{k}": {v}' for k, v in _encodings(secret).items()) + "}"
            return Response(body, media_type="application/json")

        async def leak_error(request: Request) -> Response:
            await self._record(request)
            secret = request.query_params.get("key", "")  # echoed where the short error body is cut
            return Response("x" * 490 + quote(secret, safe=""), status_code=500, media_type="text/plain")

        async def deep(request: Request) -> Response:
            await self._record(request)
            n = int(request.query_params["n"])
            return Response(_deep(n), media_type="application/json")

        async def surrogate(request: Request) -> Response:
            await self._record(request)
            return Response('{"s": "a\\ud800b", "ok": true}', media_type="application/json")

        async def trickle(request: Request) -> Response:
            await self._record(request)

            async def body():
                for _ in range(200):
                    yield b" "
                    await asyncio.sleep(0.05)

            return StreamingResponse(body(), media_type="application/json")

        async def api_redirect(request: Request) -> Response:
            await self._record(request)
            return RedirectResponse(request.query_params["to"], status_code=302)

        async def api_echo(request: Request) -> Response:
            entry = await self._record(request)
            return JSONResponse(entry)

        return [
            *super()._routes(),
            Route("/leak", leak),
            Route("/leak_error", leak_error),
            Route("/deep", deep),
            Route("/surrogate", surrogate),
            Route("/trickle", trickle),
            Route("/api/redirect", api_redirect),
            Route("/api/echo", api_echo),
        ]


@pytest.fixture(scope="module")
def _hostile_server() -> Iterator[HostileUpstream]:
    server = HostileUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def hostile(_hostile_server: HostileUpstream) -> HostileUpstream:
    _hostile_server.reset()
    return _hostile_server


def hostile_spec(url: str) -> dict[str, Any]:
    spec = openapi_spec(url)
    spec["paths"]["/leak"] = {"get": {"operationId": "get_leak", "security": [{"leak_key": []}]}}
    spec["paths"]["/leak_error"] = {"get": {"operationId": "get_leak_error", "security": [{"leak_key": []}]}}
    spec["paths"]["/deep"] = {
        "get": {
            "operationId": "get_deep",
            "parameters": [
                {"name": "n", "in": "query", "required": True, "schema": {"type": "integer"}},
                {"name": "X-Note", "in": "header", "schema": {"type": "string"}},
            ],
        }
    }
    spec["paths"]["/surrogate"] = {"get": {"operationId": "get_surrogate"}}
    spec["paths"]["/trickle"] = {"get": {"operationId": "get_trickle"}}
    spec["components"]["securitySchemes"] = {
        "leak_key": {"type": "apiKey", "in": "query", "name": "key", "x-env": SECRET_ENV}
    }
    return spec


@pytest.fixture
def hostile_spec_path(hostile: HostileUpstream, tmp_path: Path) -> Path:
    path = tmp_path / "hostile.openapi.json"
    path.write_text(json.dumps(hostile_spec(hostile.url)))
    return path


@pytest.fixture
async def app(hostile_spec_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    settings = load_settings(data_dir=str(data_dir), specs=[str(hostile_spec_path)])
    async with App(settings, features=[]) as app:
        yield app


@pytest.fixture
async def client(app: App) -> Any:
    async with Client(build_server(app)) as c:
        yield c


# ---------------------------------------------------------------- static documents on 127.0.0.1


class DocServer:
    """Serves ``docs`` (path -> JSON-able value, or ("redirect", location)) on its own origin."""

    def __init__(self, docs: dict[str, Any], *, trickle_s: float = 0.0):
        outer = self
        self.docs = docs

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                doc = outer.docs.get(self.path)
                if doc is None:
                    self.send_error(404)
                    return
                if isinstance(doc, tuple):
                    self.send_response(302)
                    self.send_header("Location", doc[1])
                    self.end_headers()
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not trickle_s:
                    self.wfile.write(body)
                    return
                for byte in body:  # one byte at a time: a server keeping its client waiting
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(trickle_s)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def doc_servers() -> Iterator[Callable[..., DocServer]]:
    servers: list[DocServer] = []

    def make(docs: dict[str, Any], **kwargs: Any) -> DocServer:
        servers.append(DocServer(docs, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def spec_with_ref(ref: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "http://127.0.0.1:9"}],
        "paths": {
            "/x": {
                "get": {
                    "operationId": "get_x",
                    "parameters": [{"name": "q", "in": "query", "schema": {"$ref": ref}}],
                }
            }
        },
    }


CREDS = {"type": "string", "description": "password=hunter2 from a private file"}


# ---------------------------------------------------------------- D1: remote specs stay on their origin


@pytest.mark.parametrize(
    ("form", "message"),
    [
        # a path in a remote document is a URL on its origin (here: not found), never a local file
        ("absolute path", r"\$ref to http://127\.0\.0\.1:\d+/.*/creds\.json failed: .*404 Not Found"),
        (
            "file URL",
            r"reference 'file://.*/creds\.json' leaves the origin of the document .*spec_ref_origins",
        ),
    ],
)
def test_d1_remote_spec_cannot_inline_a_local_file(doc_servers, tmp_path, form, message):
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps(CREDS))
    ref = str(creds) if form == "absolute path" else creds.as_uri()
    server = doc_servers({"/openapi.json": spec_with_ref(ref)})
    with pytest.raises(SpecError, match=message) as info:
        load_spec(f"{server.url}/openapi.json")
    assert "hunter2" not in str(info.value)


def test_d1_remote_spec_references_only_its_origin_unless_allowed(doc_servers):
    other = doc_servers({"/schemas.json": {"Q": CREDS}})
    server = doc_servers(
        {
            "/openapi.json": spec_with_ref(f"{other.url}/schemas.json#/Q"),
            "/same.json": spec_with_ref("/schemas/q.json"),
            "/schemas/q.json": {"type": "string", "maxLength": 3},
        }
    )
    with pytest.raises(SpecError, match=r"reference '.*schemas\.json#?.*' leaves the origin"):
        load_spec(f"{server.url}/openapi.json")
    # an absolute-path reference in a remote document is a URL on its origin, not a local file
    (same,) = load_spec(f"{server.url}/same.json")
    assert same.input_schema["properties"]["q"] == {"type": "string", "maxLength": 3}
    # the operator may allow another origin
    settings = load_settings(specs=[f"{server.url}/openapi.json"], upstream={"spec_ref_origins": [other.url]})
    (allowed,) = load_toolset(settings)
    assert allowed.input_schema["properties"]["q"] == CREDS


def test_d1_a_referenced_document_cannot_redirect_elsewhere(doc_servers):
    other = doc_servers({"/q.json": CREDS})
    server = doc_servers(
        {
            "/openapi.json": spec_with_ref("/go#"),
            "/go": ("redirect", f"{other.url}/q.json"),
        }
    )
    with pytest.raises(SpecError, match=r"redirected to .*which it may not reference"):
        load_spec(f"{server.url}/openapi.json")


def test_d1_native_yaml_from_a_url_cannot_import_a_local_file(doc_servers, upstream_spec):
    native = {"base_url": "http://127.0.0.1:9", "import": upstream_spec.as_uri()}
    server = doc_servers({"/native.yaml": native})
    with pytest.raises(SpecError, match=r"native\.yaml#/import: reference 'file:.*' leaves the origin"):
        load_spec(f"{server.url}/native.yaml")


def test_d1_local_specs_still_reference_local_files(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps({"type": "string"}))
    path = tmp_path / "api.json"
    path.write_text(json.dumps(spec_with_ref(str(tmp_path / "q.json"))))
    (tool,) = load_spec(str(path))
    assert tool.input_schema["properties"]["q"] == {"type": "string"}


# ---------------------------------------------------------------- D2: echoed credentials, any encoding


def test_d2_redactor_removes_every_encoding():
    redactor = Redactor([SECRET])
    for name, value in _encodings(SECRET).items():
        out = redactor.redact(f'{{"{name}": {value}}}')
        assert REDACTED in out, name
        assert not _recoverable(out, SECRET), (name, out)


async def test_d2_echoed_credential_never_reaches_a_client(client, hostile):
    result = await client.call_tool("get_leak", {})
    assert not result.is_error, result.content[0].text
    assert hostile.requests[-1]["query_params"] == [("key", SECRET)]  # the upstream did get it
    text = result.content[0].text
    assert text.count(REDACTED) >= len(_encodings(SECRET))
    assert not _recoverable(text, SECRET), text
    assert result.structured_content is not None
    assert not _recoverable(json.dumps(result.structured_content), SECRET)


async def test_d2_credential_cut_by_the_short_error_body_is_not_half_shown(client, hostile):
    result = await client.call_tool("get_leak_error", {})
    assert result.is_error and "HTTP 500" in result.content[0].text
    text = result.content[0].text
    assert text.endswith("x" * 10 + REDACTED)  # redacted whole, then cut to 500 characters
    assert quote(SECRET, safe="")[:8] not in text


async def test_d2_echoed_credential_never_reaches_disk(hostile_spec_path, hostile, data_dir, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    tools = {t.name: t for t in load_spec(str(hostile_spec_path))}
    store = TrialStore.open(data_dir / "lancedb", secrets=[SECRET])
    async with UpstreamClient(UpstreamSettings(retries=0)) as upstream:
        ctx = _explore_context(upstream, store, Redactor([SECRET]))
        (record,) = await run_episode(ctx, tools["get_leak"], 0)
    assert record.turns[0].kind == "call" and not record.turns[0].is_error
    assert REDACTED in record.turns[0].observation
    stored = json.dumps([t.model_dump(mode="json") for t in store.trials(tool="get_leak")])
    assert "get_leak" in stored and not _recoverable(stored, SECRET)
    needles = {SECRET, *(json.loads(v) for v in _encodings(SECRET).values())}
    needles |= {json.dumps(SECRET)[1:-1], json.dumps(SECRET, ensure_ascii=False)[1:-1]}
    for file in data_dir.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert not [n for n in needles if n.encode() in data], file


# ---------------------------------------------------------------- D4: errors are results, not crashes


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("caf\u00e9", "header values must be ASCII"),
        ("a\x1bb", "control character '\\x1b'"),
        ("a\x7fb", "control character '\\x7f'"),
    ],
)
async def test_d4a_header_value_http_cannot_carry_is_an_error_result(client, hostile, value, message):
    result = await client.call_tool("get_item", {"item_id": "1", "X-Trace": value})
    assert result.is_error and message in result.content[0].text
    assert "argument 'X-Trace'" in result.content[0].text
    assert hostile.count == 0


async def test_minor_header_value_blanks_are_trimmed(client, hostile):
    result = await client.call_tool("get_item", {"item_id": "1", "X-Trace": "  t1\t "})
    assert not result.is_error, result.content[0].text
    assert hostile.requests[-1]["headers"]["x-trace"] == "t1"


async def test_d4_lone_surrogate_in_a_string_is_an_error_result(hostile_spec_path, hostile):
    # MCP's JSON parser refuses "\ud800"; Python's json (a model's Action Input) does not
    tools = Toolset(load_spec(str(hostile_spec_path)))
    async with UpstreamClient(UpstreamSettings(retries=0)) as upstream:
        for args in ({"item_id": json.loads('"\\ud800x"')}, {"item_id": "1", "q": json.loads('"a\\udfff"')}):
            result = await upstream.call(tools.get("get_item"), args, purpose="explore")
            assert result.is_error and result.error_kind == "validation"
            assert "not valid Unicode (an unpaired surrogate" in result.text
    assert hostile.count == 0


async def test_minor_a_huge_argument_name_or_value_is_not_echoed_in_full(client, hostile):
    unknown = await client.call_tool("get_weather", {"city": "Oslo", "x" * 1_000_000: 1})
    assert unknown.is_error and "unknown argument" in unknown.content[0].text
    assert "(1,000,000 characters)" in unknown.content[0].text and len(unknown.content[0].text) < 1_000
    value = await client.call_tool("get_weather", {"city": "Oslo", "days": "y" * 1_000_000})
    assert value.is_error and "argument 'days'" in value.content[0].text
    assert len(value.content[0].text) < 2_000
    assert hostile.count == 0


async def test_lone_surrogate_from_an_upstream_reaches_the_client_as_text(client):
    result = await client.call_tool("get_surrogate", {})
    assert not result.is_error and result.structured_content is None
    assert "\\ud800" in result.content[0].text  # the body as the upstream wrote it (ASCII escape)


async def test_a_trickling_upstream_is_cut_at_the_call_deadline(hostile_spec_path, data_dir, hostile):
    settings = load_settings(
        data_dir=str(data_dir), specs=[str(hostile_spec_path)], upstream={"call_timeout_s": 1.0}
    )
    async with App(settings, features=[]) as app:
        result = await app.upstream.call(app.toolset.get("get_trickle"), {})
    assert result.is_error and result.error_kind == "timeout"
    assert "within 1 s" in result.text and "upstream.call_timeout_s" in result.text


async def test_minor_a_huge_unknown_tool_name_or_uri_is_not_echoed_in_full(client):
    from mcp.shared.exceptions import MCPError

    with pytest.raises(MCPError) as tool:
        await client.call_tool("t" * 1_000_000, {})
    with pytest.raises(MCPError) as resource:
        await client.read_resource("ste-mcp://nothing/" + "r" * 1_000_000)
    assert "Unknown tool" in str(tool.value) and len(str(tool.value)) < 300
    assert "Unknown resource" in str(resource.value) and len(str(resource.value)) < 300


async def test_d4b_over_long_url_is_an_error_result(client, hostile):
    query = await client.call_tool("get_weather", {"city": "A" * 70_000})
    assert query.is_error and "too long" in query.content[0].text
    assert "query parameter 'city' has 70,000 characters" in query.content[0].text
    path = await client.call_tool("get_item", {"item_id": "A" * 70_000})
    assert path.is_error and "argument 'item_id': the request URL would be too long" in path.content[0].text
    assert hostile.count == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_d4c_non_finite_body_number_is_an_error_result(hostile_spec_path, data_dir, hostile, number):
    # the SDK's client writes NaN as null: a client sending raw JSON is what reaches the server
    arguments = f'{{"name": "pen", "price": {number}}}'
    with raw_session(hostile_spec_path, data_dir) as call:
        reply = call("tools/call", f'{{"name": "create_item", "arguments": {arguments}}}')
    assert reply["result"]["isError"] is True, reply
    text = reply["result"]["content"][0]["text"]
    assert "argument 'price': NaN and Infinity are not JSON numbers" in text
    assert hostile.count == 0


@pytest.mark.parametrize("depth", [300, 1_000, 100_000])
def test_d4d_deeply_nested_upstream_json_comes_back_as_text(hostile_spec_path, data_dir, hostile, depth):
    with raw_session(hostile_spec_path, data_dir) as call:  # the real transport serialises the result
        reply = call("tools/call", f'{{"name": "get_deep", "arguments": {{"n": {depth}}}}}')
    result = reply["result"]
    assert not result.get("isError") and "structuredContent" not in result
    assert result["content"][0]["text"] == _deep(depth)


async def test_d4ad_explorer_records_trials_for_both(hostile_spec_path, hostile, data_dir):
    tools = {t.name: t for t in load_spec(str(hostile_spec_path))}
    store = TrialStore.open(data_dir / "lancedb")
    async with UpstreamClient(UpstreamSettings(retries=0)) as upstream:
        for episode, args in enumerate([{"n": 2_000}, {"n": 1, "X-Note": "r\u00e9sum\u00e9"}]):
            ctx = _explore_context(upstream, store, Redactor(), arguments=args)
            (record,) = await run_episode(ctx, tools["get_deep"], episode)
            assert record.turns[0].kind == "call"
    deep, header = store.trials(tool="get_deep")
    assert not deep.turns[0].is_error and deep.turns[0].observation.startswith('{"a": {"a": {"a": ')
    assert header.turns[0].is_error and header.turns[0].error_kind == "validation"
    assert "header values must be ASCII" in header.turns[0].observation
    assert hostile.count == 1


def _cyclic_spec(schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "http://127.0.0.1:9"}],
        "paths": {
            "/x": {
                "post": {
                    "operationId": "post_x",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"a": {"$ref": "#/components/schemas/A"}},
                                }
                            }
                        }
                    },
                }
            }
        },
        "components": {"schemas": schemas},
    }


@pytest.mark.parametrize(
    "schemas",
    [
        {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}},
        {"A": {"allOf": [{"$ref": "#/components/schemas/B"}]}, "B": {"$ref": "#/components/schemas/A"}},
        {"A": {"$ref": "#/components/schemas/A", "description": "itself"}},
        {"A": {"anyOf": [{"type": "string"}, {"not": {"$ref": "#/components/schemas/A"}}]}},
    ],
)
def test_d4e_ref_cycle_that_never_descends_is_refused_at_load(tmp_path, schemas):
    path = tmp_path / "cycle.json"
    path.write_text(json.dumps(_cyclic_spec(schemas)))
    with pytest.raises(SpecError, match=r"\$ref cycle .*A.* never descends into the value"):
        load_spec(str(path))


async def test_d4e_recursive_schema_validates_deep_arguments_without_recursion_error(tmp_path, hostile):
    schemas = {
        "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
        "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}},
    }
    spec = _cyclic_spec(schemas)
    spec["servers"] = [{"url": hostile.url}]
    spec["paths"] = {"/echo": spec["paths"]["/x"]}
    path = tmp_path / "recursive.json"
    path.write_text(json.dumps(spec))
    toolset = Toolset(load_spec(str(path)))

    def nested(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for i in range(levels):
            value = {"b" if i % 2 else "a": value}
        return value

    app = App(load_settings(data_dir=str(tmp_path / "data")), features=[], toolset=toolset)
    async with app, Client(build_server(app)) as c:
        ok = await c.call_tool("post_x", {"a": nested(60)})
        assert not ok.is_error, ok.content[0].text
        too_deep = await c.call_tool("post_x", {"a": nested(100)})
        assert too_deep.is_error and "nested deeper than 64 levels" in too_deep.content[0].text
        wrong = await c.call_tool("post_x", {"a": {"b": {"a": {"b": 3}}}})
        assert wrong.is_error and "argument 'a.b.a.b'" in wrong.content[0].text
    assert hostile.count == 1


# ---------------------------------------------------------------- D5: redirects stay inside the base URL


@pytest.fixture
def api_tools(hostile, tmp_path, monkeypatch) -> Toolset:
    monkeypatch.setenv("STE_TEST_API_TOKEN", "tok-" + "z" * 20)
    native = {
        "base_url": f"{hostile.url}/api",
        "auth": [{"kind": "bearer", "env": "STE_TEST_API_TOKEN"}],
        "tools": [
            {"name": "redirect", "path": "/redirect", "params": {"to": {"type": "string", "in": "query"}}}
        ],
    }
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(native))
    return Toolset(load_spec(str(path)))


@pytest.mark.parametrize("to", ["/echo", "/apiecho", "/api/%2e%2e/echo", "/api/../echo"])
async def test_d5_same_origin_redirect_outside_the_base_path_is_refused(api_tools, hostile, to):
    async with UpstreamClient(UpstreamSettings(retries=0)) as upstream:
        result = await upstream.call(api_tools.get("redirect"), {"to": to})
    assert result.is_error and result.error_kind == "ssrf"
    assert "redirected outside the tool's base URL" in result.text
    assert [r["path"] for r in hostile.requests] == ["/api/redirect"]  # Authorization went nowhere else


async def test_d5_redirect_inside_the_base_path_is_followed(api_tools, hostile):
    async with UpstreamClient(UpstreamSettings(retries=0)) as upstream:
        result = await upstream.call(api_tools.get("redirect"), {"to": "/api/echo?x=1"})
    assert not result.is_error, result.text
    assert hostile.requests[-1]["path"] == "/api/echo"
    assert hostile.requests[-1]["headers"]["authorization"].startswith("Bearer tok-")


def test_d5_config_documents_the_base_path_rule():
    doc = (REPO / "docs" / "CONFIG.md").read_text()
    assert "a redirect is followed only inside the tool's base URL" in doc


# ---------------------------------------------------------------- D6: a native import of a non-mapping


@pytest.mark.parametrize("imported", ["- a\n- b\n", "just text\n", "{tools: []}\n"])
def test_d6_native_import_of_a_non_openapi_document_is_a_spec_error(tmp_path, imported):
    (tmp_path / "other.yaml").write_text(imported)
    path = tmp_path / "native.yaml"
    path.write_text("base_url: http://127.0.0.1:9\nimport: other.yaml\n")
    with pytest.raises(SpecError, match=r"native\.yaml#/import: .*other\.yaml is not an OpenAPI document"):
        load_spec(str(path))


def test_d6_cli_exits_with_the_spec_error_code(tmp_path, data_dir):
    (tmp_path / "other.yaml").write_text("- a\n- b\n")
    path = tmp_path / "native.yaml"
    path.write_text("base_url: http://127.0.0.1:9\nimport: other.yaml\n")
    ste_mcp = str(Path(sys.executable).parent / "ste-mcp")
    proc = subprocess.run(
        [ste_mcp, "serve", "--spec", str(path), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert "is not an OpenAPI document" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- D7: spec loading is bounded


def test_d7_a_trickling_spec_url_hits_the_deadline(doc_servers):
    server = doc_servers({"/openapi.json": spec_with_ref("#/x")}, trickle_s=0.2)
    settings = UpstreamSettings(spec_load_timeout_s=1.0)
    with pytest.raises(
        SpecError, match=r"loading the spec took longer than 1 s \(upstream.spec_load_timeout_s\)"
    ):
        load_spec(f"{server.url}/openapi.json", settings=settings)


def test_d7_the_size_cap_counts_every_referenced_document(doc_servers):
    big = {"type": "string", "description": "x" * 4_000}
    server = doc_servers({"/openapi.json": spec_with_ref("/q.json"), "/q.json": big})
    url = f"{server.url}/openapi.json"
    (tool,) = load_spec(url, settings=UpstreamSettings(spec_max_bytes=10_000))
    assert tool.input_schema["properties"]["q"] == big
    with pytest.raises(SpecError, match=r"spec with .*/q\.json is larger than 3,000 bytes"):
        load_spec(url, settings=UpstreamSettings(spec_max_bytes=3_000))


# ---------------------------------------------------------------- D8: token strength


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("x", "has 1 characters"),
        (" " * 40, "printable ASCII characters without spaces"),
        ("correct horse battery staple", "printable ASCII characters without spaces"),
        ("a" * 32, "too few characters"),
        ("abab" * 8, "too few characters"),
    ],
)
def test_d8_weak_tokens_are_refused(token, problem):
    with pytest.raises(ConfigError, match=f"STE_MCP_TOKEN is too weak: it .*{re.escape(problem)}"):
        check_token(token, "STE_MCP_TOKEN")


def test_d8_http_app_refuses_a_weak_token_even_on_loopback(upstream_spec, data_dir, monkeypatch):
    monkeypatch.setenv("STE_MCP_TOKEN", " ")
    app = App(load_settings(data_dir=str(data_dir), specs=[str(upstream_spec)]), features=[])
    with pytest.raises(ConfigError, match="STE_MCP_TOKEN is too weak"):
        http_app(app, host="127.0.0.1", port=8765)
    monkeypatch.setenv("STE_MCP_TOKEN", "Zq8-vR2_kP5xW9mT")
    assert http_app(app, host="127.0.0.1", port=8765) is not None


# ---------------------------------------------------------------- minor: Origin without a port


def test_minor_loopback_origin_without_a_port_is_allowed(upstream_spec, data_dir):
    app = App(load_settings(data_dir=str(data_dir), specs=[str(upstream_spec)]), features=[])
    with TestClient(http_app(app, host="127.0.0.1", port=8765), base_url=LOCAL) as http:
        for origin in ("http://localhost", "http://127.0.0.1", "http://[::1]", "http://localhost:3000"):
            response = http.post("/mcp", content=INIT, headers={**RAW_HEADERS, "Origin": origin})
            assert response.status_code == 200, (origin, response.text)
        for origin in ("http://localhost.evil.example", "http://evil.example", "http://localhost:80x"):
            response = http.post("/mcp", content=INIT, headers={**RAW_HEADERS, "Origin": origin})
            assert response.status_code == 403, origin


# ---------------------------------------------------------------- interop: scalars for string params


async def test_interop_scalars_for_string_parameters_are_sent_as_openapi_text(client, hostile):
    result = await client.call_tool("get_item", {"item_id": 7, "q": True, "X-Trace": 1.5, "session": False})
    assert not result.is_error, result.content[0].text
    sent = hostile.requests[-1]
    assert sent["path"] == "/items/7" and sent["query_params"] == [("q", "true")]
    assert sent["headers"]["x-trace"] == "1.5" and sent["headers"]["cookie"] == "session=false"
    # a value of the declared type is untouched, and a non-scalar is still refused
    days = await client.call_tool("get_weather", {"city": 5, "days": 2})
    assert not days.is_error and hostile.requests[-1]["query_params"] == [("city", "5"), ("days", "2")]
    bad = await client.call_tool("get_weather", {"city": ["Oslo"]})
    assert bad.is_error and "argument 'city'" in bad.content[0].text


async def test_interop_ste50_ground_truth_json_true_on_the_toolbox(data_dir):
    app = App(load_settings(data_dir=str(data_dir)), features=[])
    async with app, Client(build_server(app)) as c:
        result = await c.call_tool("Numbers__Get_math_fact", {"number": "1729", "json": True})
    assert not result.is_error, result.content[0].text
    assert json.loads(result.content[0].text)["number"] == 1729


# ---------------------------------------------------------------- helpers

LOCAL = "http://127.0.0.1:8765"
RAW_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Host": "127.0.0.1:8765",
}
INIT = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
)


@contextmanager
def raw_session(spec: Path, data_dir: Path) -> Iterator[Callable[[str, str], dict[str, Any]]]:
    """An MCP session over Streamable HTTP whose requests are raw JSON text (as any client may send)."""
    app = App(load_settings(data_dir=str(data_dir), specs=[str(spec)]), features=[])
    with TestClient(http_app(app, host="127.0.0.1", port=8765), base_url=LOCAL) as http:
        init = http.post("/mcp", content=INIT, headers=RAW_HEADERS)
        assert init.status_code == 200, init.text
        headers = {
            **RAW_HEADERS,
            "mcp-session-id": init.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-06-18",
        }
        http.post(
            "/mcp", content='{"jsonrpc": "2.0", "method": "notifications/initialized"}', headers=headers
        )

        def call(method: str, params: str) -> dict[str, Any]:
            body = f'{{"jsonrpc": "2.0", "id": 2, "method": "{method}", "params": {params}}}'
            response = http.post("/mcp", content=body, headers=headers)
            data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
            return json.loads(data[-1] if data else response.text)

        yield call


def _explore_context(
    upstream: UpstreamClient,
    store: TrialStore,
    redactor: Redactor,
    *,
    arguments: dict[str, Any] | None = None,
) -> ExploreContext:
    """An explorer context whose scripted model asks one question, makes one call, answers, says yes."""

    def reply(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
        last = messages[-1]["content"] or ""
        if last.startswith("Observation:"):
            return "Thought: done\nFinal Answer: here it is"
        if "Answer yes or no" in last:
            return "yes"
        if last.startswith("Now fulfil"):
            tool = re.search(r"\n(get_\w+):", messages[0]["content"])[1]
            return f"Thought: call it\nAction: {tool}\nAction Input: {json.dumps(arguments or {})}"
        return "What does the API return?"

    settings = ExplorerSettings(upstream_rate_per_s=0, num_stm_slots=1)
    return ExploreContext(
        model=ScriptedModel([reply], repeat_last=True),
        upstream=upstream,
        store=store,
        protocol=ReActProtocol(constrained=False),
        settings=settings,
        redactor=redactor,
    )
