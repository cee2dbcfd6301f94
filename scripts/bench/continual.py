"""Continual learning check: learn the toolbox tools in two batches; batch-1 accuracy after batch 2,
with and without replay (STE.md: without replay the paper's model forgot batch 1 almost completely).

    .venv/bin/python scripts/bench/continual.py --episodes 2 --per-tool 5

1. Explore batch 1 (the first half of the toolbox tools), judge into exemplars, train round 1 (A1).
2. Explore batch 2, judge. Round 2 from A1 twice: without replay (replay_fraction 0) and with replay
   (the configured `finetune.replay`, by default all of round 1's rows again; `--replay F`: that share of
   them) — A1 is made current before each.
3. Evaluate batch 1's and batch 2's STE-50 items (candidates-15, greedy) with base, A1, A2 (no replay),
   A2 (replay). Every adapter is evaluated whatever the promotion gate said (the gate's word is
   reported). Results: ``docs/bench/continual.json`` and the "## Continual learning" section of
   ``docs/BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import anyio

from ste_mcp.config import load_settings
from ste_mcp.evaluate.bench import load_bench
from ste_mcp.evaluate.loop import (
    LearningLoop,
    LoopError,
    add_run_arguments,
    run_llm_settings,
    share_models_cache,
)
from ste_mcp.evaluate.plot import plot_settings
from ste_mcp.evaluate.report import replace_section, table
from ste_mcp.evaluate.run import write_results

REPO = Path(__file__).resolve().parents[2]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, REPO)
    p.add_argument("--data-dir", default=str(REPO / ".cache" / "bench" / "continual"))
    p.add_argument("--episodes", type=int, default=2, help="episodes per tool")
    p.add_argument("--per-tool", type=int, default=5, help="STE-50 items per tool (max 15)")
    p.add_argument(
        "--replay",
        type=float,
        default=None,
        help="replay this share of round 1 (default: the configured replay)",
    )
    p.add_argument("--paraphrases", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=None, help="cap LoRA optimiser steps per round")
    p.add_argument("--lr", type=float, default=None, help="LoRA learning rate (default: the settings')")
    p.add_argument(
        "--max-heldout",
        type=int,
        default=None,
        help="held-out rows of each round's gate (default: the settings')",
    )
    p.add_argument("--stm-slots", type=int, default=3, help="trials per episode (paper: 3-4)")
    p.add_argument("--out", default=str(REPO / "docs" / "bench"))
    p.add_argument("--markdown", default=str(REPO / "docs" / "BENCHMARKS.md"))
    p.add_argument("--report-only", action="store_true", help="write the report from DATA_DIR/partial.json")
    return p.parse_args()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)
    share_models_cache(data_dir, REPO / ".cache" / "models")
    settings = load_settings(
        data_dir=data_dir,
        llm=run_llm_settings(args),
        memory={"paraphrases_per_exemplar": args.paraphrases},
        explorer={"num_stm_slots": args.stm_slots},
        finetune={"max_steps": args.train_steps}
        | ({"learning_rate": args.lr} if args.lr is not None else {})
        | ({"max_heldout": args.max_heldout} if args.max_heldout is not None else {}),
    )
    replay = settings.finetune.replay if args.replay is None else f"{args.replay:.0%} of round 1's rows"
    bench = load_bench(args.bench)
    record: dict[str, Any] = {
        "model": args.model,
        "episodes": args.episodes,
        "replay": replay,
        "rounds": {},
        "results": [],
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    async with LearningLoop.open(settings, bench) as loop:
        tools = loop.tool_names
        half = (len(tools) + 1) // 2
        batches = {"batch 1": tools[:half], "batch 2": tools[half:]}
        record["batches"] = batches
        items = {name: bench.select(ts, limit=args.per_tool * len(ts)) for name, ts in batches.items()}
        record["items_per_batch"] = {name: len(subset) for name, subset in items.items()}

        async def evaluate(model_label: str, adapter: str | None) -> None:
            for batch, subset in items.items():
                result = await loop.evaluate(subset, "adapter" if adapter else "base", adapter=adapter)
                write_results(result, data_dir / "runs" / f"{model_label}-{batch.replace(' ', '')}")
                s = result.summary
                row = {
                    "model": model_label,
                    "items": batch,
                    "n": s.n,
                    "wellformed": s.wellformed,
                    "api_match": s.api_match,
                    "correct": s.correct,
                }
                record["results"].append(row)
                print(json.dumps(row), flush=True)
                (data_dir / "partial.json").write_text(json.dumps(record, indent=2))

        async def train(label: str, **kw: Any) -> str:
            t0 = time.monotonic()
            result = await loop.train(**kw)
            if result.adapter is None:
                raise LoopError(f"round {label} trained no adapter: {result.status} ({result.reason})")
            record["rounds"][label] = {
                "adapter": result.adapter.id,
                "gate": result.status,
                "reason": result.reason,
                "counts": result.adapter.counts,
                "seconds": round(time.monotonic() - t0, 1),
            }
            print(json.dumps({label: record["rounds"][label]}), flush=True)
            (data_dir / "partial.json").write_text(json.dumps(record, indent=2))
            return result.adapter.id

        await evaluate("base", None)
        await loop.explore(batches["batch 1"], args.episodes)
        record["exemplars after batch 1"] = await loop.exploit()
        a1 = await train("A1", from_scratch=True)
        await evaluate("A1", a1)
        await loop.explore(batches["batch 2"], args.episodes)
        record["exemplars after batch 2"] = await loop.exploit()
        loop.promote(a1)
        a2_plain = await train("A2 no replay", replay_fraction=0.0)
        await evaluate("A2 no replay", a2_plain)
        loop.promote(a1)
        a2_replay = await train("A2 replay", replay_fraction=args.replay)
        await evaluate("A2 replay", a2_replay)
    return record


def write_report(record: dict[str, Any], out: Path, markdown: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "continual.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_settings(
        {f"{r['model']}\n{r['items']}": r for r in record["results"]},
        out / "continual.png",
        title="Continual learning: each batch's STE-50 items after each round",
    )
    rows = [
        [r["model"], r["items"], r["n"], r["wellformed"], r["api_match"], r["correct"]]
        for r in record["results"]
    ]
    results = table(["model", "items", "n", "well-formed %", "API match %", "correct %"], rows)
    rounds = table(
        ["round", "adapter", "gate", "rows (new / replay / general / held-out)", "seconds"],
        [
            [
                label,
                r["adapter"],
                r["gate"],
                " / ".join(str(r["counts"].get(k, 0)) for k in ("new", "replay", "general", "heldout")),
                r["seconds"],
            ]
            for label, r in record["rounds"].items()
        ],
    )
    measured = {r["model"] for r in record["results"]}
    missing = [m for m in ("base", "A1", "A2 no replay", "A2 replay") if m not in measured]
    cut = (
        f"\n**This run stopped before {', '.join(missing)}**: the forgetting comparison below is not"
        " measured by it.\n"
        if missing
        else ""
    )
    batches = "; ".join(
        f"{name}: {', '.join(f'`{t}`' for t in ts)}" for name, ts in record["batches"].items()
    )
    replay = record.get("replay") or f"{record['replay_fraction']:.0%} of round 1's rows"  # older records
    body = f"""\
