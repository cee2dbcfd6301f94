#!/usr/bin/env bash
# STE-50 toolbox subset (195 items), packaged 0.5B client, must-call: base vs descriptions (MODE) vs retrieval.
# usage: MODE=notes flock /tmp/ste-model.lock scripts/bench/toolbox195.sh
# Needs the data dirs of scripts/bench/description_render.sh (.cache/bench/notes/<mode>) and its source
# learning run (.cache/bench/teach15). Results: .cache/bench/t195/<row>/summary.json (BENCHMARKS).
set -uo pipefail
cd "$(dirname "$0")/../.."
MODE=${MODE:?}
OUT=.cache/bench/t195; mkdir -p $OUT
PORT=8772; URL=http://127.0.0.1:$PORT/v1
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")  # the 13 toolbox tools
.venv/bin/ste-mcp model serve --data-dir .cache/bench/notes --model packaged:qwen2.5-coder-0.5b-instruct --port $PORT > $OUT/serve.log 2>&1 &
S=$!; trap 'kill $S; wait $S' EXIT
for _ in $(seq 600); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 2; done
run() { local t=$(date +%s); STE_MCP_MEMORY__DESCRIPTION_RENDER=$4 .venv/bin/ste-mcp eval --bench bench/ste50 --tools $TOOLS --setting $2 --prompt must-call --concurrency 8 --llm-url $URL --data-dir $3 --out $OUT/$1 | tail -3; echo "$1: $(( $(date +%s) - t )) s" | tee -a $OUT/times.txt; }
run base base .cache/bench/notes/none none
run desc-$MODE descriptions .cache/bench/notes/$MODE $MODE
run retrieval retrieval .cache/bench/teach15 examples
