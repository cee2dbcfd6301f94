"""Collect the rows of pool_run.sh (or dates.sh) into one JSON and a bar chart.

    .venv/bin/python scripts/bench/pool_report.py --out docs/bench/hindsight10 \\
        --row "dates9 (session 22)=dates9" --row "+ run 10 (hindsight)=pool10" --row "run 9 alone=solo9"

Each ``--row LABEL=NAME`` reads ``$OUT/NAME`` (the 195 items) and ``$OUT/dev-NAME`` (bench/dev), free and
constrained decoding (the best setting: search within the 15 candidates + 3 examples), where they exist.
Writes OUT.json (with per-tool API match and correct) and OUT.png (the 195-item rows, or dev's when a row
has no 195-item run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ste_mcp.evaluate.plot import plot_settings

KEYS = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct")
SETTING = "retrieval-search-among-candidates"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path(".cache/bench/gate3"), help="OUT of pool_run.sh")
    ap.add_argument("--row", action="append", required=True, help="LABEL=NAME")
    ap.add_argument("--out", type=Path, required=True, help="path without suffix")
    ap.add_argument("--title", default="0.5B client, search within the 15 + 3 examples")
    args = ap.parse_args()
    rows: dict[str, dict] = {}
    for spec in args.row:
        label, name = spec.split("=", 1)
        for bench, prefix in (("195", ""), ("dev", "dev-")):
            for decode, suffix in (("free", ""), ("constrained", "-constrained")):
                path = args.runs / f"{prefix}{name}" / f"{SETTING}{suffix}" / "summary.json"
                if path.exists():
                    s = json.loads(path.read_text())
                    rows[f"{label}, {bench}, {decode}"] = {k: s[k] for k in KEYS} | {
                        "per_tool": {t: [v["api_match"], v["correct"]] for t, v in s["per_tool"].items()}
                    }
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    shown = {k: v for k, v in rows.items() if ", 195, " in k} or rows
    plot_settings(
        {k.replace(", ", "\n"): v for k, v in shown.items()}, args.out.with_suffix(".png"), title=args.title
    )
    print(json.dumps({k: [v["correct"], v["strict_correct"]] for k, v in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
