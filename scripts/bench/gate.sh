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
# rewrite.txt stamps each tool's line with the time it was printed.
#
# EVAL15=1: the 1.5B is a second evaluator of the gate (llm.evaluators, the writer's server): a note is
# served only if neither client does worse with it. A copy `small` serves what the 0.5B alone would have
# passed (from the same versions' stored scores), and the 1.5B client answers LIMIT15 (78) items too.
# POOL=DIR: start from that data dir's exemplars (e.g. demos_adapter.sh's rechecked pool,
# .cache/bench/demos/pool) instead of importing the four runs. MODELS: the converted-model folder to
# share (default $OUT/models). EVAL_FLAGS: more flags for every eval row (e.g. --constrained).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate}; NAME=${NAME:-gate}
PORT=${PORT:-8781}; WPORT=${WPORT:-8782}
URL=http://127.0.0.1:$PORT/v1; WURL=http://127.0.0.1:$WPORT/v1
STUDENT=packaged:qwen2.5-coder-0.5b-instruct
WRITER=packaged:qwen2.5-coder-1.5b-instruct
EVAL15=${EVAL15:-}; LIMIT15=${LIMIT15:-78}
if [ -n "$EVAL15" ]; then
  export STE_MCP_LLM__EVALUATORS="[{\"model\": \"$WRITER\", \"base_url\": \"$WURL\"}]"
fi
BIN=.venv/bin/ste-mcp
RUNS=(toolbox-teacher-1.5b toolbox-teacher-1.5b-run2 toolbox-teacher-1.5b-contrast-run4
      toolbox-teacher-1.5b-contrast-run5)
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_MEMORY__DESCRIPTION_RENDER=notes
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")

MODELS=${MODELS:-$OUT/models}
mkdir -p "$OUT/runs" "$MODELS" "$OUT/base"
if [ ! -d "$OUT/gated/lancedb" ]; then
  if [ -n "${POOL:-}" ]; then mkdir -p "$OUT/gated"; cp -r "$POOL/lancedb" "$OUT/gated/"
  else
    for run in "${RUNS[@]}"; do $BIN exemplars import "bench/learned/$run.jsonl" --data-dir "$OUT/gated" | tail -1; done
  fi
fi
for dir in gated base serve05 serve15; do
  mkdir -p "$OUT/$dir"; [ -e "$OUT/$dir/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/$dir/models"
done

# shellcheck source=scripts/bench/servers.sh
. scripts/bench/servers.sh

# 1. notes by the 1.5B, gated by the 0.5B (with EVAL15 and the 1.5B) on each tool's held-out exemplars
if [ ! -s "$OUT/runs/rewrite.txt" ]; then
  serve "$STUDENT" "$PORT" "$OUT/serve05"
  serve "$WRITER" "$WPORT" "$OUT/serve15"
  start=$(date +%s)
  PYTHONUNBUFFERED=1 STE_MCP_LLM__EXPLORER__MODEL=$WRITER STE_MCP_LLM__EXPLORER__BASE_URL=$WURL \
    $BIN descriptions rewrite --llm-url "$URL" --model "$STUDENT" --data-dir "$OUT/gated" \
    | while IFS= read -r line; do echo "$(date +%T) $line"; done | tee "$OUT/runs/rewrite.txt"
  clock "rewrite (1.5B writes; gate: 0.5B${EVAL15:+ and 1.5B})" "$start"
  if [ -z "$EVAL15" ]; then kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; fi
else
  serve "$STUDENT" "$PORT" "$OUT/serve05"
  [ -z "$EVAL15" ] || serve "$WRITER" "$WPORT" "$OUT/serve15"
fi
for tool in $TOOLS; do $BIN descriptions history "$tool" --data-dir "$OUT/gated" 2>/dev/null || true; done \
  > "$OUT/runs/history.txt"

# 2. the same notes without the gate (every refused notes version approved) and, with EVAL15, as the
#    0.5B alone would have gated them (a refused version the 0.5B scored better), each in a copy
copy_approving() {  # DIR RULE: RULE=all or small
  rm -rf "${OUT:?}/$1"; mkdir -p "$OUT/$1"; cp -r "$OUT/gated/lancedb" "$OUT/$1/"
  ln -s "$(realpath "$MODELS")" "$OUT/$1/models"
  .venv/bin/python - "$OUT/$1" "$2" <<'PY' | while read -r tool version; do
import sys
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import REFUSED, DescriptionStore
from ste_mcp.memory.gate import EvaluatorScore
store = DescriptionStore(open_db(sys.argv[1] + "/lancedb"))
def passes(v):
    scores = (v.gate_result or {}).get("scores") or []
    return sys.argv[2] == "all" or (scores and EvaluatorScore(**scores[0]).verdict == "better")
for tool in sorted(store.current_all()):
    refused = [v for v in store.history(tool) if v.status == REFUSED and v.reason.startswith("notes v")]
    if refused and passes(refused[-1]):
        print(tool, refused[-1].version)
PY
    $BIN descriptions approve "$tool" "$version" --data-dir "$OUT/$1" | tail -1
  done
}
copy_approving ungated all
[ -z "$EVAL15" ] || copy_approving small small

# 3. the 0.5B client on the 195 toolbox items (with EVAL15, the 1.5B client on LIMIT15 of them too)
run_eval() {  # NAME SETTING DATA_DIR [MODEL URL LIMIT]; a row whose summary is there is kept
  [ -s "$OUT/runs/$1/summary.json" ] && return 0
  local start; start=$(date +%s)
  # shellcheck disable=SC2086
  $BIN eval --bench bench/ste50 --tools $TOOLS --setting "$2" --prompt must-call --concurrency 8 \
    --llm-url "${5:-$URL}" --model "${4:-$STUDENT}" --data-dir "$3" --out "$OUT/runs/$1" ${6:+--limit $6} ${EVAL_FLAGS:-} | tail -3
  clock "eval $1" "$start"
}
run_eval base base "$OUT/base"
run_eval gated descriptions "$OUT/gated"
run_eval ungated descriptions "$OUT/ungated"
if [ -n "$EVAL15" ]; then
  run_eval small descriptions "$OUT/small"
  kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true  # the 1.5B client has the cores to itself
  for row in base gated small ungated; do
    setting=descriptions; [ $row = base ] && setting=base
    run_eval "$row-1.5b" "$setting" "$OUT/$row" "$WRITER" "$WURL" "$LIMIT15"
  done
fi
stop_servers

.venv/bin/python scripts/bench/gate_plot.py "$OUT" "$NAME"
