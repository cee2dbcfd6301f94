"""The rows of scripts/bench/all750.sh (issue 17: the adapter on all 750 STE-50 items) in
docs/bench/all750.{json,png}: each row overall, on the 195 items of the 13 toolbox tools (the tools with
exemplars) and on the 555 of the 37 others; gained / lost items against the base model in the best setting.
usage: all750_plot.py [OUT]"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ste_mcp.toolbox import ENDPOINTS

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/bench/all750")
best = "retrieval-search-among-candidates-constrained"
rows = {
    "base model, zero-shot (must-call, 15 candidates, constrained)": out / "base" / "base-constrained",
    "base model, best setting": out / "base" / best,
    "adapter (session 24's v1), best setting": out / "demos-v1" / best,
    "adapter (session 24's v2: v1 + today's date), best setting": out / "demos" / best,
}
for run in sorted(
    out.glob("demos-f*")
):  # finetune.foreign_examples 0.NN (scripts/bench/demos_adapter.sh -fNN)
    share = int(run.name.removeprefix("demos-f"))
    rows[f"adapter, {share} % of rows with other tools' examples only, best setting"] = run / best
toolbox = {e.name for e in ENDPOINTS}
keys = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct", "recall")
result = {}


def scored(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]


base_run = out / "base" / best  # each adapter item for item against the base model in the same setting
reference = {s["id"]: s["correct"] for s in scored(base_run)} if (base_run / "scores.jsonl").exists() else {}
for label, run in rows.items():
    if not (run / "summary.json").exists():
        continue
    summary = json.loads((run / "summary.json").read_text())
    scores = scored(run)
    parts = {
        "toolbox": [s for s in scores if s["tool"] in toolbox],
        "others": [s for s in scores if s["tool"] not in toolbox],
    }
    result[label] = (
        {k: summary.get(k) for k in keys}
        | {
            f"{part}_correct": round(100 * sum(s["correct"] for s in items) / len(items), 1)
            for part, items in parts.items()
        }
        | {f"{part}_n": len(items) for part, items in parts.items()}
    )
    right = {s["id"]: s["correct"] for s in scores}
    if reference and run.parent.name != "base":
        for part, items in parts.items():
            ids = [s["id"] for s in items]
            result[label][f"{part}_gained"] = sum(right[i] and not reference[i] for i in ids)
            result[label][f"{part}_lost"] = sum(reference[i] and not right[i] for i in ids)
Path("docs/bench/all750.json").write_text(json.dumps(result, indent=1))
groups = (
    ("correct", "all 750"),
    ("toolbox_correct", "13 toolbox tools (195)"),
    ("others_correct", "37 others (555)"),
)
fig, ax = plt.subplots(figsize=(9.5, 4.8))
width = 0.8 / max(1, len(result))
for i, (label, r) in enumerate(result.items()):
    bars = ax.bar([x + width * i for x in range(len(groups))], [r[k] for k, _ in groups], width, label=label)
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
ax.axhline(29.3, color="grey", ls="--", lw=1)
ax.text(-0.35, 30, "best zero-shot (issue 17): 29.3", fontsize=7, ha="left", color="grey")
ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], [g for _, g in groups], fontsize=8)
ax.set_ylabel("correct %")
ax.set_ylim(0, 75)
ax.legend(fontsize=7, loc="upper right")
ax.set_title("Packaged 0.5B client on all 750 STE-50 items (greedy)", fontsize=9)
fig.tight_layout()
fig.savefig("docs/bench/all750.png", dpi=120)
print(json.dumps(result, indent=1))
