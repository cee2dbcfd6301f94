"""Replay an export's trials through today's judge pipeline, with and without hindsight.

For every original exemplar of an export (``ste-mcp exemplars export``) the call is made again against
the offline toolbox (the same arguments; the result as the explorer would see it), and the trial —
its imagined request, that call, its final answer (the result's text where the export left it out) —
goes through ``Exploiter.process`` with the model at ``--llm-url`` as judge and paraphraser, once per
arm: ``memory.hindsight`` off and on, each into its own data dir, with ``memory.judge_checks`` as
configured. Each arm's approved exemplars are exported to ``OUT/<arm>.jsonl`` (for ``ste-mcp exemplars
import`` and an eval), and ``OUT/hindsight.json`` lists, per trial, the imagined request, the restated
one, the call and what each arm kept, with the export's hand label of the imagined pair when it has one.

    .venv/bin/python scripts/bench/hindsight.py --llm-url http://127.0.0.1:8774/v1 \\
        --exemplars bench/learned/toolbox-teacher-1.5b.jsonl --out .cache/bench/hindsight
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from ste_mcp.config import load_settings
from ste_mcp.explorer.episode import observation_text
from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.exploit import Exploiter
from ste_mcp.memory.transfer import export_exemplars, read_export
from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.safety.redact import Redactor
from ste_mcp.toolbox.server import start_toolbox
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs import load_toolset


async def replayed_trials(exemplars, tools, settings) -> list[TrialRecord]:
    """One trial per original exemplar, its call made again against the running toolbox."""
    trials = []
    async with UpstreamClient(settings.upstream) as client:
        for i, ex in enumerate(exemplars):
            result = await client.call(tools[ex.tool], dict(ex.arguments), purpose="explore")
            observation = observation_text(result, settings.explorer.observation_chars, Redactor())
            answer = ex.final_answer or observation[:300]
            trials.append(
                TrialRecord(
                    tool=ex.tool,
                    episode=i,
                    slot=0,
                    query=ex.query,
                    turns=[
                        Turn(
                            raw="(replayed)",
                            kind="call",
                            tool=ex.tool,
                            arguments=dict(ex.arguments),
                            observation=observation,
                            is_error=result.is_error,
                        ),
                        Turn(raw=f"Final Answer: {answer}", kind="final"),
                    ],
                    final_answer=answer,
                    reflection="yes",
                    model=(ex.provenance.models or ["?"])[0],
                    prompt_version=ex.id,  # the exported exemplar this trial replays
                )
            )
    return trials


async def run_arm(arm: str, hindsight: bool, trials, tools, model, settings, out: Path) -> dict:
    """Judge ``trials`` into ``out/arm`` (a re-run resumes: judged trials are not judged again)."""
    data_dir = out / arm
    db = open_db(data_dir / "lancedb")
    trial_store, exemplar_store = TrialStore(db), ExemplarStore(db)
    memory = settings.memory.model_copy(update={"hindsight": hindsight})
    exploiter = Exploiter(trial_store, exemplar_store, DescriptionStore(db), memory)
    trial_store.record_many(trials)
    elapsed_file = data_dir / "elapsed_s.txt"
    if trial_store.unjudged():
        started = time.monotonic()
        await exploiter.process(model, tools)
        elapsed_file.write_text(f"{time.monotonic() - started:.1f}")
    with (out / f"{arm}.jsonl").open("w") as f:
        exported = export_exemplars(exemplar_store, f)
    verdicts = {t.id: t.verdict or {} for t in trial_store.trials()}
    originals = exemplar_store.find(originals_only=True)
    return {
        "judged": sum(bool(v) for v in verdicts.values()),
        "accepted": sum(bool(v.get("accepted")) for v in verdicts.values()),
        "refused": sum("refused" in v for v in verdicts.values()),
        "restated": sum("imagined" in v for v in verdicts.values()),
        "exemplars": len(originals),
        "paraphrases": exported - len(originals),
        "elapsed_s": float(elapsed_file.read_text()) if elapsed_file.exists() else None,
        "verdicts": verdicts,
        "kept": {ex.provenance.trial_ids[0]: ex.query for ex in originals},
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm-url", required=True)
    ap.add_argument("--model-name", default=None, help="served model name (default: the server's first)")
    ap.add_argument("--exemplars", type=Path, required=True)
    ap.add_argument("--labels", type=Path, default=None, help="default: FILE with .labels.json, if any")
    ap.add_argument("--paraphrases", type=int, default=2, help="memory.paraphrases_per_exemplar")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    labels_path = args.labels or args.exemplars.with_suffix(".labels.json")
    labels = json.loads(labels_path.read_text())["labels"] if labels_path.exists() else {}
    exported = [ex for _, ex in read_export(args.exemplars.read_text().splitlines())]
    originals = [ex for ex in exported if ex.variant_of is None]
    settings = load_settings()
    settings = settings.model_copy(
        update={"memory": settings.memory.model_copy(update={"paraphrases_per_exemplar": args.paraphrases})}
    )
    name = args.model_name or (await OpenAIChatModel(args.llm_url, "").list_models())[0]
    model = OpenAIChatModel(args.llm_url, name, timeout_s=900, retries=0, max_concurrency=8)
    args.out.mkdir(parents=True, exist_ok=True)

    with start_toolbox() as toolbox:
        tools = {t.name: t for t in load_toolset(settings, variables={"TOOLBOX_URL": toolbox.url})}
        trials = await replayed_trials(originals, tools, settings)
        arms = {
            arm: await run_arm(arm, on, trials, tools, model, settings, args.out)
            for arm, on in (("imagined", False), ("hindsight", True))
        }

    rows = []
    for trial, ex in zip(trials, originals, strict=True):
        row = {
            "exemplar": ex.id,
            "tool": ex.tool,
            "arguments": ex.arguments,
            "label_imagined": (labels.get(ex.id) or [None])[0],
            "request": ex.query,  # as the explorer imagined it
        }
        for arm, result in arms.items():
            verdict = result["verdicts"].get(trial.id, {})
            row[arm] = {
                "kept": trial.id in result["kept"],
                "query": result["kept"].get(trial.id),
                "accepted": verdict.get("accepted"),
                "refused": verdict.get("refused"),
                "hindsight": verdict.get("hindsight"),
            }
        rows.append(row)
    summary = {
        "model": name,
        "trials": len(trials),
        "arms": {
            arm: {k: v for k, v in r.items() if k not in ("verdicts", "kept")} for arm, r in arms.items()
        },
    }
    (args.out / "hindsight.json").write_text(
        json.dumps({**summary, "rows": rows}, indent=1, ensure_ascii=False)
    )
    for row in rows:
        h = row["hindsight"]
        mark = "kept" if h["kept"] else "----"
        print(
            f"{mark} {row['tool'][:26]:26} {row['request'][:60]!r}\n     -> {h['query'] or h['refused'] or h['hindsight']}"
        )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
