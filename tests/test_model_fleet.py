"""The model fleet is vLLM's (issue 21, item 4): ``llm.base_url`` names a router over several replicas and
``llm.replica_urls`` the replicas runtime LoRA adapters are loaded into.

Two replicas are the canned OpenAI-compatible server (scripts/bench/canned_llm.py) with vLLM's runtime
LoRA endpoints added (``/v1/load_lora_adapter``, ``/v1/unload_lora_adapter``, 404 for a model it does not
serve), behind a round-robin router that, like a real one, forwards each request to ONE replica. All are
real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ste_mcp.config import ConfigError, load_settings
from ste_mcp.llm import open_model
from ste_mcp.llm.base import ModelError
from tests.fixtures.common import LocalServer, free_port
from tests.fixtures.llm import load_canned_llm

BASE = "canned"


@dataclass
class Replica:
    """One vLLM stand-in: the canned chat plus runtime LoRA state."""

    url: str = ""
    adapters: dict[str, str] = field(default_factory=dict)  # name -> path
    served: list[str] = field(default_factory=list)  # model of every chat request answered


def replica_app(replica: Replica) -> Starlette:
    canned = load_canned_llm().build_app(0.0)
    canned_chat = next(r.endpoint for r in canned.routes if getattr(r, "path", "") == "/v1/chat/completions")

    async def load(request: Request) -> Response:
        body = await request.json()
        replica.adapters[body["lora_name"]] = body["lora_path"]
        return PlainTextResponse(f"Success: LoRA adapter '{body['lora_name']}' added successfully.")

    async def unload(request: Request) -> Response:
        name = (await request.json())["lora_name"]
        if replica.adapters.pop(name, None) is None:
            return JSONResponse({"error": {"message": f"The lora adapter '{name}' cannot be found."}}, 404)
        return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = body.get("model", BASE)
        if model != BASE and model not in replica.adapters:  # as vLLM answers an unknown model
            return JSONResponse({"error": {"message": f"The model `{model}` does not exist."}}, 404)
        replica.served.append(model)
        return await canned_chat(_replay(request, body))

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": m} for m in [BASE, *replica.adapters]]})

    return Starlette(
        routes=[
            Route("/v1/load_lora_adapter", load, methods=["POST"]),
            Route("/v1/unload_lora_adapter", unload, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models),
        ]
    )


def _replay(request: Request, body: dict[str, Any]) -> Request:
    """The request again with its body already read (the canned handler reads it once more)."""
    data = json.dumps(body).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": data, "more_body": False}

    return Request(request.scope, receive)


def router_app(backends: list[str]) -> Starlette:
    """Round robin: each request, whatever its path, goes to the next backend only."""
    turn = itertools.cycle(backends)

    async def forward(request: Request) -> Response:
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.request(
                request.method,
                next(turn) + request.url.path,
                content=await request.body(),
                headers={"content-type": request.headers.get("content-type", "application/json")},
            )
        return Response(r.content, r.status_code, media_type=r.headers.get("content-type"))

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])


@pytest.fixture
def fleet() -> Iterator[tuple[str, list[Replica]]]:
    """Two replicas and the router in front of them; yields the router's URL and the replicas."""
    replicas = [Replica(), Replica()]
    servers = [LocalServer(replica_app(replica)) for replica in replicas]
    for replica, server in zip(replicas, servers, strict=True):
        replica.url = server.url
    servers.append(LocalServer(router_app([r.url for r in replicas])))
    yield servers[-1].url, replicas
    for server in servers:
        server.stop()


def _settings(tmp_path: Path, router: str, replicas: list[str], **llm: Any) -> Any:
    return load_settings(
        data_dir=str(tmp_path),
        llm={"base_url": router, "model": BASE, "retries": 0, "replica_urls": replicas, **llm},
    )


@pytest.mark.anyio
async def test_adapter_reaches_every_replica_and_survives_a_replica_restart(
    fleet: tuple[str, list[Replica]], tmp_path: Path
) -> None:
    router, replicas = fleet
    settings = _settings(tmp_path, router, [r.url for r in replicas])
    async with open_model(settings, progress=False) as model:
        await model.load_lora("round-1", "/shared/adapters/round-1")
        assert [r.adapters for r in replicas] == [{"round-1": "/shared/adapters/round-1"}] * 2
        for _ in range(4):  # through the router: each replica answers for the adapter
            reply = await model.chat([{"role": "user", "content": "hello"}], model="round-1")
            assert reply.model == "round-1"
        assert [r.served.count("round-1") for r in replicas] == [2, 2]

        replicas[1].adapters.clear()  # the replica restarted: runtime adapters are gone
        for _ in range(2):  # whichever replica the router picks, the request is answered
            reply = await model.chat([{"role": "user", "content": "hello"}], model="round-1")
            assert reply.model == "round-1"
        assert all("round-1" in r.adapters for r in replicas)

        await model.unload_lora("round-1")
        assert [r.adapters for r in replicas] == [{}, {}]
        with pytest.raises(ModelError, match="404"):  # an adapter this client never loaded stays an error
            await model.chat([{"role": "user", "content": "hello"}], model="round-1")


