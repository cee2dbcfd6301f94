"""Issue 17: the gate's second question to the left-out tools, asked of session 31's two trained rounds.

Session 31's share-0.5 adapter passed the leave-tools-out gate (its left-out tools asked as tools nobody
explored) and then lost 12 of the left-out tools' 30 STE-50 items, served with their own examples. The
gate now also asks each left-out exemplar as it is served until the next round (``served``: the nearest
of all exemplars as examples, its own tool's among them). This asks that question of the adapters
scripts/bench/gate_unexplored.sh trained, without training them again:

  1. each round's data is built again by the product's builder (the same pool, settings and lineage:
     from scratch), and checked to be the round's (the same left-out tools and unexplored rows);
  2. the served rows are asked of the base model and of the round's adapter by the gate's own
     ``evaluate_adapters`` (greedy transformers generation, must-call prefill);
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
    """The round's data as the product builds it now (from scratch), and what it was built from."""
    from ste_mcp.config import load_settings
    from ste_mcp.finetune.rounds import build_data, round_inputs

    os.environ.update({**ROUND_ENV, "STE_MCP_FINETUNE__FOREIGN_EXAMPLES": share})
    inputs = await round_inputs(load_settings(data_dir=str(data_dir)))
    keys = ("base", "tools", "settings", "secrets", "exemplars")
    data = build_data(*(inputs[k] for k in keys), learned=set(), earlier=[], embed=inputs["embed"])
    return data, inputs


def main() -> None:
    from ste_mcp.finetune.dataset import read_jsonl
    from ste_mcp.finetune.gate import decide, evaluate_adapters
    from ste_mcp.finetune.train import load_base

    out = Path(os.environ.get("OUT", ".cache/bench/gate-unexplored"))
    variants = os.environ.get("VARIANTS", "f0 f50").split()
    report: dict[str, dict] = {}
    for variant in variants:
        manifest = json.loads((out / f"{variant}.manifest.json").read_text())
        data_dir = out / f"train-{variant}"
        data, inputs = asyncio.run(round_data(data_dir, f"0.{variant.removeprefix('f')}"))
        settings = inputs["settings"]
        adapter = data_dir / "adapters" / manifest["id"]
        stored = read_jsonl(adapter / "heldout.jsonl")
        same = sorted(h["id"] for h in stored if h.get("unexplored")) == sorted(
            h["id"] for h in data.heldout if h.get("unexplored")
        )
        if data.left_out != manifest["left_out"] or not same:
            raise SystemExit(f"{variant}: the data built now is not the round's (left out {data.left_out})")
        served = [h for h in data.heldout if h.get("served")][: int(os.environ.get("LIMIT", 0)) or None]
        print(f"{variant}: left out {data.left_out}; {len(served)} served rows", flush=True)
        t = time.time()
        model, tokenizer = load_base(inputs["base"].path, settings.dtype, "cpu")
        result = evaluate_adapters(
            model,
            tokenizer,
            served,
            candidate=str(adapter),
            baseline=None,
            tool_names=[tool.name for tool in inputs["tools"]],
            max_new_tokens=settings.eval_max_new_tokens,
            prompt=settings.prompt,
        )
        metrics = manifest["metrics"]
        verdict = decide(
            metrics["eval"],
            metrics["baseline"],
            settings.gate_min_delta,
            settings.gate_min_heldout,
            unexplored=metrics.get("unexplored"),
            worse_p=settings.gate_worse_p,
            served=result["served"],
        )
        report[variant] = {
            "adapter": manifest["id"],
            "left_out": data.left_out,
            "verdict_then": manifest["status_reason"],
            "verdict_now": verdict.reason,
            "promote_now": verdict.promote,
            "unexplored": {k: metrics["unexplored"][k] for k in ("candidate", "baseline", "paired")},
            "served": result["served"],
            "seconds": round(time.time() - t),
            "answers": [
                {"id": r["id"], "tool": r["tool"], "candidate": p["candidate"], "baseline": p["baseline"]}
                for r, p in zip(served, result["predictions"], strict=True)
            ],
        }
        (out / f"served-{variant}.json").write_text(json.dumps(report[variant], indent=1) + "\n")
        part = result["served"]
        print(
            f"{variant}: served {part['candidate']['correct']:.1f} vs {part['baseline']['correct']:.1f} "
            f"(gained, lost {part['paired']['correct']}) -> {verdict.reason}",
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
