"""Claims on trials (``memory/claims.py``): processes sharing one database judge each trial once.
Real LanceDB on disk, a real upstream on 127.0.0.1; the judge is a scripted model (orchestration)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import anyio
import pytest

from ste_mcp.memory.claims import ClaimStore
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.exploit import Exploiter
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialStore
from ste_mcp.upstream.client import UpstreamClient
from tests.fixtures.exemplars import record_trial, started_upstream  # noqa: F401
from tests.fixtures.models import judging_model


def test_a_claim_is_held_by_one_owner_until_released_or_expired(data_dir) -> None:
    db = open_db(data_dir / "lancedb")
    a, b = ClaimStore(db, owner="a"), ClaimStore(db, owner="b")
    assert a.take(["t1", "t2"], ttl_s=60) == {"t1", "t2"}
    assert b.take(["t1", "t2", "t3"], ttl_s=60) == {"t3"}
    assert a.take(["t1"], ttl_s=60) == {"t1"}  # its own claim stays its own
    a.release(["t1"])
    assert b.take(["t1"], ttl_s=60) == {"t1"}
    b.release(["t2"])  # not b's: a keeps it
    assert ClaimStore(db, owner="c").take(["t2"], ttl_s=60) == set()
    assert a.holders() == {"t1": "b", "t2": "a", "t3": "b"}

    c = ClaimStore(open_db(data_dir / "lancedb"), owner="c")  # another connection, as another process
    assert c.take(["t9"], ttl_s=0.05) == {"t9"}
    time.sleep(0.1)  # c died holding t9: its claim expires and is taken over
    assert a.take(["t9"], ttl_s=60) == {"t9"}
    assert a.holders()["t9"] == "a"


def test_owners_racing_for_the_same_trials_never_share_one(data_dir) -> None:
    """Four connections (as four replicas) claim the same 30 ids at once: every id ends up with
    exactly one owner, and each owner's answer agrees with the table."""
    open_db(data_dir / "lancedb")
    ids = [f"tool:0:{i}" for i in range(30)]
    got: dict[str, set[str]] = {}
    failed: list[Exception] = []
    start = threading.Barrier(4, timeout=60)  # a thread that dies before it fails the others

    def claim(owner: str) -> None:
        try:
            store = ClaimStore(open_db(data_dir / "lancedb"), owner=owner)
            start.wait()
            mine: set[str] = set()
            for i in range(0, len(ids), 5):
                mine |= store.take(ids[i : i + 5], ttl_s=60)
            got[owner] = mine
        except Exception as exc:
            failed.append(exc)
            start.abort()

    threads = [threading.Thread(target=claim, args=(f"replica-{n}",), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [e for e in failed if not isinstance(e, threading.BrokenBarrierError)], failed
    assert not failed and len(got) == 4
    holders = ClaimStore(open_db(data_dir / "lancedb"), owner="reader").holders()
    assert sorted(holders) == sorted(ids)
    for owner, mine in got.items():
        assert mine == {i for i, o in holders.items() if o == owner}
    assert sum(len(m) for m in got.values()) == len(ids)


_OPEN_ALL = """
import sys, time
from ste_mcp.memory.db import Memory, open_db
root, at, n = sys.argv[1], float(sys.argv[2]), sys.argv[3]
memory = Memory(open_db(root))
time.sleep(max(0.0, at - time.time()))  # every process opens its stores at the same moment
memory.trials, memory.exemplars, memory.descriptions, memory.claims, memory.tool_index
assert memory.claims.take([f"trial-{n}"], ttl_s=60) == {f"trial-{n}"}
"""


def test_processes_starting_together_on_a_new_database_all_open_it(data_dir) -> None:
    """Four processes (replicas started at once) open every store of one new database at the same
    moment: each starts (a table another is still creating is waited for) and none loses the
    others' rows."""
    root = data_dir / "fresh"
    at = time.time() + 8  # after the imports of all four
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_ALL, str(root), str(at), str(n)], stderr=subprocess.PIPE
        )
        for n in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode()[-2000:] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    holders = ClaimStore(open_db(root), owner="reader").holders()
    assert sorted(holders) == [f"trial-{n}" for n in range(4)]


@pytest.mark.anyio
async def test_two_judging_processes_judge_each_trial_once(data_dir, upstream) -> None:
    """Two exploiters on one database (two replicas' memory loops) given the same pending trials at the
    same time: each trial is judged by one of them, all are judged, no claim is left behind."""
    tools = {t.name: t for t in upstream.tools()}
    settings = MemorySettings(paraphrases_per_exemplar=0)
    trials = TrialStore(open_db(data_dir / "lancedb"))
    async with UpstreamClient() as client:
        for slot in range(6):
            await record_trial(
                trials,
                client,
                tools["convert_currency"],
                {"amount": str(10 + slot), "to": "EUR"},
                f"How much is {10 + slot} dollars in euros?",
                slot,
            )
    pending = trials.unjudged()

    def replica(owner: str) -> tuple[Exploiter, object]:
        db = open_db(data_dir / "lancedb")
        exploiter = Exploiter(
            TrialStore(db),
            ExemplarStore(db),
            DescriptionStore(db),
            settings,
            claims=ClaimStore(db, owner=owner),
        )
        return exploiter, judging_model()

    (one, judge_one), (two, judge_two) = replica("a"), replica("b")
    reports = {}

    async def run(name, exploiter, judge):
        reports[name] = await exploiter.process(judge, tools, pending=pending)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "a", one, judge_one)
        tg.start_soon(run, "b", two, judge_two)

    judged = reports["a"].judged + reports["b"].judged
    assert judged == 6
    assert reports["a"].claimed_elsewhere + reports["b"].claimed_elsewhere == 6
    assert trials.unjudged() == []
    judge_calls = [c for m in (judge_one, judge_two) for c in m.calls if "review" in str(c["messages"][0])]
    assert len(judge_calls) == 6  # one judge call per trial, not one per replica
    assert ClaimStore(open_db(data_dir / "lancedb"), owner="reader").holders() == {}

    # a trial listed before another process judged it is not judged again
    again = await one.process(judge_one, tools, pending=pending)
    assert (again.judged, again.claimed_elsewhere) == (0, 6)
