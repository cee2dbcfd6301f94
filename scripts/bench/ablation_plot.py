"""docs/bench/ablation.json (scripts/bench/ablation.sh) as docs/bench/ablation.png: the 0.5B student's correct %
with each ablated teacher run's exemplars, beside the run's approved originals. Each variant's answers are
also paired item by item with the full run's (items gained / lost, one-sided sign test of the loss), added to
the JSON as ``paired_vs_full``.
usage: [OUT=.cache/bench/ablation] ablation_plot.py"""

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ste_mcp.memory.gate import sign_p

BEST = "retrieval-search-among-candidates-constrained"

LABELS = {"full": "full STE", "noltm": "no LTM", "noreflect": "no reflection", "nostm": "no STM"}
rows = json.loads(Path("docs/bench/ablation.json").read_text())
out = Path(os.environ.get("OUT", ".cache/bench/ablation"))


def answers(variant: str, bench: str) -> dict[str, bool]:
    lines = (out / f"runs-{variant}-{bench}" / BEST / "scores.jsonl").read_text().splitlines()
    return {s["id"]: s["correct"] for s in map(json.loads, lines)}


for row in rows:
    if row["variant"] == "full" or not any(r["variant"] == "full" for r in rows):
        continue
    row["paired_vs_full"] = {}
    for bench in ("ste50", "dev"):
        ours, full = answers(row["variant"], bench), answers("full", bench)
        gained = sum(1 for i in full if ours[i] and not full[i])
        lost = sum(1 for i in full if full[i] and not ours[i])
        row["paired_vs_full"][bench] = {
            "gained": gained,
            "lost": lost,
            "p_loss": round(sign_p(lost, gained), 3),
        }
    print(row["variant"], row["paired_vs_full"])
Path("docs/bench/ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
fig, (accuracy, yield_) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
names = [LABELS.get(r["variant"], r["variant"]) for r in rows]
xs = range(len(rows))
for offset, (bench, label) in zip(
    (-0.2, 0.2), (("ste50", "195 STE-50 toolbox items"), ("dev", "bench/dev (65)")), strict=True
):
    ys = [r[bench]["correct"] for r in rows]
    bars = accuracy.bar([x + offset for x in xs], ys, width=0.4, label=label)
    accuracy.bar_label(bars, fmt="%.1f", fontsize=8)
accuracy.set_xticks(list(xs), names)
accuracy.set_ylabel("correct % (0.5B student, best setting, constrained)")
accuracy.set_ylim(0, 100)
accuracy.axhline(58, color="#999999", linestyle=":", linewidth=1)
accuracy.legend(fontsize=8, loc="upper right")
originals = [r["teacher"]["originals"] for r in rows]
bars = yield_.bar(list(xs), originals, color="#8c8c8c")
yield_.bar_label(bars, fontsize=8)
yield_.set_xticks(list(xs), names, fontsize=8)
yield_.set_ylabel("approved originals (52 trials each)")
fig.suptitle(
    "STE's ablations at laptop size: 1.5B teacher, 2 episodes × 2 trials per tool, 13 tools", fontsize=10
)
fig.tight_layout()
fig.savefig("docs/bench/ablation.png", dpi=110)
print("docs/bench/ablation.png")
