"""docs/bench/gate_unexplored.json (scripts/bench/gate_unexplored.sh) as docs/bench/gate_unexplored.png: what
the gate saw on the tools its round left out, beside what the 195 STE-50 toolbox items show per group of
tools (nobody explored / left out by the round / the others).
usage: gate_unexplored_plot.py"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

data = json.loads(Path("docs/bench/gate_unexplored.json").read_text())
rounds, evals = data["rounds"], data["toolbox195"]
fig, (gate, items) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 1.6]})

names = list(rounds)
for i, name in enumerate(names):
    un = rounds[name]["gate_unexplored"]
    for j, (who, colour) in enumerate((("baseline", "#999999"), ("candidate", "#1f77b4"))):
        value = (un.get(who) or {}).get("correct") or 0.0
        gate.bar(
            i + (j - 0.5) * 0.38,
            value,
            0.36,
            color=colour,
            label=("base model", "adapter")[j] if i == 0 else None,
        )
        gate.text(i + (j - 0.5) * 0.38, value + 1, f"{value:.0f}", ha="center", fontsize=8)
    gate.text(i, -14, rounds[name]["status"], ha="center", fontsize=9, weight="bold")
gate.set_xticks(range(len(names)), [f"share {rounds[n]['foreign_examples']}" for n in names])
gate.set_ylabel("correct % (left-out tools' held-out exemplars)")
gate.set_title("the gate, on the tools the round left out", fontsize=10)
gate.set_ylim(-18, 105)
gate.legend(fontsize=8)

groups = ["unexplored", "left_out", "others", "all"]
labels = {
    "unexplored": "nobody explored",
    "left_out": "left out by the round",
    "others": "the others",
    "all": "all 195",
}
models = list(evals)
width = 0.8 / max(len(models), 1)
for k, model in enumerate(models):
    values = [evals[model][g]["correct"] or 0.0 for g in groups]
    xs = [g + (k - (len(models) - 1) / 2) * width for g in range(len(groups))]
    items.bar(xs, values, width * 0.95, label=model if model == "base" else f"adapter {model}")
    for x, v in zip(xs, values, strict=True):
        items.text(x, v + 1, f"{v:.0f}", ha="center", fontsize=8)
n = {g: evals[models[0]][g]["n"] for g in groups} if models else {}
items.set_xticks(range(len(groups)), [f"{labels[g]}\n({n.get(g, 0)} items)" for g in groups])
items.set_ylabel("correct % (STE-50 toolbox items, best setting)")
items.set_title("what the 195 items show", fontsize=10)
items.set_ylim(0, 105)
items.legend(fontsize=8)
fig.tight_layout()
fig.savefig("docs/bench/gate_unexplored.png", dpi=110)
print("docs/bench/gate_unexplored.png")
