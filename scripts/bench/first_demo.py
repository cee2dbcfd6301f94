"""How often the first demonstration is of the right tool, for ways of scoring exemplars (no LLM).

    .venv/bin/python scripts/bench/first_demo.py --bench bench/dev .cache/bench/gate3/{lang5,pool6,dates9}

For every bench item of a tool the pool has exemplars of, the approved exemplars of the item's candidate
tools are ranked by MiniLM cosine similarity of the item's query to: the exemplar's request (what the eval
and the server do), the request with the tool's name appended, the request with the tool's description
appended, and the request's similarity plus ``a`` times the query's similarity to the tool's name and
description. Prints the share (%) of items whose top exemplar is of the right tool, per pool.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore


def words(name: str) -> str:
    return " ".join(re.findall(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])|\d+", name.replace("_", " ")))


def first_right(pool: Path, bench: Path) -> tuple[int, list[float]]:
    """(items, % whose top exemplar is of the right tool, for each way of scoring)."""
    candidates = json.loads((bench / "candidates.json").read_text())
    tools = {t["mcp_name"]: t for t in json.loads((bench / "tools.json").read_text())}
    store = ExemplarStore(open_db(pool / "lancedb"))
    approved = store.approved()
    lines = (bench / "test.jsonl").read_text().splitlines()
    items = [i for i in map(json.loads, lines) if i["mcp_name"] in {e.tool for e in approved}]

    def embed(texts: list[str]) -> np.ndarray:
        v = np.asarray(store.embedder.embed(texts))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    q = embed([i["query"] for i in items])
    request = q @ embed([e.query for e in approved]).T
    named = q @ embed([f"{e.query} — {words(e.tool)}" for e in approved]).T
    described = q @ embed([f"{e.query} — {tools[e.tool]['description']}" for e in approved]).T
    tool = q @ embed([f"{words(e.tool)}: {tools[e.tool]['description']}" for e in approved]).T

    def right(scores: np.ndarray) -> float:
        hits = 0
        for n, item in enumerate(items):
            allowed = set(candidates[item["mcp_name"]])
            top = next(j for j in np.argsort(-scores[n]) if approved[j].tool in allowed)
            hits += approved[top].tool == item["mcp_name"]
        return round(100 * hits / len(items), 1)

    return len(items), [right(s) for s in (request, named, described, request + 0.25 * tool, request + tool)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pools", nargs="+", type=Path, help="data dirs (with lancedb/)")
    ap.add_argument("--bench", type=Path, default=Path("bench/dev"))
    args = ap.parse_args()
    print("| pool | items | request | + name | + description | + 0.25 × tool | + 1 × tool |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for pool in args.pools:
        n, row = first_right(pool, args.bench)
        print(f"| {pool.name} | {n} | " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
