"""Tool selection on all 750 STE-50 items: which API the first call picks, per setting.

    .venv/bin/python scripts/bench/selection.py --data-dir .cache/bench/continual --settings base retrieval

Every item is asked once (greedy) with its 15 candidates (``--shown all``: all 50 tools) in each setting
given: ``base`` (the bench's descriptions), ``retrieval`` (+ the nearest approved exemplars in DATA_DIR as
demonstrations) and ``adapter`` (+ DATA_DIR's promoted LoRA adapter, or ``--adapter ID``). DATA_DIR is
what a learning run left (``learning_curve.py`` or ``continual.py``). Items run in file order, so the 15
items of a tool share one candidate listing and vLLM's prefix cache reads it once. "Explored" splits the
tools DATA_DIR holds approved exemplars for (the toolbox's) from the others, which STE never touched.
Results: ``docs/bench/selection.json`` + ``selection.png`` and the "## Tool selection" section of
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
from ste_mcp.evaluate.report import PAPER_CORRECT, replace_section, table
from ste_mcp.evaluate.run import write_results
from ste_mcp.evaluate.score import Metrics

REPO = Path(__file__).resolve().parents[2]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, REPO)
    p.add_argument("--data-dir", required=True, help="a learning run's data dir (exemplars, adapters)")
    p.add_argument(
        "--settings", nargs="+", choices=["base", "retrieval", "adapter"], default=["base", "retrieval"]
    )
    p.add_argument("--shown", choices=["candidates", "all"], default="candidates")
    p.add_argument("--adapter", help="adapter id for the adapter setting (default: the promoted one)")
    p.add_argument("--limit", type=int, default=None, help="at most N items, spread over the tools")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--max-model-len", type=int, default=None, help="managed vLLM context (all 50: 8192)")
    p.add_argument("--out", default=str(REPO / "docs" / "bench"))
    p.add_argument("--markdown", default=str(REPO / "docs" / "BENCHMARKS.md"))
    p.add_argument("--report-only", action="store_true", help="write the report from DATA_DIR/selection.json")
    return p.parse_args()


def split(summary: Any, tools: set[str]) -> dict[str, Any]:
    """API match (of well-formed answers) and correct % over the items of ``tools`` only."""
    m = Metrics.of([s for s in summary.items if s.tool in tools])
    return {"n": m.n, "api_match": m.api_match, "correct": m.correct}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    data_dir = Path(args.data_dir)
    share_models_cache(data_dir, REPO / ".cache" / "models")
    extra = {"max_model_len": args.max_model_len} if args.max_model_len else {}
    settings = load_settings(data_dir=data_dir, llm=run_llm_settings(args, **extra))
    bench = load_bench(args.bench)
    items = bench.select(limit=args.limit)
    record: dict[str, Any] = {
        "model": args.model,
        "shown": args.shown,
        "temperature": 0.0,
        "items": len(items),
        "data_dir": str(
            data_dir.resolve().relative_to(REPO) if data_dir.resolve().is_relative_to(REPO) else data_dir
        ),
        "results": [],
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    async with LearningLoop.open(settings, bench) as loop:
        explored = {tool for tool, n in loop.approved_counts().items() if n}
        record["explored"] = sorted(explored)
        adapter = args.adapter
        if "adapter" in args.settings and adapter is None:
            from ste_mcp.finetune.registry import AdapterRegistry

            current = AdapterRegistry(settings.adapters_dir).current()
            if current is None:
                raise LoopError(f"no promoted adapter in {settings.adapters_dir}: pass --adapter ID")
            adapter = current.id
        record["adapter"] = adapter
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        for setting in args.settings:
            t0 = time.monotonic()
            with Progress(*columns) as bar:
                task = bar.add_task(f"selection {setting}", total=len(items))
                result = await loop.evaluate(
                    items,
                    setting,
                    adapter=adapter if setting == "adapter" else None,
                    progress=lambda task=task, bar=bar: bar.advance(task),
                    shown=args.shown,
                    concurrency=args.concurrency,
                )
            write_results(result, data_dir / "runs" / f"selection-{args.shown}-{setting}")
            s = result.summary
            row = {
                "setting": setting,
                "n": s.n,
                "wellformed": s.wellformed,
                "api_match": s.api_match,
                "api_match_all": s.api_match_all,
                "correct": s.correct,
                "explored": split(s, explored),
                "not_explored": split(s, {t for t in bench.tool_names if t not in explored}),
                "errors": result.errors,
                "seconds": round(time.monotonic() - t0, 1),
            }
            record["results"].append(row)
            print(json.dumps(row), flush=True)
            (data_dir / "selection.json").write_text(json.dumps(record, indent=2))
    return record


def write_report(record: dict[str, Any], out: Path, markdown: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "selection.json").write_text(json.dumps(record, indent=2) + "\n")
    model = record["model"].removeprefix("packaged:")
    plot_settings(
        {r["setting"]: r for r in record["results"]},
        out / "selection.png",
        title=f"{model}\nSTE-50, {record['items']} items, {record['shown']} shown",
    )
    rows = [
        [
            r["setting"],
            r["n"],
            r["wellformed"],
            r["api_match"],
            r["api_match_all"],
            r["correct"],
            f"{r['explored']['api_match']:.1f} / {r['explored']['correct']:.1f}",
            f"{r['not_explored']['api_match']:.1f} / {r['not_explored']['correct']:.1f}",
            r["seconds"],
        ]
        for r in record["results"]
    ]
    n_explored = len(record["explored"])
    ours = table(
        [
            "setting",
            "n",
            "well-formed %",
            "API match % (of well-formed)",
            "API match % (of all)",
            "correct %",
            f"explored tools ({n_explored}): API match / correct %",
            f"other tools ({50 - n_explored}): API match / correct %",
            "eval s",
        ],
        rows,
    )
    by = {r["setting"]: r["correct"] for r in record["results"]}
    paper = table(
        ["model", "baseline", "+ ICL (retrieval)", "+ STE fine-tuning"],
        [
            *PAPER_CORRECT,
            [f"{model} (ours)", by.get("base", "–"), by.get("retrieval", "–"), by.get("adapter", "–")],
        ],
    )
    adapter = f" Adapter: `{record['adapter']}`." if record.get("adapter") else ""
    body = f"""\
`scripts/bench/selection.py` (run {record["started"]}): `{model}` on {record["items"]} of the 750 STE-50 items,
{record["shown"]} shown, greedy, the first call scored as in the bench README. Exemplars (retrieval) and
adapter come from the learning run in `{record["data_dir"]}`, which holds approved exemplars for
{n_explored} toolbox tools only ("explored" below).{adapter}

![tool selection](bench/selection.png)

{ours}

Correct % beside the paper's (candidates-15, all 750 items; the paper judged free-text arguments with GPT,
we match strictly):

{paper}

Raw results: `docs/bench/selection.json`.
"""
    replace_section(markdown, "Tool selection", body)


if __name__ == "__main__":
    from ste_mcp.cli import install_signal_handlers

    install_signal_handlers()  # SIGTERM stops the managed vLLM too
    arguments = parse_args()
    if arguments.report_only:
        outcome = json.loads((Path(arguments.data_dir) / "selection.json").read_text())
    else:
        outcome = anyio.run(main, arguments)
    write_report(outcome, Path(arguments.out), Path(arguments.markdown))
    print(f"wrote {arguments.out}/selection.json, selection.png and {arguments.markdown}")
