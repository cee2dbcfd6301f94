"""Augmentation: paraphrases of an accepted query that keep the same tool call (STE.md, step 2).

The paper aims at ~150 examples per API with at most 6 paraphrases per exemplar. Paraphrases are
cleaned, capped, de-duplicated and checked like any other text before they are stored.

Two styles (``memory.paraphrase_situations`` says how many of an exemplar's paraphrases take the second):
``reword`` says the same request in other words ("Add 10 days to March 15, 2023" → "What is the date 10
days after March 15, 2023?"); ``situation`` has a user in an everyday situation ask for the same call
("My visa runs for 10 days from March 15, 2023: on which day does it end?"). An explorer imagines requests
that name the operation; users state their situation, and a client retrieving demonstrations finds the
nearest by meaning.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from ste_mcp.llm.base import ChatModel, json_object, json_schema_format
from ste_mcp.safety.sanitize import clean_text, injection_reason

MAX_PARAPHRASES = 6

Style = Literal["reword", "situation"]

SYSTEM: dict[Style, str] = {
    "reword": "You rewrite user requests. Each rewrite must ask for exactly the same thing with the same "
    "details (names, numbers, dates, units), in different words, as a real user would type it. "
    "Reply with one JSON object only.",
    "situation": "You rewrite user requests as different real users would ask them in their own situation: "
    "one short sentence on what they are doing, then the question. Keep every detail of the original "
    "(names, numbers, dates, units) and ask for exactly the same result. Reply with one JSON object only.",
}
ASK: dict[Style, str] = {
    "reword": "Write {n} different paraphrases of this request:\n{query}",
    "situation": "Write {n} rewrites of this request, each from another user's situation:\n{query}",
}
REPLY_AS = '\n\nReply as JSON: {"paraphrases": ["...", "..."]}'
TOKENS: dict[Style, tuple[int, int]] = {"reword": (40, 60), "situation": (60, 90)}  # max_tokens: a + b * n
# one worked example: a 1.5B model told only to "give the situation" mostly rewords (prompt tried on
# the bench's pool, docs/BENCHMARKS.md "Session 28")
EXAMPLES: dict[Style, tuple[str, list[str]]] = {
    "situation": (
        "Convert 250 USD to EUR.",
        [
            "I'm paying a hotel bill of 250 USD with my euro card. How much is that in EUR?",
            "A friend lent me 250 USD on my trip. What is that in EUR so I can pay her back?",
        ],
    )
}


def paraphrase_messages(query: str, n: int, style: Style = "reword") -> list[dict[str, Any]]:
    """The chat asking for ``n`` paraphrases of ``query`` in ``style`` (after its worked example, if any)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM[style]}]
    if style in EXAMPLES:
        example, rewrites = EXAMPLES[style]
        messages += [
            {"role": "user", "content": ASK[style].format(n=len(rewrites), query=example) + REPLY_AS},
            {"role": "assistant", "content": json.dumps({"paraphrases": rewrites})},
        ]
    return [*messages, {"role": "user", "content": ASK[style].format(n=n, query=query) + REPLY_AS}]


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
    style: Style = "reword",
) -> list[str]:
    """Up to ``n`` (at most 6) distinct, safe paraphrases of ``query`` in ``style``; may return fewer."""
    n = max(0, min(n, MAX_PARAPHRASES))
    if n == 0:
        return []
    response = await model.chat(
        paraphrase_messages(query, n, style),
        model=model_name,
        temperature=temperature,
        max_tokens=TOKENS[style][0] + TOKENS[style][1] * n,
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
