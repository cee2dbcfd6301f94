"""docs/bench/gate_served.json (scripts/bench/gate_served.py) as docs/bench/gate_served.png: the gate's two
questions to the tools a round left out (as tools nobody explored; as served with their own examples),
adapter against the base model, per round, with the verdict before and after the second question.
usage: gate_served_plot.py"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

data = json.loads(Path("docs/bench/gate_served.json").read_text())
questions = {"unexplored": "asked as unexplored", "served": "asked as served\n(their own examples)"}
fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 4.5), squeeze=False)
for ax, (name, row) in zip(axes[0], data.items(), strict=True):
    for i, q in enumerate(questions):
        for j, (who, colour, label) in enumerate(
            (("baseline", "#999999", "base model"), ("candidate", "#1f77b4", "adapter"))
        ):
            value = row[q][who]["correct"]
            x = i + (j - 0.5) * 0.38
            ax.bar(x, value, 0.36, color=colour, label=label if i == 0 else None)
            ax.text(x, value + 1, f"{value:.0f}", ha="center", fontsize=8)
        gained, lost = row[q]["paired_correct"]
        ax.text(i, -12, f"+{gained} / -{lost}", ha="center", fontsize=8)
    ax.set_xticks(range(len(questions)), list(questions.values()), fontsize=8)
    before = row["verdict_then"].split(":")[0]
    after = "promoted" if row["promote_now"] else row["verdict_now"].split(":")[0]
    ax.set_title(f"round {name}: {before} → {after}", fontsize=10)
    ax.set_ylim(-16, 105)
    ax.set_ylabel("correct % (left-out tools' held-out exemplars)")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig("docs/bench/gate_served.png", dpi=110)
print("docs/bench/gate_served.png")
