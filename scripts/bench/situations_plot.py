"""Both clients' rows of the situation-paraphrase bench (scripts/bench/situations.sh, situations_client15.sh) in
docs/bench/situations.{json,png}. usage: situations_plot.py [OUT]"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/bench/situ")
row = "retrieval-search-among-candidates-constrained"
groups = [
    ("0.5B, bench/dev (65)", "rows/dev-"),
    ("0.5B, STE-50 toolbox (195)", "rows/"),
    ("1.5B, bench/dev (65)", "rows15/dev-"),
    ("1.5B, toolbox (78)", "rows15/"),
    ("1.5B, toolbox (195)", "rows15-195/"),
]
result = {}
for label, prefix in groups:
    for data in ("base", "situ"):
        s = json.loads((out / f"{prefix}{data}" / row / "summary.json").read_text())
        result.setdefault(label, {})[data] = s["correct"]
data = json.loads(Path("docs/bench/situations.json").read_text())
data["both_clients"] = result
Path("docs/bench/situations.json").write_text(json.dumps(data, indent=1))
fig, ax = plt.subplots(figsize=(9, 4))
for i, (data_name, label) in enumerate(
    (("base", "rechecked pool"), ("situ", "+ 2 situation paraphrases per original"))
):
    bars = ax.bar(
        [x + 0.4 * i for x in range(len(groups))], [result[g][data_name] for g, _ in groups], 0.4, label=label
    )
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
ax.set_xticks([x + 0.2 for x in range(len(groups))], [g for g, _ in groups], fontsize=8)
ax.set_ylabel("correct %")
ax.legend(fontsize=8)
ax.set_title(
    "Situation paraphrases: must-call, search within the 15 candidates + 3 examples, constrained", fontsize=9
)
fig.tight_layout()
fig.savefig("docs/bench/situations.png", dpi=120)
print(json.dumps(result, indent=1))
