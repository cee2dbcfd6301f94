"""The description gate's rows as JSON and a chart (gate.sh, gate_all.sh).

usage: python scripts/bench/gate_plot.py OUT NAME
Reads OUT/runs/*/summary.json, OUT/runs/rewrite.txt and history.txt; writes docs/bench/NAME.json and .png.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

KEYS = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct")
METRICS = ("correct", "api_match", "strict_correct")
LABELS = {
    "base": "bench descriptions",
    "gated": "notes, gated (served)",
    "ungated": "notes, all served",
    "small": "notes the 0.5B alone passes",
}


def main(out: Path, name: str) -> None:
    runs = out / "runs"
    rows = {
        row.name: json.loads((row / "summary.json").read_text())
        for row in sorted(runs.iterdir())
        if (row / "summary.json").exists()
    }
    result = {
        "rows": {k: {m: v.get(m) for m in KEYS} for k, v in rows.items()},
        "rewrite": (runs / "rewrite.txt").read_text().splitlines(),
        "history": (runs / "history.txt").read_text().splitlines(),
    }
    Path(f"docs/bench/{name}.json").write_text(json.dumps(result, indent=1))
    labels = dict(LABELS)
    if "small" in rows:
        labels["gated"] = "notes both clients pass (served)"
    clients = [c for c in ("", "-1.5b") if f"base{c}" in rows]
    fig, axes = plt.subplots(1, len(clients), figsize=(6.5 * len(clients), 3.4), squeeze=False)
    for ax, client in zip(axes[0], clients, strict=True):
        names = [n for n in ("base", "small", "gated", "ungated") if f"{n}{client}" in rows]
        width = 0.8 / len(names)
        for i, row in enumerate(names):
            r = rows[f"{row}{client}"]
            xs = [x + width * i for x in range(len(METRICS))]
            bars = ax.bar(xs, [r[m] for m in METRICS], width, label=labels[row])
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ticks = [x + 0.4 - width / 2 for x in range(len(METRICS))]
        ax.set_xticks(ticks, ["correct %", "API match %", "strict correct %"])
        who = "1.5B" if client else "0.5B"
        n = rows["base" + client]["n"]
        ax.set_title(
            f"Descriptions, STE-50 toolbox subset ({n}), packaged {who} client, must-call", fontsize=9
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"docs/bench/{name}.png", dpi=120)
    for row, r in result["rows"].items():
        print(row, r)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
