#!/usr/bin/env bash
# Tool search and retrieved demonstrations together (issues 16 and 17; BENCHMARKS "Search and
# demonstrations together"): the packaged 0.5B client on the 195 STE-50 items of the 13 toolbox tools,
# must-call, greedy, with the 3 nearest approved exemplars as demonstrations, shown either the bench's 15
# candidates or the top 5 of the learned tool search over all 50 STE-50 tools; and the search without
# demonstrations (base:search). The exemplars: the four
# pooled 1.5B teacher runs that scripts/bench/gate.sh imports (run that first; its data dir is read).
# A row SETTING:search:candidates ranks only each item's 15 candidates (a server in search mode serving
# just those 15 tools: `--search-among candidates`). A fourth field `constrained` decodes that row under
# the grammar that holds each reply to one call of a shown tool (`--constrained`), e.g. base:candidates::constrained.
# BENCH (bench/ste50; bench/dev to choose settings), SEARCH_K (5), DATA (the data dir copied; $OUT/gated),
# EXTRA (more eval flags for every row, e.g. --served-descriptions), LLM_URL (a running server of STUDENT
# to use instead of starting one),
# KEEP_ROWS=1 keeps a row whose summary.json is already there (delete its folder to run it again),
# SCOPE=all (every item of bench/ste50, not only the toolbox tools'), STUDENT (default the packaged 0.5B; SERVE its model folder under OUT, serve05), LIMIT (items, spread over the tools), RUNS (results folder) change the client.
# DOCS: where the rows' chart and numbers go (default docs/bench; best_row writes them beside its row).
# usage: [ROWS='retrieval:candidates …'] [NAME=search_retrieval] flock /tmp/ste-model.lock scripts/bench/search_retrieval.sh
# Results: .cache/bench/gate/runs/<setting>-<shown>[-among-candidates], $DOCS/$NAME.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate}; PORT=${PORT:-8781}; URL=http://127.0.0.1:$PORT/v1
BENCH=${BENCH:-bench/ste50}; SEARCH_K=${SEARCH_K:-5}
STUDENT=${STUDENT:-packaged:qwen2.5-coder-0.5b-instruct}; LIMIT=${LIMIT:+--limit $LIMIT}; RUNS=${RUNS:-runs}; SERVE=$OUT/${SERVE:-serve05}
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
TOOLS_ARG="--tools $TOOLS"; [ "$BENCH" = bench/ste50 ] || TOOLS_ARG=""  # bench/dev is all toolbox tools
[ "${SCOPE:-toolbox}" = all ] && TOOLS_ARG=""  # SCOPE=all: every STE-50 item (750), not the toolbox 195
DATA=${DATA:-$OUT/gated}  # whose exemplars (and served descriptions, with EXTRA=--served-descriptions)
[ -d "$DATA/lancedb" ] || { echo "run scripts/bench/gate.sh first (it imports the exemplars)" >&2; exit 1; }
rm -rf "$OUT/pooled"; mkdir -p "$OUT/pooled"; cp -r "$DATA/lancedb" "$OUT/pooled/"  # the eval's search index is written here
mkdir -p "$OUT/$RUNS"; mkdir -p "$SERVE"
if [ -n "${LLM_URL:-}" ]; then URL=$LLM_URL  # a server already serving STUDENT (several runs, one server)
else
  .venv/bin/ste-mcp model serve --data-dir "$SERVE" --model $STUDENT --port "$PORT" >"$SERVE/serve.log" 2>&1 &
  S=$!; trap 'kill $S; wait $S 2>/dev/null' EXIT
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 2; done
fi
ROWS=${ROWS:-retrieval:candidates retrieval:search base:search}; NAMES=()
for row in $ROWS; do  # SETTING:SHOWN[:AMONG[:constrained]]
  IFS=: read -r setting shown among decode <<<"$row"; among=${among:-all}; t=$(date +%s)
  name=$setting-$shown; [ "$among" = all ] || name=$name-among-$among
  [ "$setting:$shown" = base:candidates ] && name=base
  DECODE=""; [ "${decode:-}" = constrained ] && { DECODE=--constrained; name=$name-constrained; }
  NAMES+=("$name")
  if [ -n "${KEEP_ROWS:-}" ] && [ -s "$OUT/$RUNS/$name/summary.json" ]; then echo "kept $name"; continue; fi
  # shellcheck disable=SC2086
  .venv/bin/ste-mcp eval --bench "$BENCH" $TOOLS_ARG --setting $setting --shown $shown --search-k "$SEARCH_K" \
    --search-among "$among" --prompt must-call --concurrency 8 --llm-url "$URL" --model $STUDENT \
    --data-dir "$OUT/pooled" --out "$OUT/$RUNS/$name" $LIMIT $DECODE ${EXTRA:-} | tail -3
  echo "eval $name: $(( $(date +%s) - t )) s" | tee -a "$OUT/$RUNS/times.txt"
done
STUDENT=$STUDENT RUNS=$RUNS NAME=${NAME:-search_retrieval} DOCS=${DOCS:-docs/bench} .venv/bin/python - "$OUT" "${NAMES[@]}" <<'PY'
import json, os, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = Path(sys.argv[1]) / os.environ.get("RUNS", "runs")
keys = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct", "recall")
rows = {}
for name in sys.argv[2:]:  # the rows' result folders
    s = json.loads((out / name / "summary.json").read_text())
    rows[name] = {k: s.get(k) for k in keys}
Path(os.environ["DOCS"], f"{os.environ['NAME']}.json").write_text(json.dumps(rows, indent=1))
labels = {"base": "15 candidates, no demonstrations", "base-search": "top 5 of the tool search, no demonstrations",
          "retrieval-candidates": "15 candidates + 3 demonstrations",
          "retrieval-search": "top 5 of the tool search + 3 demonstrations",
          "base-search-among-candidates": "top 5 of the search within the 15, no demonstrations",
          "retrieval-search-among-candidates": "top 5 of the search within the 15 + 3 demonstrations"}
labels.update({f"{k}-constrained": f"{v}, constrained" for k, v in list(labels.items())})
fig, ax = plt.subplots(figsize=(7.5, 5))
metrics = ("correct", "api_match", "strict_correct")
for i, name in enumerate(rows):
    w = 0.8 / len(rows)
    bars = ax.bar([x + w * i for x in range(3)], [rows[name][m] for m in metrics], w, label=labels.get(name, name))
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
ax.set_xticks([x + 0.4 - 0.4 / len(rows) for x in range(3)], ["correct %", "API match %", "strict correct %"])
n = next(iter(rows.values()))["n"]
client = os.environ["STUDENT"].removeprefix("packaged:")
ax.set_title(f"STE-50 toolbox subset ({n} items), {client} client, must-call, 4 teacher runs' exemplars", fontsize=8)
ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2); ax.set_ylim(0, 85); fig.tight_layout()
fig.savefig(Path(os.environ["DOCS"], f"{os.environ['NAME']}.png"), dpi=120)
print(json.dumps(rows))
PY
