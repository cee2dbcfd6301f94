#!/usr/bin/env bash
# One client model on STE-50 with the bench's descriptions (base), with usage notes that the same model wrote
# from the 1.5B teacher's exemplars (issue 16: "never worse than base with the 1.5B"), or with those
# exemplars retrieved. usage:
#
#   flock /tmp/ste-model.lock scripts/bench/client.sh [MODEL]
#
# MODEL: default packaged:qwen2.5-coder-1.5b-instruct. Env: LIMIT (default 78 = 6 items per toolbox tool;
# 195 = all), ROWS (eval settings, default "base descriptions"; `retrieval` serves the imported exemplars),
# SCOPE (toolbox: the 13 toolbox tools' items, default; all: all 50 tools' items), SHOWN (candidates: each
# item's 15, default; search: the top 5 of the learned tool index, whose requests are the imported ones).
# One managed vLLM serves MODEL for every job (writing the notes, answering). The exemplars are imported
# from bench/learned/toolbox-teacher-1.5b.jsonl; a `descriptions` row first has the notes written unmeasured
# (`rewrite --no-gate`), as in "Usage notes and the description gate".
# Results: .cache/bench/client-<name>/run/<row>[-<scope>-<shown>]/summary.json.
set -uo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-packaged:qwen2.5-coder-1.5b-instruct}; LIMIT=${LIMIT:-78}; PORT=${PORT:-8773}; ROWS=${ROWS:-base descriptions}
SCOPE=${SCOPE:-toolbox}; SHOWN=${SHOWN:-candidates}
OUT=.cache/bench/client-${MODEL##*:}; URL=http://127.0.0.1:$PORT/v1; mkdir -p $OUT
export STE_MCP_LLM__TIMEOUT_S=${TIMEOUT_S:-900} STE_MCP_LLM__RETRIES=0 STE_MCP_MEMORY__DESCRIPTION_RENDER=notes
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")  # the 13 toolbox tools
ARGS=(--shown $SHOWN); [ "$SHOWN" = search ] && ARGS+=(--search-k 5); [ "$SCOPE" = toolbox ] && ARGS+=(--tools $TOOLS)
SUFFIX=""; [ "$SCOPE-$SHOWN" = toolbox-candidates ] || SUFFIX="-$SCOPE-$SHOWN"
.venv/bin/ste-mcp model serve --data-dir $OUT --model "$MODEL" --port $PORT > $OUT/serve.log 2>&1 &
S=$!; trap 'kill $S; wait $S' EXIT
for _ in $(seq 900); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; kill -0 $S || exit 1; sleep 2; done
clock() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a $OUT/times.txt; }
[ -d $OUT/lancedb ] || .venv/bin/ste-mcp exemplars import bench/learned/toolbox-teacher-1.5b.jsonl --data-dir $OUT | tail -1
if [[ " $ROWS " == *" descriptions "* && ! -s $OUT/notes.txt ]]; then
  t=$(date +%s)
  .venv/bin/ste-mcp descriptions rewrite --no-gate --llm-url $URL --model "$MODEL" --data-dir $OUT | tee $OUT/notes.txt
  clock "notes by $MODEL" $t
fi
for row in $ROWS; do
  t=$(date +%s)
  .venv/bin/ste-mcp eval --bench bench/ste50 "${ARGS[@]}" --limit $LIMIT --setting $row --prompt must-call \
    --concurrency 8 --llm-url $URL --model "$MODEL" --data-dir $OUT --out $OUT/run/$row$SUFFIX | tail -3
  clock "eval $row$SUFFIX" $t
done
