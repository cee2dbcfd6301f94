#!/usr/bin/env bash
# Session 45, issue 16: what `serve` serves by default once a loss beyond noise on any metric vetoes
# (`EvaluatorScore.vetoed`), measured the way the product runs its clients: under the grammar too.
# No notes are written and no gate is asked again: the stored gate measurements of a finished run (default
# session 43's, OUT_FROM=.cache/bench/gate-referral: the model's notes, memory.notes_arguments = model, the
# default) are replayed under today's rule (scripts/bench/gate_replay.py), and every tool whose promoted
# version today's rule refuses is rolled back to the text it replaced, in a copy ($OUT/gated). Rows: the 1.5B
# client on 78 STE-50 toolbox items (6 a tool) and the 0.5B on all 195, must-call, the 15 candidates, greedy,
# each with the bench's descriptions (base) and with the served ones (gated), under the grammar (constrained:
# both models' best zero-shot decoding, chosen on bench/dev in session 18), then the gated rows free (the
# base free rows are the source run's). Fixed before any row ran; each row runs once; a row already there
# is kept.
# usage: flock /tmp/ste-model.lock scripts/bench/gate_veto.sh     Results: $OUT/runs/*, $OUT/runs/replay.json
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate-veto}; OUT_FROM=${OUT_FROM:-.cache/bench/gate-referral}
PORT=8781; WPORT=8782; URL=http://127.0.0.1:$PORT/v1; WURL=http://127.0.0.1:$WPORT/v1
STUDENT=packaged:qwen2.5-coder-0.5b-instruct; STRONG=packaged:qwen2.5-coder-1.5b-instruct
MODELS=${MODELS:-.cache/bench/demos/models}; BIN=.venv/bin/ste-mcp
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_MEMORY__DESCRIPTION_RENDER=notes
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
mkdir -p "$OUT/runs" "$OUT/base"
if [ ! -d "$OUT/gated/lancedb" ]; then
  mkdir -p "$OUT/gated"; cp -r "$OUT_FROM/gated/lancedb" "$OUT/gated/"
  .venv/bin/python scripts/bench/gate_replay.py "$OUT/gated" --out "$OUT/runs/replay.json" | tail -3
  .venv/bin/python - "$OUT/runs/replay.json" <<'PY' | while read -r tool version; do
import json, sys
for row in json.load(open(sys.argv[1]))["rows"]:
    if row["then"] == "promoted" and row["now"] == "refused":
        print(row["tool"], row["version"] - 1)
PY
    $BIN descriptions rollback "$tool" --to "$version" --data-dir "$OUT/gated" | tail -1
  done
fi
for dir in base gated serve05 serve15; do
  mkdir -p "$OUT/$dir"; [ -e "$OUT/$dir/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/$dir/models"
done
for tool in $TOOLS; do $BIN descriptions history "$tool" --data-dir "$OUT/gated" 2>/dev/null || true; done \
  > "$OUT/runs/history.txt"

# shellcheck source=scripts/bench/servers.sh
. scripts/bench/servers.sh
serve "$STRONG" "$WPORT" "$OUT/serve15"
serve "$STUDENT" "$PORT" "$OUT/serve05"
run_eval() {  # NAME SETTING DATA_DIR MODEL URL LIMIT [FLAGS...]
  [ -s "$OUT/runs/$1/summary.json" ] && return 0
  local start; start=$(date +%s)
  # shellcheck disable=SC2086
  $BIN eval --bench bench/ste50 --tools $TOOLS --setting "$2" --prompt must-call --concurrency 8 \
    --llm-url "$5" --model "$4" --data-dir "$3" --out "$OUT/runs/$1" ${6:+--limit $6} "${@:7}" | tail -3
  clock "eval $1" "$start"
}
run_eval base-1.5b-c base "$OUT/base" "$STRONG" "$WURL" 78 --decoding constrained
run_eval gated-1.5b-c descriptions "$OUT/gated" "$STRONG" "$WURL" 78 --decoding constrained
run_eval base-c base "$OUT/base" "$STUDENT" "$URL" "" --decoding constrained
run_eval gated-c descriptions "$OUT/gated" "$STUDENT" "$URL" "" --decoding constrained
run_eval gated-1.5b descriptions "$OUT/gated" "$STRONG" "$WURL" 78 --decoding free
run_eval gated descriptions "$OUT/gated" "$STUDENT" "$URL" "" --decoding free
stop_servers
