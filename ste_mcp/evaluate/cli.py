"""`ste-mcp eval`: the STE paper's protocol on STE-50 (well-formed / API match / correct)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ste_mcp.config import Settings
    from ste_mcp.evaluate.bench import Bench
    from ste_mcp.evaluate.run import EvalConfig, EvalResult

HELP = "Evaluate tool calling on the STE-50 test set (the STE paper's protocol and metrics)."
COMPARISON_PNG = "settings.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bench", required=True, metavar="DIR", help="the STE-50 folder (tools.json, test.jsonl)"
    )
    parser.add_argument(
        "--tools", nargs="+", metavar="TOOL", help="only these tools' items (mcp or paper names)"
    )
    parser.add_argument(
        "--setting",
        choices=["base", "descriptions", "retrieval", "adapter"],
        default="base",
        help="base: bench descriptions; descriptions: as the server renders them now; retrieval: + nearest "
        "exemplars as demonstrations; adapter: + the LoRA adapter (default: base)",
    )
    parser.add_argument(
        "--shown",
        choices=["all", "candidates"],
        default="candidates",
        help="tools in the prompt: all 50, or each item's 15 candidates (default, the paper's setting for open models)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N items, spread over the tools")
    parser.add_argument(
        "--out", metavar="DIR", help="write predictions.jsonl, scores.jsonl, summary.json here"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="sampling temperature (default 0: greedy, reproducible; the paper sampled all-50 runs at 1.0)",
    )
    parser.add_argument("--max-tokens", type=int, default=256, help="new tokens per answer (default 256)")
    parser.add_argument("--k", type=int, default=3, help="demonstrations per query for --setting retrieval")
    parser.add_argument(
        "--adapter", metavar="ID", help="adapter for --setting adapter (default: the promoted one)"
    )
    parser.add_argument(
        "--protocol", choices=["react", "native"], default="react", help="call format (default react)"
    )
    parser.add_argument(
        "--constrained",
        action="store_true",
        help="grammar-constrained ReAct decoding (not the paper's protocol)",
    )
    parser.add_argument(
        "--no-prefill",
        dest="prefill",
        action="store_false",
        help="do not start ReAct replies with 'Thought:' (needs vLLM's continue_final_message otherwise)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument(
        "--score",
        metavar="PREDICTIONS_JSONL",
        help="only score an existing predictions file (no model needed)",
    )


def run(args: argparse.Namespace) -> int:
    import anyio

    from ste_mcp.evaluate.bench import BenchError, load_bench
    from ste_mcp.evaluate.run import EvalConfig, EvalResult, read_predictions, write_results
    from ste_mcp.evaluate.score import score

    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit must be at least 1, got {args.limit}")
    try:
        bench = load_bench(args.bench)
        items = bench.select(args.tools, args.limit)
    except BenchError as exc:
        return _fail(str(exc))
    if not items:
        return _fail("no items selected")
    config = EvalConfig(
        setting=args.setting,
        shown=args.shown,
        protocol=args.protocol,
        constrained=args.constrained,
        prefill=args.prefill,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        k=args.k,
        adapter=args.adapter,
        concurrency=args.concurrency,
    )
    if args.score:
        try:
            predictions = read_predictions(args.score)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
        summary = score(predictions, [it.model_dump() for it in items], bench.tool_names)
        result = EvalResult(config=config, model="(scored file)", predictions=predictions, summary=summary)
    else:
        from ste_mcp.cli import settings_from_args

        settings = settings_from_args(args)
        from ste_mcp.app import ModelUnavailable
        from ste_mcp.llm import ModelError, ModelSourceError

        try:
            result = anyio.run(_evaluate, settings, bench, items, config)
        except (EvalError, ModelError, ModelSourceError, ModelUnavailable) as exc:
            return _fail(str(exc))
    print_summary(result)
    if args.out:
        out = write_results(result, args.out)
        print(f"wrote {out / 'predictions.jsonl'}, {out / 'summary.json'}")
        png = compare_runs(out.resolve().parent)
        if png is not None:
            print(f"wrote {png}")
    if result.errors:
        print(
            f"ste-mcp eval: {result.errors} request(s) failed (see 'error' in predictions)", file=sys.stderr
        )
        return 1
    return 0


class EvalError(Exception):
    """The evaluation cannot run; the message says why."""


async def _evaluate(settings: Settings, bench: Bench, items: list, config: EvalConfig) -> EvalResult:
    from rich.progress import Progress

    from ste_mcp.evaluate.run import run_eval, served_descriptions

    async with AsyncExitStack() as stack:
        describe = retrieve = None
        if config.setting == "descriptions":
            from ste_mcp.app import App

            app = await stack.enter_async_context(App(settings))
            model = await app.get_model()
            describe = served_descriptions(app)
        else:
            from ste_mcp.llm import open_model

            model = await stack.enter_async_context(open_model(settings))
        if config.setting == "retrieval":
            retrieve = exemplar_retriever(settings)
        if config.setting == "adapter":
            config = config.model_copy(
                update={"adapter": await load_adapter(model, settings, config.adapter)}
            )
        with Progress(transient=True) as progress:
            task = progress.add_task(f"eval {config.setting}", total=len(items))
            return await run_eval(
                model,
                bench,
                items,
                config,
                describe=describe,
                retrieve=retrieve,
                progress=lambda: progress.advance(task),
            )


def exemplar_retriever(settings: Settings):
    """``Retrieve`` over the approved exemplars in the data dir's LanceDB."""
    from ste_mcp.memory import ExemplarStore, open_db

    store = ExemplarStore(open_db(settings.db_dir))
    return lambda query, k: store.search(query, k)


