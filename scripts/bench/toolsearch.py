"""Learned tool search, measured without an LLM: recall@k of the right tool, and the cost at scale.

    .venv/bin/python scripts/bench/toolsearch.py --data-dir .cache/bench/search
    .venv/bin/python scripts/bench/toolsearch.py --scale 1000 10000 --no-recall

Recall: every item of each ``--bench`` is a query; the index (``ste_mcp.memory.toolsearch``, the one
``search_tools`` serves) holds the bench's tools (name + description) and, in the ``+ requests``
rows, the requests of the approved exemplars in ``--data-dir`` (explored by ``ste-mcp`` — never a
test query: the leak guard of ``ste_mcp.evaluate.search`` drops any equal to one). Rows per search
mode (hybrid = RRF of vector and full-text; vector only; full-text only), over all items, the items of
explored tools (those with at least one approved request) and the others.

Scale: N synthetic tools — index build time (embedding every description once), search latency
(p50 / p95 over 50 queries), and the size of tools/list in search mode against all tools.

Writes ``--out``/toolsearch.json and toolsearch.png; prints Markdown tables for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.progress import track

from ste_mcp.config import load_settings
from ste_mcp.evaluate.bench import Bench, load_bench
from ste_mcp.evaluate.search import approved_requests, bench_tool_index, recall_at
from ste_mcp.memory.db import open_db
from ste_mcp.memory.toolsearch import ToolIndex, tool_docs

REPO = Path(__file__).resolve().parents[2]
KS = (1, 3, 5, 10)
MODES = ("hybrid", "vector", "text")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", nargs="+", default=[str(REPO / "bench" / "dev"), str(REPO / "bench" / "ste50")])
    p.add_argument("--data-dir", help="a data dir whose approved exemplars' requests are indexed")
    p.add_argument("--scale", type=int, nargs="*", default=[1000, 10000], help="synthetic tool counts")
    p.add_argument("--no-recall", action="store_true")
    p.add_argument("--out", default=str(REPO / "docs" / "bench"))
    return p.parse_args()


def recall_rows(bench: Bench, requests: list[tuple[str, str]]) -> list[dict[str, Any]]:
    rows = []
    explored = {tool for tool, _ in requests}
    for label, pairs in (("descriptions", []), ("+ requests", requests)):
        if label == "+ requests" and not requests:
            continue
        index = bench_tool_index(bench, pairs)
        for mode in MODES:
            ranked = [
                (it.mcp_name, [h.tool for h in index.search(it.query, max(KS), mode=mode)])
                for it in track(bench.items, description=f"{bench.root.name} {label} {mode}", transient=True)
            ]
            row = {"bench": bench.root.name, "index": label, "mode": mode, "n": len(ranked)}
            row["all"] = recall_at(ranked, KS)
            row["explored"] = recall_at([r for r in ranked if r[0] in explored], KS)
            row["explored_n"] = sum(r[0] in explored for r in ranked)
            row["other"] = recall_at([r for r in ranked if r[0] not in explored], KS)
            rows.append(row)
    return rows


NOUNS = [
    "invoice",
    "order",
    "customer",
    "ticket",
    "shipment",
    "payment",
    "refund",
    "product",
    "review",
    "coupon",
    "warehouse",
    "driver",
]
VERBS = ["get", "list", "create", "update", "cancel", "search", "export", "archive"]


def synthetic(n: int) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        noun, verb = NOUNS[i % len(NOUNS)], VERBS[(i // len(NOUNS)) % len(VERBS)]
        service = f"svc{i // (len(NOUNS) * len(VERBS))}"
        out.append((f"{service}_{verb}_{noun}", f"{verb.capitalize()} a {noun} in the {service} service."))
    return out


def scale_row(n: int) -> dict[str, Any]:
    from ste_mcp.app import App
    from ste_mcp.memory.extension import MemoryExtension
    from ste_mcp.server.server import list_tools
    from ste_mcp.upstream.specs import Toolset
    from ste_mcp.upstream.tools import Tool

    tools = synthetic(n)
    index = ToolIndex(open_db(tempfile.mkdtemp(prefix="ste-mcp-scale-")))
    docs = [d for name, text in tools for d in tool_docs(name, text)]
    start = time.perf_counter()
    index.sync(docs)
    build_s = time.perf_counter() - start
    queries = [f"please {VERBS[i % 8]} the {NOUNS[i % 12]} for svc{i % 7}" for i in range(50)]
    index.search(queries[0], 5)  # warm
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, 5)
        times.append(1000 * (time.perf_counter() - t0))
    # tools/list bytes per mode (the first 1,000 tools are enough to show the all-tools size grows)
    toolset = Toolset(
        [
            Tool(
                name=name,
                description=text,
                input_schema={"type": "object"},
                method="GET",
                path="/x",
                base_url="http://127.0.0.1:9",
            )
            for name, text in tools
        ]
    )
    sizes = {}
    for mode in ("all", "search"):
        settings = load_settings(data_dir=tempfile.mkdtemp(), server={"tool_listing": mode})
        app = App(settings, toolset=toolset)
        app.add_extension(MemoryExtension(app))
        sizes[mode] = sum(len(t.model_dump_json(by_alias=True, exclude_none=True)) for t in list_tools(app))
    return {
        "tools": n,
        "build_s": round(build_s, 1),
        "search_p50_ms": round(statistics.median(times), 1),
        "search_p95_ms": round(sorted(times)[int(0.95 * len(times)) - 1], 1),
        "tools_list_bytes": sizes,
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = sorted({r["bench"] for r in rows})
    fig, axes = plt.subplots(1, len(benches), figsize=(5.5 * len(benches), 4), squeeze=False)
    for ax, bench in zip(axes[0], benches, strict=True):
        for r in (r for r in rows if r["bench"] == bench):
            style = "-" if r["index"] == "+ requests" else "--"
            ax.plot(
                KS,
                [r["all"][f"recall@{k}"] for k in KS],
                style,
                marker="o",
                label=f"{r['index']} · {r['mode']}",
            )
        n = next(r["n"] for r in rows if r["bench"] == bench)
        ax.set_title(f"tool search recall · {bench} ({n} queries)")
        ax.set_xlabel("k (tools shown)")
        ax.set_ylabel("right tool in top k, %")
        ax.set_xticks(KS)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    requests = approved_requests(load_settings(data_dir=args.data_dir).db_dir) if args.data_dir else []
    result: dict[str, Any] = {
        "command": "scripts/bench/toolsearch.py " + " ".join(f"{k}={v}" for k, v in vars(args).items()),
        "machine": f"{platform.machine()} {platform.processor() or ''} ({__import__('os').cpu_count()} cores)",
        "approved_requests": len(requests),
        "explored_tools": sorted({t for t, _ in requests}),
        "recall": [],
        "scale": [],
    }
    if not args.no_recall:
        for path in args.bench:
            result["recall"] += recall_rows(load_bench(path), requests)
        print("| bench | index | mode | n | recall@1 | @3 | @5 | @10 | explored: n | @5 | other: @5 |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in result["recall"]:
            a, e, o = r["all"], r["explored"], r["other"]
            print(
                f"| {r['bench']} | {r['index']} | {r['mode']} | {r['n']} | {a['recall@1']} | {a['recall@3']} | "
                f"{a['recall@5']} | {a['recall@10']} | {r['explored_n']} | {e.get('recall@5', '–')} | "
                f"{o.get('recall@5', '–')} |"
            )
        plot(result["recall"], out / "toolsearch.png")
    for n in args.scale:
        row = scale_row(n)
        result["scale"].append(row)
        print(json.dumps(row))
    (out / "toolsearch.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'toolsearch.json'}")


if __name__ == "__main__":
    main()
