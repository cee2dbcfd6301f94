"""Replay hindsight's repair on the exemplars a pool's recheck refused for ``added_asks``.

A pool built from teacher exports and rechecked with today's checks (``scripts/bench/pool.sh``) rejects the
originals whose request asks for more than their call serves ("…, but only for weekdays"). In a live run with
``memory.hindsight = "repair"`` such a trial is restated from its call, judged and checked again. This puts
each refused original back as the trial it was (its request, call, result and answer, on the day it was made)
into a copy of the pool (``--out``), and judges it there with the repair on, as a live run would: the judge,
then the checks refuse it, then hindsight restates it and the restated trial is judged and checked again (a
restatement that repeats a stored exemplar is refused). ``OUT/added_asks.json`` lists per trial the request,
the refusal, the restated request and whether it was kept; OUT is then a pool for an eval.

    .venv/bin/python scripts/bench/added_asks.py --pool .cache/bench/asks/checked \\
        --llm-url http://127.0.0.1:8795/v1 --out .cache/bench/asks/repaired
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from judge_replay import as_trial
from repair import judge_with_repair, pool_copy, print_rows

from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.recheck import REASON_PREFIX

FIRST_EPISODE = 1000  # the replayed trials' episodes start here, clear of any stored trial's


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=Path, required=True, help="data dir of the rechecked pool")
    ap.add_argument("--llm-url", required=True, help="the judge's server (the runs' teacher)")
    ap.add_argument("--paraphrases", type=int, default=2, help="memory.paraphrases_per_exemplar")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    db = pool_copy(args.pool, args.out)
    exemplars = ExemplarStore(db)
    refused = [
        ex
        for ex in exemplars.find(status="rejected")
        if ex.variant_of is None and ex.status_reason.startswith(REASON_PREFIX + "added_asks:")
    ]
    replayed = [as_trial(ex, FIRST_EPISODE + i) for i, ex in enumerate(refused)]
    judged = await judge_with_repair(db, replayed, args.llm_url, args.paraphrases)
    rows = []
    for ex, t in zip(refused, replayed, strict=True):
        verdict, kept = judged.verdicts[t.id], judged.by_trial.get(t.id)
        rows.append(
            {
                "exemplar": ex.id,
                "tool": ex.tool,
                "request": ex.query,
                "arguments": ex.arguments,
                "refused": ex.status_reason.removeprefix(REASON_PREFIX),
                "accepted_again": verdict.get("accepted"),
                "hindsight": verdict.get("hindsight"),
                "refused_again": verdict.get("refused"),
                "kept": kept.query if kept else None,
                "kept_tool": kept.tool if kept else None,
            }
        )
    summary = {
        "model": judged.model,
        "pool": str(args.pool),
        "refused_by_added_asks": len(refused),
        **judged.summary(),
    }
    (args.out / "added_asks.json").write_text(
        json.dumps({**summary, "rows": rows}, indent=1, ensure_ascii=False)
    )
    print_rows(rows, "request", "refused_again")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
