"""Sharded exploration (issue 21): a stable partition of tools, several `ste-mcp explore` processes on
one data dir (real LanceDB, the canned OpenAI-compatible model server, its echo upstream), global
budgets counted across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ste_mcp.explorer.budget import Budget
from ste_mcp.explorer.scheduler import Explorer
from ste_mcp.explorer.settings import ExplorerSettings
from ste_mcp.explorer.shard import ShardError, in_shard, parse_shard, shard_of
from ste_mcp.memory.trials import TrialStore
from ste_mcp.upstream.tools import Tool

STE_MCP = [sys.executable, "-m", "ste_mcp"]
NAMES = [f"svc_{i}_lookup" for i in range(200)]


def test_parse_shard_names_what_is_wrong():
    assert parse_shard("1/4") == (1, 4)
    for bad, why in (("4/4", "0 <= i < n"), ("0/0", "n >= 1"), ("a/2", "must be 'i/n'"), ("2", "'i/n'")):
        with pytest.raises(ShardError, match=why):
            parse_shard(bad)
    with pytest.raises(ValueError, match="shard '3/2'"):
        ExplorerSettings(shard="3/2")


def test_partition_is_disjoint_complete_and_stable():
    for n in (1, 2, 4, 7):
        owners = {name: [i for i in range(n) if in_shard(name, f"{i}/{n}")] for name in NAMES}
        assert all(len(o) == 1 for o in owners.values())  # every tool in exactly one shard
        sizes = Counter(o[0] for o in owners.values())
        assert len(sizes) == n and min(sizes.values()) >= len(NAMES) / n / 2  # none starved
    before = {name: shard_of(name, 4) for name in NAMES}
    after = {name: shard_of(name, 4) for name in [*NAMES, "new_tool_a", "new_tool_b"]}
    assert all(after[name] == before[name] for name in NAMES)  # adding tools moves no other tool
    moved = sum(shard_of(name, 5) != before[name] for name in NAMES)
    assert 0 < moved < len(NAMES) * 0.35  # 4 -> 5 shards moves about a fifth, not most
    assert all(shard_of(name, 5) == 4 for name in NAMES if shard_of(name, 5) != before[name])


def test_explorer_selects_only_its_shard(tmp_path):
    tools = [
        Tool(
            name=name,
            description="d",
            input_schema={"type": "object"},
            method="GET",
            path="/x",
            base_url="http://127.0.0.1:9",
        )
        for name in NAMES[:40]
    ]
    store = TrialStore.open(tmp_path / "db")
    picked = []
    for i in range(3):
        explorer = Explorer(
            tools,
            model=None,
            upstream=None,
            store=store,
            settings=ExplorerSettings(shard=f"{i}/3"),
            protocol=1,
        )
        picked.append({t.name for t in explorer.selected()})
        assert not set(explorer.skipped())  # other shards' tools are not "skipped": they are not ours
    assert set().union(*picked) == {t.name for t in tools}
    assert sum(map(len, picked)) == len(tools)


def test_budget_sync_counts_other_processes_and_never_lowers():
    budget = Budget(ExplorerSettings(max_calls=10), {"a": {"calls": 2, "tokens": 5}})
    budget.reserve_call("a")  # 3 known to this process, 1 of them not recorded yet
    budget.sync({"a": {"calls": 2}, "b": {"calls": 6}})  # another process recorded 6 calls of b
    assert budget.total_calls == 3 + 5 and budget.global_reason() is None
    budget.sync({"a": {"calls": 3}, "b": {"calls": 4}})  # a stale or smaller view lowers nothing
    assert budget.total_calls == 8
    budget.sync({"a": {"calls": 3}, "b": {"calls": 7}})
    assert budget.total_calls == 10 and "global call budget (10)" in budget.global_reason()
    with pytest.raises(Exception, match="global call budget"):
        budget.reserve_call("a")


# ---------------------------------------------------------------- processes on one data dir

TOOL_NAMES = [f"tool_{i:02d}" for i in range(8)]


CANNED_LLM_LATENCY_S = 0.02  # per request of the canned_llm fixture (tests/fixtures/llm.py)


@pytest.fixture
def spec(tmp_path: Path, canned_llm: str) -> Path:
    paths = {
        f"/api/{name}": {
            "get": {
                "operationId": name,
                "summary": f"Look up fact {name} about a city.",
                "parameters": [
                    {"name": "city", "in": "query", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
        for name in TOOL_NAMES
    }
    root = canned_llm.removesuffix("/v1")
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": root}],
        "paths": paths,
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    return path


def explore(data_dir: Path, spec: Path, llm_url: str, *extra: str) -> subprocess.Popen[str]:
    cmd = [
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
        "--slots",
        "2",
        *extra,
    ]
    env = {**os.environ, "STE_MCP_EXPLORER__UPSTREAM_RATE_PER_S": "0", "STE_MCP_EXPLORER__BUDGET_SYNC_S": "0"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def test_two_shards_explore_disjoint_tools_whose_union_is_all(data_dir, spec, canned_llm):
    procs = [explore(data_dir, spec, canned_llm, "--episodes", "3", "--shard", f"{i}/2") for i in range(2)]
    finish(procs)
    trials = TrialStore.open(data_dir / "lancedb").trials()
    ids = [t.id for t in trials]
    expected = {f"{tool}:{ep}:{slot}" for tool in TOOL_NAMES for ep in range(3) for slot in range(2)}
    assert len(ids) == len(set(ids)) and set(ids) == expected  # nothing lost, nothing twice
    by_shard = [{t.tool for t in trials if shard_of(t.tool, 2) == i} for i in range(2)]
    assert by_shard[0] and by_shard[1] and by_shard[0] | by_shard[1] == set(TOOL_NAMES)
    # a shard re-run has nothing left to do: the other shard's tools are not its work
    again = explore(data_dir, spec, canned_llm, "--episodes", "3", "--shard", "1/2")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "nothing to explore" in err


def test_global_call_budget_holds_across_shards(data_dir, spec, canned_llm):
    budget, slots = 12, 2
    extra = ("--episodes", "10", "--concurrency", "1", "--max-calls", str(budget))
    procs = [explore(data_dir, spec, canned_llm, *extra, "--shard", f"{i}/2") for i in range(2)]
    finish(procs)
    stats = TrialStore.open(data_dir / "lancedb").stats()
    calls = sum(s["calls"] for s in stats.values())
    # each shard alone would spend the whole budget (2 x 12); together they stop near it: at most the
    # other process's episode in flight (concurrency 1 x slots x one call per canned trial) beyond it
    assert budget <= calls <= budget + 2 * slots
