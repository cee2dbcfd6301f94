#!/usr/bin/env bash
# Issue 17: the 0.5B student fine-tuned on the 1.5B teacher's exemplars, against the same student with the
# same exemplars retrieved and with none (the best zero-shot prompt). usage:
#
#   flock /tmp/ste-model.lock scripts/bench/teacher_adapter.sh
#
# 1. import bench/learned/toolbox-teacher-1.5b.jsonl (23 originals + 45 paraphrases, 13 toolbox tools; the
#    hand labels are beside it) into a fresh data dir;
# 2. one training round from the base model (`ste-mcp train --no-gate --from-scratch`, LoRA defaults; STEPS
#    optimiser steps at LR; no held-out split: the eval's STE-50 items are the held-out set; call rows only
#    unless FINAL=1), then the adapter merged into the base weights (`adapters export --merged`);
# 3. the 78 toolbox items (LIMIT), must-call prompt, candidates-15, greedy: ROWS (default "base retrieval")
#    on the base model, then MERGED_ROWS (default the same) on the merged folder, named adapter and
#    adapter-retrieval (one managed vLLM at a time). SCOPE=all: the items of all 50 tools, not only the 13
#    toolbox tools' (LIMIT=750: every item).
# Results: .cache/bench/teacher-adapter/run/<row>[-all]/summary.json and times.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
STUDENT=packaged:qwen2.5-coder-0.5b-instruct; LIMIT=${LIMIT:-78}; PORT=${PORT:-8774}
STEPS=${STEPS:-21}; LR=${LR:-1e-3}; FINAL=${FINAL:-0}; ROWS=${ROWS-base retrieval}
MERGED_ROWS=${MERGED_ROWS-base retrieval}; SCOPE=${SCOPE:-toolbox}
OUT=${OUT:-.cache/bench/teacher-adapter}; URL=http://127.0.0.1:$PORT/v1; mkdir -p $OUT
export STE_MCP_LLM__TIMEOUT_S=${TIMEOUT_S:-900} STE_MCP_LLM__RETRIES=0 STE_MCP_LLM__MODEL=$STUDENT
export STE_MCP_FINETUNE__LEARNING_RATE=$LR STE_MCP_FINETUNE__HELDOUT_FRACTION=0 \
  STE_MCP_FINETUNE__INCLUDE_FINAL_ANSWER=$([ "$FINAL" = 1 ] && echo true || echo false)
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
SCOPED=(--tools $TOOLS); SUFFIX=""; [ "$SCOPE" = all ] && { SCOPED=(); SUFFIX=-all; }
clock() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a $OUT/times.txt; }

serve() {  # serve() MODEL: a managed vLLM on PORT until stop()
  .venv/bin/ste-mcp model serve --data-dir $OUT --model "$1" --port $PORT > $OUT/serve.log 2>&1 &
  S=$!
  for _ in $(seq 900); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && return 0; kill -0 $S || exit 1; sleep 2; done
  exit 1
}
stop() { kill $S; wait $S; }
trap '[ -n "${S:-}" ] && kill $S 2>/dev/null' EXIT
evaluate() {  # evaluate() NAME SETTING MODEL
  local t=$(date +%s)
  .venv/bin/ste-mcp eval --bench bench/ste50 "${SCOPED[@]}" --limit $LIMIT --setting $2 --prompt must-call \
    --concurrency 8 --llm-url $URL --model "$3" --data-dir $OUT --out $OUT/run/$1$SUFFIX | tail -3
  clock "eval $1$SUFFIX" $t
}

[ -d $OUT/lancedb ] || .venv/bin/ste-mcp exemplars import bench/learned/toolbox-teacher-1.5b.jsonl --data-dir $OUT | tail -1
if [ ! -d $OUT/merged ]; then
  t=$(date +%s)
  .venv/bin/ste-mcp train --no-gate --from-scratch --max-steps $STEPS --data-dir $OUT | tee $OUT/train.txt
  clock "train $STEPS steps" $t
  id=$(sed -n 's/^adapter \([^ ]*\) .*/\1/p' $OUT/train.txt)
  [ -n "$id" ] || { echo "no adapter trained" >&2; exit 1; }
  t=$(date +%s)
  .venv/bin/ste-mcp adapters export "$id" --merged $OUT/merged --data-dir $OUT | tail -2
  clock "merge" $t
fi
if [ -n "$ROWS" ]; then
  serve $STUDENT
  for row in $ROWS; do evaluate $row $row $STUDENT; done
  stop
fi
if [ -n "$MERGED_ROWS" ]; then
  MERGED=$(realpath $OUT/merged)
  serve $MERGED
  for row in $MERGED_ROWS; do
    name=adapter; [ $row = base ] || name=adapter-$row
    evaluate $name $row $MERGED
  done
  stop
fi
# every row measured so far -> docs/bench/teacher_adapter.json; the toolbox rows -> teacher_adapter.png
.venv/bin/python - $OUT/run <<'PY'
import json, sys
from pathlib import Path
from ste_mcp.evaluate.plot import plot_settings
runs = Path(sys.argv[1])
keep = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct", "errors")
rows = {}
for path in sorted(runs.glob("*/summary.json")):
    s = json.loads(path.read_text())
    rows[path.parent.name] = {k: s[k] for k in keep} | {"per_tool_correct": {t: v["correct"] for t, v in s["per_tool"].items()}}
Path("docs/bench/teacher_adapter.json").write_text(json.dumps(rows, indent=1))
labels = {"base": "base\n(must-call)", "retrieval": "retrieval", "adapter": "adapter", "adapter-retrieval": "adapter\n+ retrieval"}
shown = {label: rows[name] for name, label in labels.items() if name in rows}
if len(shown) > 1:
    plot_settings(shown, "docs/bench/teacher_adapter.png", title="0.5B student, 78 toolbox items: the 1.5B teacher's 68 exemplars")
PY
