"""A round-trip check on hand-labelled exemplars: does a fresh reading of each request pick its tool?

A small judge reads a trial's own call and agrees with it. This asks a question of another kind, as a
candidate check after the judge: for every exemplar of an export (``ste-mcp exemplars export``), the
model at ``--llm-url`` gets the request alone and the exemplar's tool among its ``--tools`` nearest
other tools of the served toolset (the offline toolbox by default; sorted by name; the reply is
constrained to ``{"reason", "tool"}`` with the names as an enum) and picks one. Hand labels (``{"labels": {id: ["good" |
"bad", why]}}``) of the originals give the judge's precision before and after the check; a paraphrase
counts with its original's label.

    .venv/bin/python scripts/bench/round_trip.py --llm-url http://127.0.0.1:8773/v1 \\
        --exemplars bench/learned/toolbox-teacher-1.5b.jsonl --out .cache/bench/round_trip/0.5b.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from ste_mcp.config import load_settings
from ste_mcp.llm.base import ChatModel
from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.memory.cli_exemplars import served_toolset
from ste_mcp.memory.embeddings import get_embedder
from ste_mcp.memory.gate import nearest_tools
from ste_mcp.memory.transfer import read_export
from ste_mcp.safety.sanitize import clean_text
from ste_mcp.upstream.tools import Tool

SYSTEM = "You choose the one tool that serves a user's request. Read each tool's description. Reply with one JSON object only."


async def pick_tool(model: ChatModel, query: str, tools: list[Tool]) -> tuple[str | None, str]:
    """(the tool ``model`` picks for ``query`` among ``tools``, its reason); greedy, names constrained."""
    names = sorted(t.name for t in tools)
    listing = "\n".join(
        f"- {t.name}: {clean_text(t.description, 300)}" for t in sorted(tools, key=lambda t: t.name)
    )
    user = (
        f"Tools:\n{listing}\n\nUser request: {clean_text(query, 500)}\n\n"
        "Which one of these tools serves this request best? First give a short reason, then the tool's "
        'exact name. Reply as JSON: {"reason": "...", "tool": "..."}'
    )
    schema = {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "maxLength": 300},
            "tool": {"type": "string", "enum": names},
        },
        "required": ["reason", "tool"],
    }
    response = await model.chat(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        temperature=0.0,
        max_tokens=200,
        response_format={"type": "json_schema", "json_schema": {"name": "pick", "schema": schema}},
    )
    try:
        data = json.loads(response.text)
    except ValueError:
        data = {}
    picked = data.get("tool") if isinstance(data, dict) else None
    return (picked if picked in names else None), str(data.get("reason", "")) if isinstance(
        data, dict
    ) else ""


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm-url", required=True)
    ap.add_argument("--model-name", default=None, help="served model name (default: the server's first)")
    ap.add_argument("--exemplars", type=Path, required=True)
    ap.add_argument("--labels", type=Path, default=None, help="default: FILE with .labels.json")
    ap.add_argument("--tools", type=int, default=4, help="nearest other tools shown beside the exemplar's")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    labels_path = args.labels or args.exemplars.with_suffix(".labels.json")
    labels = {k: v[0] for k, v in json.loads(labels_path.read_text())["labels"].items()}
    exemplars = [ex for _, ex in read_export(args.exemplars.read_text().splitlines())]
    settings = load_settings()
    tools = list(served_toolset(settings))
    by_name = {t.name: t for t in tools}
    embedder = get_embedder()
    name = args.model_name
    if name is None:
        import httpx

        name = httpx.get(args.llm_url.rstrip("/") + "/models", timeout=30).json()["data"][0]["id"]
    model = OpenAIChatModel(args.llm_url, name, timeout_s=900, retries=0, max_concurrency=8)

    async def one(ex):
        tool = by_name[ex.tool]
        shown = [tool, *nearest_tools(tool, tools, args.tools, lambda t: t.description, embedder)]
        picked, reason = await pick_tool(model, ex.query, shown)
        label = labels.get(ex.group)
        return {
            "id": ex.id,
            "original": ex.variant_of is None,
            "label": label,
            "tool": ex.tool,
            "query": ex.query,
            "picked": picked,
            "agrees": picked == ex.tool,
            "reason": reason,
        }

    started = time.monotonic()
    rows = await asyncio.gather(*(one(ex) for ex in exemplars))
    elapsed = time.monotonic() - started

    def stats(subset: list[dict]) -> dict:
        labelled = [r for r in subset if r["label"]]
        kept = [r for r in labelled if r["agrees"]]
        good = [r for r in labelled if r["label"] == "good"]
        return {
            "n": len(labelled),
            "precision_before": round(100 * len(good) / max(1, len(labelled)), 1),
            "kept": len(kept),
            "precision_after": round(100 * sum(r["label"] == "good" for r in kept) / max(1, len(kept)), 1),
            "good_kept": f"{sum(r['label'] == 'good' for r in kept)}/{len(good)}",
            "bad_refused": f"{sum(r['label'] == 'bad' and not r['agrees'] for r in labelled)}/"
            f"{len(labelled) - len(good)}",
        }

    report = {
        "model": name,
        "neighbours": args.tools,
        "elapsed_s": round(elapsed, 1),
        "originals": stats([r for r in rows if r["original"]]),
        "all": stats(rows),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    for r in rows:
        if r["original"]:
            mark = "ok " if r["agrees"] else "OFF"
            print(
                f"{mark} {r['label'] or '-':4} {r['tool'][:28]:28} -> {str(r['picked'])[:28]:28} {r['query'][:60]}"
            )
    print(
        json.dumps({k: report[k] for k in ("model", "neighbours", "elapsed_s", "originals", "all")}, indent=1)
    )


if __name__ == "__main__":
    asyncio.run(main())
