#!/usr/bin/env bash
# Usage notes and the render modes of learned descriptions on bench/dev (issue 16; BENCHMARKS "Usage
# notes and the description gate"). Run from the repository root, under the model lock:
#
#   flock /tmp/ste-model.lock scripts/bench/description_render.sh [SRC_DATA_DIR] [OUT_DIR]
#
# SRC_DATA_DIR: a learning run's data dir (trials + approved exemplars; default .cache/bench/search, the
# learning-curve run's). Its database is never written (the model server logs under its logs/): each
# render mode gets a copy of the database under OUT_DIR (default .cache/bench/notes), the model linked. One vLLM serves the packaged 0.5B model
# (the data dir's model) for the notes writer (explorer role), the gate's evaluator and the eval.
# LIMIT (env, default 33): bench/dev items, spread over the learned tools. Never STE-50 test items.
# TIMEOUT_S (env, default 900): per request; on a loaded 2-core box 16 of 22 requests passed 120 s.
set -euo pipefail
SRC=${1:-.cache/bench/search}
OUT=${2:-.cache/bench/notes}
LIMIT=${LIMIT:-33}
PORT=${PORT:-8771}
BIN=.venv/bin/ste-mcp
URL=http://127.0.0.1:$PORT/v1
export STE_MCP_LLM__TIMEOUT_S=${TIMEOUT_S:-900}

mkdir -p "$OUT/runs"
for mode in none examples notes both gate; do
  rm -rf "${OUT:?}/$mode"
  mkdir -p "$OUT/$mode"
  cp -r "$SRC/lancedb" "$OUT/$mode/"
  ln -s "$(realpath "$SRC/models")" "$OUT/$mode/models"
done
TOOLS=$(.venv/bin/python -c "
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
print(' '.join(sorted(ExemplarStore(open_db('$SRC/lancedb')).counts())))")

$BIN model serve --data-dir "$SRC" --port "$PORT" >"$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 2
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "model server did not start: $OUT/serve.log" >&2; exit 1; }

# notes for every learned tool, unmeasured (the measurement is the eval below), then each mode rendered
start=$(date +%s)
STE_MCP_MEMORY__DESCRIPTION_RENDER=notes $BIN descriptions rewrite --no-gate --llm-url "$URL" \
  --data-dir "$OUT/notes" | tee "$OUT/runs/notes.txt"
echo "notes written in $(( $(date +%s) - start )) s" | tee -a "$OUT/runs/notes.txt"
rm -rf "$OUT/both/lancedb" && cp -r "$OUT/notes/lancedb" "$OUT/both/"
for mode in none examples notes both; do
  $BIN descriptions render --render "$mode" --data-dir "$OUT/$mode"
done

# the gate as the server would run it, each tool's held-out exemplars (most tools have too few here)
STE_MCP_MEMORY__DESCRIPTION_RENDER=notes STE_MCP_MEMORY__GATE_MIN_HELDOUT=1 $BIN descriptions rewrite \
  --llm-url "$URL" --data-dir "$OUT/gate" | tee "$OUT/runs/gate.txt"

for mode in none examples notes both; do
  # shellcheck disable=SC2086
  STE_MCP_MEMORY__DESCRIPTION_RENDER=$mode $BIN eval --bench bench/dev --tools $TOOLS --limit "$LIMIT" \
    --setting descriptions --prompt must-call --concurrency 8 --llm-url "$URL" --data-dir "$OUT/$mode" \
    --out "$OUT/runs/$mode" | tail -4 || echo "eval $mode: some requests failed (see its predictions)" >&2
done
.venv/bin/python - "$OUT/runs" <<'EOF'
import json, sys
from pathlib import Path
for mode in ("none", "examples", "notes", "both"):
    s = json.loads((Path(sys.argv[1]) / mode / "summary.json").read_text())
    print(f"{mode:9} n {s['n']:3}  well-formed {s['wellformed']:5.1f}  API match {s['api_match']:5.1f}  "
          f"correct {s['correct']:5.1f}  strict {s['strict_correct']}")
EOF
