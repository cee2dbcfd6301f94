"""Keep only the exemplars a person labelled good: what an operator's review would leave to serve.

    .venv/bin/python scripts/bench/reviewed_exemplars.py SRC.jsonl DST.jsonl

SRC is an `ste-mcp exemplars export` file with hand labels beside it (SRC's name with `.labels.json`:
``{"labels": {group: ["good" | "bad", why]}}``); DST gets the header and the rows of the good groups.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    src, dst = (Path(a) for a in sys.argv[1:3])
    labels = json.loads(src.with_name(src.name.replace(".jsonl", ".labels.json")).read_text())["labels"]
    header, *rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    keep = [r for r in rows if labels.get(r["group"], ["?"])[0] == "good"]
    lines = [json.dumps(x) for x in [{**header, "exemplars": len(keep)}, *keep]]
    dst.write_text("\n".join(lines) + "\n")
    print(f"{len(keep)} of {len(rows)} exemplars kept (reviewed good) -> {dst}")


if __name__ == "__main__":
    main()
