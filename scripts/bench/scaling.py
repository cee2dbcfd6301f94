"""Scaling benchmark (issue 21): sharded exploration, tools/list and tool search at scale, a cost model.

    .venv/bin/python scripts/bench/scaling.py [--parts explore search cost] [--tools 1000]
        [--workers 1 2 4] [--window-s 60] [--latency 0.2] [--search-tools 10000] [--write]

* ``explore``: ``--tools`` synthetic GET tools served by ``canned_llm.py`` (an OpenAI-compatible model
  server answering every request after ``--latency`` seconds, with a trivial echo upstream), explored by
  1, 2 and 4 ``ste-mcp explore --shard i/N`` processes on one fresh data dir each: trials per minute over
  a ``--window-s`` window once every worker is up, and the store's growth (bytes on disk per trial).
* ``search``: ``scripts/bench/toolsearch.py``'s scale row at ``--search-tools`` tools: tools/list bytes
  (all tools vs search listing), index build time, search latency.
* ``cost``: tokens per trial from the trial records (the canned run's, and ``--real-trials``, a data dir
  explored by a real model) × 15 episodes × 3 trials × 1,000 tools → GPU-hours on a 7B model at a
  published vLLM throughput (see ``THROUGHPUT``).

Results merge into docs/bench/scaling.json (each part keeps its latest run); ``--write`` renders
docs/bench/scaling.png and the numbers section of docs/SCALING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts" / "bench"))

RESULTS = REPO / "docs" / "bench" / "scaling.json"
PLOT = REPO / "docs" / "bench" / "scaling.png"
DOC = REPO / "docs" / "SCALING.md"
STE_MCP = [sys.executable, "-m", "ste_mcp"]
SLOTS = 3
PAPER_EPISODES = 15
COST_TOOLS = 1000
# A measured vLLM throughput of a 7B model: Mistral-7B-Instruct-v0.3 on one RTX 4090 (24 GB), vLLM
# OpenAI-compatible server, 256 input -> 128 output tokens, 48 concurrent requests: 11.87 requests/s,
# 1,190 output tokens/s (so 3,039 input tokens/s prefilled alongside).
THROUGHPUT = {
    "source": "https://mushfiqrahman.dev/?p=1668 (Mistral-7B-Instruct-v0.3, vLLM, 1x RTX 4090, 256 in / 128 "
    "out, max concurrency 48)",
    "requests_per_s": 11.87,
    "input_tokens_per_request": 256,
    "output_tokens_per_s": 1190,  # as reported (some replies end before 128 tokens)
}


# ---------------------------------------------------------------- explore


def write_spec(path: Path, root: str, tools: int) -> None:
    """An OpenAPI spec of ``tools`` GET tools on the canned server's echo upstream."""
    paths = {
        f"/api/tool_{i:05d}": {
            "get": {
                "operationId": f"tool_{i:05d}",
                "summary": f"Look up fact number {i} about a city.",
                "parameters": [
                    {"name": "city", "in": "query", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
        for i in range(tools)
    }
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "scale", "version": "1"},
        "servers": [{"url": root}],
        "paths": paths,
    }
    path.write_text(json.dumps(doc))


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def trial_count(db_dir: Path) -> int:
    from ste_mcp.memory.trials import TrialStore

    if not (db_dir / "trials.lance").exists():
        return 0
    return TrialStore.open(db_dir).count()


def explore_row(workers: int, spec: Path, llm_url: str, window_s: float) -> dict[str, Any]:
    """``workers`` shard processes on one fresh data dir: trials/min in the window, store growth."""
    data = Path(tempfile.mkdtemp(prefix=f"ste-mcp-scale-{workers}-"))
    db_dir = data / "lancedb"
    env = {**os.environ, "STE_MCP_EXPLORER__UPSTREAM_RATE_PER_S": "0"}
    base = [*STE_MCP, "explore", "--data-dir", str(data), "--spec", str(spec), "--llm-url", llm_url]
    base += ["--model", "canned", "--no-progress", "--episodes", "1", "--slots", str(SLOTS)]
    procs = [
        subprocess.Popen(
            [*base, "--shard", f"{i}/{workers}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for i in range(workers)
    ]
    cpu0 = os.times()
    try:
        deadline = time.monotonic() + 300
        while trial_count(db_dir) < 2 * workers:  # every worker is up (roughly) once trials come in
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"an explorer exited early: {procs[0].stderr.read()[-2000:]}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise RuntimeError("no trials within 300 s")
            time.sleep(1)
        t0, c0, b0 = time.monotonic(), trial_count(db_dir), dir_bytes(db_dir)
        curve = [(0.0, c0, b0)]
        while (elapsed := time.monotonic() - t0) < window_s:
            time.sleep(min(10.0, window_s - elapsed))
            curve.append((round(time.monotonic() - t0, 1), trial_count(db_dir), dir_bytes(db_dir)))
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    load = os.getloadavg()[0]
    cpu1 = os.times()
    t1, c1, _ = curve[-1]
    final_trials, final_bytes = trial_count(db_dir), dir_bytes(db_dir)
    tokens = trial_tokens(db_dir)
    return {
        "workers": workers,
        "window_s": t1,
        "trials_in_window": c1 - c0,
        "trials_per_min": round((c1 - c0) / t1 * 60, 1),
        "trials_total": final_trials,
        "store_bytes": final_bytes,
        "store_bytes_per_trial": round(final_bytes / final_trials) if final_trials else None,
        "curve": curve,
        "children_cpu_s": round(
            (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system), 1
        ),
        "load_avg_1m_end": round(load, 1),
        "tokens": tokens,
    }


def trial_tokens(db_dir: Path) -> dict[str, Any]:
    """Mean prompt / completion tokens, model requests and upstream calls per trial of a store."""
    from ste_mcp.memory.trials import TrialStore

    trials = TrialStore.open(db_dir).trials()
    if not trials:
        return {"trials": 0}
    return {
        "trials": len(trials),
        "models": sorted({t.model for t in trials}),
        "prompt_tokens": round(statistics.mean(t.prompt_tokens for t in trials), 1),
        "completion_tokens": round(statistics.mean(t.completion_tokens for t in trials), 1),
        "calls": round(statistics.mean(t.calls for t in trials), 2),
    }


def explore_part(args: argparse.Namespace) -> dict[str, Any]:
    from canned_llm import start_child

    canned, llm_url = start_child(args.latency)
    try:
        spec = Path(tempfile.mkdtemp(prefix="ste-mcp-scale-spec-")) / "spec.json"
        write_spec(spec, llm_url.removesuffix("/v1"), args.tools)
        rows = []
        for workers in args.workers:
            row = explore_row(workers, spec, llm_url, args.window_s)
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            rows.append(row)
    finally:
        canned.terminate()
        canned.wait(10)
    return {"tools": args.tools, "latency_s": args.latency, "slots": SLOTS, "rows": rows}


# ---------------------------------------------------------------- search, cost


def search_part(args: argparse.Namespace) -> dict[str, Any]:
    from toolsearch import scale_row

    row = scale_row(args.search_tools)
    print(json.dumps(row), flush=True)
    return row


def cost_part(args: argparse.Namespace, explore: dict[str, Any] | None) -> dict[str, Any]:
    """GPU-hours for ``COST_TOOLS`` tools at the paper's episodes, per measured tokens-per-trial."""
    sources: dict[str, dict[str, Any]] = {}
    if explore and explore.get("rows"):
        sources["canned model (ste-mcp's real prompts, canned replies)"] = explore["rows"][0]["tokens"]
    if args.real_trials:
        real = trial_tokens(Path(args.real_trials) / "lancedb")
        sources[f"real model: {', '.join(real.get('models', []))}"] = real
    t = THROUGHPUT
    input_per_s = t["requests_per_s"] * t["input_tokens_per_request"]
    output_per_s = t["output_tokens_per_s"]
    trials = COST_TOOLS * PAPER_EPISODES * SLOTS
    rows = []
    for name, tok in sources.items():
        if not tok.get("trials"):
            continue
        prompt, completion = tok["prompt_tokens"] * trials, tok["completion_tokens"] * trials
        # the measured run prefilled input_per_s and decoded output_per_s at once: the GPU time of this
        # workload lies between the larger of the two shares (perfect overlap) and their sum (none)
        prefill_h, decode_h = prompt / input_per_s / 3600, completion / output_per_s / 3600
        rows.append(
            {
                "tokens_from": name,
                "trials_measured": tok["trials"],
                "prompt_tokens_per_trial": tok["prompt_tokens"],
                "completion_tokens_per_trial": tok["completion_tokens"],
                "trials": trials,
                "prompt_tokens_total": round(prompt),
                "completion_tokens_total": round(completion),
                "gpu_hours_low": round(max(prefill_h, decode_h), 1),
                "gpu_hours_high": round(prefill_h + decode_h, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {
        "throughput": THROUGHPUT,
        "tools": COST_TOOLS,
        "episodes": PAPER_EPISODES,
        "slots": SLOTS,
        "rows": rows,
    }


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--parts", nargs="+", default=["explore", "search", "cost"], choices=["explore", "search", "cost"]
    )
    p.add_argument("--tools", type=int, default=1000, help="synthetic tools to explore")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="explorer processes (shards)")
    p.add_argument("--window-s", type=float, default=60, help="measuring window per worker count")
    p.add_argument("--latency", type=float, default=0.2, help="canned model latency per request, seconds")
    p.add_argument("--search-tools", type=int, default=10_000)
    p.add_argument(
        "--real-trials", help="a data dir explored by a real model (tokens per trial for the cost)"
    )
    p.add_argument("--write", action="store_true", help="write docs/bench/scaling.png and docs/SCALING.md")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    stamp = {"command": " ".join(["scripts/bench/scaling.py", *sys.argv[1:]]), "machine": machine}
    stamp["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if "explore" in args.parts:
        results["explore"] = {**explore_part(args), **stamp}
    if "search" in args.parts:
        results["search"] = {**search_part(args), **stamp}
    if "cost" in args.parts:
        results["cost"] = {**cost_part(args, results.get("explore")), **stamp}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    if args.write:
        plot(results)
        write_doc(results)
    return 0


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results.get("explore", {}).get("rows", [])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for row in rows:
        xs = [t for t, _, _ in row["curve"]]
        left.plot(
            xs,
            [c - row["curve"][0][1] for _, c, _ in row["curve"]],
            marker="o",
            label=f"{row['workers']} worker(s)",
        )
        right.plot(
            [c for _, c, _ in row["curve"]],
            [b / 1e6 for _, _, b in row["curve"]],
            marker="o",
            label=f"{row['workers']} worker(s)",
        )
    left.set_title("trials recorded in the window (canned model)")
    left.set_xlabel("seconds")
    left.set_ylabel("trials")
    right.set_title("store size vs trials")
    right.set_xlabel("trials in the store")
    right.set_ylabel("MB on disk (LanceDB)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    print(f"wrote {PLOT}")


def write_doc(results: dict[str, Any]) -> None:
    """Replace the generated part of docs/SCALING.md (between its markers) with the numbers."""
    lines: list[str] = []
    ex = results.get("explore")
    if ex:
        lines += [
            f"### Sharded exploration ({ex['tools']:,} tools, canned model at {ex['latency_s'] * 1000:.0f} ms a request)",
            "",
            f"Command: `.venv/bin/python {ex['command']}` — {ex['machine']}, {ex['date']}.",
            "",
            "| worker processes | trials/min | speed-up | trials in window | window s | store bytes/trial | CPU s of the workers | load avg (end) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        first = ex["rows"][0]["trials_per_min"] or 1
        for r in ex["rows"]:
            lines.append(
                f"| {r['workers']} | {r['trials_per_min']} | {r['trials_per_min'] / first:.2f}x | {r['trials_in_window']} | "
                f"{r['window_s']} | {r['store_bytes_per_trial']:,} | {r['children_cpu_s']} | {r['load_avg_1m_end']} |"
            )
        lines += ["", "![trials over time and store growth](bench/scaling.png)", ""]
    se = results.get("search")
    if se:
        sizes = se["tools_list_bytes"]
        lines += [
            f"### tools/list and tool search at {se['tools']:,} tools",
            "",
            f"Command: `.venv/bin/python {se['command']}` — {se['machine']}, {se['date']}.",
            "",
            "| tools | tools/list bytes, all tools | tools/list bytes, search listing | index build s | search p50 ms | search p95 ms |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {se['tools']:,} | {sizes['all']:,} | {sizes['search']:,} | {se['build_s']} | {se['search_p50_ms']} | {se['search_p95_ms']} |",
            "",
        ]
    co = results.get("cost")
    if co:
        t = co["throughput"]
        lines += [
            f"### Cost model: {co['tools']:,} tools × {co['episodes']} episodes × {co['slots']} trials on a 7B model",
            "",
            f"Throughput: {t['requests_per_s']} requests/s of {t['input_tokens_per_request']} input tokens with "
            f"{t['output_tokens_per_s']:,} output tokens/s, i.e. "
            f"{t['requests_per_s'] * t['input_tokens_per_request']:,.0f} input tokens/s prefilled alongside; "
            f"source: {t['source']}.",
            "",
            "| tokens per trial from | trials measured | prompt tokens/trial | completion tokens/trial | trials | prompt tokens | completion tokens | GPU-hours |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in co["rows"]:
            lines.append(
                f"| {r['tokens_from']} | {r['trials_measured']} | {r['prompt_tokens_per_trial']:,} | "
                f"{r['completion_tokens_per_trial']:,} | {r['trials']:,} | {r['prompt_tokens_total'] / 1e6:,.0f} M | "
                f"{r['completion_tokens_total'] / 1e6:,.1f} M | {r['gpu_hours_low']}–{r['gpu_hours_high']} |"
            )
        lines.append("")
    begin, end = "<!-- scaling.py: begin -->", "<!-- scaling.py: end -->"
    text = DOC.read_text() if DOC.exists() else f"# Scaling\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    DOC.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    raise SystemExit(main())
