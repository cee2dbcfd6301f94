#!/usr/bin/env bash
# Usage notes with and without the lines that name another tool, asked of both packaged clients on
# bench/dev (BENCHMARKS "Session 37"). Run from the repository root, under the model lock:
#
#   flock /tmp/ste-model.lock scripts/bench/neighbour_lines.sh
#
# scripts/bench/neighbour_lines.py stores session 27's ungated notes as the served descriptions in
# $OUT/d/all and, less every line naming another tool, in $OUT/d/own; each client (the 0.5B, then the
# 1.5B, one managed vLLM each) answers BENCH (default bench/dev) with the bench's descriptions (base) and
# with each (descriptions setting), must-call, the 15 candidates, greedy, free decoding. A row whose
# summary exists is kept. Results: $OUT/runs/*, docs/bench/$NAME.json and .png (NAME=neighbour_lines).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/neighbours}; BENCH=${BENCH:-bench/dev}; TAG=${TAG:-dev}; NAME=${NAME:-neighbour_lines}
BIN=.venv/bin/ste-mcp; MODELS=.cache/bench/demos/models
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
mkdir -p "$OUT/runs" "$OUT/s05" "$OUT/s15"
for dir in s05 s15; do [ -e "$OUT/$dir/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/$dir/models"; done
[ -d "$OUT/d/own/lancedb" ] || .venv/bin/python scripts/bench/neighbour_lines.py --out "$OUT/d"
# shellcheck source=scripts/bench/servers.sh
. scripts/bench/servers.sh
row() {  # NAME SETTING DATA MODEL URL
  [ -s "$OUT/runs/$1/summary.json" ] && return 0
  local t; t=$(date +%s)
  # shellcheck disable=SC2086
  $BIN eval --bench "$BENCH" --tools $TOOLS --setting "$2" --prompt must-call --concurrency 8 \
    --llm-url "$5" --model "$4" --data-dir "$3" --out "$OUT/runs/$1" | tail -2
  clock "$1" "$t"
}
for client in 05 15; do
  model=packaged:qwen2.5-coder-${client:0:1}.${client:1}b-instruct; port=88$client
  if [ ! -s "$OUT/runs/$TAG-own-$client/summary.json" ]; then
    serve "$model" "$port" "$OUT/s$client"
    row "$TAG-base-$client" base "$OUT/d/all" "$model" "http://127.0.0.1:$port/v1"
    row "$TAG-all-$client" descriptions "$OUT/d/all" "$model" "http://127.0.0.1:$port/v1"
    row "$TAG-own-$client" descriptions "$OUT/d/own" "$model" "http://127.0.0.1:$port/v1"
    stop_servers
  fi
done

.venv/bin/python - "$OUT" "$TAG" "$NAME" <<'PY'
import json, sys
from collections import defaultdict
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out, tag, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
keys = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct")
rows, per_tool = {}, defaultdict(dict)
for client in ("05", "15"):
    for variant in ("base", "all", "own"):
        run = out / "runs" / f"{tag}-{variant}-{client}"
        summary = json.loads((run / "summary.json").read_text())
        rows[f"{variant}-{client}"] = {k: summary[k] for k in keys}
        for line in (run / "scores.jsonl").read_text().splitlines():
            s = json.loads(line)
            per_tool[s["tool"]][f"{variant}-{client}"] = per_tool[s["tool"]].get(f"{variant}-{client}", 0) + s["correct"]
dropped = json.loads((out / "d" / "dropped.json").read_text())
Path(f"docs/bench/{name}.json").write_text(json.dumps(
    {"bench": tag, "rows": rows, "correct_per_tool": per_tool, "lines_left_out": dropped}, indent=1, ensure_ascii=False))
labels = {"base": "bench descriptions", "all": "+ notes, every line", "own": "+ notes, no line naming another tool"}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, client, who in zip(axes, ("05", "15"), ("0.5B", "1.5B")):
    for i, variant in enumerate(("base", "all", "own")):
        r = rows[f"{variant}-{client}"]
        bars = ax.bar([x + 0.27 * i for x in range(3)], [r[m] for m in ("correct", "api_match", "strict_correct")], 0.27, label=labels[variant])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks([x + 0.27 for x in range(3)], ["correct %", "API match %", "strict correct %"])
    ax.set_title(f"{tag} ({rows['base-' + client]['n']} items), packaged {who} client, must-call", fontsize=9)
    ax.set_ylim(0, 1.3 * max(rows[f"{v}-{client}"][m] for v in ("base", "all", "own") for m in ("correct", "api_match", "strict_correct")))
    ax.legend(fontsize=7, loc="upper right")
fig.tight_layout(); fig.savefig(f"docs/bench/{name}.png", dpi=120)
for k, r in rows.items():
    print(k, r)
PY
