#!/usr/bin/env bash
# The adapter and the retrieval together (issue 17, "the best learned setting"): the merged cumulative
# adapter of scripts/bench/continual_teacher.sh (A2-cumulative: every toolbox tool, trained on the pooled
# teacher exemplars) served by a managed vLLM, answering the 195 toolbox items in the best setting of
# "Search inside the served tools" (must-call, search within the 15 candidates + 3 examples from the same
# pool, free and constrained).
# usage: [MERGED=.cache/bench/continual-teacher/merged/A2-cumulative] [POOL=.cache/bench/gate3/lang5]
#        flock /tmp/ste-model.lock scripts/bench/adapter_search.sh
# Results: .cache/bench/gate3/adapter-lang5/, docs/bench/adapter_search.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
MERGED=$(realpath "${MERGED:-.cache/bench/continual-teacher/merged/A2-cumulative}"); PORT=${PORT:-8782}
POOL=${POOL:-.cache/bench/gate3/lang5}; OUT=${OUT:-.cache/bench/gate3}
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh
mkdir -p "$OUT/serve-adapter"; serve "$MERGED" "$PORT" "$OUT/serve-adapter"
STUDENT=$MERGED LLM_URL=http://127.0.0.1:$PORT/v1 OUT=$OUT BENCH=bench/ste50 DATA=$POOL RUNS=adapter-lang5 \
  NAME=adapter_search ROWS="retrieval:search:candidates retrieval:search:candidates:constrained" \
  scripts/bench/search_retrieval.sh
