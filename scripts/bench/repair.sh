#!/usr/bin/env bash
# Hindsight's repair replayed on the shared-memory teacher runs (BENCHMARKS "Session 37"), then the 0.5B
# student in the best setting on each repaired pool. Run from the repository root, under the model lock:
#
#   flock /tmp/ste-model.lock scripts/bench/repair.sh
#
# RUNS: "NAME:K ..." (default "shared3:2 shared2:2 shared:4"): .cache/bench/NAME/run's trials of its first
# K episodes that the judge accepted and a repairable check refused are judged again with
# memory.hindsight = "repair" beside a copy of .cache/bench/NAME/pool-kK (scripts/bench/repair.py, the
# packaged 1.5B as judge, paraphraser and hindsight, as in the run) into .cache/bench/repair-NAME; the
# 0.5B then answers bench/ste50's 195 toolbox items and bench/dev in the best setting with that pool
# (runs-ste50, runs-dev there), to set beside the pool's own rows in .cache/bench/NAME/runs-kK-*.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=.cache/bench/repair
RUNS=${RUNS:-"shared3:2 shared2:2 shared:4"}
MODELS=.cache/bench/demos/models
TEACHER=packaged:qwen2.5-coder-1.5b-instruct; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
mkdir -p "$OUT/runs" "$OUT/serve15" "$OUT/serve05"
for d in serve15 serve05; do [ -e "$OUT/$d/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/$d/models"; done
. scripts/bench/servers.sh
serve "$TEACHER" 8791 "$OUT/serve15"
for spec in $RUNS; do
  name=${spec%%:*}; k=${spec##*:}; dir=.cache/bench/repair-$name
  [ -s "$dir/repair.json" ] && continue
  t=$(date +%s)
  .venv/bin/python scripts/bench/repair.py --run ".cache/bench/$name/run" --pool ".cache/bench/$name/pool-k$k" \
    --episodes "$k" --llm-url http://127.0.0.1:8791/v1 --out "$dir" > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  clock "repair $name" "$t"
done
stop_servers
serve "$STUDENT" 8792 "$OUT/serve05"
for spec in $RUNS; do
  name=${spec%%:*}; dir=.cache/bench/repair-$name
  for bench in ste50 dev; do
    OUT=$dir best_row http://127.0.0.1:8792/v1 "$STUDENT" "$dir" "bench/$bench" "runs-$bench" "repair-$name-$bench"
  done
done
