#!/usr/bin/env bash
# The description gate on real exemplars (issue 16, item 2; BENCHMARKS "The gate on four teacher runs").
# Run from the repository root, under the model lock:
#
#   flock /tmp/ste-model.lock scripts/bench/gate.sh
#
# The exemplars of four runs of the packaged 1.5B teacher (bench/learned/, the pool of "Where the student
# fails") are imported into one data dir. `ste-mcp descriptions rewrite` then does what `serve` does: the
# 1.5B (llm.explorer.model, its own vLLM) writes each tool's usage notes from the writing half of its
# exemplars, and the app's model, the packaged 0.5B, answers the held-out half with the candidate and
# with the served description, the tool's 4 nearest tools beside it; only a candidate that wins is served.
# The same notes are then served without the gate (a copy of the data dir, every refused version
# approved), and the 0.5B client answers the 195 STE-50 items of the 13 toolbox tools (candidates-15,
# must-call, greedy) with the bench's descriptions (base), the gated and the ungated notes.
# Results: $OUT/runs/*, docs/bench/$NAME.json and .png (OUT=.cache/bench/gate, NAME=gate by default).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate}; NAME=${NAME:-gate}
PORT=${PORT:-8781}; WPORT=${WPORT:-8782}
URL=http://127.0.0.1:$PORT/v1; WURL=http://127.0.0.1:$WPORT/v1
STUDENT=packaged:qwen2.5-coder-0.5b-instruct
WRITER=packaged:qwen2.5-coder-1.5b-instruct
BIN=.venv/bin/ste-mcp
RUNS=(toolbox-teacher-1.5b toolbox-teacher-1.5b-run2 toolbox-teacher-1.5b-contrast-run4
      toolbox-teacher-1.5b-contrast-run5)
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_MEMORY__DESCRIPTION_RENDER=notes
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")

mkdir -p "$OUT/runs" "$OUT/models" "$OUT/base"
if [ ! -d "$OUT/gated/lancedb" ]; then
  for run in "${RUNS[@]}"; do $BIN exemplars import "bench/learned/$run.jsonl" --data-dir "$OUT/gated" | tail -1; done
fi
for dir in gated base serve05 serve15; do
  mkdir -p "$OUT/$dir"; [ -e "$OUT/$dir/models" ] || ln -s "$(realpath "$OUT/models")" "$OUT/$dir/models"
done

PIDS=()
stop_servers() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap stop_servers EXIT
serve() {  # MODEL PORT DIR: a managed vLLM, waited for
  $BIN model serve --data-dir "$3" --model "$1" --port "$2" >"$3/serve.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 900); do
    curl -sf "http://127.0.0.1:$2/health" >/dev/null && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 2
  done
  echo "model server for $1 did not start: $3/serve.log" >&2; exit 1
}
clock() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a "$OUT/runs/times.txt"; }

# 1. notes by the 1.5B, gated by the 0.5B on each tool's held-out exemplars
if [ ! -s "$OUT/runs/rewrite.txt" ]; then
  serve "$STUDENT" "$PORT" "$OUT/serve05"
  serve "$WRITER" "$WPORT" "$OUT/serve15"
  start=$(date +%s)
  STE_MCP_LLM__EXPLORER__MODEL=$WRITER STE_MCP_LLM__EXPLORER__BASE_URL=$WURL \
    $BIN descriptions rewrite --llm-url "$URL" --model "$STUDENT" --data-dir "$OUT/gated" | tee "$OUT/runs/rewrite.txt"
  clock "rewrite (1.5B writes, 0.5B gates)" "$start"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
else
  serve "$STUDENT" "$PORT" "$OUT/serve05"
fi
for tool in $TOOLS; do $BIN descriptions history "$tool" --data-dir "$OUT/gated" 2>/dev/null || true; done \
  > "$OUT/runs/history.txt"

# 2. the same notes without the gate: every refused notes version approved, in a copy
rm -rf "$OUT/ungated"; mkdir -p "$OUT/ungated"; cp -r "$OUT/gated/lancedb" "$OUT/ungated/"
ln -s "$(realpath "$OUT/models")" "$OUT/ungated/models"
.venv/bin/python - "$OUT/ungated" <<'PY' | while read -r tool version; do
import sys
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import REFUSED, DescriptionStore
store = DescriptionStore(open_db(sys.argv[1] + "/lancedb"))
for tool in sorted(store.current_all()):
    refused = [v for v in store.history(tool) if v.status == REFUSED and v.reason.startswith("notes v")]
    if refused:
        print(tool, refused[-1].version)
PY
  $BIN descriptions approve "$tool" "$version" --data-dir "$OUT/ungated" | tail -1
done

# 3. the 0.5B client on the 195 toolbox items
run_eval() {  # NAME SETTING DATA_DIR
  local start; start=$(date +%s)
  # shellcheck disable=SC2086
  $BIN eval --bench bench/ste50 --tools $TOOLS --setting "$2" --prompt must-call --concurrency 8 \
    --llm-url "$URL" --model "$STUDENT" --data-dir "$3" --out "$OUT/runs/$1" | tail -3
  clock "eval $1" "$start"
}
run_eval base base "$OUT/base"
run_eval gated descriptions "$OUT/gated"
run_eval ungated descriptions "$OUT/ungated"
stop_servers

.venv/bin/python - "$OUT" "$NAME" <<'PY'
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = Path(sys.argv[1])
rows = {name: json.loads((out / "runs" / name / "summary.json").read_text()) for name in ("base", "gated", "ungated")}
keys = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct")
result = {"rows": {k: {m: v.get(m) for m in keys} for k, v in rows.items()},
          "rewrite": (out / "runs" / "rewrite.txt").read_text().splitlines(),
          "history": (out / "runs" / "history.txt").read_text().splitlines()}
Path(f"docs/bench/{sys.argv[2]}.json").write_text(json.dumps(result, indent=1))
labels = {"base": "bench descriptions", "gated": "notes, gated (served)", "ungated": "notes, all served"}
fig, ax = plt.subplots(figsize=(6.5, 3.4))
metrics = ("correct", "api_match", "strict_correct")
for i, name in enumerate(rows):
    bars = ax.bar([x + 0.27 * i for x in range(len(metrics))], [rows[name][m] for m in metrics], 0.27, label=labels[name])
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
ax.set_xticks([x + 0.27 for x in range(len(metrics))], ["correct %", "API match %", "strict correct %"])
ax.set_title("Descriptions, STE-50 toolbox subset (195), packaged 0.5B client, must-call", fontsize=9)
ax.legend(fontsize=8); fig.tight_layout(); fig.savefig(f"docs/bench/{sys.argv[2]}.png", dpi=120)
for name, r in result["rows"].items():
    print(name, r)
PY
