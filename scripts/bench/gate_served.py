"""Issue 17: the gate's second question to the left-out tools, asked of session 31's two trained rounds.

Session 31's share-0.5 adapter passed the leave-tools-out gate (its left-out tools asked as tools nobody
explored) and then lost 12 of the left-out tools' 30 STE-50 items, served with their own examples. The
gate now also asks each left-out exemplar as it is served until the next round (``served``: the nearest
of all exemplars as examples, its own tool's among them). This asks that question of the adapters
scripts/bench/gate_unexplored.sh trained, without training them again:

  1. each round's data is built again by the product's builder (the same pool, settings and lineage:
     from scratch), and checked to be the round's (the same left-out tools and unexplored rows);
  2. the served rows are asked of the base model (once per distinct prompt) and of the round's adapter,
     as the gate asks (greedy transformers generation, must-call prefill);
  3. ``gate.decide`` gives the verdict with both questions: the round's own unexplored comparison (from
     its manifest) and the new served one.

usage: [OUT=.cache/bench/gate-unexplored] [VARIANTS="f0 f50"] [LIMIT=n: a smoke run] .venv/bin/python scripts/bench/gate_served.py
(run under `flock /tmp/ste-model.lock`; the environment of gate_unexplored.sh's rounds is set here)
Results: $OUT/served-<variant>.json, docs/bench/gate_served.json
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

ROUND_ENV = {  # scripts/bench/gate_unexplored.sh's rounds
    "STE_MCP_LLM__MODEL": "packaged:qwen2.5-coder-0.5b-instruct",
    "STE_MCP_FINETUNE__PROMPT": "must-call",
    "STE_MCP_FINETUNE__DEMONSTRATIONS": "3",
    "STE_MCP_FINETUNE__LEARNING_RATE": "1e-3",
    "STE_MCP_FINETUNE__TOOLS_IN_PROMPT": "5",
    "STE_MCP_FINETUNE__MAX_LENGTH": "1536",
    "STE_MCP_FINETUNE__INCLUDE_FINAL_ANSWER": "false",
}


async def round_data(data_dir: Path, share: str):
    """The round's data as the product builds it now, and the base model's folder and tool names."""
    from ste_mcp.app import App
    from ste_mcp.config import load_settings
    from ste_mcp.finetune.rounds import BaseModelRef, build_data
    from ste_mcp.llm.sources import prepare_model
    from ste_mcp.memory.db import Memory

    os.environ.update({**ROUND_ENV, "STE_MCP_FINETUNE__FOREIGN_EXAMPLES": share})
    settings = load_settings(data_dir=str(data_dir))
    prepared = prepare_model(settings.llm.model, settings.models_dir)
    async with App(settings, features=[]) as app:
        toolset = app.toolset
    store = Memory.open(settings).exemplars
    data = build_data(
        BaseModelRef(path=str(prepared.path), base_id=prepared.base_id),
        list(toolset),
        settings.finetune,
        toolset.secret_values(),
        store.approved(),
        learned=set(),
        earlier=[],
        embed=store.embedder.embed,
    )
    return data, settings, str(prepared.path), [t.name for t in toolset]


def ask(model, tokenizer, rows, max_new_tokens: int) -> list[str]:
    """The gate's answers (greedy, must-call prefill) to the rows' prompts."""
    from ste_mcp.finetune.gate import PREFIX, generate

    prompts = [r["prompt"] for r in rows]
    return generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, prefix=PREFIX["must-call"])


def main() -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ste_mcp.finetune.dataset import read_jsonl
    from ste_mcp.finetune.gate import compare, decide
    from ste_mcp.finetune.train import pick_dtype

    out = Path(os.environ.get("OUT", ".cache/bench/gate-unexplored"))
    variants = os.environ.get("VARIANTS", "f0 f50").split()
    base_answers: dict[str, str] = {}  # prompt (JSON) -> the base model's answer
    model = tokenizer = None
    report: dict[str, dict] = {}
    for variant in variants:
        manifest = json.loads((out / f"{variant}.manifest.json").read_text())
        data_dir = out / f"train-{variant}"
        share = f"0.{variant.removeprefix('f')}"
        data, settings, base_path, names = asyncio.run(round_data(data_dir, share))
        stored = read_jsonl(data_dir / "adapters" / manifest["id"] / "heldout.jsonl")
        same = sorted(h["id"] for h in stored if h.get("unexplored")) == sorted(
            h["id"] for h in data.heldout if h.get("unexplored")
        )
        if data.left_out != manifest["left_out"] or not same:
            raise SystemExit(f"{variant}: the data built now is not the round's (left out {data.left_out})")
        served = [h for h in data.heldout if h.get("served")][: int(os.environ.get("LIMIT", 0)) or None]
        print(f"{variant}: left out {data.left_out}; {len(served)} served rows", flush=True)
        if model is None:
            tokenizer = AutoTokenizer.from_pretrained(base_path)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            dtype = getattr(torch, pick_dtype(settings.finetune.dtype, "cpu"))
            model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)

        tokens = settings.finetune.eval_max_new_tokens
        t = time.time()
        todo = [r for r in served if json.dumps(r["prompt"]) not in base_answers]
        base_answers.update(
            zip((json.dumps(r["prompt"]) for r in todo), ask(model, tokenizer, todo, tokens), strict=True)
        )
        base_s = time.time() - t
        t = time.time()
        peft_model = PeftModel.from_pretrained(model, str(data_dir / "adapters" / manifest["id"]))
        try:
            candidate = ask(peft_model, tokenizer, served, tokens)
        finally:
            model = peft_model.unload()
        adapter_s = time.time() - t
        baseline = [base_answers[json.dumps(r["prompt"])] for r in served]
        part = {"tools": sorted({r["tool"] for r in served}), **compare(served, candidate, baseline, names)}
        metrics = manifest["metrics"]
        verdict = decide(
            metrics["eval"],
            metrics["baseline"],
            settings.finetune.gate_min_delta,
            settings.finetune.gate_min_heldout,
            unexplored=metrics.get("unexplored"),
            worse_p=settings.finetune.gate_worse_p,
            served=part,
        )
        report[variant] = {
            "adapter": manifest["id"],
            "left_out": data.left_out,
            "verdict_then": manifest["status_reason"],
            "verdict_now": verdict.reason,
            "promote_now": verdict.promote,
            "unexplored": {k: metrics["unexplored"][k] for k in ("candidate", "baseline", "paired")},
            "served": part,
            "seconds": {"base": round(base_s), "adapter": round(adapter_s)},
            "answers": [
                {"id": r["id"], "tool": r["tool"], "candidate": c, "baseline": b}
                for r, c, b in zip(served, candidate, baseline, strict=True)
            ],
        }
        (out / f"served-{variant}.json").write_text(json.dumps(report[variant], indent=1) + "\n")
        s = part["candidate"]["correct"], part["baseline"]["correct"], part["paired"]["correct"]
        print(
            f"{variant}: served {s[0]:.1f} vs {s[1]:.1f} (gained, lost {s[2]}) -> {verdict.reason}",
            flush=True,
        )
    keep = ("n", "wellformed", "api_match", "correct")
    summary = {
        v: {
            **{
                k: r[k]
                for k in ("adapter", "left_out", "verdict_then", "verdict_now", "promote_now", "seconds")
            },
            **{
                q: {
                    "candidate": {x: r[q]["candidate"][x] for x in keep},
                    "baseline": {x: r[q]["baseline"][x] for x in keep},
                    "paired_correct": r[q]["paired"]["correct"],
                }
                for q in ("unexplored", "served")
            },
        }
        for v, r in report.items()
    }
    Path("docs/bench/gate_served.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
