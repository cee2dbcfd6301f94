#!/usr/bin/env bash
# What explorer.contrast_tools buys the student: retrieval on the STE-50 toolbox subset (195 items, must-call,
# candidates-15, greedy, packaged 0.5B client) from teacher runs that imagined each request with the tool's 3
# nearest other tools in view, beside the runs without (docs/bench/hindsight.json, hindsight off).
# usage: URL=http://127.0.0.1:PORT/v1 scripts/bench/contrast.sh  (a running `ste-mcp model serve --model
# packaged:qwen2.5-coder-0.5b-instruct`). Inputs, `ste-mcp exemplars export` of `ste-mcp learn --episodes 1` runs of
# the packaged 1.5B (config: .cache/bench/contrast.toml, as the hindsight-off runs plus explorer.contrast_tools = 3):
#   .cache/bench/contrast/run4.jsonl, run5.jsonl (contrast), .cache/bench/hindsight/imagined.jsonl (run 1, without).
# ROWS: run4 (alone), run1+4, run4+5, runs1245 (runs 1, 2, 4, 5 pooled; run 2: .cache/bench/hindsight/control.jsonl),
# those that have their inputs. Writes docs/bench/contrast.json and .png.
set -uo pipefail
cd "$(dirname "$0")/../.."
URL=${URL:?}; OUT=.cache/bench/contrast; ROWS=${ROWS:-run4 run1+4 run4+5 runs1245}
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
for row in $ROWS; do
  case $row in
    run4) files="$OUT/run4.jsonl" ;;
    run1+4) files=".cache/bench/hindsight/imagined.jsonl $OUT/run4.jsonl" ;;
    run4+5) files="$OUT/run4.jsonl $OUT/run5.jsonl" ;;
    runs1245) files=".cache/bench/hindsight/imagined.jsonl .cache/bench/hindsight/control.jsonl $OUT/run4.jsonl $OUT/run5.jsonl" ;;
  esac
  missing=0; for file in $files; do [ -f $file ] || missing=1; done
  [ $missing = 1 ] && { echo "$row: inputs missing, skipped"; continue; }
  dir=$OUT/eval-$row
  if [ ! -d $dir/lancedb ]; then
    for file in $files; do .venv/bin/ste-mcp exemplars import $file --data-dir $dir | tail -1; done
  fi
  t=$(date +%s)
  .venv/bin/ste-mcp eval --bench bench/ste50 --tools $TOOLS --setting retrieval --prompt must-call \
    --concurrency 8 --llm-url $URL --data-dir $dir --out $dir/run | grep overall
  echo "$row: $(( $(date +%s) - t )) s" | tee -a $OUT/times.txt
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
out = Path(sys.argv[1])
metrics = ("wellformed", "api_match", "correct", "exact_name", "strict_correct")
def row(dir: Path) -> dict:
    scores = [json.loads(line) for line in open(dir / "run" / "scores.jsonl")]
    served = ExemplarStore(open_db(dir / "lancedb")).approved()
    originals = sum(ex.variant_of is None for ex in served)
    return {"n": len(scores), "originals": originals, "paraphrases": len(served) - originals,
            **{m: round(100 * sum(s[m] for s in scores) / len(scores), 1) for m in metrics}}
rows = {}
without = json.loads(Path("docs/bench/hindsight.json").read_text())["rows"]
for name, label in (("control", "run 2 (no contrast)"), ("both_off", "runs 1 + 2 (no contrast)")):
    rows[label] = without[name]
for name, label in (("run4", "run 4 (contrast)"), ("run1+4", "runs 1 + 4 (4: contrast)"),
                    ("run4+5", "runs 4 + 5 (contrast)"), ("runs1245", "runs 1 + 2 + 4 + 5 pooled")):
    if (out / f"eval-{name}" / "run" / "scores.jsonl").exists():
        rows[label] = row(out / f"eval-{name}")
Path("docs/bench/contrast.json").write_text(json.dumps(rows, indent=1))
shown = ["api_match", "correct", "strict_correct"]
fig, ax = plt.subplots(figsize=(10, 4))
width = 0.8 / max(1, len(rows))
for i, (label, vals) in enumerate(rows.items()):
    bars = ax.bar([x + width * i for x in range(len(shown))], [vals[m] for m in shown], width,
                  label=f"{label}: {vals['originals']} + {vals['paraphrases']} paraphrases")
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
ax.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(shown))], ["API match %", "correct %", "strict correct %"])
ax.set_title("Retrieval from the 1.5B teacher's exemplars, explorer.contrast_tools 0 / 3: 0.5B client, 195 toolbox items", fontsize=9)
ax.set_ylim(0, 75); ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1)); fig.tight_layout()
fig.savefig("docs/bench/contrast.png", dpi=120)
print(json.dumps(rows, indent=1))
PY
