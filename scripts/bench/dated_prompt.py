"""What the trial prompt's date sentence does to the explorer's calls (BENCHMARKS "Session 38").

For each teacher run's data dir: the calls made, those whose arguments carry the day the run was made on
(or its year) while the request speaks of no time, the calls the result says failed, and what the judge
and the checks kept, with the prompt version the trials were made with. Reads the run's trial store; writes
nothing but the JSON it prints (and --out).

    .venv/bin/python scripts/bench/dated_prompt.py .cache/bench/shared/run .cache/bench/shared4/run ...
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

from ste_mcp.memory.checks import soft_failure
from ste_mcp.memory.dates import speaks_of_time
from ste_mcp.memory.db import open_db
from ste_mcp.memory.trials import TrialStore


def run_stats(data_dir: Path) -> dict:
    trials = TrialStore(open_db(str(data_dir / "lancedb"))).trials()
    stats: collections.Counter[str] = collections.Counter()
    per_tool: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    versions = collections.Counter(t.prompt_version for t in trials)
    examples = []
    for trial in trials:
        day = trial.started_at.date()
        made = re.compile(rf"{day.isoformat()}|{day:%B} {day.day}, {day.year}|(?<!\d){day.year}(?!\d)")
        verdict = trial.verdict or {}
        stats["trials"] += 1
        tool = per_tool[trial.tool]
        tool["trials"] += 1
        if verdict.get("accepted") and "refused" not in verdict:
            stats["kept"] += 1
            tool["kept"] += 1
            if verdict.get("repairs"):
                stats["kept after a repair"] += 1
        for turn in trial.turns:
            if turn.kind != "call":
                continue
            stats["calls"] += 1
            tool["calls"] += 1
            arguments = json.dumps(turn.arguments or {}, ensure_ascii=False)
            if made.search(arguments) and not speaks_of_time(trial.query):
                stats["calls sending the day, request timeless"] += 1
                tool["calls sending the day, request timeless"] += 1
                examples.append(
                    {"tool": trial.tool, "request": trial.query[:120], "arguments": arguments[:200]}
                )
            if turn.is_error or soft_failure(turn.observation) is not None:
                stats["calls failed"] += 1
                tool["calls failed"] += 1
    return {
        "data_dir": str(data_dir),
        "prompt_versions": dict(versions),
        **stats,
        "per_tool": {name: dict(c) for name, c in sorted(per_tool.items())},
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="teacher runs' data dirs")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    report = [run_stats(run) for run in args.runs]
    text = json.dumps(report, indent=1, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
