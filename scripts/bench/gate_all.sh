#!/usr/bin/env bash
# Session 42, issue 16: the description gate on the biggest pool there is. Session 41's every labelled 1.5B
# teacher run pooled and rechecked with today's checks (.cache/bench/all/optional: 478 approved exemplars over 13
# tools, where session 26's gate had 242). gate.sh as in session 26: the 1.5B writes each tool's usage notes
# from the writing half of its exemplars, the 0.5B answers the held-out half and the neighbours' held-out
# queries with and without them; the 0.5B client then answers the 195 STE-50 toolbox items with the bench's
# descriptions (base), the gated notes (what `serve` would serve) and every note (ungated), must-call, the 15
# candidates, greedy, free decoding. Then the packaged 1.5B client answers 78 of the items (6 a tool) with the
# same three. Fixed before any row ran; each row runs once. Long: the gate asks ~90-180 queries a tool on this
# pool (~8 minutes a tool on 2 cores; session 42 stopped it after 2 tools), then ~12 minutes a 0.5B row.
# usage: flock /tmp/ste-model.lock scripts/bench/gate_all.sh     Results: $OUT/runs/*, docs/bench/$NAME.{json,png}
# OUT, NAME, POOL: another run's folder, name and pool (gate_cap.sh's: OUT=.cache/bench/gate-cap NAME=gate_cap);
# rows already there are kept, so this adds the 1.5B client's rows to a finished gate.sh run.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate-all}; NAME=${NAME:-gate_all}; POOL=${POOL:-.cache/bench/all/optional}
MODELS=.cache/bench/demos/models
[ -d "$POOL/lancedb" ] || { echo "recheck_copy .cache/bench/all/checked into .cache/bench/all/optional first" >&2; exit 1; }
OUT=$OUT NAME=$NAME POOL=$POOL MODELS=$MODELS scripts/bench/gate.sh
BIN=.venv/bin/ste-mcp; WRITER=packaged:qwen2.5-coder-1.5b-instruct; WPORT=8782
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_MEMORY__DESCRIPTION_RENDER=notes
. scripts/bench/servers.sh
serve "$WRITER" "$WPORT" "$OUT/serve15"
for row in base gated ungated; do
  setting=descriptions; [ $row = base ] && setting=base
  [ -s "$OUT/runs/$row-1.5b/summary.json" ] && continue
  start=$(date +%s)
  # shellcheck disable=SC2086
  $BIN eval --bench bench/ste50 --tools $TOOLS --setting $setting --prompt must-call --concurrency 8 \
    --llm-url "http://127.0.0.1:$WPORT/v1" --model "$WRITER" --data-dir "$OUT/$row" --out "$OUT/runs/$row-1.5b" --limit 78 | tail -3
  echo "eval $row-1.5b: $(( $(date +%s) - start )) s" | tee -a "$OUT/runs/times.txt"
done
stop_servers
.venv/bin/python scripts/bench/gate_plot.py "$OUT" "$NAME"
