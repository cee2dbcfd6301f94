"""UpstreamClient against a real HTTP upstream on 127.0.0.1: validation, SSRF rules, failures."""

from __future__ import annotations

import json

import pytest

from ste_mcp.upstream.client import EXPLORER_HEADER, UpstreamClient
from ste_mcp.upstream.settings import UpstreamSettings
from ste_mcp.upstream.specs import Toolset, load_spec
from ste_mcp.upstream.tools import AuthRef, ExplorePolicy

pytestmark = pytest.mark.anyio


@pytest.fixture
def toolset(upstream_spec) -> Toolset:
    return Toolset(load_spec(str(upstream_spec)))


async def call(toolset, name, args, *, settings=None, **kw):
    async with UpstreamClient(settings or UpstreamSettings(retries=0)) as client:
        return await client.call(toolset.get(name), args, **kw)


# ---------------------------------------------------------------- happy paths


async def test_query_params_reach_upstream(toolset, upstream):
    result = await call(toolset, "get_weather", {"city": "Oslo", "days": 2})
    assert not result.is_error, result.text
    assert result.status == 200
    assert result.structured["city"] == "Oslo"
    assert len(result.structured["forecast"]) == 2
    assert upstream.requests[0]["query_params"] == [("city", "Oslo"), ("days", "2")]


async def test_path_header_cookie_and_body(toolset, upstream):
    result = await call(toolset, "get_item", {"item_id": "a b/c", "q": "x", "X-Trace": "t1", "session": "s"})
    assert not result.is_error, result.text
    req = upstream.requests[-1]
    assert req["raw_path"] == "/items/a%20b%2Fc"  # percent-encoded, cannot add segments
    assert req["headers"]["x-trace"] == "t1"
    assert req["headers"]["cookie"] == "session=s"
    result = await call(toolset, "create_item", {"name": "pen", "price": 2.5, "tags": ["a"]})
    assert not result.is_error, result.text
    assert upstream.requests[-1]["method"] == "POST"
    assert upstream.requests[-1]["body"] == '{"name":"pen","price":2.5,"tags":["a"]}'


async def test_recursive_body_schema_is_flattened_and_validated(toolset, upstream):
    children = [{"label": "leaf", "children": []}]
    result = await call(toolset, "put_item", {"item_id": "7", "label": "root", "children": children})
    assert not result.is_error, result.text
    assert upstream.requests[-1]["body"] == '{"label":"root","children":[{"label":"leaf","children":[]}]}'
    bad = await call(toolset, "put_item", {"item_id": "7", "children": [{"children": [{"label": 3}]}]})
    assert bad.is_error and bad.error_kind == "validation"
    assert "argument 'children.0.children.0.label'" in bad.text
    assert upstream.count == 1


async def test_whole_body_param(toolset, upstream):
    result = await call(toolset, "post_echo", {"body": [1, 2, 3]})
    assert not result.is_error, result.text
    assert upstream.requests[-1]["body"] == "[1,2,3]"


async def test_explore_purpose_adds_header_and_uses_sandbox(toolset, upstream, other_upstream):
    tool = toolset.get("get_weather")
    tool.explore = ExplorePolicy(sandbox_base_url=other_upstream.url)
    async with UpstreamClient(UpstreamSettings()) as client:
        result = await client.call(tool, {"city": "Rome"}, purpose="explore")
        assert not result.is_error, result.text
        assert upstream.count == 0
        assert other_upstream.requests[-1]["headers"][EXPLORER_HEADER.lower()] == "1"
        await client.call(tool, {"city": "Rome"})
        assert EXPLORER_HEADER.lower() not in upstream.requests[-1]["headers"]
        assert client.stats[f"http://127.0.0.1:{upstream.url.rsplit(':', 1)[1]}"]["calls"] == 1


# ---------------------------------------------------------------- bad arguments: zero upstream requests


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"city": "Oslo", "days": "x"}, "argument 'days': 'x' is not of type 'integer'"),
        ({"days": 2}, "argument 'city': required argument is missing"),
        ({"city": "Oslo", "color": "red"}, "argument 'color': unknown argument"),
        ({"city": "Oslo", "days": 9}, "argument 'days': 9 is greater than the maximum of 7"),
        # a number for a string query parameter is sent as its text (test_security_regressions)
        ({"city": {"name": "Oslo"}}, "argument 'city': {'name': 'Oslo'} is not of type 'string'"),
    ],
)
async def test_invalid_arguments_make_no_request(toolset, upstream, args, expected):
    result = await call(toolset, "get_weather", args)
    assert result.is_error
    assert result.error_kind == "validation"
    assert expected in result.text
    assert upstream.count == 0


async def test_invalid_body_field_named(toolset, upstream):
    result = await call(toolset, "create_item", {"name": "", "price": -1})
    assert result.is_error and result.error_kind == "validation"
    assert "argument 'name'" in result.text and "argument 'price'" in result.text
    assert upstream.count == 0


# ---------------------------------------------------------------- SSRF through every location


