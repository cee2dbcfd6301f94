#!/usr/bin/env bash
# Situation paraphrases read by a stronger client (BENCHMARKS "Session 28"): the packaged 1.5B answers
# bench/dev and 78 of the 195 STE-50 toolbox items (6 a tool; ITEMS=195 for all, then dev is skipped) in the best setting (must-call, search within
# the 15 candidates + the 3 nearest approved exemplars, constrained) from both pools that
# scripts/bench/situations.sh made (run that first).
# usage: [OUT=.cache/bench/situ] flock /tmp/ste-model.lock scripts/bench/situations_client15.sh
# A row already there is kept. Results: $OUT/rows15[-ITEMS]/{dev-,}{base,situ}/ (each with its one-row situ15[-ITEMS]-*.json); once both the 78 and
# the 195 rows are there, both clients' rows in docs/bench/situations.{json,png} (scripts/bench/situations_plot.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/situ}; PORT=${PORT:-8785}; ITEMS=${ITEMS:-78}
TAG=$([ "$ITEMS" = 78 ] || echo "-$ITEMS"); BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh
CLIENT=packaged:qwen2.5-coder-1.5b-instruct
mkdir -p "$OUT/serve15c"; ln -sfn "$(realpath "${MODELS:-.cache/bench/demos/models}")" "$OUT/serve15c/models"
serve "$CLIENT" "$PORT" "$OUT/serve15c"
for data in base situ; do
  [ "$ITEMS" = 78 ] && best_row "http://127.0.0.1:$PORT/v1" "$CLIENT" "$OUT/$data" bench/dev "rows15/dev-$data" "situ15-dev-$data"
  best_row "http://127.0.0.1:$PORT/v1" "$CLIENT" "$OUT/$data" bench/ste50 "rows15$TAG/$data" "situ15$TAG-$data" "$ITEMS"
done
stop_servers
if [ -s "$OUT/rows15/situ/retrieval-search-among-candidates-constrained/summary.json" ] \
  && [ -s "$OUT/rows15-195/situ/retrieval-search-among-candidates-constrained/summary.json" ]; then
  .venv/bin/python scripts/bench/situations_plot.py "$OUT"
fi
