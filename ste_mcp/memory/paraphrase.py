"""Augmentation: paraphrases of an accepted query that keep the same tool call (STE.md, step 2).

The paper aims at ~150 examples per API with at most 6 paraphrases per exemplar. Paraphrases are
cleaned, capped, de-duplicated and checked like any other text before they are stored.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ste_mcp.llm.base import ChatModel, json_object, json_schema_format
from ste_mcp.safety.sanitize import clean_text, injection_reason

MAX_PARAPHRASES = 6

SYSTEM = (
    "You rewrite user requests. Each rewrite must ask for exactly the same thing with the same details "
    "(names, numbers, dates, units), in different words, as a real user would type it. "
    "Reply with one JSON object only."
)


def paraphrase_messages(query: str, n: int) -> list[dict[str, Any]]:
    user = (
        f"Write {n} different paraphrases of this request:\n{query}\n\n"
        'Reply as JSON: {"paraphrases": ["...", "..."]}'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def paraphrase_schema(n: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "paraphrases": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": n}
        },
        "required": ["paraphrases"],
    }


async def paraphrase(
    model: ChatModel,
    query: str,
    n: int = 3,
    *,
    model_name: str | None = None,
    temperature: float = 0.7,
    max_chars: int = 300,
) -> list[str]:
    """Up to ``n`` (at most 6) distinct, safe paraphrases of ``query``; may return fewer."""
    n = max(0, min(n, MAX_PARAPHRASES))
    if n == 0:
        return []
    response = await model.chat(
        paraphrase_messages(query, n),
        model=model_name,
        temperature=temperature,
        max_tokens=40 + 60 * n,
        response_format=json_schema_format("paraphrases", paraphrase_schema(n)),
    )
    return clean_paraphrases(response.text, query, n, max_chars=max_chars)


def clean_paraphrases(text: str, query: str, n: int, *, max_chars: int = 300) -> list[str]:
    """Parse the model's reply (JSON, else one per line) into distinct, safe paraphrases."""
    seen = {_key(query)}
    out: list[str] = []
    for candidate in _candidates(text):
        cleaned = clean_text(candidate, max_chars).replace("\n", " ")
        if len(cleaned) < 3 or cleaned.endswith("…") or injection_reason(candidate) is not None:
            continue
        if _key(cleaned) in seen:
            continue
        seen.add(_key(cleaned))
        out.append(cleaned)
        if len(out) == n:
            break
    return out


def _candidates(text: str) -> list[str]:
    data = json_object(text)
    if data is not None and isinstance(data.get("paraphrases"), list):
        return [str(p) for p in data["paraphrases"] if isinstance(p, str | int | float)]
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            data = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return [str(p) for p in data if isinstance(p, str)]
    lines = (re.sub(r"^\s*(\d+[.)]|[-*•])\s*", "", line).strip().strip('"') for line in text.splitlines())
    return [line for line in lines if line]


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.lower()).strip()
