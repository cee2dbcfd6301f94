"""OpenAIChatModel against a real local HTTP server that plays an OpenAI-compatible one."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from ste_mcp.config import load_settings
from ste_mcp.llm import open_model
from ste_mcp.llm.base import ContextTooLong, ModelError
from ste_mcp.llm.client import OpenAIChatModel

pytestmark = pytest.mark.anyio

Handler = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any], dict[str, str]]]


def completion(text: str = "hi", prompt_tokens: int = 5, completion_tokens: int = 2) -> dict[str, Any]:
    return {
        "model": "m",
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


class FakeServer:
    """Answers each request with ``handler(path, body)``; records requests and peak concurrency."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        fake = self

        class H(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append((self.path, body))
                    fake.in_flight += 1
                    fake.peak = max(fake.peak, fake.in_flight)
                try:
                    status, payload, headers = fake.handler(self.path, body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in {"content-type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                    self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], FakeServer]]:
    servers: list[FakeServer] = []

    def start(handler: Handler) -> FakeServer:
        servers.append(FakeServer(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_request_shape_usage_and_parsing(serve) -> None:
    def handler(path, body):
        calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
        body = completion("", 7, 3)
        body["choices"][0]["message"]["tool_calls"] = calls
        return 200, body, {}

    server = serve(handler)
    async with OpenAIChatModel(server.url, "base", api_key="sk-test") as model:
        response = await model.chat(
            [{"role": "user", "content": "x"}],
            model="adapter-1",
            stop=["Observation:"],
            structured={"grammar": "root ::= [a]"},
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            tool_choice="auto",
            n=2,
        )
        await model.chat([{"role": "user", "content": "y"}])
        assert model.usage.prompt_tokens == 14 and model.usage.completion_tokens == 6
    path, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["model"] == "adapter-1" and body["n"] == 2 and body["stop"] == ["Observation:"]
    assert body["structured_outputs"] == {"grammar": "root ::= [a]"}  # vLLM 0.32's field
    assert "response_format" not in body and server.requests[1][1]["model"] == "base"
    assert response.tool_calls[0].name == "f" and response.tool_calls[0].arguments == '{"a": 1}'


async def test_prefix_continues_the_assistant_reply(serve) -> None:
    server = serve(lambda path, body: (200, completion(" add days\nAction: add_date"), {}))
    async with OpenAIChatModel(server.url, "base") as model:
        response = await model.chat([{"role": "user", "content": "x"}], prefix="Thought:")
        plain = await model.chat([{"role": "user", "content": "x"}])
    body = server.requests[0][1]
    assert body["messages"][-1] == {"role": "assistant", "content": "Thought:"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert response.text == "Thought: add days\nAction: add_date"
    second = server.requests[1][1]
    assert "continue_final_message" not in second and second["messages"][-1]["role"] == "user"
    assert plain.text == " add days\nAction: add_date"


async def test_retries_5xx_and_429_then_succeeds(serve) -> None:
    answers = iter(
        [
            (503, {"error": {"message": "busy"}}, {}),
            (429, {}, {"retry-after": "0"}),
            (200, completion("ok"), {}),
        ]
    )
    server = serve(lambda path, body: next(answers))
    async with OpenAIChatModel(server.url, "m", retries=3, backoff_s=0.01) as model:
        assert (await model.chat([{"role": "user", "content": "x"}])).text == "ok"
    assert len(server.requests) == 3


async def test_gives_up_after_retries_naming_the_server(serve) -> None:
    server = serve(lambda path, body: (500, {"error": {"message": "engine dead"}}, {}))
    async with OpenAIChatModel(server.url, "m", retries=2, backoff_s=0.01) as model:
        with pytest.raises(
            ModelError, match=r"model server at .*/v1 answered 500: engine dead \(after 3 attempts\)"
        ):
            await model.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 3


async def test_client_error_is_not_retried_and_says_why(serve) -> None:
    server = serve(lambda path, body: (400, {"error": {"message": "max_tokens too large"}}, {}))
    async with OpenAIChatModel(server.url + "/v1/", "m", backoff_s=0.01) as model:
        with pytest.raises(ModelError, match=r"rejected the request \(400\): max_tokens too large"):
            await model.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


async def test_a_prompt_longer_than_the_context_is_its_own_error(serve) -> None:
    """vLLM's 400 for a prompt over max_model_len: callers shrink the prompt rather than retry it."""
    text = "This model's maximum context length is 4096 tokens. However, your prompt contains at least 4097"
    server = serve(lambda path, body: (400, {"error": {"message": text}}, {}))
    async with OpenAIChatModel(server.url + "/v1/", "m", backoff_s=0.01) as model:
        with pytest.raises(ContextTooLong, match="maximum context length is 4096"):
            await model.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


async def test_unreachable_server_fails_fast_with_a_clear_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    async with OpenAIChatModel(url, "m", retries=2, backoff_s=0.01) as model:
        with (
            anyio.fail_after(10),
            pytest.raises(ModelError, match=rf"model server at {url}/v1 unreachable: ConnectError"),
        ):
            await model.chat([{"role": "user", "content": "x"}])


async def test_open_model_with_unreachable_url_fails_at_open(tmp_path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    settings = load_settings(data_dir=tmp_path, llm={"base_url": url, "retries": 0})
    with anyio.fail_after(10), pytest.raises(ModelError, match="unreachable"):
        async with open_model(settings):
            pytest.fail("opened a model on an unreachable server")


async def test_read_timeout_is_reported_not_retried(serve) -> None:
    server = serve(lambda path, body: (time.sleep(4), (200, completion(), {}))[1])
    async with OpenAIChatModel(server.url, "m", timeout_s=1.5, retries=3) as model:
        with pytest.raises(ModelError, match=r"timed out after 1\.5 s"):
            await model.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


async def test_concurrency_limit(serve) -> None:
    server = serve(lambda path, body: (time.sleep(0.2), (200, completion(), {}))[1])
    async with OpenAIChatModel(server.url, "m", max_concurrency=2) as model, anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(model.chat, [{"role": "user", "content": "x"}])
    assert len(server.requests) == 6
    assert server.peak == 2


async def test_lora_management_and_reload_after_restart(serve) -> None:
    answers = iter([(200, {}, {}), (503, {}, {}), (200, {}, {}), (200, completion("from adapter"), {})])
    server = serve(lambda path, body: next(answers))
    generation = iter([1, 2, 2])

    async def ensure_ready() -> int:  # what ManagedVLLM.wait_ready returns: its start count
        return next(generation)

    async with OpenAIChatModel(server.url, "m", backoff_s=0.01, ensure_ready=ensure_ready) as model:
        await model.load_lora("ad1", "/adapters/ad1")
        response = await model.chat([{"role": "user", "content": "x"}], model="ad1")
    assert response.text == "from adapter"
    paths = [p for p, _ in server.requests]
    assert paths == [
        "/v1/load_lora_adapter",
        "/v1/chat/completions",
        "/v1/load_lora_adapter",
        "/v1/chat/completions",
    ]
    assert server.requests[2][1] == {"lora_name": "ad1", "lora_path": "/adapters/ad1"}


async def test_list_and_unload(serve) -> None:
    def handler(path, body):
        if path == "/v1/models":
            return 200, {"data": [{"id": "base"}, {"id": "ad1"}]}, {}
        return 404, {"error": {"message": "The lora adapter 'ad2' cannot be found."}}, {}

    server = serve(handler)
    async with OpenAIChatModel(server.url, "base") as model:
        assert await model.list_models() == ["base", "ad1"]
        with pytest.raises(ModelError, match=r"unloading LoRA adapter 'ad2' \(404\): .*cannot be found"):
            await model.unload_lora("ad2")
