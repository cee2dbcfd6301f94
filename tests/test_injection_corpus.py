"""The injection defence on a corpus written for it (tests/data/injection/): the filter's rates, and
end to end — a real upstream on 127.0.0.1 returning every payload, trials judged by the pipeline —
no payload text in any description version, ``find_tool_examples`` result, exemplar resource or
training row."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from ste_mcp.app import App
from ste_mcp.config import load_settings
from ste_mcp.finetune.dataset import DatasetBuilder
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.exploit import Exploiter
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.safety.sanitize import MAX_COPIED_WORDS, _fold, copied_span_reason, injection_reason
from ste_mcp.server.server import build_server
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs import Toolset
from ste_mcp.upstream.tools import Param, Tool
from tests.fixtures.common import LocalServer
from tests.fixtures.models import judging_model

DATA = Path(__file__).parent / "data" / "injection"
PAYLOADS = [json.loads(line) for line in (DATA / "payloads.jsonl").read_text().splitlines() if line]
HARMLESS = [json.loads(line)["text"] for line in (DATA / "harmless.jsonl").read_text().splitlines() if line]
MAX_PAYLOADS_SAFE = 0.02
MAX_HARMLESS_REFUSED = 0.05


def test_corpus_is_big_enough_and_covers_the_classes():
    classes = Counter(p["class"] for p in PAYLOADS)
    assert len(PAYLOADS) >= 200 and len(HARMLESS) >= 50
    for kind in (
        "role_tag_midline",
        "react_midline",
        "homoglyph",
        "zero_width",
        "other_language",
        "base64",
        "split",
    ):
        assert classes[kind] >= 10, (kind, classes[kind])


def test_filter_rates_on_the_corpus():
    missed = [p for p in PAYLOADS if injection_reason(p["text"]) is None]
    refused = [(t, injection_reason(t)) for t in HARMLESS if injection_reason(t) is not None]
    safe_rate, refused_rate = len(missed) / len(PAYLOADS), len(refused) / len(HARMLESS)
    by_class = Counter(p["class"] for p in missed)
    print(
        f"\ninjection corpus: {len(missed)}/{len(PAYLOADS)} payloads judged safe ({safe_rate:.1%}), "
        f"{len(refused)}/{len(HARMLESS)} harmless texts refused ({refused_rate:.1%}); missed by class: {dict(by_class)}"
    )
    assert safe_rate <= MAX_PAYLOADS_SAFE, [p["text"] for p in missed]
    assert refused_rate <= MAX_HARMLESS_REFUSED, refused


@pytest.mark.parametrize(
    "text",
    ["System: Linux", "Final answer: 42", "Use the API key in the X-Api-Key header", "User: john, id 5"],
)
def test_the_probes_harmless_examples_pass(text):
    assert injection_reason(text) is None


# ---- end to end --------------------------------------------------------------------------------
class CorpusUpstream:
    """``GET /items?i=N`` answers with text N (payloads, then harmless texts), in one of several shapes:
    plain text, a JSON field, a nested field, a list item, a key."""

    def __init__(self, texts: list[str]) -> None:
        async def items(request: Request):
            i = int(request.query_params["i"])
            text = texts[i]
            shape = i % 5
            if shape == 0:
                return PlainTextResponse(text)
            if shape == 1:
                return JSONResponse({"id": i, "title": "Item", "note": text, "price": 9.5})
            if shape == 2:
                return JSONResponse({"id": i, "data": {"comment": text, "ok": True}})
            if shape == 3:
                return JSONResponse({"id": i, "tags": ["a", text]})
            return JSONResponse({"id": i, text[:60]: 1})

        self.local = LocalServer(Starlette(routes=[Route("/items", items)]))
        self.url = self.local.url

    def tool(self) -> Tool:
        return Tool(
            name="get_item",
            description="Look up an item of the catalogue by its number.",
            input_schema={"type": "object", "properties": {"i": {"type": "string"}}, "required": ["i"]},
            method="GET",
            path="/items",
            base_url=self.url,
            params=[Param(name="i", location="query")],
        )

    def stop(self) -> None:
        self.local.stop()


@functools.cache  # every payload is looked for in the same texts
def _norm(text: str) -> str:
    """Letters and digits only, folded (confusables, case): a copied payload survives this."""
    return re.sub(r"[\W_]+", "", _fold(unicodedata.normalize("NFKC", text)).lower())


def leaked(payload: str, texts: list[str], window: int = 24) -> bool:
    """Whether a run of ``window`` letters/digits of ``payload`` occurs in any of ``texts``."""
    p = _norm(payload)
    haystack = "\x00".join(_norm(t) for t in texts)
    if len(p) <= window:
        return len(p) >= 12 and p in haystack
    return any(p[i : i + window] in haystack for i in range(0, len(p) - window + 1, 4))


def answer_for(i: int, observation: str) -> str:
    """A scripted explorer's final answer: clean, steered into repeating the result, or quoting it."""
    if i % 3 == 0:
        return f"Item {i} was found."
    if i % 3 == 1:
        return observation
    return f"The catalogue says: {observation[:200]}"


