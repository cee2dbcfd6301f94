#!/usr/bin/env bash
# A teacher run's exemplars added to a pool the student is served, then the best setting measured (as
# session 22 did for run 9): $OUT/$BASE copied to $OUT/$NAME (BASE empty: a pool of that run alone), the
# export $RUN imported (RUN empty: none), `exemplars recheck` and `recheck --call` (as an upgraded install
# is held to today's checks); then the packaged 0.5B, must-call, search within the 15 candidates + 3
# examples, free and constrained decoding, on bench/dev first and then on the 195 toolbox items
# (BENCHES="dev": dev only), one managed vLLM (LLM_URL: one already serving the 0.5B).
# scripts/bench/pool_report.py tabulates the rows.
# usage: BASE=dates9 RUN=.cache/bench/teacher/run10.jsonl NAME=pool10 [OUT=.cache/bench/gate3] \
#        flock /tmp/ste-model.lock scripts/bench/pool_run.sh
# Results: $OUT/{dev-,}$NAME/, docs/bench/{dev-,}$NAME.json (search_retrieval.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate3}; PORT=${PORT:-8781}
: "${NAME:?the name of the new pool}"; BASE=${BASE:-}; RUN=${RUN:-}; BENCHES=${BENCHES:-dev ste50}
[ -n "$BASE$RUN" ] || { echo "BASE or RUN: a pool to copy or a run to import" >&2; exit 1; }
[ ! -e "$OUT/$NAME" ] || { echo "$OUT/$NAME exists" >&2; exit 1; }
mkdir -p "$OUT/$NAME"; [ -z "$BASE" ] || cp -r "$OUT/$BASE/lancedb" "$OUT/$NAME/"
[ -z "$RUN" ] || .venv/bin/ste-mcp exemplars import "$RUN" --data-dir "$OUT/$NAME" | tail -1
.venv/bin/ste-mcp exemplars recheck --data-dir "$OUT/$NAME" | tee "$OUT/$NAME.recheck.txt"
.venv/bin/ste-mcp exemplars recheck --call --data-dir "$OUT/$NAME" | tee -a "$OUT/$NAME.recheck.txt"
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh
if [ -z "${LLM_URL:-}" ]; then
  mkdir -p "$OUT/serve05"; serve packaged:qwen2.5-coder-0.5b-instruct "$PORT" "$OUT/serve05"
  LLM_URL=http://127.0.0.1:$PORT/v1
fi
export LLM_URL OUT ROWS="retrieval:search:candidates retrieval:search:candidates:constrained"
for bench in $BENCHES; do
  prefix=$([ "$bench" = dev ] && echo dev- || true)
  BENCH=bench/$bench DATA=$OUT/$NAME RUNS=$prefix$NAME NAME=$prefix$NAME scripts/bench/search_retrieval.sh
done
