#!/usr/bin/env bash
# Descriptions that show the requests a tool served (memory.description_render = "requests") against the
# bench's descriptions, the spec's own and the verified-call examples (issue 16; BENCHMARKS "Descriptions
# that show requests"). usage:
#
#   URL=http://127.0.0.1:PORT/v1 BENCH=dev|ste50 scripts/bench/requests_render.sh [MODE...]
#
# URL: a running `ste-mcp model serve --model packaged:qwen2.5-coder-0.5b-instruct` (the client measured).
# The learned exemplars are the 1.5B teacher's, imported (bench/learned/toolbox-teacher-1.5b.jsonl); each
# render mode gets its own data dir under .cache/bench/requests/<mode>. BENCH=dev: bench/dev's 65 queries
# (where the default is chosen); BENCH=ste50: the 195 STE-50 items of the 13 toolbox tools (the check).
# MODE: base (the bench's descriptions) or a render mode; default: base none examples requests. A mode
# ending in "-reviewed" renders only the exemplars a person labelled good (…labels.json), as an operator's
# review (memory.approval = "manual") would leave them.
# Results: .cache/bench/requests/run-$BENCH/<mode>/summary.json; a table on stdout.
set -uo pipefail
cd "$(dirname "$0")/../.."
URL=${URL:?}; BENCH=${BENCH:-dev}; OUT=.cache/bench/requests; mkdir -p $OUT
MODES=("$@"); [ ${#MODES[@]} -gt 0 ] || MODES=(base none examples requests)
export STE_MCP_LLM__TIMEOUT_S=${TIMEOUT_S:-900} STE_MCP_LLM__RETRIES=0
SRC=bench/learned/toolbox-teacher-1.5b.jsonl
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")  # the 13 toolbox tools
.venv/bin/python scripts/bench/reviewed_exemplars.py "$SRC" "$OUT/reviewed.jsonl"
for mode in "${MODES[@]}"; do
  render=${mode%-reviewed}; setting=descriptions; file=$SRC
  [ "$render" != "$mode" ] && file=$OUT/reviewed.jsonl
  [ "$mode" = base ] && { render=none; setting=base; }
  dir=$OUT/$mode
  if [ ! -d $dir/lancedb ]; then
    .venv/bin/ste-mcp exemplars import $file --data-dir $dir | tail -1
    .venv/bin/ste-mcp descriptions render --render $render --data-dir $dir | tail -1
  fi
  t=$(date +%s)
  STE_MCP_MEMORY__DESCRIPTION_RENDER=$render .venv/bin/ste-mcp eval --bench bench/$BENCH --tools $TOOLS \
    --setting $setting --prompt must-call --concurrency 8 --llm-url "$URL" --data-dir $dir \
    --out $OUT/run-$BENCH/$mode | tail -3
  echo "$BENCH $mode: $(( $(date +%s) - t )) s" | tee -a $OUT/times.txt
done
.venv/bin/python - "$OUT/run-$BENCH" "${MODES[@]}" <<'PY'
import json, sys
from pathlib import Path
out, *modes = sys.argv[1:]
for mode in modes:
    s = json.loads((Path(out) / mode / "summary.json").read_text())
    print(f"{mode:9} n {s['n']:3}  well-formed {s['wellformed']:5.1f}  API match {s['api_match']:5.1f}  "
          f"correct {s['correct']:5.1f}  exact name {s['exact_name']:5.1f}  strict {s['strict_correct']:5.1f}")
PY
