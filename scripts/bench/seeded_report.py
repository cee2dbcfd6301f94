"""Session 47: what each arm of ``seeded_teacher.sh`` kept, against the pool its memory was seeded with (written
before any arm finished; checked on an unjudged arm only).

Per arm (``.cache/bench/seeded/<arm>``): the new episode's trials (episode >= 1; the seeded ones are episode 0) by
outcome (judge rejected, refused by a check, kept), the kept originals and paraphrases, and of the kept originals
how many restate a value the pool's calls sent and how many distinct argument values no pool call sent (as
``imagine_samples.py`` reads requests, here read from the calls themselves). Writes ``--out`` (.json) and a .png.
usage: .venv/bin/python scripts/bench/seeded_report.py [--seeded .cache/bench/seeded] [--pool .cache/bench/all/pool]
       [--out docs/bench/seeded_teacher.json]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

from imagine_samples import tried_values
from tried_values import restates


def arm_report(data: Path, tried: dict[str, Any]) -> dict[str, Any]:
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.exemplars import ExemplarStore
    from ste_mcp.memory.trials import TrialStore

    db = open_db(data / "lancedb")
    trials = [t for t in TrialStore(db).trials() if t.episode >= 1]
    outcome: collections.Counter[str] = collections.Counter()
    for t in trials:
        v = t.verdict or {}
        if not v:
            outcome["unjudged"] += 1
        elif not v.get("accepted"):
            outcome["judge rejected"] += 1
        elif "refused" in v:
            outcome["refused: " + v["refused"].split(":", 1)[0]] += 1
        else:
            outcome["kept"] += 1
    kept = ExemplarStore(db).find(status="approved")
    originals = [e for e in kept if e.variant_of is None]
    new_values: set[tuple[str, str, str]] = set()
    rows = []
    for e in originals:
        sent = tried.get(e.tool, {})
        for name, value in e.arguments.items():
            if value not in [v for v, _ in sent.get(name, [])]:
                new_values.add((e.tool, name, json.dumps(value, ensure_ascii=False)))
        rows.append(
            {
                "tool": e.tool,
                "request": e.query,
                "arguments": e.arguments,
                "restates": restates(e.query, sent),
            }
        )
    return {
        "trials": len(trials),
        "outcomes": dict(outcome),
        "originals": len(originals),
        "paraphrases": len(kept) - len(originals),
        "tools with exemplars": len({e.tool for e in kept}),
        "originals restating a pool value": sum(bool(r["restates"]) for r in rows),
        "argument values no pool call sent": len(new_values),
        "kept": rows,
    }


def plot(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["trials", "originals", "originals restating a pool value", "argument values no pool call sent"]
    arms = list(result)
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        ax.bar([x + i * width for x in range(len(keys))], [result[arm][k] for k in keys], width, label=arm)
    ax.set_xticks([x + width * (len(arms) - 1) / 2 for x in range(len(keys))])
    ax.set_xticklabels(keys, fontsize=8)
    ax.legend(title="explorer.temperature", fontsize=8)
    ax.set_title("1.5B teacher, one episode per tool on a memory seeded with the pool")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeded", type=Path, default=Path(".cache/bench/seeded"))
    parser.add_argument("--pool", type=Path, default=Path(".cache/bench/all/pool"))
    parser.add_argument("--out", type=Path, default=Path("docs/bench/seeded_teacher.json"))
    args = parser.parse_args()
    tried = tried_values(args.pool)
    result = {
        arm.name: arm_report(arm, tried)
        for arm in sorted(args.seeded.iterdir())
        if arm.is_dir() and (arm / "lancedb").exists()
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    plot(result, args.out.with_suffix(".png"))
    print(
        json.dumps({arm: {k: v for k, v in r.items() if k != "kept"} for arm, r in result.items()}, indent=1)
    )


if __name__ == "__main__":
    main()
