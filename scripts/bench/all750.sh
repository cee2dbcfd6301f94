#!/usr/bin/env bash
# Issue 17's second target on all 750 STE-50 items: the adapter >= the best zero-shot baseline + 10 points.
# The adapter is session 24's v1 (trained in the setting it is served in: must-call + 3 examples, merged by
# scripts/bench/demos_adapter.sh into $DEMOS/merged/demos-v1); the setting is the best one chosen on
# bench/dev (must-call, search within the 15 candidates + the 3 nearest approved exemplars of $DEMOS/pool,
# constrained). Only the 13 toolbox tools have exemplars; the other 37 are answered from their descriptions.
# Rows: the base model's zero-shot must-call under the grammar (the baseline), the base model in the best
# setting, the merged adapter in the best setting. Nothing is tuned here: every row is a setting fixed before.
# usage: [DEMOS=.cache/bench/demos] [OUT=.cache/bench/all750] [MODELS="base demos-v1"] flock /tmp/ste-model.lock scripts/bench/all750.sh
# Results: $OUT/times.txt, $OUT/{base,demos-v1}/<row>/, docs/bench/all750.{json,png} (all750_plot.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMOS=${DEMOS:-.cache/bench/demos}; OUT=${OUT:-.cache/bench/all750}; PORT=${PORT:-8785}
STUDENT=packaged:qwen2.5-coder-0.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh  # serve, stop_servers
mkdir -p "$OUT"
for model in ${MODELS:-base demos-v1}; do  # a model whose rows are all there is not asked again
  [ -s "$OUT/$model/retrieval-search-among-candidates-constrained/summary.json" ] && continue
  src=$STUDENT; rows="base:candidates::constrained retrieval:search:candidates:constrained"
  [ "$model" = base ] || { src=$(realpath "$DEMOS/merged/$model"); rows=retrieval:search:candidates:constrained; }
  mkdir -p "$OUT/serve-$model"; ln -sfn "$(realpath "$DEMOS/models")" "$OUT/serve-$model/models"
  serve "$src" "$PORT" "$OUT/serve-$model"
  t=$(date +%s)
  OUT=$OUT SCOPE=all KEEP_ROWS=1 STUDENT=$src LLM_URL=http://127.0.0.1:$PORT/v1 BENCH=bench/ste50 \
    DATA=$DEMOS/pool RUNS=$model ROWS=$rows NAME=all750-$model DOCS=$OUT/$model scripts/bench/search_retrieval.sh
  echo "eval $model (all 750): $(( $(date +%s) - t )) s" | tee -a "$OUT/times.txt"
  stop_servers
done
.venv/bin/python scripts/bench/all750_plot.py "$OUT" >/dev/null
