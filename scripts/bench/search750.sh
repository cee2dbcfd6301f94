#!/usr/bin/env bash
# All 750 STE-50 items, --shown search (the learned tool index's top 5), must-call prompt, packaged 0.5B client.
# The index: the bench's 50 tool descriptions + the approved requests of the 1.5B teacher's exemplars
# (bench/learned/toolbox-teacher-1.5b.jsonl, 13 toolbox tools; no STE-50 query is ever indexed).
# usage: flock /tmp/ste-model.lock scripts/bench/search750.sh   Results: .cache/bench/search750/run/summary.json
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=.cache/bench/search750; DATA=$OUT/data; mkdir -p $OUT
PORT=8773; URL=http://127.0.0.1:$PORT/v1
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
[ -d $DATA/lancedb ] || .venv/bin/ste-mcp exemplars import bench/learned/toolbox-teacher-1.5b.jsonl --data-dir $DATA
.venv/bin/ste-mcp model serve --data-dir $DATA --model packaged:qwen2.5-coder-0.5b-instruct --port $PORT > $OUT/serve.log 2>&1 &
S=$!; trap 'kill $S; wait $S' EXIT
for _ in $(seq 600); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 2; done
t=$(date +%s)
.venv/bin/ste-mcp eval --bench bench/ste50 --shown search --search-k 5 --prompt must-call --concurrency 8 \
  --llm-url $URL --data-dir $DATA --out $OUT/run ${LIMIT:+--limit $LIMIT} | tail -5
echo "search750: $(( $(date +%s) - t )) s" | tee -a $OUT/times.txt
# the summary and a plot beside the best zero-shot setting of session 8 (docs/bench/search750.json, .png)
.venv/bin/python - $OUT/run/summary.json <<'PY'
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
s = json.loads(Path(sys.argv[1]).read_text())
keep = ("n", "wellformed", "api_match", "api_match_all", "correct", "exact_name", "strict_correct", "recall", "errors")
Path("docs/bench/search750.json").write_text(json.dumps({k: s[k] for k in keep}, indent=1))
rows = {"15 candidates\n(best zero-shot, session 8)": (49.0, 29.3), "top 5 of the tool search\n(all 50 tools behind it)": (s["api_match"], s["correct"])}
fig, ax = plt.subplots(figsize=(6, 3.4))
for i, metric in enumerate(("API match % (of well-formed)", "correct %")):
    bars = ax.bar([x + 0.38 * i for x in range(len(rows))], [v[i] for v in rows.values()], 0.38, label=metric)
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
ax.axhline(50, color="grey", ls="--", lw=1, label="issue 16 target: API match 50 %")
ax.set_xticks([x + 0.19 for x in range(len(rows))], list(rows), fontsize=8)
ax.set_ylim(0, 80); ax.legend(fontsize=7); ax.set_title("STE-50, all 750 items, packaged 0.5B client, must-call", fontsize=9)
fig.tight_layout(); fig.savefig("docs/bench/search750.png", dpi=120)
PY
