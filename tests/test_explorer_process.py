"""The explorer as the operator runs it: `ste-mcp explore` / `status` in subprocesses (kill -9 and
resume included) and in the background of the MCP server, with a canned OpenAI-compatible model
server (scripts/bench/canned_llm.py) and the real counting upstream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from ste_mcp.app import App
from ste_mcp.config import load_settings
from ste_mcp.explorer.status import collect_status
from ste_mcp.memory.trials import TrialStore
from ste_mcp.server.server import build_server

STE_MCP = [sys.executable, "-m", "ste_mcp"]
TOOLS = ["get_weather", "get_item"]


CANNED_LLM_LATENCY_S = 0.05  # per request of the canned_llm fixture (tests/fixtures/llm.py)


def explore_cmd(data_dir: Path, spec: Path, llm_url: str, *extra: str) -> list[str]:
    return [
        *STE_MCP,
        "explore",
        "--data-dir",
        str(data_dir),
        "--spec",
        str(spec),
        "--llm-url",
        llm_url,
        "--model",
        "canned",
        "--no-progress",
        "--tools",
        *TOOLS,
        "create_item",
        *extra,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "STE_MCP_EXPLORER__UPSTREAM_RATE_PER_S": "0"}


def test_kill_9_then_resume_loses_nothing_and_duplicates_nothing(
    data_dir: Path, upstream_spec: Path, canned_llm: str, upstream
) -> None:
    cmd = explore_cmd(data_dir, upstream_spec, canned_llm, "--episodes", "6", "--concurrency", "2")
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = TrialStore.open(data_dir / "lancedb")
    deadline = time.monotonic() + 120
    while store.count() < 5:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no trials recorded in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = store.trials()
    assert 5 <= len(killed_at) < 2 * 6 * 3, "killed too late to test anything"
    assert len({t.id for t in killed_at}) == len(killed_at)

    done = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = store.trials()
    ids = [t.id for t in trials]
    expected = {f"{tool}:{ep}:{slot}" for tool in TOOLS for ep in range(6) for slot in range(3)}
    assert len(ids) == len(set(ids)) and set(ids) == expected
    before = {t.id: t.recorded_at for t in killed_at}
    assert all(t.recorded_at == before[t.id] for t in trials if t.id in before)  # nothing redone
    assert {r["method"] for r in upstream.requests} == {"GET"}  # create_item (POST) never called
    assert "skipping create_item" in done.stderr

    status = subprocess.run(
        [*STE_MCP, "status", "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    tools = json.loads(status.stdout)["tools"]
    for tool in TOOLS:
        assert tools[tool]["trials"] == 18 and tools[tool]["episodes"] == 6
        assert tools[tool]["successful_trials"] == sum(t.success for t in trials if t.tool == tool)

    again = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to explore" in again.stderr
    assert store.count() == len(expected)


def test_unknown_tool_is_a_clear_error(data_dir: Path, upstream_spec: Path, canned_llm: str) -> None:
    cmd = explore_cmd(data_dir, upstream_spec, canned_llm, "--tools", "no_such_tool")
    done = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown tool(s) no_such_tool" in done.stderr and "get_weather" in done.stderr


def test_pause_marker(data_dir: Path) -> None:
    run = [*STE_MCP, "explore", "--data-dir", str(data_dir)]
    assert subprocess.run([*run, "--pause"], capture_output=True, timeout=60).returncode == 0
    assert (data_dir / "explorer.paused").exists()
    assert subprocess.run([*run, "--resume"], capture_output=True, timeout=60).returncode == 0
    assert not (data_dir / "explorer.paused").exists()


@pytest.mark.anyio
async def test_serve_explores_in_background_and_serves_status(
    data_dir: Path, upstream_spec: Path, canned_llm: str, upstream
) -> None:
    settings = load_settings(
        data_dir=str(data_dir),
        specs=[str(upstream_spec)],
        llm={"base_url": canned_llm, "model": "canned"},
        explorer={
            "num_episodes": 2,
            "num_stm_slots": 2,
            "tools": [*TOOLS, "create_item"],
            "upstream_rate_per_s": 0,
        },
    )
    app = App(settings, features=["ste_mcp.explorer.extension:create"])
    async with app, Client(build_server(app)) as client:
        resources = (await client.list_resources()).resources
        assert any(str(r.uri) == "ste-mcp://status" for r in resources)
        # a client call goes through while exploration runs
        result = await client.call_tool("get_weather", {"city": "Oslo"})
        assert not result.is_error
        with anyio.fail_after(60):
            while True:
                contents = (await client.read_resource("ste-mcp://status")).contents
                status = json.loads(contents[0].text)
                if status["totals"]["trials"] >= 8:
                    break
                await anyio.sleep(0.2)
    for tool in TOOLS:
        assert status["tools"][tool]["trials"] == 4 and status["tools"][tool]["episodes"] == 2
    assert "create_item" in status["explorer"]["skipped_tools"]
    live = collect_status(settings)["explorer"]  # what `ste-mcp status` in another process sees
    assert live["pid"] == os.getpid() and live["this_run"]["trials"] == 8
    assert "create_item" not in status["tools"]
    explorer_requests = [r for r in upstream.requests if r["headers"].get("x-ste-mcp-explorer") == "1"]
    assert len(explorer_requests) == 8 and len(upstream.requests) == 9
    assert all(r["method"] == "GET" for r in upstream.requests)