`scripts/bench/continual.py` (run {record["started"]}): `{record["model"]}` learns the toolbox tools in two
batches ({record["episodes"]} episode(s) per tool). Round 2 continues from A1's adapter on batch 2's
exemplars, once without replay and once with replay ({replay})
(plus general-ability rows in both). Each adapter is evaluated whatever the gate decided.
Batches — {batches}.
{cut}
{results}

{rounds}

The question is batch-1 accuracy after batch 2: compare "A1" with "A2 no replay" and "A2 replay" on
batch 1 (the paper, with a 7B model: API match on batch 1 fell to ~2% without replay, kept most with it).
With a 0.5B model, {record["episodes"]} episode(s) per tool and {" / ".join(str(n) for n in record["items_per_batch"].values())} test items per batch, a
difference of one or two items is within noise.
Raw results: `docs/bench/continual.json`; plot: `docs/bench/continual.png`.

![continual learning](bench/continual.png)
"""
    replace_section(markdown, "Continual learning", body)


if __name__ == "__main__":
    from ste_mcp.cli import install_signal_handlers

    install_signal_handlers()  # SIGTERM stops the managed vLLM too
    arguments = parse_args()
    if arguments.report_only:  # a run cut short: report what finished
        outcome = json.loads((Path(arguments.data_dir) / "partial.json").read_text())
    else:
        outcome = anyio.run(main, arguments)
    write_report(outcome, Path(arguments.out), Path(arguments.markdown))
    print(f"wrote {arguments.out}/continual.json and {arguments.markdown}")
