#!/usr/bin/env bash
# Session 45, issue 16: the description gate asking under the grammar (memory.gate_decoding = constrained, the new
# default) against the same notes the free gate judged. Session 43's notes (OUT_FROM=.cache/bench/gate-referral:
# the 1.5B wrote them from the 478-exemplar pool, the 0.5B gated them freely) are held fixed: a copy of its store
# has every tool rolled back to its original description, then each tool's notes version is measured again
# (`ste-mcp descriptions regate TOOL --version N`) by the 0.5B under the grammar, in the rewrite's order, on the
# same held-out split and sample — only the decoding differs. If the set it promotes differs from the free gate's
# under today's rule (gate_veto.sh's served set), the 0.5B client answers the 195 STE-50 toolbox items and the
# 1.5B client 78 of them with it, under the grammar; the base rows are gate_veto.sh's (same bench descriptions,
# same decoding). Fixed before any row ran; each row runs once.
# usage: flock /tmp/ste-model.lock scripts/bench/gate_grammar.sh     Results: $OUT/runs/*
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate-grammar}; OUT_FROM=${OUT_FROM:-.cache/bench/gate-referral}
VETO=${VETO:-.cache/bench/gate-veto}
PORT=8781; WPORT=8782; URL=http://127.0.0.1:$PORT/v1; WURL=http://127.0.0.1:$WPORT/v1
STUDENT=packaged:qwen2.5-coder-0.5b-instruct; STRONG=packaged:qwen2.5-coder-1.5b-instruct
MODELS=${MODELS:-.cache/bench/demos/models}; BIN=.venv/bin/ste-mcp
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_MEMORY__DESCRIPTION_RENDER=notes
export STE_MCP_MEMORY__GATE_DECODING=constrained
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
mkdir -p "$OUT/runs"
for row in base-c base-1.5b-c; do
  [ -s "$OUT/runs/$row/summary.json" ] || cp -r "$VETO/runs/$row" "$OUT/runs/$row"
done
notes_version() {  # TOOL: the version number of the tool's notes candidate in $OUT/gated, or nothing
  .venv/bin/python - "$OUT/gated" "$1" <<'PY'
import sys
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import DescriptionStore
versions = [v for v in DescriptionStore(open_db(sys.argv[1] + "/lancedb")).history(sys.argv[2])
            if v.reason.startswith("notes v")]
print(versions[-1].version if versions else "")
PY
}
for dir in gated serve05 serve15; do
  mkdir -p "$OUT/$dir"; [ -e "$OUT/$dir/models" ] || ln -s "$(realpath "$MODELS")" "$OUT/$dir/models"
done
# shellcheck source=scripts/bench/servers.sh
. scripts/bench/servers.sh
serve "$STUDENT" "$PORT" "$OUT/serve05"
if [ ! -s "$OUT/runs/regate.txt" ]; then
  rm -rf "$OUT/gated/lancedb"; cp -r "$OUT_FROM/gated/lancedb" "$OUT/gated/"
  for tool in $TOOLS; do  # every tool back to its original description
    $BIN descriptions rollback "$tool" --to 1 --data-dir "$OUT/gated" 2>&1 | tail -1 || true
  done
  start=$(date +%s)
  for tool in $TOOLS; do
    version=$(notes_version "$tool"); [ -n "$version" ] || continue
    PYTHONUNBUFFERED=1 $BIN descriptions regate "$tool" --version "$version" --data-dir "$OUT/gated" \
      --llm-url "$URL" --model "$STUDENT" 2>&1 | while IFS= read -r line; do echo "$(date +%T) $line"; done \
      | tee -a "$OUT/runs/regate.part"
  done
  mv "$OUT/runs/regate.part" "$OUT/runs/regate.txt"
  clock "regate under the grammar (0.5B)" "$start"
fi
for tool in $TOOLS; do $BIN descriptions history "$tool" --data-dir "$OUT/gated" 2>/dev/null || true; done \
  > "$OUT/runs/history.txt"
served() {  # DIR: the tools whose served text carries usage notes
  .venv/bin/python - "$1" <<'PY'
import sys
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import NOTES_HEADER, DescriptionStore
store = DescriptionStore(open_db(sys.argv[1] + "/lancedb"))
served = {t: store.served(t) for t in store.current_all()}
print(" ".join(sorted(t for t, v in served.items() if v is not None and NOTES_HEADER in v.text)))
PY
}
ours=$(served "$OUT/gated"); theirs=$(served "$VETO/gated")
echo "served with notes, grammar gate: [$ours]; free gate under today's rule: [$theirs]" | tee "$OUT/runs/served.txt"
if [ "$ours" != "$theirs" ]; then
  run_eval() {  # NAME DATA_DIR MODEL URL LIMIT
    [ -s "$OUT/runs/$1/summary.json" ] && return 0
    local start; start=$(date +%s)
    # shellcheck disable=SC2086
    $BIN eval --bench bench/ste50 --tools $TOOLS --setting descriptions --prompt must-call --concurrency 8 \
      --llm-url "$4" --model "$3" --data-dir "$2" --out "$OUT/runs/$1" ${5:+--limit $5} --decoding constrained | tail -3
    clock "eval $1" "$start"
  }
  run_eval gated-c "$OUT/gated" "$STUDENT" "$URL" ""
  kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
  serve "$STRONG" "$WPORT" "$OUT/serve15"
  run_eval gated-1.5b-c "$OUT/gated" "$STRONG" "$WURL" 78
fi
stop_servers
