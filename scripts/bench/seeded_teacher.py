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
from pathlib import Path

from tried_values import seed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--into", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(seed_memory(args.pool, args.into, one_episode=True)))


if __name__ == "__main__":
    main()
