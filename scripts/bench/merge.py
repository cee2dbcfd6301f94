"""Benchmark: serving a LoRA adapter on vLLM-CPU, at run time vs merged into the base weights.

    flock /tmp/ste-model.lock .venv/bin/python scripts/bench/merge.py [--model MODEL] [--adapter DIR]
        [--items 65] [--concurrency 4] [--write]

One managed vLLM (as ``ste-mcp serve`` starts it), the same short eval three times: ``bench/dev`` (65
queries, candidates-15, the paper's ReAct prompt, greedy) on (1) the base model, (2) the base model with
the adapter loaded at run time (``model=<adapter>``), (3) the adapter merged into the base weights
(``ste_mcp.finetune.merge``, a child process) with the server restarted on the merged folder
(``ManagedVLLM.switch_model``, as ``finetune.serve_merged`` does). Each phase starts with a cold prefix
cache (a fresh LoRA id, a restarted server). Reported: wall time, generated tokens and tokens/s, correct %,
time against the base model's; the merge and the restart.

Without ``--adapter`` the adapter is a fresh one of ``finetune``'s default shape (rank 8, all linear
layers) with peft's default initialisation (B = 0): it changes no answer, so the three phases generate the
same tokens and differ only in how they compute them — a timing, not an accuracy, comparison. A trained
adapter (``--adapter``, a PEFT folder for the same base) measures both.
Results print as Markdown; ``--write`` replaces the section "Serving a promoted adapter on CPU" of
docs/BENCHMARKS.md and writes docs/bench/merge.json and merge.png (time per phase against the base model).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ste_mcp.evaluate.bench import load_bench
from ste_mcp.evaluate.report import replace_section, table
from ste_mcp.evaluate.run import EvalConfig, run_eval
from ste_mcp.finetune.merge import MergedModels
from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.llm.managed import ManagedVLLM, usable_cores
from ste_mcp.llm.sources import DEFAULT_MODEL, prepare_model

REPO = Path(__file__).resolve().parents[2]

HEADING = "Serving a promoted adapter on CPU"
ADAPTER_NAME = "bench-adapter"

MAKE_ADAPTER = """
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from ste_mcp.finetune.settings import FinetuneSettings
s = FinetuneSettings()
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
config = LoraConfig(r=s.lora_rank, lora_alpha=s.lora_alpha, target_modules=s.target_modules, task_type="CAUSAL_LM")
get_peft_model(model, config).save_pretrained(sys.argv[2])
"""


def make_adapter(base: Path, dest: Path) -> Path:
    """A fresh adapter of finetune's default shape for ``base`` (in a child process: torch stays out)."""
    subprocess.run([sys.executable, "-c", MAKE_ADAPTER, str(base), str(dest)], check=True)
    return dest


