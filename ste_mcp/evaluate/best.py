"""``--prompt best`` / ``--decoding best``: the zero-shot variant with the highest correct % on the dev bench.

A variant is a prompt (``PROMPTS``) and a decoding of its text replies: free, or held by a grammar to one
call of a shown tool (``constrained``; the text prompts only, ``native`` has its own tool calls). Which one
is best is a property of the model, so it is measured with the model under evaluation, once, and cached in
the data dir (``<data_dir>/eval/best_prompt.json``), keyed by the model's served name, the dev bench's
content, the variants measured and the options that change answers. A later run with the same key reads
the choice back; a changed dev bench or another model measures again. A measurement with failed requests
is used but not cached.
Ties go to the higher strict correct %, then to the earlier variant (``paper`` first, free before
constrained).
The measurement is the base setting (the bench's descriptions, no demonstrations, no adapter) with the
run's tool listing (``--shown all`` or ``candidates``; ``search`` is measured with the candidates, its
index being the data dir's, not the dev bench's): the learned settings are then built on the variant it
picks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ste_mcp.evaluate.bench import Bench
from ste_mcp.evaluate.prompts import PROMPTS, variant_label
from ste_mcp.evaluate.run import EvalConfig, EvalResult, run_eval
from ste_mcp.llm.base import ChatModel

CACHE_NAME = "best_prompt.json"
DEV_BENCH = Path(__file__).resolve().parents[2] / "bench" / "dev"  # in a source checkout


def fingerprint(bench: Bench) -> str:
    """A short hash of the bench's files that decide the answers (tools, queries, candidates)."""
    digest = hashlib.sha256()
    for name in ("tools.json", "test.jsonl", "candidates.json"):
        path = bench.root / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


def measured_shown(config: EvalConfig) -> str:
    """The tool listing the variants are measured with on the dev bench."""
    return config.shown if config.shown in ("all", "candidates") else "candidates"


def variants(prompts: Sequence[str], decodings: Sequence[bool]) -> list[tuple[str, bool]]:
    """Every (prompt, constrained) pair to measure, in tie-break order; ``native`` only free."""
    return [(p, c) for p in prompts for c in decodings if not (c and p == "native")] or [
        (p, False) for p in prompts
    ]


def cache_key(
    model: str, bench: Bench, config: EvalConfig, measured: Sequence[tuple[str, bool]]
) -> dict[str, Any]:
    """What a cached choice is valid for."""
    return {
        "model": model,
        "dev_bench": fingerprint(bench),
        "variants": [variant_label(p, c) for p, c in measured],
        "shown": measured_shown(config),
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "prefill": config.prefill,
    }


def pick(results: dict[str, EvalResult]) -> str:
    """The variant with the highest correct %, then strict correct %, then the earlier measured."""
    order = {name: i for i, name in enumerate(results)}

    def rank(name: str) -> tuple[float, float, int]:
        s = results[name].summary
        return (s.correct, s.strict_correct or 0.0, -order[name])

    return max(results, key=rank)


def read_cache(path: Path) -> list[dict[str, Any]]:
    """The cached measurements (a list of entries); a missing or unreadable file is an empty cache."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in data.get("entries", []) if isinstance(e, dict)] if isinstance(data, dict) else []


async def best_prompt(
    model: ChatModel,
    dev: Bench,
    config: EvalConfig,
    cache_dir: Path,
    *,
    prompts: Sequence[str] = PROMPTS,
    decodings: Sequence[bool] = (False,),
    progress: Callable[[str, int], Callable[[], None]] | None = None,
) -> tuple[EvalConfig, dict[str, Any]]:
    """``config`` with the best variant for ``model`` (its ``prompt`` and ``constrained``) and the cache
    entry that says why (measured now or read back).

    ``prompts`` × ``decodings`` (False: free, True: constrained) are the variants measured;
    ``progress(label, total)`` returns the per-item callback of one measurement run.
    """
    measured = variants(prompts, decodings)
    key = cache_key(model.model, dev, config, measured)
    path = cache_dir / CACHE_NAME
    entries = read_cache(path)
    for entry in entries:
        if entry.get("key") == key and entry.get("best") in prompts:
            return _chosen(config, entry), entry
    base = config.model_copy(
        update={"setting": "base", "adapter": None, "prompt_dev": None, "shown": measured_shown(config)}
    )
    named = {variant_label(p, c): (p, c) for p, c in measured}
    results: dict[str, EvalResult] = {}
    for name, (prompt, constrained) in named.items():
        step = progress(f"bench/dev · {name}", len(dev.items)) if progress else None
        variant = base.model_copy(update={"prompt": prompt, "constrained": constrained})
        results[name] = await run_eval(model, dev, dev.items, variant, progress=step)
    prompt, constrained = named[pick(results)]
    entry = {
        "key": key,
        "best": prompt,
        "constrained": constrained,
        "bench": str(dev.root),
        "n": len(dev.items),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": {
            p: {
                "correct": r.summary.correct,
                "strict_correct": r.summary.strict_correct,
                "exact_name": r.summary.exact_name,
                "api_match": r.summary.api_match,
                "api_match_all": r.summary.api_match_all,
                "wellformed": r.summary.wellformed,
                "errors": r.errors,
            }
            for p, r in results.items()
        },
    }
    if any(r.errors for r in results.values()):  # a failed request is not the variant's answer
        entry["cached"] = False
        return _chosen(config, entry), entry
    entries = [e for e in entries if e.get("key") != key] + [entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"entries": entries}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return _chosen(config, entry), entry


def _chosen(config: EvalConfig, entry: dict[str, Any]) -> EvalConfig:
    """``config`` running the entry's variant, with every variant's dev score recorded."""
    return config.model_copy(
        update={
            "prompt": entry["best"],
            "constrained": bool(entry.get("constrained", False)),
            "prompt_dev": dev_correct(entry),
        }
    )


def chosen_label(entry: dict[str, Any]) -> str:
    """The chosen variant's label in a cache entry."""
    return variant_label(str(entry["best"]), bool(entry.get("constrained", False)))


def dev_correct(entry: dict[str, Any]) -> dict[str, float]:
    """Each variant's correct % in a cache entry (what summary.json records as ``prompt_dev``)."""
    return {p: float(r.get("correct", 0.0)) for p, r in entry.get("results", {}).items()}
