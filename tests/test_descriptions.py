"""Live descriptions: diverse selection, rendering within budget, versions, rollback, CLI."""

from datetime import datetime

import numpy as np
import pytest

from ste_mcp.cli import main
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import (
    REQUESTS_HEADER,
    SECTION_HEADER,
    DescriptionStore,
    LiveDescriptions,
    render_description,
    select_diverse,
    text_hash,
)
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.exploit import Exploiter
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialStore
from ste_mcp.upstream.tools import Tool

ORIGINAL = "Convert an amount between two currencies."


def tool(name: str = "convert", description: str = ORIGINAL) -> Tool:
    return Tool(
        name=name,
        description=description,
        input_schema={"type": "object"},
        method="GET",
        path="/convert",
        base_url="http://127.0.0.1:1",
    )


def ex(query: str, **args) -> Exemplar:
    return Exemplar(tool="convert", query=query, arguments=args, final_answer="done", status="approved")


def test_select_diverse_prefers_distinct_examples():
    exemplars = [ex("a"), ex("a2"), ex("b"), ex("c")]
    vectors = np.array([[1, 0, 0], [0.99, 0.14, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picked = select_diverse(exemplars, vectors, 3)
    assert len(picked) == 3
    assert not {"a", "a2"} <= {p.query for p in picked}  # near-duplicates are not both picked


def test_select_diverse_skips_long_examples():
    exemplars = [ex("short"), ex("x" * 400)]
    vectors = np.eye(2, 3, dtype=np.float32)
    assert [p.query for p in select_diverse(exemplars, vectors, 2, max_chars=100)] == ["short"]


def test_render_stays_within_budget_and_is_marked():
    exemplars = [ex(f"convert {i} euros to dollars please", amount=i, to="USD") for i in range(20)]
    text = render_description(ORIGINAL, exemplars, budget_chars=300)
    assert text.startswith(ORIGINAL + "\n\n" + SECTION_HEADER)
    assert len(text) - len(ORIGINAL) <= 300
    assert '"convert 0 euros to dollars please" → arguments {"amount": 0, "to": "USD"} → done' in text
    assert render_description(ORIGINAL, exemplars, budget_chars=10) == ORIGINAL


def test_requests_only_render_shows_requests_without_their_calls():
    exemplars = [
        ex("convert 12 euros to dollars", amount=12, to="USD"),
        ex("how many yen is 5 pounds", amount=5),
    ]
    text = render_description(ORIGINAL, exemplars, budget_chars=300, requests_only=True)
    assert text == (
        ORIGINAL
        + "\n\n"
        + REQUESTS_HEADER
        + '\n- "convert 12 euros to dollars"\n- "how many yen is 5 pounds"'
    )
    assert "USD" not in text and "arguments" not in text and "done" not in text  # nothing a client could copy
    assert (
        render_description(ORIGINAL, exemplars, budget_chars=len(REQUESTS_HEADER), requests_only=True)
        == ORIGINAL
    )


def test_versions_rollback_and_live_refresh(data_dir):
    store = DescriptionStore(open_db(data_dir / "db"))
    base = text_hash(ORIGINAL)
    v1 = store.record("convert", ORIGINAL, reason="original", base_hash=base)
    v2 = store.record("convert", ORIGINAL + "\n\nexamples", reason="rendered", base_hash=base, source="s2")
    assert (v1.version, v2.version) == (1, 2)
    assert store.record("convert", ORIGINAL + "\n\nexamples", reason="again", base_hash=base) is None

    other_process = DescriptionStore(open_db(data_dir / "db"))
    live = LiveDescriptions(other_process)
    assert live.describe(tool()) == ORIGINAL + "\n\nexamples"
    assert live.refresh() == set()

    v3 = store.rollback("convert")
    assert (v3.version, v3.text, v3.reason, v3.source) == (3, ORIGINAL, "rollback to v1", "s2")
    assert live.refresh() == {"convert"}
    assert live.describe(tool()) == ORIGINAL
    assert [v.version for v in store.history("convert")] == [1, 2, 3]

    # a changed spec: the stale rendering is not served
    assert live.describe(tool(description="New wording.")) == "New wording."

    with pytest.raises(LookupError, match="no version 9"):
        store.rollback("convert", to_version=9)
    with pytest.raises(LookupError, match="no stored descriptions"):
        store.rollback("nope")


def test_render_pipeline_versions_only_on_change(data_dir):
    db = open_db(data_dir / "db")
    exemplars, descriptions = ExemplarStore(db), DescriptionStore(db)
    exploiter = Exploiter(
        TrialStore(db),
        exemplars,
        descriptions,
        MemorySettings(description_render="examples", examples_per_tool=2),
    )
    tools = [tool(), tool("other", "Another tool.")]
    assert exploiter.render(tools) == []  # nothing approved yet: nothing stored

    exemplars.add([ex("Convert 100 euros to US dollars", amount=100, to="USD")])
    [v] = exploiter.render(tools)
    assert v.version == 2 and "Convert 100 euros to US dollars" in v.text
    assert next(h.reason for h in descriptions.history("convert")) == "original"
    assert exploiter.render(tools) == []  # same inputs: no new version

    exemplars.add([ex("How much is 50 pounds in yen?", amount=50, to="JPY")])
    [v] = exploiter.render(tools)
    assert v.version == 3 and "50 pounds" in v.text

    descriptions.rollback("convert")  # operator goes back to v2: the loop must not undo it
    assert exploiter.render(tools) == []
    assert descriptions.current("convert").text == descriptions.get("convert", 2).text

    rejected = exemplars.find("convert")
    exemplars.set_status([e.id for e in rejected], "rejected")
    [v] = exploiter.render(tools)
    assert v.text == ORIGINAL  # no approved examples left


def test_cli_history_diff_rollback(data_dir, capsys):
    store = DescriptionStore(open_db(data_dir / "lancedb"))
    base = text_hash(ORIGINAL)
    store.record("convert", ORIGINAL, reason="original", base_hash=base)
    store.record("convert", ORIGINAL + "\n\nExamples: one", reason="rendered 1 example(s)", base_hash=base)
    common = ["--data-dir", str(data_dir)]

    assert main(["descriptions", "history", "convert", *common]) == 0
    out = capsys.readouterr().out
    assert "rendered 1 example(s)" in out and "original" in out

    assert main(["descriptions", "diff", "convert", *common]) == 0
    assert "+Examples: one" in capsys.readouterr().out

    assert main(["descriptions", "rollback", "convert", *common]) == 0
    assert "v3" in capsys.readouterr().out
    assert store.current("convert").text == ORIGINAL

    assert main(["descriptions", "history", "missing", *common]) == 1
    assert "no stored descriptions" in capsys.readouterr().err


def test_manual_approval_keeps_serving_the_last_approved_text(data_dir, capsys):
    db = open_db(data_dir / "lancedb")
    exemplars, descriptions = ExemplarStore(db), DescriptionStore(db)
    settings = MemorySettings(
        description_render="examples", examples_per_tool=2, description_approval="manual"
    )
    exploiter = Exploiter(TrialStore(db), exemplars, descriptions, settings)
    live = LiveDescriptions(DescriptionStore(open_db(data_dir / "lancedb")))  # the server's view

    exemplars.add([ex("Convert 100 euros to US dollars", amount=100, to="USD")])
    [v2] = exploiter.render([tool()])
    assert (v2.version, v2.status) == (2, "pending")
    assert descriptions.get("convert", 1).status == "approved"  # the original is served as it is
    live.refresh()  # it sees v1, the original
    assert live.describe(tool()) == ORIGINAL and live.version_of("convert") == 1
    assert exploiter.render([tool()]) == []  # the pending version's inputs: no new version
    assert [v.version for v in descriptions.pending()] == [2]

    exemplars.add([ex("How much is 50 pounds in yen?", amount=50, to="JPY")])
    [v3] = exploiter.render([tool()])
    assert v3.status == "pending" and live.refresh() == set() and live.describe(tool()) == ORIGINAL

    common = ["--data-dir", str(data_dir)]
    assert main(["descriptions", "pending", *common]) == 0
    assert "convert  v3" in capsys.readouterr().out
    assert main(["descriptions", "diff", "convert", *common]) == 0  # served v1 -> pending v3
    assert "--- convert v1" in capsys.readouterr().out
    assert main(["descriptions", "history", "convert", *common]) == 0
    history = capsys.readouterr().out
    assert "* v1" in history and "[pending]" in history

    assert main(["descriptions", "approve", "convert", "2", *common]) == 0  # an older one first
    capsys.readouterr()
    assert live.refresh() == {"convert"} and live.describe(tool()) == v2.text
    assert main(["descriptions", "approve", "convert", *common]) == 0  # default: the newest
    assert "v3 approved" in capsys.readouterr().out
    assert live.refresh() == {"convert"} and live.describe(tool()) == v3.text
    assert descriptions.pending() == []

    assert main(["descriptions", "approve", "convert", *common]) == 1
    assert "no version waiting for approval (serving v3)" in capsys.readouterr().err
    assert main(["descriptions", "approve", "convert", "3", *common]) == 1
    assert "already approved" in capsys.readouterr().err

    # rollback works on served versions and is the operator's act: approved at once
    back = descriptions.rollback("convert")
    assert (back.version, back.status, back.text) == (4, "approved", v2.text)
    assert live.refresh() == {"convert"} and live.describe(tool()) == v2.text
    assert exploiter.render([tool()]) == []  # the loop does not re-render over the rollback


def test_a_pending_text_equal_to_the_served_one_is_approved(data_dir):
    store = DescriptionStore(open_db(data_dir / "db"))
    base = text_hash(ORIGINAL)
    store.record("convert", ORIGINAL, reason="original", base_hash=base)
    store.record("convert", ORIGINAL + "\n\nnew", reason="rendered", base_hash=base, status="pending")
    back = store.record("convert", ORIGINAL, reason="rendered 0", base_hash=base, status="pending")
    assert back.status == "approved" and store.pending() == []
    with pytest.raises(ValueError, match="description status"):
        store.record("convert", "x", reason="r", base_hash=base, status="maybe")


def test_a_table_from_before_statuses_opens_and_is_served(data_dir):
    """A descriptions table written by the old schema (no status column) still opens: its versions
    are served, rollback and new versions work."""
    import pyarrow as pa

    db = open_db(data_dir / "db")
    old_schema = pa.schema(
        [
            ("id", pa.string()),
            ("tool", pa.string()),
            ("version", pa.int64()),
            ("text", pa.string()),
            ("hash", pa.string()),
            ("base_hash", pa.string()),
            ("reason", pa.string()),
            ("source", pa.string()),
            ("exemplar_ids", pa.list_(pa.string())),
            ("created_at", pa.timestamp("us")),
        ]
    )
    rows = [
        {
            "id": f"convert:{n}",
            "tool": "convert",
            "version": n,
            "text": text,
            "hash": text_hash(text),
            "base_hash": text_hash(ORIGINAL),
            "reason": reason,
            "source": "",
            "exemplar_ids": [],
            "created_at": datetime(2025, 1, n),
        }
        for n, text, reason in [(1, ORIGINAL, "original"), (2, ORIGINAL + "\n\nold examples", "rendered")]
    ]
    db.create_table("descriptions", data=pa.Table.from_pylist(rows, schema=old_schema))

    store = DescriptionStore(open_db(data_dir / "db"))
    assert [(v.version, v.status) for v in store.history("convert")] == [(1, "approved"), (2, "approved")]
    assert LiveDescriptions(store).describe(tool()) == ORIGINAL + "\n\nold examples"
    assert DescriptionStore(open_db(data_dir / "db")).served("convert").version == 2  # opens again
    v3 = store.rollback("convert")
    assert (v3.version, v3.text, v3.status) == (3, ORIGINAL, "approved")
    v4 = store.record(
        "convert", "pending text", reason="rendered", base_hash=text_hash(ORIGINAL), status="pending"
    )
    assert v4.status == "pending" and store.served("convert").version == 3


def test_concurrent_writers_never_store_one_version_twice(data_dir):
    """Writers in several processes (here: threads, each with its own connection) that record the same
    tool's next version at once: every text gets its own version number, none is stored twice. Without
    the table's primary key both writers would find ``convert:2`` absent and insert it."""
    import threading

    base = text_hash(ORIGINAL)
    DescriptionStore(open_db(data_dir / "db")).record("convert", ORIGINAL, reason="original", base_hash=base)
    stores = [DescriptionStore(open_db(data_dir / "db")) for _ in range(3)]
    start = threading.Barrier(len(stores), timeout=60)
    stored = []

    def write(n: int) -> None:
        start.wait()
        stored.append(stores[n].record("convert", f"{ORIGINAL} ({n})", reason="rendered", base_hash=base))

    threads = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    rows = stores[0].table.search().limit(None).to_list()
    assert sorted(r["id"] for r in rows) == ["convert:1", "convert:2", "convert:3", "convert:4"]
    assert sorted(v.version for v in stored) == [2, 3, 4]
    assert {r["text"] for r in rows} == {ORIGINAL} | {f"{ORIGINAL} ({n})" for n in range(3)}
