"""Table and plot of hindsight's repair replayed on the shared-memory runs (``scripts/bench/repair.sh``).

Per run: the refused trials replayed, what the repair kept, the hand labels of what it kept
(``docs/bench/repair_labels.json``), and the 0.5B student in the best setting with the run's pool
(``.cache/bench/NAME/runs-kK-*``) and with the repaired pool (``.cache/bench/repair-NAME/runs-*``), per tool
too. Writes ``docs/bench/repair.json`` and ``docs/bench/repair.png``.

    .venv/bin/python scripts/bench/repair_report.py shared3:2 shared2:2 shared:4
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

CACHE = Path(".cache/bench")
ROW = "retrieval-search-among-candidates-constrained"


def scores(run: Path) -> tuple[dict, Counter]:
    """The summary of an eval row and its correct answers per tool."""
    per_tool: Counter = Counter()
    for line in (run / ROW / "scores.jsonl").read_text().splitlines():
        s = json.loads(line)
        per_tool[s["tool"]] += s["correct"]
    return json.loads((run / ROW / "summary.json").read_text()), per_tool


def main() -> None:
    labels = json.loads(Path("docs/bench/repair_labels.json").read_text())["labels"]
    result = {}
    for spec in sys.argv[1:]:
        name, k = spec.split(":")
        replay = json.loads((CACHE / f"repair-{name}" / "repair.json").read_text())
        mine = [v for key, v in labels.items() if key.startswith(f"{name}/")]
        entry = {
            "refused_repairable": replay["refused_repairable"],
            "repaired": replay["originals_added"],
            "paraphrases_added": replay["paraphrases_added"],
            "good_by_hand": sum(v["label"] == "good" for v in mine),
            "why_not": Counter((r["hindsight"] or "")[:60] for r in replay["rows"] if not r["kept"]),
            "elapsed_s": replay["elapsed_s"],
        }
        for bench in ("ste50", "dev"):
            before, tools_before = scores(CACHE / name / f"runs-k{k}-{bench}")
            after, tools_after = scores(CACHE / f"repair-{name}" / f"runs-{bench}")
            entry[bench] = {
                "pool": before["correct"],
                "pool + repaired": after["correct"],
                "per_tool": {t: [tools_before[t], tools_after[t]] for t in sorted(tools_before)},
            }
        result[f"{name} (k={k})"] = entry
    Path("docs/bench/repair.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, bench, title in zip(
        axes, ("ste50", "dev"), ("195 STE-50 toolbox items", "bench/dev (65)"), strict=True
    ):
        names = list(result)
        for i, arm in enumerate(("pool", "pool + repaired")):
            values = [result[n][bench][arm] for n in names]
            bars = ax.bar([x + 0.38 * i for x in range(len(names))], values, 0.38, label=arm)
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks([x + 0.19 for x in range(len(names))], names, fontsize=8)
        ax.set_ylabel("correct %")
        ax.set_ylim(0, 100)
        ax.set_title(f"0.5B student, best setting, {title}", fontsize=9)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig("docs/bench/repair.png", dpi=120)
    for n, e in result.items():
        print(
            n,
            {k: v for k, v in e.items() if k not in ("why_not",)} | {"ste50": e["ste50"]["pool + repaired"]},
        )


if __name__ == "__main__":
    main()