@pytest.mark.anyio
async def test_through_the_router_alone_an_adapter_reaches_one_replica(
    fleet: tuple[str, list[Replica]], tmp_path: Path
) -> None:
    """Why replica_urls exists: a router forwards the load request to one replica."""
    router, replicas = fleet
    async with open_model(_settings(tmp_path, router, []), progress=False) as model:
        await model.load_lora("round-1", "/shared/adapters/round-1")
    assert sorted(len(r.adapters) for r in replicas) == [0, 1]


@pytest.mark.anyio
async def test_a_replica_that_refuses_the_adapter_is_named(
    fleet: tuple[str, list[Replica]], tmp_path: Path
) -> None:
    router, replicas = fleet
    dead = f"http://127.0.0.1:{free_port()}"
    async with open_model(_settings(tmp_path, router, [replicas[0].url, dead]), progress=False) as model:
        with pytest.raises(ModelError) as caught:
            await model.load_lora("round-1", "/shared/adapters/round-1")
    message = str(caught.value)
    assert "failed on 1 of 2 replicas" in message and f"{dead}/v1" in message
    assert replicas[0].url not in message
    assert "round-1" in replicas[0].adapters  # the healthy replica has it; a retry loads it in place


def test_replica_urls_need_a_router_and_are_the_app_models_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"llm.replica_urls needs llm.base_url"):
        load_settings(llm={"replica_urls": ["http://10.0.0.1:8000"]})
    settings = _settings(
        tmp_path,
        "http://router:8000",
        ["http://a:8000", "http://b:8000"],
        judge={"base_url": "http://j:8000"},
    )
    assert settings.llm.for_role("explorer").replica_urls == ["http://a:8000", "http://b:8000"]
    assert settings.llm.for_role("judge").replica_urls == []


@pytest.mark.slow  # two training processes start (torch, TRL, gloo): ~2 min on 2 shared cores
def test_a_round_trains_data_parallel_under_torchrun(smollm2_dir: Path, tmp_path: Path) -> None:
    """finetune.gpus = 2 on a CPU (gloo): a round starts two training processes under torchrun; the
    adapter (saved by process 0 alone) is registered. The base is a tiny random model with SmolLM2's
    architecture and tokenizer: this checks the launch, not what is learned."""
    import asyncio
    import shutil

    from transformers import AutoConfig, AutoModelForCausalLM

    from ste_mcp.finetune.registry import PEFT_FILES, AdapterRegistry
    from ste_mcp.finetune.rounds import BaseModelRef, run_round
    from ste_mcp.finetune.settings import FinetuneSettings
    from ste_mcp.memory.exemplars import Exemplar
    from ste_mcp.upstream.tools import Tool

    base = tmp_path / "tiny-base"
    config = AutoConfig.from_pretrained(smollm2_dir)
    config.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2})
    config.update({"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16})
    AutoModelForCausalLM.from_config(config).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (smollm2_dir / name).is_file():
            shutil.copy2(smollm2_dir / name, base / name)

    tools = [
        Tool(
            name=name,
            description=text,
            input_schema=_schema(arg),
            method="GET",
            path=f"/{name}",
            base_url="http://127.0.0.1:9",
        )
        for name, arg, text in [
            ("get_weather", "city", "Current weather for a city."),
            ("get_population", "country", "Population of a country."),
        ]
    ]
    cities, countries = ["Paris", "Rome", "Oslo", "Lima"], ["France", "Italy", "Norway", "Peru"]
    exemplars = [
        Exemplar(
            id=f"w{i}", tool="get_weather", query=f"Weather in {c}?", arguments={"city": c}, status="approved"
        )
        for i, c in enumerate(cities)
    ] + [
        Exemplar(
            id=f"p{i}",
            tool="get_population",
            query=f"People in {c}?",
            arguments={"country": c},
            status="approved",
        )
        for i, c in enumerate(countries)
    ]
    settings = FinetuneSettings(
        gpus=2,
        device="cpu",
        dtype="float32",
        max_steps=2,
        batch_size=2,
        cpu_threads=1,
        max_length=384,
        general_examples=0,
        tools_in_prompt=2,
        min_new_exemplars=1,
    )
    log_path = tmp_path / "train.log"
    with log_path.open("w") as log:
        result = asyncio.run(
            run_round(
                adapters_dir=tmp_path / "adapters",
                base=BaseModelRef(path=str(base), base_id="tiny-smollm2"),
                tools=tools,
                exemplars=exemplars,
                settings=settings,
                gate=False,
                log=log,
            )
        )
    text = log_path.read_text()
    assert result.status == "registered", text[-3000:]
    assert result.adapter is not None
    train = result.adapter.metrics["train"]
    assert train["processes"] == 2 and train["steps"] == 2 and train["device"] == "cpu"
    folder = AdapterRegistry(tmp_path / "adapters").path(result.adapter.id)
    assert all((folder / name).is_file() for name in PEFT_FILES)


def _schema(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string"}}, "required": [name]}
