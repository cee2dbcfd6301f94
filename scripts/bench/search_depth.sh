#!/usr/bin/env bash
# Session 42: the tool search reads past a crowd of one tool's requests (ToolIndex.search returns k tools).
# The pool of session 41's all_runs.sh ("checked": every labelled 1.5B teacher run pooled, rechecked with
# named_terms; 480 approved exemplars), unchanged; the packaged 0.5B student in the best setting (must-call,
# search within the 15 candidates + the 3 nearest approved exemplars, constrained, greedy) on the 195 STE-50
# toolbox items and bench/dev, one managed vLLM-CPU. The rows it is compared with are all_runs.sh's on the same
# pool, whose search showed 4.2 tools on average (scripts/bench/search_depth.py). Fixed before any row ran;
# each row runs once.
# usage: flock /tmp/ste-model.lock scripts/bench/search_depth.sh     Results: .cache/bench/all/deep/runs-*
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=.cache/bench/all/deep; PORT=${PORT:-8797}
MODELS=.cache/bench/demos/models; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
. scripts/bench/servers.sh
mkdir -p "$OUT/serve05"; ln -sfn "$(realpath "$MODELS")" "$OUT/serve05/models"
serve "$STUDENT" "$PORT" "$OUT/serve05"
for bench in ste50 dev; do
  best_row "http://127.0.0.1:$PORT/v1" "$STUDENT" .cache/bench/all/checked "bench/$bench" "runs-$bench" "deep-$bench"
done
stop_servers
