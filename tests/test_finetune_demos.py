"""Training rows shaped like the setting the adapter is served in (``finetune.prompt``,
``finetune.demonstrations``): the must-call prompt, the nearest other exemplars as worked examples."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from ste_mcp.evaluate.prompts import MustCallProtocol, with_demonstrations
from ste_mcp.finetune.dataset import DatasetBuilder, is_foreign, is_heldout, nearest_others
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.llm.protocols import parse_react
from ste_mcp.memory.exemplars import Exemplar
from tests.fixtures.finetune import TOOLS

NAMES = [t.name for t in TOOLS]
HEADER = "Examples of correct calls for similar requests:"


def words(texts) -> np.ndarray:
    """A bag-of-words embedding (deterministic): requests sharing words are near."""
    out = np.zeros((len(texts), 256), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 256] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def ex(id_: str, tool: str, query: str, arguments: dict, variant_of: str | None = None) -> Exemplar:
    return Exemplar(
        id=id_,
        tool=tool,
        query=query,
        arguments=arguments,
        variant_of=variant_of,
        status="approved",
        observation='{"ok": true}',
        final_answer="Done.",
    )


POOL = [
    ex("w-paris", "get_weather", "What is the weather like in Paris right now?", {"city": "Paris"}),
    ex(
        "w-paris-2", "get_weather", "How is the weather in Paris at the moment?", {"city": "Paris"}, "w-paris"
    ),
    ex("w-rome", "get_weather", "What is the weather like in Rome right now?", {"city": "Rome"}),
    ex("w-oslo", "get_weather", "Is it cold in Oslo?", {"city": "Oslo"}),
    ex("p-france", "get_population", "What is the population of France right now?", {"country": "France"}),
    ex("p-italy", "get_population", "How many people live in Italy?", {"country": "Italy"}),
    ex("t-hello", "translate", "Translate 'hello, what is the weather like' into French.", {"text": "hello"}),
    ex("s-aapl", "stock_price", "What is the price of AAPL right now?", {"symbol": "AAPL"}),
]


def demos_of(system: str) -> list[tuple[str, str, dict]]:
    """(query, tool, arguments) of each worked example in a system prompt."""
    if HEADER not in system:
        return []
    shots = system.split(HEADER, 1)[1].strip().split("\n\n")
    out = []
    for shot in shots:
        query, action, arguments = shot.split("\n")
        out.append(
            (
                query.removeprefix("Query: "),
                action.removeprefix("Action: "),
                json.loads(arguments.removeprefix("Action Input: ")),
            )
        )
    return out


def listed(system: str) -> list[str]:
    return [name for name in NAMES if f"\n{name}: " in "\n" + system.split(HEADER, 1)[0]]


def learn_all(**kw) -> FinetuneSettings:
    """Settings that train every exemplar: TOOLS lists a tool with no exemplar, which would turn
    leave-tools-out on (tests/test_finetune_leave_out.py covers it)."""
    return FinetuneSettings(heldout_tools=0, **kw)


def build(settings: FinetuneSettings, pool=POOL, **kw):
    return DatasetBuilder(TOOLS, settings, embed=words, **kw).build(pool, learned=set(), earlier=[])


def test_must_call_rows_are_asked_as_the_evaluation_asks_and_answered_with_the_bare_call():
    settings = learn_all(
        heldout_fraction=0.0, prompt="must-call", demonstrations=2, tools_in_prompt=3, foreign_examples=0.0
    )
    data = build(settings)
    assert len(data.rows) == len(POOL)  # must-call has no final-answer rows
    row = next(r for r in data.rows if r["exemplar_id"] == "w-paris")
    system, user = row["prompt"]
    assert user["content"] == "What is the weather like in Paris right now?"
    completion = row["completion"][0]["content"]
    assert (
        completion == 'Action: get_weather\nAction Input: {"city": "Paris"}'
    )  # no thought: must-call's format
    parsed = parse_react(completion, NAMES)
    assert (parsed.tool, parsed.arguments) == ("get_weather", {"city": "Paris"})
    shown = [t for t in TOOLS if t.name in listed(system["content"])]
    fns = [{"name": t.name, "description": t.description, "parameters": t.input_schema} for t in shown]
    demos = demos_of(system["content"])
    # the system prompt is the evaluation's: must-call's listing, then the examples as `format_demo` writes them
    shots = [f"Query: {q}\nAction: {t}\nAction Input: {json.dumps(a)}" for q, t, a in demos]
    ordered = sorted(fns, key=lambda f: system["content"].index(f"\n{f['name']}: "))
    assert system["content"] == with_demonstrations(MustCallProtocol().system_prompt(ordered), shots)
    assert len(demos) == 2


def test_examples_are_the_nearest_other_requests_never_the_rows_own_group():
    settings = learn_all(
        heldout_fraction=0.0, prompt="must-call", demonstrations=2, tools_in_prompt=3, foreign_examples=0.0
    )
    rows = {r["exemplar_id"]: r for r in build(settings).rows}
    demos = demos_of(rows["w-paris"]["prompt"][0]["content"])
    queries = [q for q, _, _ in demos]
    assert (
        "How is the weather in Paris at the moment?" not in queries
    )  # its own paraphrase: the answer itself
    assert queries[0] == "What is the weather like in Rome right now?"  # the nearest other request first
    # a nearest request of another tool is an example too, and its tool is listed beside the right one
    system = rows["p-france"]["prompt"][0]["content"]
    assert {t for _, t, _ in demos_of(system)} <= set(listed(system))
    assert "get_weather" in listed(system) and "get_population" in listed(system)


def test_a_held_out_exemplar_is_never_shown_as_an_example():
    settings = learn_all(
        heldout_fraction=0.5, prompt="must-call", demonstrations=3, tools_in_prompt=5, foreign_examples=0.0
    )
    data = build(settings)
    held = {e.query for e in POOL if is_heldout(e, 0.5)}
    assert held and data.heldout  # the fixture holds some out at this fraction
    for row in [*data.rows, *data.heldout]:
        assert not {q for q, _, _ in demos_of(row["prompt"][0]["content"])} & held
    # held-out rows are asked with examples too, as the adapter will be
    assert any(demos_of(h["prompt"][0]["content"]) for h in data.heldout)


def test_foreign_rows_show_only_other_tools_examples_as_an_unexplored_tool_is_served():
    """``foreign_examples``: a share of the rows (and of the gate's prompts) read as a request for a tool
    nobody explored: its tool is listed without an example, the examples are of the other listed tools."""
    base = {"heldout_fraction": 0.0, "prompt": "must-call", "demonstrations": 2, "tools_in_prompt": 3}
    plain = {r["exemplar_id"]: r for r in build(learn_all(**base, foreign_examples=0.0)).rows}
    rows = {r["exemplar_id"]: r for r in build(learn_all(**base, foreign_examples=1.0)).rows}
    for id_, row in rows.items():
        system = row["prompt"][0]["content"]
        demos = demos_of(system)
        assert row["tool"] in listed(system)  # the answer is always one of the listed tools
        assert all(tool != row["tool"] for _, tool, _ in demos)
        assert {tool for _, tool, _ in demos} <= set(listed(system))
        assert row["completion"] == plain[id_]["completion"]  # the same call is the answer
    # most plain rows show their own tool's example (what an adapter learns to copy); no foreign row does
    assert any(r["tool"] in {t for _, t, _ in demos_of(r["prompt"][0]["content"])} for r in plain.values())
    assert demos_of(rows["w-paris"]["prompt"][0]["content"])  # other tools' examples are still shown
    # the gate's held-out prompts are written the same way
    held = build(learn_all(**{**base, "heldout_fraction": 0.5}, foreign_examples=1.0)).heldout
    assert held and all(h["tool"] not in {t for _, t, _ in demos_of(h["prompt"][0]["content"])} for h in held)


def test_the_foreign_share_is_stable_and_near_the_setting():
    exemplars = [ex(f"e{i}", "get_weather", f"weather {i}", {"city": "Paris"}) for i in range(400)]
    chosen = [e.id for e in exemplars if is_foreign(e, 0.5)]
    assert 160 < len(chosen) < 240  # about half, by a stable hash of the id
    assert chosen == [e.id for e in exemplars if is_foreign(e, 0.5)]
    assert not any(is_foreign(e, 0.0) for e in exemplars) and all(is_foreign(e, 1.0) for e in exemplars)


def test_examples_carry_no_secret():
    secret = "sk-live-1234567890abcdef"
    pool = [*POOL, ex("s-key", "stock_price", f"Price of MSFT now with key {secret}", {"symbol": "MSFT"})]
    settings = learn_all(
        heldout_fraction=0.0, prompt="must-call", demonstrations=3, tools_in_prompt=5, foreign_examples=0.0
    )
    data = build(settings, pool=pool, secrets=[secret])
    assert any("Price of MSFT" in r["prompt"][0]["content"] for r in data.rows if r["exemplar_id"] != "s-key")
    assert secret not in json.dumps(data.rows)


def test_the_paper_prompt_gets_react_examples_and_final_answer_rows():
    settings = learn_all(heldout_fraction=0.0, demonstrations=1, foreign_examples=0.0)
    rows = [r for r in build(settings).rows if r["exemplar_id"] == "w-rome"]
    assert [r["completion"][0]["content"].split(":")[0] for r in rows] == ["Thought", "Final Answer"]
    assert "\nThought: get_weather fits this request.\nAction: get_weather" in rows[0]["prompt"][0]["content"]


def test_no_examples_without_the_setting_and_none_asked_for_without_an_embedder():
    data = DatasetBuilder(TOOLS, learn_all(heldout_fraction=0.0)).build(POOL, set(), [])
    assert not any(HEADER in r["prompt"][0]["content"] for r in data.rows)
    with pytest.raises(ValueError, match="embedder"):
        DatasetBuilder(TOOLS, FinetuneSettings(demonstrations=2))


def test_nearest_others_with_the_packaged_embedder():
    from ste_mcp.memory.embeddings import get_embedder

    near = nearest_others(POOL, get_embedder().embed, 2)
    assert [e.id for e in near["p-france"]][:1] == ["p-italy"]  # by meaning: "how many people live"
    assert all(e.group != "w-paris" for e in near["w-paris-2"])
