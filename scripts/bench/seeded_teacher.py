"""Session 47: a teacher data dir whose long-term memory is a pool's (for ``seeded_teacher.sh``).

Every approved original of ``--pool`` is recorded in ``--into`` as an accepted trial of its tool (its request,
its call), all of a tool's in episode 0 at slots 1, 2, ... (so the episode reads as finished and ``learn
--episodes 2`` explores exactly one new episode per tool, whose imaginations see the pool's requests as earlier
ones). The trials carry their verdict, so ``learn`` never judges them again; no exemplar is stored.
usage: .venv/bin/python scripts/bench/seeded_teacher.py --pool .cache/bench/all/pool --into DIR
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path


def seed(pool: Path, into: Path) -> dict[str, int]:
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.exemplars import ExemplarStore
    from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn

    originals = sorted(
        (e for e in ExemplarStore(open_db(pool / "lancedb")).approved() if e.group == e.id),
        key=lambda e: e.id,
    )
    store = TrialStore.open(into / "lancedb")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    per_tool: dict[str, int] = defaultdict(int)
    for i, ex in enumerate(originals):
        per_tool[ex.tool] += 1
        record = TrialRecord(
            tool=ex.tool,
            episode=0,
            slot=per_tool[ex.tool],
            query=ex.query,
            turns=[
                Turn(raw="", kind="call", tool=ex.tool, arguments=dict(ex.arguments)),
                Turn(raw="", kind="final"),
            ],
            final_answer="",
            reflection="yes",
            recorded_at=start + timedelta(minutes=i),
        )
        store.record(record)
        store.set_verdict(record.id, {"accepted": True})
    return dict(per_tool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--into", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(seed(args.pool, args.into)))


if __name__ == "__main__":
    main()
