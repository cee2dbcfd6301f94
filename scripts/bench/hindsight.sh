#!/usr/bin/env bash
# What hindsight buys the student: retrieval on the STE-50 toolbox subset (195 items, must-call, candidates-15,
# greedy, packaged 0.5B client) with the exemplars of the two arms of scripts/bench/hindsight.py (the 1.5B
# teacher's trials replayed through the judge pipeline with memory.hindsight off / on).
# usage: URL=http://127.0.0.1:PORT/v1 scripts/bench/hindsight.sh  (a running `ste-mcp model serve --model
# packaged:qwen2.5-coder-0.5b-instruct`; .cache/bench/hindsight/{imagined,hindsight}.jsonl from hindsight.py, and
# fresh.jsonl: `ste-mcp exemplars export` of a new `ste-mcp learn` run with hindsight on).
# control.jsonl: the same of a new run with hindsight off. "both" serves hindsight.jsonl and fresh.jsonl together
# (two teacher runs, hindsight on), "both_off" imagined.jsonl and control.jsonl (two runs, hindsight off).
# ROWS (default: all six), LIMIT (default all 195). ADAPTER_URL + ADAPTER_MODEL (a `ste-mcp model serve` of a merged
# adapter folder and its path): also both and both_off on that model. Writes docs/bench/hindsight.json and .png.
set -uo pipefail
cd "$(dirname "$0")/../.."
URL=${URL:?}; OUT=.cache/bench/hindsight; ROWS=${ROWS:-imagined hindsight fresh control both both_off}; LIMIT=${LIMIT:-195}
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")  # the 13 toolbox tools
for row in $ROWS; do
  dir=$OUT/eval-$row
  case $row in
    both) files="$OUT/hindsight.jsonl $OUT/fresh.jsonl" ;;
    both_off) files="$OUT/imagined.jsonl $OUT/control.jsonl" ;;
    *) files=$OUT/$row.jsonl ;;
  esac
  if [ ! -d $dir/lancedb ]; then
    for file in $files; do .venv/bin/ste-mcp exemplars import $file --data-dir $dir | tail -1; done
  fi
  t=$(date +%s)
  .venv/bin/ste-mcp eval --bench bench/ste50 --tools $TOOLS --limit $LIMIT --setting retrieval --prompt must-call \
    --concurrency 8 --llm-url $URL --data-dir $dir --out $dir/run | tail -3
  echo "$row: $(( $(date +%s) - t )) s" | tee -a $OUT/times.txt
done
if [ -n "${ADAPTER_URL:-}" ]; then
  for row in both_off both; do
    .venv/bin/ste-mcp eval --bench bench/ste50 --tools $TOOLS --limit $LIMIT --setting retrieval --prompt must-call \
      --concurrency 8 --llm-url $ADAPTER_URL --model "${ADAPTER_MODEL:?}" --data-dir $OUT/eval-$row \
      --out $OUT/eval-adapter-$row/run | tail -3
  done
fi
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = Path(sys.argv[1])
replay = json.loads((out / "hindsight.json").read_text())
result = {"replay": {k: replay[k] for k in ("model", "trials", "arms")}, "rows": {}}
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
for row in ("imagined", "hindsight", "control", "fresh", "both_off", "both", "adapter-both_off", "adapter-both"):
    run = out / f"eval-{row}" / "run" / "scores.jsonl"
    if not run.exists():
        continue
    scores = [json.loads(line) for line in open(run)]
    served = ExemplarStore(open_db(out / f"eval-{row.removeprefix('adapter-')}" / "lancedb")).approved()
    originals = sum(ex.variant_of is None for ex in served)
    result["rows"][row] = {"n": len(scores), "originals": originals, "paraphrases": len(served) - originals, **{
        m: round(100 * sum(s[m] for s in scores) / len(scores), 1)
        for m in ("wellformed", "api_match", "correct", "exact_name", "strict_correct")}}
Path("docs/bench/hindsight.json").write_text(json.dumps(result, indent=1))
metrics = ["api_match", "correct", "strict_correct"]
fig, ax = plt.subplots(figsize=(11, 4))
labels = {"imagined": "run 1 replayed, hindsight off", "hindsight": "run 1 replayed, hindsight on",
          "control": "run 2, hindsight off", "fresh": "run 3, hindsight on",
          "both_off": "runs 1 + 2, hindsight off", "both": "runs 1 + 3, hindsight on",
          "adapter-both_off": "adapter + runs 1 + 2, hindsight off", "adapter-both": "adapter + runs 1 + 3, hindsight on"}
width = 0.8 / max(1, len(result["rows"]))
for i, (row, vals) in enumerate(result["rows"].items()):
    bars = ax.bar([x + width * i for x in range(len(metrics))], [vals[m] for m in metrics], width,
                  label=f"{labels[row]}: {vals['originals']} + {vals['paraphrases']} paraphrases")
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
ax.set_xticks([x + width * (len(result["rows"]) - 1) / 2 for x in range(len(metrics))],
              ["API match %", "correct %", "strict correct %"])
n = next(iter(result["rows"].values()))["n"] if result["rows"] else 0
ax.set_title(f"Retrieval from the 1.5B teacher's exemplars, memory.hindsight off / on: 0.5B client, {n} toolbox items", fontsize=9)
ax.set_ylim(0, 70); ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1)); fig.tight_layout()
fig.savefig("docs/bench/hindsight.png", dpi=120)
print(json.dumps(result, indent=1))
PY