@pytest.mark.parametrize(
    "item_id",
    ["../status/500", "..", "http://evil.example/x", "//evil.example/x", "a\r\nHost: evil", "%2e%2e"],
)
async def test_path_param_cannot_escape(toolset, upstream, item_id):
    result = await call(toolset, "get_item", {"item_id": item_id})
    if result.is_error:
        assert result.error_kind == "ssrf", result.text
        assert upstream.count == 0
    else:  # encoded harmlessly: still the same route on the same origin
        assert upstream.requests[-1]["path"].startswith("/items/")
        assert result.structured["path_params"]["item_id"] == item_id


async def test_query_header_body_cannot_escape(toolset, upstream):
    r = await call(toolset, "get_item", {"item_id": "1", "q": "http://evil.example/?a=1&b=../../x"})
    assert not r.is_error
    assert upstream.requests[-1]["query_params"] == [("q", "http://evil.example/?a=1&b=../../x")]
    assert upstream.requests[-1]["path"] == "/items/1"
    r = await call(toolset, "get_item", {"item_id": "1", "X-Trace": "a\r\nHost: evil.example"})
    assert r.is_error and r.error_kind == "ssrf" and "CR/LF" in r.text
    r = await call(toolset, "get_item", {"item_id": "1", "q": "a\nb"})
    assert r.is_error and r.error_kind == "ssrf"
    r = await call(toolset, "create_item", {"name": "http://evil.example:80/../../etc"})
    assert not r.is_error and upstream.requests[-1]["path"] == "/items"
    assert upstream.count == 2


async def test_redirects(toolset, upstream, other_upstream):
    same = await call(toolset, "get_redirect", {"to": f"{upstream.url}/text"})
    assert not same.is_error and same.text.startswith("plain text")
    other = await call(toolset, "get_redirect", {"to": f"{other_upstream.url}/text"})
    assert other.is_error and other.error_kind == "ssrf" and "another origin" in other.text
    assert other_upstream.count == 0


# ---------------------------------------------------------------- upstream trouble


async def test_non_2xx_is_error_with_status_and_short_body(toolset, upstream):
    result = await call(toolset, "get_status", {"code": 500})
    assert result.is_error and result.error_kind == "http" and result.status == 500
    assert "HTTP 500" in result.text and "status 500 body" in result.text
    assert len(result.text) < 700


async def test_non_json_body(toolset, upstream):
    result = await call(toolset, "get_text", {})
    assert not result.is_error and result.structured is None
    assert result.text == "plain text, not JSON <html>"


async def test_big_body_truncated_with_notice(toolset, upstream):
    result = await call(toolset, "get_big", {"mb": 50}, settings=UpstreamSettings(max_response_bytes=100_000))
    assert result.truncated
    assert "[truncated: the response exceeded 100000 bytes" in result.text
    assert len(result.text) < 101_000


async def test_timeout(toolset, upstream):
    result = await call(
        toolset, "get_slow", {"seconds": 3}, settings=UpstreamSettings(read_timeout_s=0.3, retries=0)
    )
    assert result.is_error and result.error_kind == "timeout"
    assert "timed out waiting for the response" in result.text


async def test_connection_refused(toolset):
    tool = toolset.get("get_text")
    tool.base_url = "http://127.0.0.1:9"  # discard port: nothing listens
    async with UpstreamClient(UpstreamSettings(retries=1)) as client:
        result = await client.call(tool, {})
    assert result.is_error and result.error_kind == "connect"
    assert "refused the connection" in result.text


async def test_retries_only_for_idempotent_methods(toolset, upstream):
    upstream.reset(flaky_failures=2)
    result = await call(toolset, "get_flaky", {}, settings=UpstreamSettings(retries=2))
    assert not result.is_error and upstream.count == 3
    upstream.reset(flaky_failures=2)
    result = await call(toolset, "post_flaky", {}, settings=UpstreamSettings(retries=2))
    assert result.is_error and result.status == 503 and upstream.count == 1


async def test_auth_from_env_never_in_result(toolset, upstream, monkeypatch):
    tool = toolset.get("get_item")
    tool.auth = [
        AuthRef(kind="bearer", env="TEST_UP_TOKEN"),
        AuthRef(kind="query", name="key", env="TEST_UP_KEY"),
    ]
    async with UpstreamClient(UpstreamSettings()) as client:
        missing = await client.call(tool, {"item_id": "1"})
        assert missing.is_error and missing.error_kind == "auth" and "TEST_UP_TOKEN" in missing.text
        assert upstream.count == 0
        monkeypatch.setenv("TEST_UP_TOKEN", "s3cret-token")
        monkeypatch.setenv("TEST_UP_KEY", "s3cret-key")
        result = await client.call(tool, {"item_id": "1"})
    assert not result.is_error
    assert upstream.requests[-1]["headers"]["authorization"] == "Bearer s3cret-token"
    # the echo upstream sends the credentials back: the client must not see them
    assert "s3cret" not in result.text and "s3cret" not in json.dumps(result.structured)
    assert result.structured["headers"]["authorization"] == "Bearer [REDACTED]"
    assert ("key", "s3cret-key") in upstream.requests[-1]["query_params"]
    assert toolset.secret_values() == ["s3cret-key", "s3cret-token"]
