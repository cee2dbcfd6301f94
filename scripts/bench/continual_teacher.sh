#!/usr/bin/env bash
# Issue 17, "adapters that remember": the continual check on the 1.5B teacher's exemplars, through the CLI
# a user runs. The 13 toolbox tools in two batches (the first 7, the other 6, as scripts/bench/continual.py);
# the exemplars exported from POOL (default the pooled teacher runs of BENCHMARKS "Session 21", $GATE/lang5).
#
#   1. import batch 1's exemplars; round 1 from the base model (A1);
#   2. import batch 2's; round 2 from A1 twice at the same compute (STEPS optimiser steps each):
#      without replay (`--replay 0`) and with the default `finetune.replay = "cumulative"` (every row
#      round 1 trained on, again; the learning rate re-warms);
#   3. each adapter merged into the base weights (`adapters export --merged`) and served by a managed vLLM;
#      base, A1, A2 no replay, A2 cumulative answer the 195 STE-50 items of the 13 tools (must-call,
#      candidates-15, greedy). Retention = A2's batch-1 correct % / A1's.
#
# All rounds: `--no-gate` (the STE-50 items are the held-out set), call rows only, LR (1e-3, as "The student
# fine-tuned on the teacher's exemplars"), STEPS (12) steps of 4 rows.
# usage: [OUT=.cache/bench/continual-teacher] flock /tmp/ste-model.lock scripts/bench/continual_teacher.sh
# Results: $OUT/run/<model>/, $OUT/times.txt, docs/bench/continual_teacher.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
STUDENT=packaged:qwen2.5-coder-0.5b-instruct; PORT=${PORT:-8776}; URL=http://127.0.0.1:$PORT/v1
OUT=${OUT:-.cache/bench/continual-teacher}; GATE=${GATE:-.cache/bench/gate3}; POOL=${POOL:-$GATE/lang5}
STEPS=${STEPS:-12}; LR=${LR:-1e-3}; D=$OUT/data
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_LLM__MODEL=$STUDENT
export STE_MCP_FINETUNE__LEARNING_RATE=$LR STE_MCP_FINETUNE__HELDOUT_FRACTION=0 \
  STE_MCP_FINETUNE__INCLUDE_FINAL_ANSWER=false
mapfile -t TOOLS < <(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS), sep='\n')")
B1=("${TOOLS[@]:0:7}"); B2=("${TOOLS[@]:7}")
mkdir -p "$D" "$OUT/run" "$OUT/merged"
[ -e "$D/models" ] || [ ! -d "$GATE/models" ] || ln -s "$(realpath "$GATE/models")" "$D/models"  # no re-conversion
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh  # serve, stop_servers
took() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a "$OUT/times.txt"; }
ste() { .venv/bin/ste-mcp "$@" --data-dir "$D"; }

batch() {  # batch N TOOL...: export POOL's approved exemplars of these tools, import them
  local n=$1; shift
  .venv/bin/ste-mcp exemplars export "$OUT/batch$n.jsonl" --data-dir "$POOL" $(printf -- '--tool %s ' "$@") | tail -1
  ste exemplars import "$OUT/batch$n.jsonl" | tail -1
}
round() {  # round NAME [train flags]: train, merge; the adapter id goes to $OUT/NAME.id
  local name=$1; shift; local t=$(date +%s)
  [ -s "$OUT/$name.id" ] && return 0
  ste train --no-gate --max-steps "$STEPS" "$@" | tee "$OUT/$name.train.txt"
  local id; id=$(sed -n 's/^adapter \([^ ]*\) .*/\1/p' "$OUT/$name.train.txt")
  [ -n "$id" ] || { echo "round $name trained no adapter" >&2; exit 1; }
  took "train $name ($STEPS steps)" "$t"
  ste adapters export "$id" --merged "$OUT/merged/$name" | tail -1
  echo "$id" > "$OUT/$name.id"
}

