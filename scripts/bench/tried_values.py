"""Session 46, issue 17 (exploration): does showing the values earlier calls sent make the teacher imagine
requests with other values? (``explorer.ltm_values``; ``TrialStore.tried_values``). Tried, not kept: the setting
and ``tried_values`` exist at commit 0588480 only, which is where this script runs (BENCHMARKS, "Session 46").

The long-term memory is a real one: every approved original of a pooled store (the teacher runs' exemplars,
e.g. .cache/bench/all/pool) recorded as an earlier trial of its tool (its request, its call, accepted), so each
tool's memory holds what the teacher explored so far. Then, per tool, the explorer's first imagination of an
episode is asked ``--samples`` times with the queries only (``ltm_values = 0``, the prompt before session 46)
and with the queries and the values their calls sent (``ltm_values = 8``), through the explorer's own code
(``explorer.episode.imagine``: its retries and checks included), on the model ``--llm-url`` serves, at the
explorer's temperature. Nothing is called or judged.

Measured per request, on its text: whether it restates a value an earlier call sent (word-bounded, case
folded; numbers also as numbers; values of one character and booleans are not counted), whether it has a
problem a request may not have (``memory.requests.request_problem``: it names the tool, talks about tools) and
how many distinct numbers the arm's requests state that no earlier call sent (names and places are not
counted there: only numbers are read reliably from free text).

usage: .venv/bin/python scripts/bench/tried_values.py --pool .cache/bench/all/pool --llm-url URL --model M
       [--samples 8] [--out docs/bench/tried_values.json]  (writes the .png beside the .json)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ARMS = {"queries": 0, "queries + values": 8}
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)*")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def seed_memory(pool: Path, into: Path, *, one_episode: bool = False) -> dict[str, int]:
    """Record every approved original of ``pool`` as an accepted earlier trial of its tool in ``into``: each in an
    episode of its own, or (``one_episode``) all of a tool's in episode 0 at slots 1, 2, ..., so a resumed run
    reads that episode as finished (``seeded_teacher.py``)."""
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.exemplars import ExemplarStore
    from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn

    exemplars = ExemplarStore(open_db(pool / "lancedb")).approved()
    originals = sorted((e for e in exemplars if e.group == e.id), key=lambda e: e.id)
    store = TrialStore.open(into / "lancedb")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    per_tool: dict[str, int] = defaultdict(int)
    for i, ex in enumerate(originals):
        episode, slot = (0, per_tool[ex.tool] + 1) if one_episode else (per_tool[ex.tool], 0)
        per_tool[ex.tool] += 1
        call = Turn(raw="", kind="call", tool=ex.tool, arguments=dict(ex.arguments))
        record = TrialRecord(
            tool=ex.tool,
            episode=episode,
            slot=slot,
            query=ex.query,
            turns=[call, Turn(raw="", kind="final")],
            final_answer="",
            reflection="yes",
            recorded_at=start + timedelta(minutes=i),
        )
        store.record(record)
        store.set_verdict(record.id, {"accepted": True})
    return dict(per_tool)


def as_number(value: Any) -> float | None:
    """A sent value that is a number (``5``, ``"1000"``, ``-74.006``), else None."""
    if isinstance(value, bool):
        return None
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def numbers_in(text: str) -> set[float]:
    """The numbers ``text`` states, ISO dates taken out first (their parts are no amounts)."""
    plain = ISO_DATE.sub(" ", text)
    out = set()
    for match in NUMBER.findall(plain):
        try:
            out.add(float(match.replace(",", "")))
        except ValueError:
            continue
    return out


def restates(request: str, tried: dict[str, list[tuple[Any, int]]]) -> list[str]:
    """The earlier calls' values ``request`` states: numbers as numbers, other text word-bounded and case
    folded (booleans, lists, objects and one-character text are not counted)."""
    low = request.lower()
    stated = numbers_in(request)
    hits = []
    for values in tried.values():
        for value, _ in values:
            number = as_number(value)
            if number is not None:
                if number in stated:
                    hits.append(str(value))
                continue
            if not isinstance(value, str) or len(value.strip()) < 2:
                continue
            if re.search(rf"(?<!\w){re.escape(value.strip().lower())}(?!\w)", low):
                hits.append(value)
    return hits


async def imagine_all(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    from ste_mcp.app import App
    from ste_mcp.config import load_settings
    from ste_mcp.explorer.episode import ExploreContext, imagine, system_message
    from ste_mcp.llm.protocols import protocol_for
    from ste_mcp.memory.requests import request_problem
    from ste_mcp.memory.trials import TrialStore

    settings = load_settings(
        None,
        data_dir=str(data),
        llm={"base_url": args.llm_url, "model": args.model, "timeout_s": 900, "retries": 0},
    )
    rows: dict[str, dict[str, Any]] = {}
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
            tried = store.tried_values(tool.name)
            row = rows.setdefault(arm, {}).setdefault(tool.name, {"requests": []})
            row["requests"].append(
                {
                    "request": request,
                    "restates": restates(request, tried),
                    "problem": request_problem(request, tool.name, description=tool.documentation),
                }
            )

        jobs = []
        for arm, values in ARMS.items():
            ctx = ExploreContext(
                model=model,
                upstream=app.upstream,
                store=store,
                protocol=protocol,
                settings=settings.explorer.model_copy(update={"ltm_values": values}),
            )
            jobs += [one(arm, ctx, tool) for tool in tools for _ in range(args.samples)]
        start = time.monotonic()
        await asyncio.gather(*jobs)
        seconds = round(time.monotonic() - start)
        for tool in tools:
            tried = store.tried_values(tool.name)
            known = {n for values in tried.values() for v, _ in values if (n := as_number(v)) is not None}
            for arm in ARMS:
                row = rows[arm][tool.name]
                fresh: set[str] = set()
                for r in row["requests"]:
                    fresh |= {
                        n for n in map(str, numbers_in(r["request"])) if n.removesuffix(".0") not in known
                    }
                row["new_numbers"] = len(fresh)
    return {"rows": rows, "seconds": seconds, "model": args.model, "samples": args.samples}


def summarise(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for arm, tools in result["rows"].items():
        requests = [r for row in tools.values() for r in row["requests"]]
        out[arm] = {
            "requests": len(requests),
            "restating an earlier value %": round(
                100 * sum(bool(r["restates"]) for r in requests) / len(requests), 1
            ),
            "with a request problem %": round(
                100 * sum(bool(r["problem"]) for r in requests) / len(requests), 1
            ),
            "distinct new numbers": sum(row["new_numbers"] for row in tools.values()),
        }
    return out


def plot(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(result["rows"])
    tools = sorted(result["rows"][arms[0]])
    share = {
        arm: [
            100
            * sum(bool(r["restates"]) for r in result["rows"][arm][t]["requests"])
            / len(result["rows"][arm][t]["requests"])
            for t in tools
        ]
        for arm in arms
    }
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        ax.bar([x + i * width for x in range(len(tools))], share[arm], width, label=arm)
    ax.set_xticks([x + width / 2 for x in range(len(tools))])
    ax.set_xticklabels([t.split("__")[-1][-22:] for t in tools], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("requests restating a value earlier calls sent (%)")
    ax.set_title(f"first imagination of an episode, {result['samples']} per tool, {result['model']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def seeded_run(pool: Path, prefix: str, run: Callable[[Path], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """``run(data)`` on a temporary data dir whose memory ``seed_memory`` filled from ``pool`` (its converted
    models linked); the result with that memory's per-tool counts as ``memory``."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        models = pool / "models"
        if models.exists():
            (data / "models").symlink_to(models.resolve())
        memory = seed_memory(pool, data)
        result = asyncio.run(run(data))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {**result, "memory": memory}


def write_result(
    result: dict[str, Any], summary: dict[str, Any], out: Path, plot: Callable[[dict[str, Any], Path], None]
) -> None:
    """``result`` with its ``summary`` as ``out`` (.json) and ``plot`` beside it (.png); the summary printed."""
    result["summary"] = summary
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    plot(result, out.with_suffix(".png"))
    print(json.dumps(summary, indent=1))
    print(f"wrote {out} and {out.with_suffix('.png')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/tried_values.json"))
    args = parser.parse_args()
    result = seeded_run(args.pool, "tried-values-", lambda data: imagine_all(args, data))
    write_result(result, summarise(result), args.out, plot)
    print(f"{result['seconds']} s")


if __name__ == "__main__":
    main()
