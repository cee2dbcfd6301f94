"""Data dirs serving session 27's ungated usage notes with and without the lines that name another tool.

The notes the packaged 1.5B wrote in session 27 (`docs/bench/gate_pool2.json`, the rewrite log: every note,
gated or not) are stored as each toolbox tool's served description in OUT/all; OUT/own serves the same
notes less every line that names another served tool ("Similar tool to use instead: …"). Then
`scripts/bench/neighbour_lines.sh` asks both packaged clients with each (BENCHMARKS "Session 37").

    .venv/bin/python scripts/bench/neighbour_lines.py --out .cache/bench/neighbours/d
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ste_mcp.config import load_settings
from ste_mcp.memory.cli_exemplars import served_toolset
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore, render_description, text_hash


def _spaced(text: str) -> str:
    return re.sub(r"[\s_]+", " ", text).strip().casefold()


def names_another(line: str, tool: str, names: list[str]) -> bool:
    """Whether ``line`` names a served tool other than ``tool`` (spaces and ``_`` alike)."""
    return any(_spaced(n) in _spaced(line) for n in names if n != tool)


def session27_notes() -> dict[str, list[str]]:
    """Each tool's note lines as session 27's rewrite log printed them."""
    notes: dict[str, list[str]] = {}
    tool = ""
    for line in json.loads(Path("docs/bench/gate_pool2.json").read_text())["rewrite"]:
        if not line.startswith(" "):
            tool = line.split(":")[0]
            notes[tool] = []
        elif line.startswith("    - "):
            notes[tool].append(line.strip())
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    notes = session27_notes()
    tools = served_toolset(load_settings()).visible()
    names = [t.name for t in tools]
    dropped: dict[str, list[str]] = {}
    for variant in ("all", "own"):
        store = DescriptionStore(open_db(args.out / variant / "lancedb"))
        for tool in tools:
            lines = notes.get(tool.name, [])
            if variant == "own":
                dropped[tool.name] = [x for x in lines if names_another(x, tool.name, names)]
                lines = [x for x in lines if x not in dropped[tool.name]]
            base = text_hash(tool.description)
            store.record(tool.name, tool.description, reason="original", base_hash=base)
            if lines:
                text = render_description(tool.description, [], 400, notes="\n".join(lines))
                store.record(tool.name, text, reason="notes (session 27, ungated)", base_hash=base)
    (args.out / "dropped.json").write_text(json.dumps(dropped, indent=1, ensure_ascii=False))
    print(
        f"{sum(map(len, dropped.values()))} lines naming another tool left out of {len(tools)} tools' notes"
    )


if __name__ == "__main__":
    main()
