"""Session 38's student rows (BENCHMARKS "Session 38") in docs/bench/union.{json,png}: the live repair run
(scripts/bench/shared_curve.sh, .cache/bench/shared4) beside session 36's run with the same prompt and no
repair (shared3) and session 37's replayed repair of it, and the three runs of sessions 35-36 pooled, plain
and repaired (scripts/bench/union.sh); each row on the 195 STE-50 toolbox items and bench/dev, items gained
and lost against the row it is compared with. usage: union_plot.py"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BEST = "retrieval-search-among-candidates-constrained"
CACHE = Path(".cache/bench")
ROWS = {  # label: (runs folder with {bench}, the label it is compared with)
    "one run, no repair (s36, 2 passes)": ("shared3/runs-k2-{bench}", None),
    "the same, repair replayed (s37)": ("repair-shared3/runs-{bench}", "one run, no repair (s36, 2 passes)"),
    "one run, repair live (s38, 2 passes)": ("shared4/runs-k2-{bench}", "one run, no repair (s36, 2 passes)"),
    "three runs pooled, no repair": ("union/plain/runs-{bench}", None),
    "three runs pooled, repair replayed": ("union/repaired/runs-{bench}", "three runs pooled, no repair"),
}
# the best zero-shot prompt (must-call under the grammar), session 32
ZERO_SHOT = {"ste50": 20.0, "dev": 29.2}


def scores(folder: str, bench: str) -> dict[str, bool]:
    path = CACHE / folder.format(bench=bench) / BEST / "scores.jsonl"
    return {row["id"]: row["correct"] for row in map(json.loads, path.read_text().splitlines())}


result: dict[str, dict] = {}
for label, (folder, against) in ROWS.items():
    result[label] = {}
    for bench in ("ste50", "dev"):
        mine = scores(folder, bench)
        row = {"n": len(mine), "correct": round(100 * sum(mine.values()) / len(mine), 1)}
        if against is not None:
            other = scores(ROWS[against][0], bench)
            row["vs"] = against
            row["gained"] = sum(mine[i] and not other[i] for i in mine)
            row["lost"] = sum(other[i] and not mine[i] for i in mine)
        result[label][bench] = row
Path("docs/bench/union.json").write_text(json.dumps(result, indent=1) + "\n")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, bench, title in zip(
    axes, ("ste50", "dev"), ("195 STE-50 toolbox items", "bench/dev (65)"), strict=True
):
    labels = list(result)
    values = [result[label][bench]["correct"] for label in labels]
    bars = ax.barh(range(len(labels)), values, color=["#9ab", "#58a", "#236", "#ca8", "#a62"])
    ax.bar_label(bars, fmt="%.1f", padding=3)
    ax.axvline(ZERO_SHOT[bench], color="grey", linestyle="--")
    ax.text(
        ZERO_SHOT[bench] + 1, 1.01, f"best zero-shot {ZERO_SHOT[bench]}", transform=ax.get_xaxis_transform()
    )
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 125)
    ax.set_xlabel("correct % (0.5B student, best setting)")
    ax.set_title(title, pad=18)
fig.suptitle("Hindsight's repair, live and at a pooled size (session 38)")
fig.tight_layout()
fig.savefig("docs/bench/union.png", dpi=110)
print(json.dumps(result, indent=1))
