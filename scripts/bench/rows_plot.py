"""Student rows side by side (used by union_plot.py, added_asks_plot.py): each row's correct % on the 195
STE-50 toolbox items and bench/dev in the best setting, the items it gained and lost against the row it is
compared with, and a bar chart of both beside the best zero-shot prompt."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BEST = "retrieval-search-among-candidates-constrained"
CACHE = Path(".cache/bench")
ZERO_SHOT = {
    "ste50": 20.0,
    "dev": 29.2,
}  # the best zero-shot prompt (must-call under the grammar), session 32
COLOURS = ["#9ab", "#58a", "#236", "#ca8", "#a62", "#7a5"]


def scores(folder: str, bench: str) -> dict[str, bool]:
    """Item id -> correct, of the best-setting row in CACHE/folder (``{bench}`` filled in)."""
    path = CACHE / folder.format(bench=bench) / BEST / "scores.jsonl"
    return {row["id"]: row["correct"] for row in map(json.loads, path.read_text().splitlines())}


def compare(rows: dict[str, tuple[str, str | None]]) -> dict[str, dict]:
    """label -> bench -> {n, correct, [vs, gained, lost]} for rows {label: (folder, label compared with)}."""
    result: dict[str, dict] = {}
    for label, (folder, against) in rows.items():
        result[label] = {}
        for bench in ("ste50", "dev"):
            mine = scores(folder, bench)
            row = {"n": len(mine), "correct": round(100 * sum(mine.values()) / len(mine), 1)}
            if against is not None:
                other = scores(rows[against][0], bench)
                row["vs"] = against
                row["gained"] = sum(mine[i] and not other[i] for i in mine)
                row["lost"] = sum(other[i] and not mine[i] for i in mine)
            result[label][bench] = row
    return result


def plot(result: dict[str, dict], name: str, title: str) -> None:
    """docs/bench/NAME.json and NAME.png of ``compare``'s result."""
    Path(f"docs/bench/{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.6 + 0.55 * len(result)), sharey=True)
    for ax, bench, subtitle in zip(
        axes, ("ste50", "dev"), ("195 STE-50 toolbox items", "bench/dev (65)"), strict=True
    ):
        labels = list(result)
        values = [result[label][bench]["correct"] for label in labels]
        bars = ax.barh(range(len(labels)), values, color=COLOURS[: len(labels)])
        ax.bar_label(bars, fmt="%.1f", padding=3)
        ax.axvline(ZERO_SHOT[bench], color="grey", linestyle="--")
        ax.text(
            ZERO_SHOT[bench] + 1,
            1.01,
            f"best zero-shot {ZERO_SHOT[bench]}",
            transform=ax.get_xaxis_transform(),
        )
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlim(0, 125)
        ax.set_xlabel("correct % (0.5B student, best setting)")
        ax.set_title(subtitle, pad=18)
    axes[0].invert_yaxis()  # the first row on top (the axes share y: once)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(f"docs/bench/{name}.png", dpi=110)
    print(json.dumps(result, indent=1))
