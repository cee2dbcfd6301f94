"""gate_veto.sh's rows side by side: per client and decoding, correct % with the bench's descriptions (base)
and with what the gate serves (gated), the items gained and lost against base, and per tool.

usage: .venv/bin/python scripts/bench/gate_veto_plot.py [OUT] [FROM] [NAME]
   (defaults .cache/bench/gate-veto, .cache/bench/gate-referral, gate_veto) -> docs/bench/NAME.{json,png}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# (client, decoding) -> (base row, gated row); a free base row is the source run's
ROWS = {
    ("0.5B", "constrained"): ("runs/base-c", "runs/gated-c"),
    ("0.5B", "free"): ("FROM/runs/base", "runs/gated"),
    ("1.5B", "constrained"): ("runs/base-1.5b-c", "runs/gated-1.5b-c"),
    ("1.5B", "free"): ("FROM/runs/base-1.5b", "runs/gated-1.5b"),
}
ZERO_SHOT = {"0.5B": 20.0, "1.5B": 53.8}  # best zero-shot (must-call under the grammar), sessions 17-18


def load(folder: Path) -> tuple[dict, dict[str, dict]] | None:
    if not (folder / "summary.json").is_file():
        return None
    scores = {r["id"]: r for r in map(json.loads, (folder / "scores.jsonl").read_text().splitlines())}
    return json.loads((folder / "summary.json").read_text()), scores


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/bench/gate-veto")
    source = Path(sys.argv[2] if len(sys.argv) > 2 else ".cache/bench/gate-referral")
    name = sys.argv[3] if len(sys.argv) > 3 else "gate_veto"
    result: dict[str, dict] = {}
    for (client, decoding), (base_dir, gated_dir) in ROWS.items():
        base = load(source / base_dir[5:] if base_dir.startswith("FROM/") else out / base_dir)
        gated = load(out / gated_dir)
        if base is None or gated is None:
            continue
        (bs, bscores), (gs, gscores) = base, gated
        common = bscores.keys() & gscores.keys()
        per_tool: dict[str, list[int]] = {}
        for item in sorted(common):
            tool = bscores[item]["tool"]
            row = per_tool.setdefault(tool, [0, 0, 0])
            row[0] += bscores[item]["correct"]
            row[1] += gscores[item]["correct"]
            row[2] += 1
        result[f"{client} {decoding}"] = {
            "n": len(common),
            "base": {k: bs[k] for k in ("correct", "strict_correct", "api_match_all", "wellformed")},
            "gated": {k: gs[k] for k in ("correct", "strict_correct", "api_match_all", "wellformed")},
            "gained": sum(gscores[i]["correct"] and not bscores[i]["correct"] for i in common),
            "lost": sum(bscores[i]["correct"] and not gscores[i]["correct"] for i in common),
            "per_tool_base_gated_n": per_tool,
            "best_zero_shot": ZERO_SHOT[client],
        }
    Path("docs/bench").mkdir(parents=True, exist_ok=True)
    Path(f"docs/bench/{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    labels = list(result)
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(labels))
    ax.bar(
        [x - 0.2 for x in xs], [result[k]["base"]["correct"] for k in labels], 0.4, label="base", color="#9ab"
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [result[k]["gated"]["correct"] for k in labels],
        0.4,
        label="gated",
        color="#236",
    )
    for x, k in zip(xs, labels, strict=True):
        ax.text(
            x + 0.2,
            result[k]["gated"]["correct"] + 1,
            f"+{result[k]['gained']}/-{result[k]['lost']}",
            ha="center",
        )
    ax.set_xticks(list(xs), [f"{k}\n(n {result[k]['n']})" for k in labels])
    ax.set_ylabel("correct %")
    ax.set_title("What the gate serves vs the bench's descriptions (items gained/lost)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"docs/bench/{name}.png", dpi=120)
    for k in labels:
        r = result[k]
        print(
            f"{k}: n {r['n']} base {r['base']['correct']:.1f} gated {r['gated']['correct']:.1f} "
            f"(+{r['gained']} -{r['lost']}) strict {r['base']['strict_correct']:.1f}/{r['gated']['strict_correct']:.1f}"
        )


if __name__ == "__main__":
    main()
