"""A tiny OpenAI-compatible chat server that replays canned explorer turns after a fixed latency.

It plays the explorer model perfectly and instantly (after ``--latency`` seconds per request), so
that benchmarks and tests measure orchestration, not a model:

* imagination prompt  -> a new numbered user request
* trial prompt        -> one call of the tool (ReAct text, or a native tool call when ``tools`` is sent)
                         with arguments made from the tool's JSON schema (required properties)
* observation         -> "Final Answer: ..."
* reflection prompt   -> "yes"

It also serves ``GET /api/{name}``, a trivial upstream that echoes its query parameters.

Run: ``python scripts/bench/canned_llm.py --latency 0.2`` prints ``READY <base_url>`` on stdout
(``start_child`` does that from another benchmark script).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_counter = itertools.count(1)
_TOOLS_LINE = re.compile(r"one of: ([^>\n]+)>")
_PARAMS = re.compile(r"^(?P<name>[A-Za-z0-9_-]+): .*?\nParameters: (?P<schema>\{.*\})$", re.MULTILINE)


def sample(schema: dict[str, Any]) -> Any:
    """A plausible value for a JSON schema."""
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "array":
        return [sample(schema.get("items", {"type": "string"}))]
    if kind == "object":
        return arguments(schema)
    return "Paris"


def arguments(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties", {})
    return {name: sample(props.get(name, {})) for name in schema.get("required", [])}


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content


def _tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The tool to call and its schema, from native ``tools`` or the ReAct system prompt."""
    if body.get("tools"):
        fn = body["tools"][0]["function"]
        return fn["name"], fn.get("parameters") or {}
    system = _text(body["messages"][0])
    for m in _PARAMS.finditer(system):
        return m["name"], json.loads(m["schema"])
    names = _TOOLS_LINE.search(system)
    return (names[1].split(",")[0].strip() if names else "unknown"), {}


def reply(body: dict[str, Any]) -> dict[str, Any]:
    """The canned assistant message for a chat request: {"content", "tool_calls"}."""
    messages = body["messages"]
    last = messages[-1]
    text = _text(last)
    if last.get("role") == "tool" or text.startswith("Observation:"):
        return {
            "content": "Thought: I now know the final answer\nFinal Answer: here is what the tool returned."
        }
    if "Answer yes or no" in text:
        return {"content": "yes"}
    if text.startswith("Now fulfil this request"):
        name, schema = _tool(body)
        args = arguments(schema)
        if body.get("tools"):
            call = {
                "id": f"call_{next(_counter)}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            return {"content": None, "tool_calls": [call]}
        return {
            "content": f"Thought: I will call the tool.\nAction: {name}\nAction Input: {json.dumps(args)}"
        }
    return {"content": f"Please help with request number {next(_counter)} about Paris."}


def build_app(latency_s: float) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        await asyncio.sleep(latency_s)
        message = {"role": "assistant", **reply(body)}
        prompt_chars = sum(len(_text(m)) for m in body["messages"])
        completion_chars = len(message.get("content") or "") + len(json.dumps(message.get("tool_calls", "")))
        return JSONResponse(
            {
                "id": f"chatcmpl-{next(_counter)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "canned"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_chars // 4,
                    "completion_tokens": completion_chars // 4,
                    "total_tokens": (prompt_chars + completion_chars) // 4,
                },
            }
        )

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "canned", "object": "model"}]})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({})

    async def api(request: Request) -> JSONResponse:
        """A trivial upstream for benchmarks: echoes the tool name and the query parameters."""
        return JSONResponse({"tool": request.path_params["name"], "params": dict(request.query_params)})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models),
            Route("/health", health),
            Route("/api/{name}", api),
        ]
    )


def start_child(latency_s: float) -> tuple[subprocess.Popen[str], str]:
    """This server as a child process (``latency_s`` per request): the process and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--latency", str(latency_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"canned server did not start: {line!r}")
    return proc, line.split()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request (default 0.2)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(args.latency), log_level="warning", backlog=256, limit_concurrency=None)
    server = uvicorn.Server(config)
    print(f"READY http://127.0.0.1:{port}/v1", flush=True)
    server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