async def timed_eval(model: OpenAIChatModel, bench, items, adapter: str | None, concurrency: int) -> dict:
    before = model.usage.completion_tokens
    config = EvalConfig(setting="base", shown="candidates", adapter=adapter, concurrency=concurrency)
    t0 = time.perf_counter()
    result = await run_eval(model, bench, items, config)
    seconds = time.perf_counter() - t0
    tokens = model.usage.completion_tokens - before
    return {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "correct": result.summary.correct,
        "errors": result.errors,
        "outputs": [p.get("output", "") for p in result.predictions],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    models_dir = Path(args.models_dir)
    prepared = prepare_model(args.model, models_dir)
    bench = load_bench(args.bench)
    items = bench.select(limit=args.items)
    work = Path(tempfile.mkdtemp(prefix="ste-bench-merge-"))
    adapter = Path(args.adapter) if args.adapter else make_adapter(prepared.path, work / "adapter")
    server = ManagedVLLM(
        prepared.path, prepared.name, logs_dir=work / "logs", max_model_len=4096, kv_cache_gib=2
    )
    out: dict[str, Any] = {"model": args.model, "items": len(items), "trained_adapter": bool(args.adapter)}
    server.start()
    try:
        async with OpenAIChatModel(
            server.base_url, server.served_name, timeout_s=1800, ensure_ready=server.wait_ready
        ) as model:
            print("base ...", file=sys.stderr)
            out["base"] = await timed_eval(model, bench, items, None, args.concurrency)
            await model.load_lora(ADAPTER_NAME, str(adapter))
            print("runtime LoRA ...", file=sys.stderr)
            out["lora"] = await timed_eval(model, bench, items, ADAPTER_NAME, args.concurrency)
            await model.unload_lora(ADAPTER_NAME)
            t0 = time.perf_counter()
            folder = await MergedModels(work / "merged").ensure("bench", adapter, prepared.path)
            out["merge_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            await asyncio.to_thread(server.switch_model, folder)
            out["restart_s"] = time.perf_counter() - t0
            print("merged ...", file=sys.stderr)
            out["merged"] = await timed_eval(model, bench, items, None, args.concurrency)
    finally:
        server.stop()
    return out


def markdown(r: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    base = r["base"]["seconds"]
    rows = []
    for key, label in (
        ("base", "base model"),
        ("lora", "runtime LoRA"),
        ("merged", "merged (restarted server)"),
    ):
        p = r[key]
        same = sum(a == b for a, b in zip(p["outputs"], r["lora"]["outputs"], strict=True))
        rows.append(
            [
                label,
                p["seconds"],
                p["tokens"],
                p["tokens_per_s"],
                p["correct"],
                f"{p['seconds'] / base:.2f}x",
                same,
            ]
        )
    header = [
        "served as",
        "seconds",
        "generated tokens",
        "tokens/s",
        "correct %",
        "time / base",
        "= LoRA's answer",
    ]
    adapter = (
        "a trained adapter"
        if r["trained_adapter"]
        else "a fresh rank-8 all-linear adapter (B = 0: answers unchanged)"
    )
    return "\n".join(
        [
            f"`{r['model']}`, {r['items']} `bench/dev` queries (candidates-15, the paper's prompt, greedy), "
            f"{args.concurrency} in flight, {adapter}; one managed vLLM (eager, `--enable-lora` as `serve` "
            f"starts it), {usable_cores()} cores ({platform.processor() or platform.machine()}), "
            f"{time.strftime('%Y-%m-%d')}.",
            "",
            table(header, rows),
            "",
            f"Merging (child process, peft `merge_and_unload`, written once to `<data_dir>/merged/<id>`): "
            f"{r['merge_s']:.0f} s; restarting vLLM on the merged folder: {r['restart_s']:.0f} s.",
            "",
            f"Command: `{command}`",
        ]
    )


def save(r: dict[str, Any], out: Path) -> None:
    """The numbers (without the answers) as ``merge.json`` and a bar plot of each phase's time as ``merge.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = {"base": "base model", "lora": "runtime LoRA", "merged": "merged, restarted"}
    numbers = {k: v if k not in phases else {m: v[m] for m in v if m != "outputs"} for k, v in r.items()}
    (out / "merge.json").write_text(json.dumps(numbers, indent=1) + "\n")
    base = r["base"]["seconds"]
    fig, ax = plt.subplots(figsize=(6, 3))
    bars = ax.bar(list(phases.values()), [r[k]["seconds"] / base for k in phases], color=["grey", "C3", "C0"])
    ax.bar_label(bars, fmt="%.2fx")
    ax.set_ylim(0, max(b.get_height() for b in bars) * 1.2)
    ax.axhline(1.1, color="black", ls="--", lw=1, label="target: 1.1x the base model")
    ax.set_ylabel("eval time / base model")
    ax.set_title(f"Serving an adapter on vLLM-CPU ({r['items']} bench/dev queries)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "merge.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--adapter", help="a trained PEFT adapter for --model (default: a fresh one)")
    parser.add_argument("--bench", default=str(REPO / "bench" / "dev"))
    parser.add_argument("--items", type=int, default=65)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--models-dir", default=os.environ.get("STE_MCP_TEST_MODELS_DIR", REPO / ".cache" / "models")
    )
    parser.add_argument("--write", action="store_true", help=f"replace '## {HEADING}' in docs/BENCHMARKS.md")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    command = "scripts/bench/merge.py " + " ".join(sys.argv[1:])
    text = markdown(result, args, command.strip())
    print(text)
    if args.write:
        replace_section(REPO / "docs" / "BENCHMARKS.md", HEADING, text)
        save(result, REPO / "docs" / "bench")


if __name__ == "__main__":
    main()
