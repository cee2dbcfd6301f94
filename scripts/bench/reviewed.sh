#!/usr/bin/env bash
# What an operator's review buys: retrieval on the STE-50 toolbox subset (195 items, must-call, packaged 0.5B
# client) with every exemplar the 1.5B teacher's judge approved vs only those a person labelled good
# (bench/learned/toolbox-teacher-1.5b.labels.json). usage: URL=http://127.0.0.1:PORT/v1 scripts/bench/reviewed.sh
# (a running `ste-mcp model serve --model packaged:qwen2.5-coder-0.5b-instruct`). Results: .cache/bench/reviewed/*/run
set -uo pipefail
cd "$(dirname "$0")/../.."
URL=${URL:?}; OUT=.cache/bench/reviewed; mkdir -p $OUT
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")  # the 13 toolbox tools
SRC=bench/learned/toolbox-teacher-1.5b.jsonl
.venv/bin/python scripts/bench/reviewed_exemplars.py "$SRC" "$OUT/good.jsonl"
for row in all good; do
  file=$SRC; [ $row = good ] && file=$OUT/good.jsonl
  [ -d $OUT/$row/lancedb ] || .venv/bin/ste-mcp exemplars import $file --data-dir $OUT/$row | tail -1
  t=$(date +%s)
  .venv/bin/ste-mcp eval --bench bench/ste50 --tools $TOOLS --setting retrieval --prompt must-call --concurrency 8 \
    --llm-url $URL --data-dir $OUT/$row --out $OUT/$row/run | tail -3
  echo "$row: $(( $(date +%s) - t )) s" | tee -a $OUT/times.txt
done
# per-tool-group numbers and the plot (docs/bench/reviewed.json, .png)
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = Path(sys.argv[1])
rows = [json.loads(line) for line in open(out / "good.jsonl") if line.strip()][1:]
reviewed = sorted({r["tool"] for r in rows})  # the tools that keep reviewed exemplars
result = {"reviewed_tools": reviewed, "rows": {}}
for row in ("all", "good"):
    scores = [json.loads(line) for line in open(out / row / "run" / "scores.jsonl")]
    groups = {"all 195": scores, "tools with reviewed exemplars": [s for s in scores if s["tool"] in reviewed],
              "tools without": [s for s in scores if s["tool"] not in reviewed]}
    result["rows"][row] = {
        g: {"n": len(v), **{m: round(100 * sum(s[m] for s in v) / len(v), 1) for m in ("correct", "api_match", "strict_correct")}}
        for g, v in groups.items()
    }
Path("docs/bench/reviewed.json").write_text(json.dumps(result, indent=1))
fig, ax = plt.subplots(figsize=(7, 3.6))
names = list(result["rows"]["all"])
for i, (row, label) in enumerate((("all", "every exemplar the judge approved (23 + 45)"), ("good", "only those a person labelled good (7 + 13)"))):
    vals = [result["rows"][row][g]["correct"] for g in names]
    bars = ax.bar([x + 0.38 * i for x in range(len(names))], vals, 0.38, label=label)
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
ax.axhline(16.9, color="grey", ls="--", lw=1, label="base, best zero-shot prompt (16.9, all 195)")
ax.set_xticks([x + 0.19 for x in range(len(names))], [f"{g}\n(n={result['rows']['all'][g]['n']})" for g in names], fontsize=8)
ax.set_ylabel("% correct"); ax.set_title("Retrieval on the STE-50 toolbox subset, packaged 0.5B client", fontsize=9)
ax.legend(fontsize=7, loc="upper right"); ax.set_ylim(0, 55); fig.tight_layout()
fig.savefig("docs/bench/reviewed.png", dpi=120)
print(json.dumps(result["rows"], indent=1))
PY
