"""Session 47, issue 17 (exploration): does sampling several requests per imagination and keeping the one least
like the tool's earlier requests (``explorer.imagine_samples``) make the teacher explore other values? Tried, not
kept: the setting and ``memory.requests.resemblance`` exist at commit 36aafed only, which is where this script runs
(BENCHMARKS, "Session 47"); ``--temperature`` was added after the first run, at the same code.

The long-term memory is a real one, built as ``tried_values.py`` builds it (session 46): every approved original
of a pooled store recorded as an accepted earlier trial of its tool. Then, per tool, the explorer's first
imagination of an episode is asked ``--samples`` times with ``imagine_samples = 1`` (the paper's one sample) and
with ``--choices`` samples, through the explorer's own code (``explorer.episode.imagine``: selection, retries and
checks included), on the model ``--llm-url`` serves, at the explorer's temperature; the arms run one after the
other so each has its own wall time. Nothing is called or judged.

Measured per request, as in ``tried_values.py``: whether it restates a value an earlier call sent, whether it has
a request problem, how many distinct numbers the arm's requests state that no earlier call sent, and its
``resemblance`` to the tool's earlier requests (``memory.requests``: what the selection minimises).

usage: .venv/bin/python scripts/bench/imagine_samples.py --pool .cache/bench/all/pool --llm-url URL --model M
       [--samples 6] [--choices 4] [--temperature T] [--out docs/bench/imagine_samples.json]  (writes the .png beside the .json)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tried_values import as_number, numbers_in, restates, seeded_run, write_result


def tried_values(pool: Path) -> dict[str, dict[str, list[tuple[Any, int]]]]:
    """Per tool, per parameter: the values the pool's approved originals sent."""
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.exemplars import ExemplarStore

    out: dict[str, dict[str, list[tuple[Any, int]]]] = defaultdict(lambda: defaultdict(list))
    for ex in ExemplarStore(open_db(pool / "lancedb")).approved():
        if ex.group == ex.id:
            for name, value in ex.arguments.items():
                out[ex.tool][name].append((value, 1))
    return out


async def imagine_arms(args: argparse.Namespace, data: Path, tried: dict[str, Any]) -> dict[str, Any]:
    from ste_mcp.app import App
    from ste_mcp.config import load_settings
    from ste_mcp.explorer.episode import ExploreContext, imagine, system_message
    from ste_mcp.llm.protocols import protocol_for
    from ste_mcp.memory.requests import request_problem, resemblance
    from ste_mcp.memory.trials import TrialStore

    settings = load_settings(
        None,
        data_dir=str(data),
        llm={"base_url": args.llm_url, "model": args.model, "timeout_s": 900, "retries": 0},
    )
    arms = {"1 sample": 1, f"{args.choices} samples, least like memory": args.choices}
    temperature = settings.explorer.temperature if args.temperature is None else args.temperature
    rows: dict[str, dict[str, Any]] = {}
    seconds: dict[str, int] = {}
    async with App(settings) as app:
        model = await app.model_for("explorer")
        protocol = protocol_for(model.model, settings.llm.protocol)
        store = TrialStore.open(data / "lancedb")
        tools = [t for t in app.toolset.visible() if store.ltm(t.name)]
        limiter = asyncio.Semaphore(args.concurrency)

        async def one(arm: str, ctx: ExploreContext, tool: Any) -> None:
            async with limiter:
                messages = [system_message(ctx, tool)]
                request = await imagine(ctx, tool, messages, first=True)
            earlier = [q for q, _ in store.ltm(tool.name)]
            rows.setdefault(arm, {}).setdefault(tool.name, {"requests": []})["requests"].append(
                {
                    "request": request,
                    "restates": restates(request, tried.get(tool.name, {})),
                    "problem": request_problem(request, tool.name, description=tool.documentation),
                    "resemblance": round(resemblance(request, earlier), 3),
                }
            )

        for arm, choices in arms.items():
            ctx = ExploreContext(
                model=model,
                upstream=app.upstream,
                store=store,
                protocol=protocol,
                settings=settings.explorer.model_copy(
                    update={
                        "imagine_samples": choices,
                        "temperature": temperature,
                    }
                ),
            )
            start = time.monotonic()
            await asyncio.gather(*(one(arm, ctx, tool) for tool in tools for _ in range(args.samples)))
            seconds[arm] = round(time.monotonic() - start)
        for tool in tools:
            known = {
                n
                for values in tried.get(tool.name, {}).values()
                for v, _ in values
                if (n := as_number(v)) is not None
            }
            for arm in arms:
                row = rows[arm][tool.name]
                fresh: set[str] = set()
                for r in row["requests"]:
                    fresh |= {
                        n for n in map(str, numbers_in(r["request"])) if n.removesuffix(".0") not in known
                    }
                row["new_numbers"] = len(fresh)
    return {
        "rows": rows,
        "seconds": seconds,
        "model": args.model,
        "samples": args.samples,
        "temperature": temperature,
    }


def summarise(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for arm, tools in result["rows"].items():
        requests = [r for row in tools.values() for r in row["requests"]]
        distinct = sum(len({r["request"].lower() for r in row["requests"]}) for row in tools.values())
        out[arm] = {
            "requests": len(requests),
            "restating an earlier value %": round(
                100 * sum(bool(r["restates"]) for r in requests) / len(requests), 1
            ),
            "with a request problem %": round(
                100 * sum(bool(r["problem"]) for r in requests) / len(requests), 1
            ),
            "distinct new numbers": sum(row["new_numbers"] for row in tools.values()),
            "distinct requests": distinct,
            "mean resemblance to memory": round(sum(r["resemblance"] for r in requests) / len(requests), 3),
            "seconds": result["seconds"][arm],
        }
    return out


def plot(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(result["rows"])
    tools = sorted(result["rows"][arms[0]])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(arms)
    for ax, key, label in (
        (axes[0], "restates", "requests restating a value earlier calls sent (%)"),
        (axes[1], "resemblance", "mean resemblance to the tool's earlier requests"),
    ):
        for i, arm in enumerate(arms):
            values = []
            for t in tools:
                reqs = result["rows"][arm][t]["requests"]
                total = sum(bool(r[key]) if key == "restates" else r[key] for r in reqs)
                values.append((100 if key == "restates" else 1) * total / len(reqs))
            ax.bar([x + i * width for x in range(len(tools))], values, width, label=arm)
        ax.set_xticks([x + width / 2 for x in range(len(tools))])
        ax.set_xticklabels([t.split("__")[-1][-22:] for t in tools], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"first imagination of an episode, {result['samples']} per tool, {result['model']}, "
        f"temperature {result.get('temperature', 0.6)}"
    )
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--choices", type=int, default=4)
    parser.add_argument(
        "--temperature", type=float, help="the explorer's (explorer.temperature) unless given"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/imagine_samples.json"))
    args = parser.parse_args()
    result = seeded_run(
        args.pool, "imagine-samples-", lambda data: imagine_arms(args, data, tried_values(args.pool))
    )
    write_result(result, summarise(result), args.out, plot)


if __name__ == "__main__":
    main()
