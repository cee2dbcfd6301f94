"""`ste-mcp eval`: the STE paper's protocol on STE-50 (well-formed / API match / correct), zero-shot
prompt variants (``--prompt``), and a strict metric (exact name, arguments our proxy accepts)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
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
        choices=["all", "candidates", "search"],
        default="candidates",
        help="tools in the prompt: all 50; each item's 15 candidates (default, the paper's setting for open "
        "models); or search: the top --search-k tools of the learned tool-search index (tool names, "
        "descriptions and the approved exemplars' requests in the data dir), as search_tools serves them",
    )
    parser.add_argument(
        "--search-k",
        type=int,
        default=5,
        metavar="K",
        help="tools shown per query with --shown search (default 5)",
    )
    parser.add_argument(
        "--served-descriptions",
        action="store_true",
        help="with any setting, show the descriptions the server serves now (its learned usage notes) instead "
        "of the bench's: what a client of the product reads beside retrieved examples",
    )
    parser.add_argument(
        "--search-among",
        choices=["all", "candidates"],
        default="all",
        help="with --shown search: rank all the bench's tools (default), or only each item's 15 candidates "
        "(a server in search mode serving just those)",
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
        "--demo-order",
        choices=["nearest-first", "nearest-last"],
        default="nearest-first",
        help="--setting retrieval: the nearest demonstration first (default) or last, next to the query",
    )
    parser.add_argument(
        "--per-tool",
        type=int,
        metavar="N",
        default=0,
        help="--setting retrieval: at most N demonstrations of any one tool (default 0: no cap, the nearest "
        "as find_tool_examples serves them)",
    )
    parser.add_argument(
        "--adapter", metavar="ID", help="adapter for --setting adapter (default: the promoted one)"
    )
    parser.add_argument(
        "--prompt",
        choices=["paper", "must-call", "native", "best"],
        default="paper",
        help="prompt variant, in every setting: paper (ReAct as the STE paper, default); must-call (the "
        "tools, then 'answer by calling exactly one of the APIs above' as Action / Action Input, no final "
        "answer); native (OpenAI tool calls); best (the variant with the highest correct %% on --dev-bench "
        "for this model, measured once and cached in the data dir)",
    )
    parser.add_argument(
        "--dev-bench",
        metavar="DIR",
        help="the bench --prompt best is chosen on (default: bench/dev of this checkout)",
    )
    parser.add_argument(
        "--decoding",
        choices=["free", "constrained", "best"],
        help="text replies decoded freely (the paper's protocol), held by a grammar to one call of a shown "
        "tool (constrained: what the proxy would accept), or best: the one with the higher correct %% on "
        "--dev-bench, measured with the prompt (default: best with --prompt best, else free)",
    )
    parser.add_argument(
        "--constrained",
        dest="decoding",
        action="store_const",
        const="constrained",
        help="the same as --decoding constrained",
    )
    parser.add_argument(
        "--no-prefill",
        dest="prefill",
        action="store_false",
        help="do not start text replies with 'Thought:' (paper) or 'Action:' (must-call) "
        "(needs vLLM's continue_final_message otherwise)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument(
        "--score",
        metavar="PREDICTIONS_JSONL",
        help="only score an existing predictions file (no model needed)",
    )


def run(args: argparse.Namespace) -> int:
    from ste_mcp.evaluate.bench import BenchError, load_bench
    from ste_mcp.evaluate.run import EvalConfig, EvalResult, bench_schemas, read_predictions, write_results
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
    decoding = args.decoding or ("best" if args.prompt == "best" else "free")
    if args.score and "best" in (args.prompt, decoding):
        return _fail(
            "--prompt best and --decoding best are measured with a model; with --score give the variant "
            "the predictions were made with"
        )
    config = EvalConfig(
        setting=args.setting,
        shown=args.shown,
        prompt="paper" if args.prompt == "best" else args.prompt,
        constrained=decoding == "constrained",
        prefill=args.prefill,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        k=args.k,
        per_tool=args.per_tool,
        demo_order=args.demo_order,
        search_k=args.search_k,
        search_among=args.search_among,
        served_descriptions=args.served_descriptions,
        adapter=args.adapter,
        concurrency=args.concurrency,
    )
    if args.score:
        try:
            predictions = read_predictions(args.score)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
        summary = score(
            predictions, [it.model_dump() for it in items], bench.tool_names, bench_schemas(bench)
        )
        result = EvalResult(config=config, model="(scored file)", predictions=predictions, summary=summary)
    else:
        from ste_mcp.cli import run_async, settings_from_args

        settings = settings_from_args(args)
        from ste_mcp.app import ModelUnavailable
        from ste_mcp.llm import ModelError, ModelSourceError

        try:
            from ste_mcp.evaluate.prompts import PROMPTS

            best = None
            if "best" in (args.prompt, decoding):
                prompts = PROMPTS if args.prompt == "best" else (args.prompt,)
                decodings = (False, True) if decoding == "best" else (decoding == "constrained",)
                best = BestVariant(_dev_bench(args.dev_bench), prompts, decodings)
            result = run_async(_evaluate, settings, bench, items, config, best)
        except (BenchError, EvalError, ModelError, ModelSourceError, ModelUnavailable) as exc:
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


@dataclass(frozen=True)
class BestVariant:
    """What ``--prompt best`` / ``--decoding best`` measure: these prompts × decodings on ``dev``."""

    dev: Bench
    prompts: tuple[str, ...]
    decodings: tuple[bool, ...]


def _dev_bench(path: str | None) -> Bench:
    """The bench the best variant is chosen on: ``path``, else this checkout's bench/dev."""
    from ste_mcp.evaluate.bench import load_bench
    from ste_mcp.evaluate.best import DEV_BENCH

    if path is None and not DEV_BENCH.is_dir():
        raise EvalError(
            f"--prompt/--decoding best needs a dev bench: {DEV_BENCH} does not exist, pass --dev-bench DIR"
        )
    return load_bench(path or DEV_BENCH)


