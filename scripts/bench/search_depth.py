"""How many tools the tool search shows, before and after it reads past a crowd of one tool's requests.

Session 42: `ToolIndex.search` read the nearest 100 documents and ranked the tools they name; with a pool
of 480 approved exemplars (up to 64 requests a tool) two password endpoints could fill all 100 and a search
for 5 tools returned 2 or 3. It now reads deeper until it has k tools. Per bench item, the index of the eval
(`evaluate/search.py::bench_tool_index`: the bench's tools + the pool's approved requests), k = 5, ranked
within the item's 15 candidates (the best setting's `--search-among candidates`) and over all bench tools:
how many tools come back and whether the right one is among them, with the old reading (one read of 100
documents) and the new. No model; the 0.5B student's rows of `search_depth.sh` (reading until k tools) and
session 41's `all_runs.sh` (one read) on the same pool are added when they exist, with a plot beside --out.

    .venv/bin/python scripts/bench/search_depth.py --data-dir .cache/bench/all/checked --out docs/bench/search_depth.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from ste_mcp.evaluate.bench import load_bench
from ste_mcp.evaluate.search import approved_requests, bench_tool_index
from ste_mcp.memory import toolsearch
from ste_mcp.toolbox import ENDPOINTS

K = 5
RUNS = Path(".cache/bench/all")
ROW = "retrieval-search-among-candidates-constrained"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    deep = toolsearch._deep_enough
    toolbox = {e.name for e in ENDPOINTS}
    report: dict = {"data_dir": str(args.data_dir), "k": K}
    for name in ("dev", "ste50"):
        bench = load_bench(f"bench/{name}")
        items = [it for it in bench.items if it.mcp_name in toolbox]
        index = bench_tool_index(bench, approved_requests(args.data_dir / "lancedb"))
        rows = {}
        for reading, read in (("one read of 100", lambda r, k, d: r(d)), ("until k tools", deep)):
            toolsearch._deep_enough = read
            for scope in ("candidates", "all"):
                shown = [
                    [
                        h.tool
                        for h in index.search(
                            it.query,
                            K,
                            among=bench.shown_names(it, "candidates") if scope == "candidates" else None,
                        )
                    ]
                    for it in items
                ]
                rows[f"{scope}, {reading}"] = {
                    "n": len(items),
                    "tools shown (mean)": round(statistics.mean(map(len, shown)), 2),
                    "fewer than 5": sum(len(s) < K for s in shown),
                    "recall@5 %": round(
                        100 * sum(it.mcp_name in s for it, s in zip(items, shown, strict=True)) / len(items),
                        1,
                    ),
                }
        toolsearch._deep_enough = deep
        report[name] = rows
        for key, row in rows.items():
            print(name, key, row)
    report["student"] = student_rows()
    args.out.write_text(json.dumps(report, indent=1))
    plot(report, args.out.with_suffix(".png"))


def student_rows() -> dict:
    """The 0.5B student's rows of search_depth.sh (until k tools) and all_runs.sh (one read), if run."""
    rows = {}
    for reading, pool in (("one read of 100", "checked"), ("until k tools", "deep")):
        for bench in ("ste50", "dev"):
            summary = RUNS / pool / f"runs-{bench}" / ROW / "summary.json"
            if summary.is_file():
                rows[f"{bench}, {reading}"] = json.loads(summary.read_text())["correct"]
    return rows


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    readings = ("one read of 100", "until k tools")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for i, reading in enumerate(readings):
        shown = [report[b][f"candidates, {reading}"]["tools shown (mean)"] for b in ("ste50", "dev")]
        bars = axes[0].bar([x + 0.35 * i for x in range(2)], shown, 0.35, label=reading)
        axes[0].bar_label(bars, fmt="%.2f", fontsize=8)
        correct = [report["student"].get(f"{b}, {reading}", 0) for b in ("ste50", "dev")]
        bars = axes[1].bar([x + 0.35 * i for x in range(2)], correct, 0.35, label=reading)
        axes[1].bar_label(bars, fmt="%.1f", fontsize=8)
    for ax, title in zip(
        axes,
        ("tools shown of k = 5 (within the 15 candidates)", "0.5B student, best setting: correct %"),
        strict=True,
    ):
        ax.set_xticks([0.175, 1.175], ["195 STE-50 toolbox items", "bench/dev (65)"])
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylim(0, 5.8)
    axes[1].set_ylim(0, 100)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
