"""Replay a teacher run's refused trials through hindsight's repair (``memory.hindsight = "repair"``).

A teacher run's trial store holds, with each verdict, why a trial the judge accepted was not kept. Those
refused by a check that finds the request at odds with a call that worked (``memory/exploit.py::
repairable``: a stated number the call ignored, a day or language the result did not give, …) are copied,
unjudged, into ``OUT/lancedb`` beside a copy of ``--pool`` (the exemplars the run kept, so that a repaired
request that repeats one is refused as in a live run) and judged there with the repair on: the judge
again, then hindsight restates the request from the call, and the restated trial is judged and checked
again. ``OUT/repair.json`` lists per trial the imagined request, the refusal, the restated request and
whether it was kept; the data dir is then a pool for an eval (``search_retrieval.sh`` DATA=OUT).

    .venv/bin/python scripts/bench/repair.py --run .cache/bench/shared3/run \\
        --pool .cache/bench/shared3/pool-k2 --llm-url http://127.0.0.1:8782/v1 --out .cache/bench/repair3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ste_mcp.config import load_settings
from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.exploit import Exploiter, ExploitReport, repairable
from ste_mcp.memory.trials import TrialRecord, TrialStore
from ste_mcp.toolbox.server import start_toolbox
from ste_mcp.upstream.specs import load_toolset


@dataclass
class Judged:
    """What judging trials with the repair on added: the model, the Exploiter's report, the new exemplars,
    the originals by the trial they came from, every trial's verdict, and the seconds it took."""

    model: str
    report: ExploitReport
    added: list[Exemplar]
    by_trial: dict[str, Exemplar]
    verdicts: dict[str, dict]
    elapsed_s: float

    def summary(self) -> dict:
        return {
            "report": self.report.model_dump(exclude={"errors"}),
            "originals_added": len(self.by_trial),
            "paraphrases_added": len(self.added) - len(self.by_trial),
            "elapsed_s": round(self.elapsed_s, 1),
        }


def pool_copy(pool: Path, out: Path):
    """The database of ``out``, a copy of ``pool``'s made once (so that a repeat of its exemplars is refused)."""
    if not (out / "lancedb").exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(pool / "lancedb", out / "lancedb")
    return open_db(out / "lancedb")


def print_rows(rows: list[dict], request: str, refused: str) -> None:
    """One line per replayed trial (its ``request`` field), and what became of it: the request kept, else
    hindsight's note, else why the checks refused it (its ``refused`` field)."""
    for row in rows:
        print(f"{'kept' if row['kept'] else '----'} {row['tool'][:28]:28} {row[request][:80]!r}")
        print(f"     -> {row['kept'] or row['hindsight'] or row[refused]}")


async def judge_with_repair(db, trials: list[TrialRecord], llm_url: str, paraphrases: int) -> Judged:
    """Store ``trials`` (unjudged) in ``db`` and judge them there with ``memory.hindsight = "repair"`` by the
    model served at ``llm_url``, against the offline toolbox, as a live run would."""
    trial_store, exemplars = TrialStore(db), ExemplarStore(db)
    before = {e.id for e in exemplars.find()}
    trial_store.record_many(trials)
    settings = load_settings()
    memory = settings.memory.model_copy(
        update={"hindsight": "repair", "paraphrases_per_exemplar": paraphrases}
    )
    name = (await OpenAIChatModel(llm_url, "").list_models())[0]
    model = OpenAIChatModel(llm_url, name, timeout_s=900, retries=0, max_concurrency=8)
    exploiter = Exploiter(trial_store, exemplars, DescriptionStore(db), memory)
    started = time.monotonic()
    with start_toolbox() as toolbox:
        tools = {t.name: t for t in load_toolset(settings, variables={"TOOLBOX_URL": toolbox.url})}
        report = await exploiter.process(model, tools)
    elapsed = time.monotonic() - started
    added = [e for e in exemplars.find() if e.id not in before]
    return Judged(
        model=name,
        report=report,
        added=added,
        by_trial={e.provenance.trial_ids[0]: e for e in added if e.variant_of is None},
        verdicts={t.id: t.verdict or {} for t in trial_store.trials()},
        elapsed_s=elapsed,
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="the teacher run's data dir (its trials)")
    ap.add_argument("--pool", type=Path, required=True, help="data dir of the exemplars the run kept")
    ap.add_argument("--llm-url", required=True, help="the judge's server (the run's teacher)")
    ap.add_argument(
        "--episodes", type=int, default=None, help="only trials of the first N episodes (the pool's)"
    )
    ap.add_argument("--paraphrases", type=int, default=2, help="memory.paraphrases_per_exemplar")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    refused = [
        t.model_copy(update={"verdict": None})
        for t in TrialStore(open_db(args.run / "lancedb")).trials()
        if (t.verdict or {}).get("accepted")
        and repairable((t.verdict or {}).get("refused", ""))
        and (args.episodes is None or t.episode < args.episodes)
    ]
    db = pool_copy(args.pool, args.out)
    judged = await judge_with_repair(db, refused, args.llm_url, args.paraphrases)
    rows = []
    for t in refused:
        verdict, kept = judged.verdicts[t.id], judged.by_trial.get(t.id)
        rows.append(
            {
                "trial": t.id,
                "tool": t.tool,
                "imagined": t.query,
                "arguments": t.last_call.arguments if t.last_call else None,
                "accepted_again": verdict.get("accepted"),
                "repairs": verdict.get("repairs"),
                "refused": verdict.get("refused"),
                "hindsight": verdict.get("hindsight"),
                "kept": kept.query if kept else None,
                "kept_tool": kept.tool if kept else None,
            }
        )
    summary = {
        "model": judged.model,
        "run": str(args.run),
        "pool": str(args.pool),
        "episodes": args.episodes,
        "refused_repairable": len(refused),
        **judged.summary(),
    }
    (args.out / "repair.json").write_text(json.dumps({**summary, "rows": rows}, indent=1, ensure_ascii=False))
    print_rows(rows, "imagined", "refused")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
