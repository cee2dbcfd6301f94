"""Explorer benchmark.

1. Orchestration: episodes per minute, sequential (the paper's loop: one episode, one request at a
   time) vs 8 and 32 episodes in flight, against ``canned_llm.py`` (an OpenAI-compatible server that
   answers every request after a fixed 200 ms, replaying canned ReAct turns) and a trivial upstream.
   This measures the orchestration, not a model. Target: >= 25x at 32.
2. Real model (``--real``): SmolLM2-135M on managed vLLM (CPU) against the offline toolbox: trials per
   minute and the share of trials that reach a successful call.

    .venv/bin/python scripts/bench/explore.py [--real] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from canned_llm import start_child

from ste_mcp.app import App
from ste_mcp.config import load_settings
from ste_mcp.explorer.scheduler import Explorer
from ste_mcp.upstream.specs import Toolset
from ste_mcp.upstream.tools import Param, Tool

REPO = Path(__file__).resolve().parents[2]

SLOTS = 3
RESULTS = REPO / ".cache" / "bench" / "explore.json"  # latest results of each part, merged


def bench_tools(root: str, n: int) -> list[Tool]:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return [
        Tool(
            name=f"tool_{i:02d}",
            description=f"Look up fact number {i} about a city.",
            input_schema=schema,
            method="GET",
            path=f"/api/tool_{i:02d}",
            base_url=root,
            params=[Param(name="city", location="query", required=True)],
        )
        for i in range(n)
    ]


async def orchestration(base_url: str, concurrency: int, episodes: int) -> dict[str, Any]:
    root = base_url.removesuffix("/v1")
    tools = bench_tools(root, min(32, episodes))
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=tmp,
            llm={"model": "canned", "base_url": base_url, "max_concurrency": 256, "timeout_s": 30},
            upstream={"max_connections": 256},
            explorer={
                "num_episodes": -(-episodes // len(tools)),
                "max_episodes_total": episodes,
                "num_stm_slots": SLOTS,
                "concurrency": concurrency,
                "tool_concurrency": concurrency,
                "upstream_rate_per_s": 0,
            },
        )
        async with App(settings, toolset=Toolset(tools), features=[]) as app:
            explorer = await Explorer.from_app(app)  # wired as `serve` wires it
            started = time.perf_counter()
            summary = await explorer.run()
            elapsed = time.perf_counter() - started
            stats = explorer.store.stats()
    trials = sum(s["trials"] for s in stats.values())
    assert summary.episodes == episodes and trials == episodes * SLOTS, (summary, trials)
    return {
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "concurrency": concurrency,
        "episodes": episodes,
        "trials": trials,
        "seconds": round(elapsed, 2),
        "episodes_per_min": round(episodes / elapsed * 60, 1),
    }


async def real_model(
    tools: list[str], episodes: int, concurrency: int, max_tokens: int, llm_url: str | None
) -> dict[str, Any]:
    models_dir = os.environ.get("STE_MCP_TEST_MODELS_DIR", str(REPO / ".cache" / "models"))
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=tmp,
            llm={
                "model": "packaged:smollm2-135m-instruct",
                "base_url": llm_url,
                "served_model_name": "smollm2-135m-instruct" if llm_url else None,
                "max_model_len": 4096,
            },
            explorer={
                "num_episodes": episodes,
                "num_stm_slots": SLOTS,
                "concurrency": concurrency,
                "max_tokens": max_tokens,
                "tools": tools,
            },
        )
        os.environ.setdefault("STE_MCP_MODELS_DIR", models_dir)
        async with App(settings, features=[]) as app:
            started_model = time.perf_counter()
            explorer = await Explorer.from_app(app)  # opens the model: its start is timed apart
            model_start_s = time.perf_counter() - started_model
            started = time.perf_counter()
            await explorer.run()
            elapsed = time.perf_counter() - started
            trials = explorer.store.trials()
    reached = sum(1 for t in trials if t.successful_calls > 0)
    return {
        "model": "SmolLM2-135M-Instruct (vLLM, CPU)",
        "max_tokens": max_tokens,
        "concurrency": concurrency,
        "tools": tools,
        "trials": len(trials),
        "minutes": round(elapsed / 60, 2),
        "trials_per_min": round(len(trials) / elapsed * 60, 1),
        "share_reaching_successful_call": round(reached / len(trials), 3) if trials else 0.0,
        "share_successful_trials": round(sum(t.success for t in trials) / len(trials), 3) if trials else 0.0,
        "parse_errors_per_trial": round(sum(t.parse_errors for t in trials) / len(trials), 2)
        if trials
        else 0.0,
        "model_start_s": round(model_start_s, 1),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def markdown(rows: list[dict[str, Any]], real: dict[str, Any] | None, latency_s: float) -> str:
    base = rows[0]["episodes_per_min"] if rows else 1.0
    lines = [
        "## Explorer",
        "",
        f"`scripts/bench/explore.py`: STE episodes ({SLOTS} trials each: imagine, one call, final answer, reflect "
        f"= 12 model requests) against `scripts/bench/canned_llm.py`, an OpenAI-compatible server answering "
        f"every request after a fixed {int(latency_s * 1000)} ms, and a trivial local upstream; trials recorded "
        "in LanceDB as usual. This measures orchestration, not the model.",
        "",
        "| episodes in flight | episodes | seconds | episodes / min | speed-up | load avg (2 cores) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        speedup = r["episodes_per_min"] / base
        label = "1 (sequential, the paper's loop)" if r["concurrency"] == 1 else str(r["concurrency"])
        lines.append(
            f"| {label} | {r['episodes']} | {r['seconds']} | {r['episodes_per_min']} | {speedup:.1f}x "
            f"| {r.get('load_avg_1m', '?')} |"
        )
    if real:
        lines += [
            "",
            f"Real model: {real['model']} against the offline toolbox ({', '.join(real['tools'])}), "
            f"{real['trials']} trials in {real['minutes']} min: **{real['trials_per_min']} trials/min**; "
            f"{real['share_reaching_successful_call']:.0%} of trials reach a successful call, "
            f"{real['share_successful_trials']:.0%} end successful (successful call + final answer + reflection yes); "
            f"{real['parse_errors_per_trial']} parse errors per trial "
            f"(max {real.get('max_tokens', '?')} tokens per turn, {real.get('concurrency', '?')} episodes in flight; "
            f"load average {real.get('load_avg_1m', '?')} on 2 shared cores during the run).",
        ]
    lines.append("")
    return "\n".join(lines)


def write_docs(section: str) -> None:
    path = REPO / "docs" / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find("## Explorer")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--levels", default="1:4,8:32,32:128", help="concurrency:episodes pairs")
    parser.add_argument("--real", action="store_true", help="also run the real CPU model")
    parser.add_argument(
        "--real-tools",
        default="get_today_date,Numbers__Get_math_fact,getWolframAlphaResults,Places__Geographic_coordinates_by_placename",
    )
    parser.add_argument("--real-episodes", type=int, default=2)
    parser.add_argument("--real-max-tokens", type=int, default=160)
    parser.add_argument("--real-concurrency", type=int, default=8)
    parser.add_argument("--llm-url", help="an already running vLLM serving SmolLM2 (default: start one)")
    parser.add_argument("--skip-canned", action="store_true", help="only the real-model part")
    parser.add_argument("--write-docs", action="store_true", help="write the '## Explorer' section")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    proc, url = start_child(args.latency)
    try:
        for level in [] if args.skip_canned else args.levels.split(","):
            c, n = (int(x) for x in level.split(":"))
            rows.append(anyio.run(orchestration, url, c, n))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    real = None
    if args.real:
        tools = args.real_tools.split(",")
        real = anyio.run(
            real_model, tools, args.real_episodes, args.real_concurrency, args.real_max_tokens, args.llm_url
        )
        print(json.dumps(real), flush=True)
    results = RESULTS.read_text() if RESULTS.exists() else "{}"
    merged = json.loads(results)
    if rows:
        merged.update(rows=rows, latency_s=args.latency)
    if real:
        merged["real"] = real
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=1))
    section = markdown(merged.get("rows", []), merged.get("real"), merged.get("latency_s", args.latency))
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
