#!/usr/bin/env bash
# Session 22's checks (result_date, present_arguments, a length counts characters) on the pooled teacher
# exemplars the student is served (BENCHMARKS "Session 22"): a copy of the pool of "Session 21" ($OUT/lang5:
# four teacher runs + run 8), held to today's checks as an upgraded install does it (`exemplars recheck`,
# then `recheck --call`); the same with teacher run 9 (made with these checks live) imported; then the best
# setting of "Search inside the served tools" (the packaged 0.5B, must-call, search within the 15 candidates
# + 3 examples, free and constrained) on bench/dev and on the 195 toolbox items (scripts/bench/pool_run.sh),
# one managed vLLM (LLM_URL: one already serving the 0.5B).
# usage: [OUT=.cache/bench/gate3] flock /tmp/ste-model.lock scripts/bench/dates.sh
# Results: $OUT/{dev-,}dates{5,9}/, docs/bench/{dev-,}dates{5,9}.json, docs/bench/dates.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate3}; PORT=${PORT:-8781}; RUN9=${RUN9:-.cache/bench/teacher/run9.jsonl}
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh
if [ -z "${LLM_URL:-}" ]; then
  mkdir -p "$OUT/serve05"; serve packaged:qwen2.5-coder-0.5b-instruct "$PORT" "$OUT/serve05"
  LLM_URL=http://127.0.0.1:$PORT/v1
fi
export LLM_URL OUT
BASE=lang5 NAME=dates5 scripts/bench/pool_run.sh
BASE=lang5 RUN=$RUN9 NAME=dates9 scripts/bench/pool_run.sh
.venv/bin/python scripts/bench/pool_report.py --runs "$OUT" --out docs/bench/dates \
  --row "lang5 (session 21)=lang5" --row "lang5, today's checks=dates5" --row "+ run 9=dates9" \
  --title "STE-50 toolbox subset (195), 0.5B, search within the 15 + 3 examples: session 22's checks"
