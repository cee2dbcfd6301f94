"""What today's checks keep of every hand-labelled teacher exemplar, with and without one check.

Every labelled original of bench/learned/ (the sets of judge_coverage.py, and the shared-memory runs) is
called again against the offline toolbox, as the explorer would see its result, and held to the request
filter and ``memory.judge_checks`` (as ``judge_coverage.py`` does); the report gives the precision of what
is kept with every check and without ``--check``, and lists what that check refuses, good and bad. No model.

    .venv/bin/python scripts/bench/checks_precision.py --check added_asks --out docs/bench/checks_precision.json \
        [--kept-bad /tmp/kept_bad.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import judge_coverage as coverage

from ste_mcp.config import load_settings
from ste_mcp.memory.checks import ALL_CHECKS
from ste_mcp.toolbox.server import start_toolbox
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs import load_toolset

SHARED = [
    (coverage.L / f"{name}/run.labels.json", "run", coverage.L / f"{name}/run.jsonl")
    for name in ("shared", "shared2", "shared3", "shared4", "shared5", "shared6")
]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", required=True, choices=ALL_CHECKS)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--kept-bad", type=Path, help="also write the bad originals that every check keeps here")
    args = ap.parse_args()
    settings = load_settings()
    coverage.SETS += SHARED
    items = coverage.labelled()
    others = [c for c in settings.memory.judge_checks if c != args.check]
    with start_toolbox() as toolbox:
        tools = {t.name: t for t in load_toolset(settings, variables={"TOOLBOX_URL": toolbox.url})}
        async with UpstreamClient(settings.upstream) as client:
            await coverage.replay(items, client, tools, settings)
    for item in items:
        item["without"] = coverage.refusal(item, tools, others)
        item["refused_by_check"] = None if item["without"] else coverage.refusal(item, tools, [args.check])
    without = [i for i in items if not i["without"]]
    with_check = [i for i in without if not i["refused_by_check"]]
    refused = [i for i in without if i["refused_by_check"]]
    report = {
        "check": args.check,
        "labelled": len(items),
        "without": coverage.precision(without),
        "with": coverage.precision(with_check),
        "refused": {
            "good": sum(i["label"] == "good" for i in refused),
            "bad": sum(i["label"] == "bad" for i in refused),
        },
        "rows": [
            {k: i[k] for k in ("set", "tool", "request", "arguments", "label", "why", "refused_by_check")}
            for i in refused
        ],
    }
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    if args.kept_bad:
        rows = [
            {k: i[k] for k in ("set", "tool", "request", "arguments", "why")}
            for i in with_check
            if i["label"] == "bad"
        ]
        args.kept_bad.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