async def _evaluate(
    settings: Settings, bench: Bench, items: list, config: EvalConfig, best: BestVariant | None = None
) -> EvalResult:
    """Run the eval; ``best``: first choose the variant on its dev bench (measured once per model)."""
    from rich.progress import Progress

    from ste_mcp.evaluate.prompts import variant_label
    from ste_mcp.evaluate.run import exemplar_retriever, run_eval, served_descriptions

    async with AsyncExitStack() as stack:
        describe = retrieve = None
        if config.shows_served_descriptions:
            from ste_mcp.app import App

            app = await stack.enter_async_context(App(settings))
            model = await app.get_model()
            describe = served_descriptions(app)
        else:
            from ste_mcp.llm import open_model

            model = await stack.enter_async_context(open_model(settings))
        if config.setting == "retrieval":
            from ste_mcp.memory.db import Memory

            retrieve = exemplar_retriever(Memory.open(settings).exemplars, config.per_tool)
        search = tool_searcher(settings, bench) if config.shown == "search" else None
        if config.setting == "adapter":
            config = config.model_copy(
                update={"adapter": await load_adapter(model, settings, config.adapter)}
            )
        with Progress(transient=True) as progress:
            if best is not None:
                config = await _resolve_best(model, best, config, settings, progress)
            name = variant_label(config.prompt, config.constrained)
            task = progress.add_task(f"eval {config.setting} · {name}", total=len(items))
            return await run_eval(
                model,
                bench,
                items,
                config,
                describe=describe,
                retrieve=retrieve,
                search=search,
                progress=lambda: progress.advance(task),
            )


async def _resolve_best(
    model: Any, best: BestVariant, config: EvalConfig, settings: Settings, progress: Any
) -> EvalConfig:
    """``config`` with the best variant for ``model`` on the dev bench (cached in the data dir)."""
    from ste_mcp.evaluate.best import best_prompt, chosen_label

    def step(label: str, total: int):
        task = progress.add_task(label, total=total)
        return lambda: progress.advance(task)

    config, entry = await best_prompt(
        model,
        best.dev,
        config,
        settings.data_dir / "eval",
        prompts=best.prompts,
        decodings=best.decodings,
        progress=step,
    )
    listed = ", ".join(f"{p} {c:.1f}" for p, c in (config.prompt_dev or {}).items())
    print(
        f"best variant: {chosen_label(entry)} (correct % on {entry.get('bench')}, {entry.get('n')} items: {listed})"
    )
    return config


def tool_searcher(settings: Settings, bench: Bench):
    """``SearchTools`` over the bench's tools and the approved exemplars' requests in the data dir."""
    from ste_mcp.evaluate.search import approved_requests, bench_tool_index, searcher
    from ste_mcp.memory.db import db_location

    index = bench_tool_index(bench, approved_requests(db_location(settings)))
    return searcher(index, settings.memory.tool_search)


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
    from ste_mcp.llm.base import SupportsLora

    if not isinstance(model, SupportsLora):
        raise EvalError(f"model client {type(model).__name__} cannot load LoRA adapters")
    await model.load_lora(manifest.id, str(registry.path(manifest.id)))
    return manifest.id


def print_summary(result: EvalResult) -> None:
    """A table of the overall and per-tool metrics."""
    from rich.console import Console
    from rich.table import Table

    from ste_mcp.evaluate.prompts import variant_label

    s = result.summary
    c = result.config
    table = Table(
        title=f"STE-50 · setting {c.setting} · prompt {variant_label(c.prompt, c.constrained)} · "
        f"shown {c.shown} · {result.model} · "
        f"temperature {c.temperature:g} · %"
    )
    table.add_column("tool", overflow="fold")
    for column in ("n", "well-formed", "API match", "correct", "exact name", "strict correct"):
        table.add_column(column, justify="right")
    for tool, m in s.per_tool.items():
        table.add_row(tool, *_metric_cells(m))
    table.add_section()
    table.add_row("overall", *_metric_cells(s), style="bold")
    Console().print(table)
    if result.recall:
        print("tool search: " + ", ".join(f"{k} {v:.1f} %" for k, v in result.recall.items()))


def _metric_cells(m: Any) -> list[str]:
    strict = "–" if m.strict_correct is None else f"{m.strict_correct:.1f}"
    return [
        str(m.n),
        f"{m.wellformed:.1f}",
        f"{m.api_match:.1f}",
        f"{m.correct:.1f}",
        f"{m.exact_name:.1f}",
        strict,
    ]


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
