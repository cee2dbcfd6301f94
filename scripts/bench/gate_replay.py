"""Replay the description gate's stored measurements under today's decision rule (no model).

Every version a gate run stored keeps each evaluator's percentages and its paired [gained, lost]
held-out answers. This reloads them, lets today's ``EvaluatorScore.verdict`` and ``decide`` speak
again, and lists the versions whose result changes: what a change to the rule alone does to verdicts
already measured.

usage: .venv/bin/python scripts/bench/gate_replay.py STORE... [--out FILE.json]
   (STORE: a data dir holding lancedb/, e.g. .cache/bench/gate-referral/gated)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.gate import EvaluatorScore, decide


def replay(store: Path) -> list[dict]:
    """One row per gated version of every tool in ``store``: the stored result and today's."""
    descriptions = DescriptionStore(open_db(store / "lancedb"))
    rows = []
    for tool in sorted(descriptions.current_all()):
        for version in descriptions.history(tool):
            gate = version.gate_result or {}
            if not gate.get("judged", True) or not gate.get("scores"):
                continue
            scores = [
                EvaluatorScore(**{k: v for k, v in s.items() if k != "verdict"}) for s in gate["scores"]
            ]
            promote, reason = decide(scores, gate.get("n", 0))
            rows.append(
                {
                    "store": str(store),
                    "tool": tool,
                    "version": version.version,
                    "then": "promoted" if gate.get("promote") else "refused",
                    "then_verdicts": [s.get("verdict") for s in gate["scores"]],
                    "now": "promoted" if promote else "refused",
                    "now_verdicts": [s.verdict for s in scores],
                    "paired": [s.paired for s in scores],
                    "reason_now": reason,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = [row for store in args.stores for row in replay(store)]
    changed = [r for r in rows if r["then"] != r["now"]]
    for r in rows:
        mark = "CHANGED" if r in changed else "same"
        print(
            f"{mark:7} {r['store']} {r['tool']} v{r['version']}: {r['then']} {r['then_verdicts']} -> "
            f"{r['now']} {r['now_verdicts']} {r['paired']}"
        )
    print(f"{len(changed)} of {len(rows)} gated versions change result under today's rule")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "changed": len(changed)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
