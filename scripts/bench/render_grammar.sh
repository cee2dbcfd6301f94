#!/usr/bin/env bash
# Session 46, issue 16: examples or requests appended to the descriptions, measured under the grammar. Every
# earlier render-mode row (sessions 2-11) decoded freely with the paper's lenient scorer, on teacher runs the
# judge's checks had not yet cleaned. Here: the pool of every teacher run (scripts/bench/all_runs.sh's
# $OUT/pool, 513 approved exemplars) copied twice and rendered with memory.description_render = examples and
# requests (3 diverse a tool, `ste-mcp descriptions render`); the packaged 0.5B answers bench/dev's 65 queries,
# must-call, the 15 candidates, greedy, under the grammar, with the bench's descriptions (base) and each
# rendering (descriptions). Each row runs once; a row already there is kept.
# usage: flock /tmp/ste-model.lock scripts/bench/render_grammar.sh     Results: $OUT/runs/*/summary.json
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=${OUT:-.cache/bench/render-grammar}; POOL=${POOL:-.cache/bench/all/pool}
PORT=${PORT:-8796}; URL=http://127.0.0.1:$PORT/v1; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
MODELS=${MODELS:-.cache/bench/demos/models}
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
[ -d "$POOL/lancedb" ] || { echo "run scripts/bench/all_runs.sh first (it pools the teacher runs)" >&2; exit 1; }
mkdir -p "$OUT/runs" "$OUT/serve05"
for mode in examples requests; do
  if [ ! -d "$OUT/$mode/lancedb" ]; then
    mkdir -p "$OUT/$mode"; cp -r "$POOL/lancedb" "$OUT/$mode/"
    STE_MCP_MEMORY__DESCRIPTION_RENDER=$mode $BIN descriptions render --data-dir "$OUT/$mode" | tail -1
  fi
done
[ -e "$OUT/serve05/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/serve05/models"
# shellcheck source=scripts/bench/servers.sh
. scripts/bench/servers.sh
serve "$STUDENT" "$PORT" "$OUT/serve05"
row() {  # NAME SETTING DATA_DIR [RENDER]
  [ -s "$OUT/runs/$1/summary.json" ] && return 0
  local start; start=$(date +%s)
  STE_MCP_MEMORY__DESCRIPTION_RENDER=${4:-notes} $BIN eval --bench bench/dev --setting "$2" --prompt must-call \
    --concurrency 8 --llm-url "$URL" --model "$STUDENT" --data-dir "$3" --out "$OUT/runs/$1" \
    --decoding constrained | tail -3
  clock "eval $1" "$start"
}
row dev-base-c base "$OUT/examples"
row dev-examples-c descriptions "$OUT/examples" examples
row dev-requests-c descriptions "$OUT/requests" requests
stop_servers
