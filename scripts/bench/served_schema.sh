#!/usr/bin/env bash
# Session 46: a required parameter's spec "default" served as an example (`upstream.tools.served_schema`).
# The packaged 0.5B client answers with the schemas `tools/list` now serves (`--served-descriptions`: the 13
# toolbox tools' served descriptions, unchanged originals here, and their served schemas; the other STE-50
# candidates keep the bench's) against the bench's own schemas, in two settings, all under the grammar:
#   zero-shot (must-call, the 15 candidates): `--setting descriptions` on an empty data dir against `base`;
#   the best setting (must-call, search within the 15 candidates + the 3 nearest approved exemplars of the
#   pooled teacher runs, scripts/bench/all_runs.sh's $POOL), with and without --served-descriptions.
# bench/dev first, then the 195 STE-50 toolbox items, then the packaged 1.5B zero-shot on 78 of them; each row once; a row already there is kept. The 195-item
# rows without the served schemas are earlier runs of the same code path on this box (gate_veto.sh's base-c,
# all_runs.sh's pool row): BASE_ROWS=1 runs them again here.
# usage: flock /tmp/ste-model.lock scripts/bench/served_schema.sh     Results: $OUT/runs*/*/summary.json
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=${OUT:-.cache/bench/served-schema}; POOL=${POOL:-.cache/bench/all/pool}
PORT=${PORT:-8796}; URL=http://127.0.0.1:$PORT/v1; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
MODELS=${MODELS:-.cache/bench/demos/models}
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
[ -d "$POOL/lancedb" ] || { echo "run scripts/bench/all_runs.sh first (it pools the teacher runs)" >&2; exit 1; }
mkdir -p "$OUT/runs" "$OUT/empty" "$OUT/serve05"
[ -e "$OUT/serve05/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/serve05/models"
# shellcheck source=scripts/bench/servers.sh
. scripts/bench/servers.sh
serve "$STUDENT" "$PORT" "$OUT/serve05"
zero_shot() {  # NAME SETTING BENCH [TOOLS...]
  [ -s "$OUT/runs/$1/summary.json" ] && return 0
  local start; start=$(date +%s)
  # shellcheck disable=SC2086
  $BIN eval --bench "$3" ${4:+--tools ${*:4}} --setting "$2" --prompt must-call --concurrency 8 \
    --llm-url "$URL" --model "$STUDENT" --data-dir "$OUT/empty" --out "$OUT/runs/$1" --decoding constrained \
    ${LIMIT:+--limit $LIMIT} | tail -3
  clock "eval $1" "$start"
}
best() {  # BENCH RUNS NAME [EXTRA]
  [ -s "$OUT/$2/retrieval-search-among-candidates-constrained/summary.json" ] && return 0
  local start; start=$(date +%s)
  OUT=$OUT LLM_URL=$URL STUDENT=$STUDENT DATA=$POOL BENCH=$1 RUNS=$2 NAME=$3 DOCS=$OUT/$2 EXTRA=${4:-} \
    ROWS=retrieval:search:candidates:constrained scripts/bench/search_retrieval.sh | tail -2
  clock "eval $3" "$start"
}
zero_shot dev-base-c base bench/dev
zero_shot dev-served-c descriptions bench/dev
best bench/dev runs-dev-best dev-best
best bench/dev runs-dev-best-served dev-best-served --served-descriptions
# shellcheck disable=SC2086
zero_shot served-c descriptions bench/ste50 $TOOLS
best bench/ste50 runs-best-served best-served --served-descriptions
if [ -n "${BASE_ROWS:-}" ]; then
  # shellcheck disable=SC2086
  zero_shot base-c base bench/ste50 $TOOLS
  best bench/ste50 runs-best best
fi
stop_servers
# the 1.5B client, zero-shot on 78 of the 195 (6 a tool; its base row: gate_veto.sh's base-1.5b-c)
STUDENT=packaged:qwen2.5-coder-1.5b-instruct; PORT=$((PORT + 1)); URL=http://127.0.0.1:$PORT/v1
mkdir -p "$OUT/serve15"; [ -e "$OUT/serve15/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/serve15/models"
serve "$STUDENT" "$PORT" "$OUT/serve15"
# shellcheck disable=SC2086
LIMIT=78 zero_shot served-1.5b-c descriptions bench/ste50 $TOOLS
# shellcheck disable=SC2086
[ -z "${BASE_ROWS:-}" ] || LIMIT=78 zero_shot base-1.5b-c base bench/ste50 $TOOLS
stop_servers