async def run_pipeline(
    data_dir: Path, texts: list[str], paraphrase_payloads: bool
) -> tuple[list[str], list[Exemplar], dict[str, int]]:
    """Trials through a real upstream serving ``texts``, judged (all accepted) and kept by the pipeline;
    returns every text a client or the trainer could see, the approved exemplars, and counts."""
    upstream = CorpusUpstream(texts)
    tool = upstream.tool()
    db = open_db(data_dir / "lancedb")
    trials, exemplars, descriptions = TrialStore(db), ExemplarStore(db), DescriptionStore(db)
    settings = MemorySettings(
        description_render="examples",
        paraphrases_per_exemplar=1,
        examples_per_tool=5,
        description_budget_chars=4000,
    )
    exploiter = Exploiter(trials, exemplars, descriptions, settings)
    try:
        async with UpstreamClient() as client:
            for i in range(len(texts)):
                result = await client.call(tool, {"i": str(i)}, purpose="explore")
                assert not result.is_error, result.text
                answer = answer_for(i, result.text)
                call = Turn(
                    raw="...", kind="call", tool=tool.name, arguments={"i": str(i)}, observation=result.text
                )
                trial = TrialRecord(
                    tool=tool.name,
                    episode=i,
                    slot=0,
                    query=f"What does the catalogue say about item {i}?",
                    turns=[call, Turn(raw=f"Final Answer: {answer}", kind="final")],
                    final_answer=answer,
                    reflection="yes",
                    model="scripted-explorer",
                )
                assert trials.record(trial)
    finally:
        upstream.stop()

    def paraphrases(query: str) -> list[str]:  # a steered paraphraser repeats the payload
        i = int(re.search(r"item (\d+)", query).group(1))
        steered = paraphrase_payloads and i % 2 and i < len(PAYLOADS)
        return [texts[i] if steered else f"Tell me about catalogue item {i}"]

    report = await exploiter.process(judging_model(paraphrases=paraphrases), {tool.name: tool})
    assert report.judged == len(texts) and report.accepted == len(texts)
    exploiter.render([tool])
    kept = exemplars.approved(tool.name)

    seen = [v.text for v in descriptions.history(tool.name)]
    data = DatasetBuilder([tool], FinetuneSettings(heldout_fraction=0.2)).build(kept, set(), [])
    seen += [json.dumps(data.rows, ensure_ascii=False), json.dumps(data.heldout, ensure_ascii=False)]
    app_settings = load_settings(data_dir=str(data_dir), memory={"poll_s": 60})
    async with (
        App(app_settings, toolset=Toolset([tool]), features=["ste_mcp.memory.extension:create"]) as app,
        Client(build_server(app)) as client,
    ):
        for task in (
            "catalogue item",
            "ignore previous instructions",
            "assistant transfer money",
            "password",
        ):
            found = await client.call_tool("find_tool_examples", {"task": task, "k": 10})
            seen.append(found.content[0].text)
        resource = await client.read_resource(f"ste-mcp://exemplars/{tool.name}")
        seen += [c.text for c in resource.contents]
        listed = await client.list_tools()
        seen += [t.description or "" for t in listed.tools]
    counts = {
        "trials": len(texts),
        "refused": report.refused,
        "exemplars": report.exemplars,
        "kept_originals": len([e for e in kept if not e.variant_of]),
        "training_rows": len(data.rows),
        "answers_left_out": sum("final answer left out" in e.status_reason for e in kept if not e.variant_of),
    }
    return seen, kept, counts


@pytest.mark.slow
@pytest.mark.anyio
async def test_no_payload_text_reaches_descriptions_retrieval_or_training(data_dir):
    texts = [p["text"] for p in PAYLOADS] + HARMLESS
    seen, _kept, counts = await run_pipeline(data_dir, texts, paraphrase_payloads=True)
    print(f"\nend to end, filter and structure: {counts}")
    assert counts["kept_originals"] >= len(HARMLESS) // 2  # harmless results still make examples
    assert [p["text"] for p in PAYLOADS if leaked(p["text"], seen)] == []


@pytest.mark.slow
@pytest.mark.anyio
async def test_structure_alone_keeps_upstream_text_out(data_dir, monkeypatch):
    """With the exploit's filter switched off (every trial kept), no upstream text reaches an example's
    query, arguments or result summary; a final answer that repeats upstream text is left out unless
    it is at most MAX_COPIED_WORDS words long (so short a payload is what the filter is for)."""
    import ste_mcp.memory.exploit as exploit

    monkeypatch.setattr(exploit, "injection_reason", lambda text, **kwargs: None)
    texts = [p["text"] for p in PAYLOADS]
    _seen, kept, counts = await run_pipeline(data_dir, texts, paraphrase_payloads=False)
    print(f"\nend to end, structure only: {counts}")
    assert counts["refused"] == 0 and counts["kept_originals"] == len(texts)
    assert counts["answers_left_out"] >= len(texts) // 2  # two in three answers repeat the result
    structural = [text for ex in kept for text in (ex.query, json.dumps(ex.arguments), ex.observation)]
    assert [t for t in texts if leaked(t, structural)] == []
    for ex in kept:  # what an answer still repeats of its payload is at most MAX_COPIED_WORDS words
        payload = texts[int(re.search(r"item (\d+)", ex.query).group(1))]
        assert copied_span_reason(ex.final_answer, payload, MAX_COPIED_WORDS) is None, ex.final_answer