if [ ! -s "$OUT/A1.id" ]; then batch 1 "${B1[@]}"; fi
round A1 --from-scratch
if [ ! -e "$OUT/batch2.jsonl" ]; then batch 2 "${B2[@]}"; fi
ste adapters promote "$(cat "$OUT/A1.id")" | tail -1
round A2-none --replay 0
ste adapters promote "$(cat "$OUT/A1.id")" | tail -1
round A2-cumulative

for model in base A1 A2-none A2-cumulative; do
  [ -s "$OUT/run/$model/summary.json" ] && continue
  src=$STUDENT; [ "$model" = base ] || src=$(realpath "$OUT/merged/$model")
  serve "$src" "$PORT" "$D"
  t=$(date +%s)
  .venv/bin/ste-mcp eval --bench bench/ste50 --tools "${TOOLS[@]}" --setting base --prompt must-call \
    --concurrency 8 --llm-url "$URL" --model "$src" --data-dir "$D" --out "$OUT/run/$model" | tail -2
  took "eval $model" "$t"
  stop_servers
done

B1_CSV=$(IFS=,; echo "${B1[*]}") .venv/bin/python - "$OUT" <<'PY'
import json, os, sys
from pathlib import Path
from ste_mcp.evaluate.plot import plot_settings
out = Path(sys.argv[1]); batch1 = set(os.environ["B1_CSV"].split(","))
record = {"batches": {"batch 1": sorted(batch1)}, "rows": {}}
for model in ("base", "A1", "A2-none", "A2-cumulative"):
    scores = [json.loads(l) for l in (out / "run" / model / "scores.jsonl").read_text().splitlines()]
    for name, keep in (("batch 1", lambda s: s["tool"] in batch1), ("batch 2", lambda s: s["tool"] not in batch1)):
        part = [s for s in scores if keep(s)]
        n = len(part)
        record["rows"][f"{model} · {name}"] = {
            "n": n,
            "wellformed": round(100 * sum(s["wellformed"] for s in part) / n, 1),
            "api_match": round(100 * sum(s["api_match"] for s in part) / n, 1),  # of all items here
            "correct": round(100 * sum(s["correct"] for s in part) / n, 1),
            "strict_correct": round(100 * sum(s["strict_correct"] for s in part) / n, 1),
        }
rows = record["rows"]
a1 = rows["A1 · batch 1"]["correct"]
record["retention"] = {m: round(100 * rows[f"{m} · batch 1"]["correct"] / a1, 1) if a1 else None
                       for m in ("A2-none", "A2-cumulative")}
# stricter: of the batch-1 items A1 answers right, how many each A2 still answers right; per tool
scores = {m: {s["id"]: s for s in map(json.loads, (out / "run" / m / "scores.jsonl").read_text().splitlines())}
          for m in ("base", "A1", "A2-none", "A2-cumulative")}
right = [i for i, s in scores["A1"].items() if s["tool"] in batch1 and s["correct"]]
record["A1 right on batch 1, still right"] = {
    m: f"{sum(scores[m][i]['correct'] for i in right)} of {len(right)}" for m in ("A2-none", "A2-cumulative")}
record["per tool (correct)"] = {
    tool: {m: sum(s["correct"] for s in scores[m].values() if s["tool"] == tool) for m in scores}
    for tool in sorted({s["tool"] for s in scores["A1"].values()}, key=lambda t: (t not in batch1, t))}
for model in ("A1", "A2-none", "A2-cumulative"):
    f = out / f"{model}.train.txt"
    record.setdefault("train", {})[model] = f.read_text().strip().splitlines()[-3:] if f.exists() else None
Path("docs/bench/continual_teacher.json").write_text(json.dumps(record, indent=1) + "\n")
plot_settings({k.replace(" · ", "\n"): v for k, v in rows.items()}, Path("docs/bench/continual_teacher.png"),
              title="Continual check on the teacher's exemplars: each batch after each round")
print(json.dumps(record["retention"]))
PY
