"""Prompt development for the explorer's imagination step: sample requests for every toolbox tool, for
a human to read, with the reply format and temperature as variants. Uses only the tools' descriptions
(never STE-50 queries).

    .venv/bin/ste-mcp model serve &     # prints the URL
    .venv/bin/python scripts/bench/imagine.py --llm-url http://127.0.0.1:PORT/v1 \
        --formats plain json --temperatures 1.0 0.6 --samples 2

``plain``: the reply as free text (cleaned by ``clean_query``); ``json``: the request in a JSON field
under constrained decoding (what the explorer does). Prints one line per sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from ste_mcp.explorer import prompts
from ste_mcp.explorer.episode import read_request, tool_definition
from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.llm.protocols import ReActProtocol
from ste_mcp.toolbox.server import openapi_document
from ste_mcp.upstream.specs import load_spec

REPO = Path(__file__).resolve().parents[2]

FORMATS = {"plain": {}, "json": {"response_format": prompts.REQUEST_FORMAT}}


def toolbox_tools() -> list:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "toolbox.json"
        spec.write_text(json.dumps(openapi_document("http://127.0.0.1:9")))
        return load_spec(str(spec))


async def main(args: argparse.Namespace) -> None:
    tools = toolbox_tools()
    protocol = ReActProtocol()
    async with OpenAIChatModel(args.llm_url, args.model, timeout_s=600) as model:

        async def sample(tool, fmt: str, temperature: float) -> list[str]:
            system = protocol.system_prompt([tool_definition(tool)], prompts.EXPLORER_INSTRUCTIONS)
            user = prompts.imagine_first(
                tool.name, tool.description, [], max_items=0, schema=tool.input_schema
            )
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            response = await model.chat(
                messages, max_tokens=160, temperature=temperature, n=args.samples, **FORMATS[fmt]
            )
            return [read_request(choice.text) for choice in response.choices]

        for fmt in args.formats:
            for temperature in args.temperatures:
                print(f"## {fmt}, temperature {temperature}", flush=True)
                results = await asyncio.gather(*(sample(t, fmt, temperature) for t in tools))
                for tool, requests in zip(tools, results, strict=True):
                    for request in requests:
                        print(f"{tool.name[:34]:34} | {request[:160]}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--formats", nargs="+", default=["plain", "json"], choices=sorted(FORMATS))
    parser.add_argument("--temperatures", nargs="+", type=float, default=[1.0, 0.6])
    parser.add_argument("--samples", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
