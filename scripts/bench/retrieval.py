"""Benchmark: exemplar retrieval (top-5) at 1k / 10k / 100k exemplars, and tools/list with 500 tools.

    .venv/bin/python scripts/bench/retrieval.py [--sizes 1000 10000 100000] [--queries 200]

Exemplars are synthetic but embedded for real: 2,000 template queries go through the packaged MiniLM;
larger tables are filled with noisy copies of those vectors (realistic clusters, without spending
minutes on embedding). Search runs through ``ExemplarStore.search_vector`` with the production filter
(``status = 'approved'``); the query embedding is measured separately. The vector index
(IVF_HNSW_SQ, cosine) is built where it pays off, with its build time and recall@5 against the flat
scan. ``tools/list`` is timed through the real server and the SDK's in-memory client with 500 tools
whose descriptions all carry learned examples. Results print as Markdown (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ste_mcp.memory.db import open_db
from ste_mcp.memory.embeddings import get_embedder
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore

VERBS = ["convert", "find", "show", "calculate", "list", "translate", "check", "compare", "generate", "count"]
OBJECTS = [
    "the weather",
    "100 dollars to euros",
    "a strong password",
    "days until Christmas",
    "the time",
    "the square root of 2",
    "flights",
    "the population",
    "synonyms of happy",
    "a random number",
]
PLACES = [
    "in Paris",
    "for Tokyo",
    "near Berlin",
    "in New York",
    "for my trip",
    "today",
    "tomorrow",
    "this week",
]
TOOLS = [f"tool_{i:02d}" for i in range(50)]


def base_texts(n: int) -> list[str]:
    combos = itertools.product(VERBS, OBJECTS, PLACES, range(3))
    return [f"{v} {o} {p}" + (" please" if r == 1 else "?" if r == 2 else "") for v, o, p, r in combos][:n]


def fill(
    store: ExemplarStore, base: np.ndarray, texts: list[str], size: int, rng: np.random.Generator
) -> float:
    start = time.perf_counter()
    for lo in range(0, size, 10_000):
        n = min(10_000, size - lo)
        idx = rng.integers(0, len(base), n)
        vecs = base[idx] + rng.normal(0, 0.03, (n, base.shape[1])).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        rows = [
            Exemplar(
                id=f"ex-{lo + i}",
                tool=TOOLS[(lo + i) % len(TOOLS)],
                query=texts[j],
                arguments={"q": texts[j]},
                final_answer="ok",
                status="approved" if (lo + i) % 10 else "candidate",
            )
            for i, j in enumerate(idx)
        ]
        store.add(rows, vectors=vecs)
    store.optimize()
    return time.perf_counter() - start


def timed(fn, queries) -> tuple[list[float], list[list[str]]]:
    latencies, results = [], []
    for q in queries:
        t = time.perf_counter()
        hits = fn(q)
        latencies.append((time.perf_counter() - t) * 1000)
        results.append([h.id for h in hits])
    return latencies, results


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def bench_retrieval(sizes: list[int], n_queries: int) -> list[dict]:
    embedder = get_embedder()
    texts = base_texts(2000)
    base = embedder.embed(texts)
    probe_texts = [f"please {t} now" for t in texts[::7][:n_queries]]
    probes = embedder.embed(probe_texts)
    e2e = [embedder.embed_one(t) for t in probe_texts[:50]]  # warm
    t0 = time.perf_counter()
    for t in probe_texts[:50]:
        embedder.embed_one(t)
    embed_ms = (time.perf_counter() - t0) * 1000 / 50
    del e2e
    out = []
    for size in sizes:
        rng = np.random.default_rng(size)
        with tempfile.TemporaryDirectory() as tmp:
            store = ExemplarStore(open_db(Path(tmp)), embedder=embedder)
            fill_s = fill(store, base, texts, size, rng)
            search = store.search_vector  # top-5 is its default
            timed(search, probes[:10])  # warm caches
            flat, flat_ids = timed(search, probes)
            row = {"size": size, "fill_s": fill_s, "flat_p50": pct(flat, 50), "flat_p99": pct(flat, 99)}
            if size >= 10_000:
                t = time.perf_counter()
                store.ensure_index(min_rows=0)
                row["index_build_s"] = time.perf_counter() - t
                timed(search, probes[:10])
                indexed, idx_ids = timed(search, probes)
                row |= {"index_p50": pct(indexed, 50), "index_p99": pct(indexed, 99)}
                row["recall5"] = statistics.mean(
                    len(set(a) & set(b)) / 5 for a, b in zip(flat_ids, idx_ids, strict=True)
                )
            row["embed_ms"] = embed_ms
            out.append(row)
            print(row, flush=True)
    return out


async def bench_tools_list(n_tools: int = 500, calls: int = 50) -> dict:
    from mcp import Client

    from ste_mcp.app import App
    from ste_mcp.config import load_settings
    from ste_mcp.memory.descriptions import DescriptionStore, text_hash
    from ste_mcp.server.server import build_server
    from ste_mcp.upstream.specs import Toolset
    from ste_mcp.upstream.tools import Tool

    tools = [
        Tool(
            name=f"op_{i:03d}",
            description=f"Operation {i}: does something useful with its arguments.",
            input_schema={"type": "object", "properties": {"x": {"type": "string"}}},
            method="GET",
            path=f"/op/{i}",
            base_url="http://127.0.0.1:9",
        )
        for i in range(n_tools)
    ]
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp, memory={"poll_s": 3600})
        store = DescriptionStore(open_db(settings.db_dir))
        examples = "\n".join(
            f'- "example query {j}" → arguments {{"x": "{j}"}} → a short result' for j in range(3)
        )
        for t in tools:
            store.record(
                t.name,
                f"{t.description}\n\nExamples:\n{examples}",
                reason="bench",
                base_hash=text_hash(t.description),
            )
        for label, features in (
            ("proxy only", []),
            ("live descriptions", ["ste_mcp.memory.extension:create"]),
        ):
            async with (
                App(settings, toolset=Toolset([t.model_copy() for t in tools]), features=features) as app,
                Client(build_server(app)) as client,
            ):
                while any(getattr(ext, "steps", 1) == 0 for ext in app.extensions):
                    await asyncio.sleep(0.05)  # let the memory loop's first pass finish
                for _ in range(5):
                    await client.list_tools()
                lat = []
                for _ in range(calls):
                    t = time.perf_counter()
                    listed = (await client.list_tools()).tools
                    lat.append((time.perf_counter() - t) * 1000)
                assert len(listed) >= n_tools
            result[label] = {"p50": pct(lat, 50), "p99": pct(lat, 99)}
            print(label, result[label], flush=True)
    return result


def markdown(rows: list[dict], tools_list: dict, n_queries: int) -> str:
    lines = [
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}; "
        f"{n_queries} queries per size, top-5, filter `status = 'approved'`.",
        "",
        "| exemplars | flat p50 / p99 (ms) | index build (s) | indexed p50 / p99 (ms) | recall@5 vs flat |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        idx = (
            (
                f"{r['index_build_s']:.1f}",
                f"{r['index_p50']:.2f} / {r['index_p99']:.2f}",
                f"{r['recall5']:.2f}",
            )
            if "index_p50" in r
            else ("–", "–", "–")
        )
        lines.append(
            f"| {r['size']:,} | {r['flat_p50']:.2f} / {r['flat_p99']:.2f} | " + " | ".join(idx) + " |"
        )
    lines += [
        "",
        f"Query embedding (MiniLM, one text): {rows[0]['embed_ms']:.1f} ms on top of the search.",
        "",
    ]
    lines += ["| `tools/list`, 500 tools | p50 (ms) | p99 (ms) |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['p50']:.2f} | {v['p99']:.2f} |" for k, v in tools_list.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--tools", type=int, default=500)
    args = parser.parse_args()
    rows = bench_retrieval(args.sizes, args.queries)
    tools_list = asyncio.run(bench_tools_list(args.tools))
    print()
    print(markdown(rows, tools_list, args.queries))


if __name__ == "__main__":
    main()