async def load_adapter(model: Any, settings: Settings, adapter: str | None) -> str:
    """Load the adapter (default: the promoted one) into the model server; returns its name for ``model=``."""
    from ste_mcp.finetune.registry import AdapterRegistry, RegistryError

    registry = AdapterRegistry(settings.adapters_dir)
    try:
        manifest = registry.get(adapter) if adapter else registry.current()
    except RegistryError as exc:
        raise EvalError(str(exc)) from exc
    if manifest is None:
        raise EvalError(f"no promoted adapter in {settings.adapters_dir}: train one or pass --adapter ID")
    if not hasattr(model, "load_lora"):
        raise EvalError(f"model client {type(model).__name__} cannot load LoRA adapters")
    await model.load_lora(manifest.id, str(registry.path(manifest.id)))
    return manifest.id


def print_summary(result: EvalResult) -> None:
    """A table of the overall and per-tool metrics."""
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    c = result.config
    table = Table(
        title=f"STE-50 · setting {c.setting} · shown {c.shown} · {result.model} · temperature {c.temperature:g}"
    )
    for column in ("tool", "n", "well-formed %", "API match %", "correct %"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for tool, m in s.per_tool.items():
        table.add_row(tool, str(m.n), f"{m.wellformed:.1f}", f"{m.api_match:.1f}", f"{m.correct:.1f}")
    table.add_section()
    table.add_row(
        "overall", str(s.n), f"{s.wellformed:.1f}", f"{s.api_match:.1f}", f"{s.correct:.1f}", style="bold"
    )
    Console().print(table)


def compare_runs(parent: Path) -> Path | None:
    """Draw ``parent/settings.png`` when two or more runs (``parent/*/summary.json``) sit side by side."""
    from ste_mcp.evaluate.plot import plot_settings

    summaries: dict[str, dict[str, Any]] = {}
    for path in sorted(parent.glob("*/summary.json")):
        try:
            summaries[path.parent.name] = json.loads(path.read_text())
        except ValueError:
            continue
    if len(summaries) < 2:
        return None
    return plot_settings(summaries, parent / COMPARISON_PNG)


def _fail(message: str) -> int:
    print(f"ste-mcp eval: {message}", file=sys.stderr)
    return 2
