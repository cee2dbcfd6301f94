#!/usr/bin/env bash
# Issue 17 (scale) with DRAFT's per-tool stopping: the rechecked pool of the 1.5B teacher's runs (242
# approved exemplars, scripts/bench/demos_adapter.sh) holds 2-4 originals for four tools and 13-14 for
# others. `explorer.target_exemplars = TARGET` spends the teacher's episodes only on the tools short of it,
# thinnest first, judged after each pass (`ste-mcp learn`, the packaged 1.5B in every role as the teacher
# runs of bench/learned/ were made, hindsight off), on a copy of the pool; then the 0.5B client answers
# bench/dev and the 195 STE-50 toolbox items in the best setting (must-call, search within the 15
# candidates + the 3 nearest approved exemplars, constrained) from the pool and from the grown pool, both
# rechecked with today's checks first.
#
# TEACHER_URL: a running server of the 1.5B to explore with (default: ste-mcp starts its own);
# LEARN_ONLY=1: stop after the exploration (run again for the rows: a finished learn.txt is kept);
# STUDENT_URL: a running server of the 0.5B to answer with (default: one of its own).
# usage: [OUT=.cache/bench/thin] [POOL=.cache/bench/demos/pool] [MODELS=.cache/bench/demos/models]
#        [TARGET=5] [EPISODES=3] flock /tmp/ste-model.lock scripts/bench/thin_tools.sh
# Results: $OUT/learn.txt, $OUT/recheck.txt, $OUT/times.txt, $OUT/rows/{dev-,}{pool,grown}/,
# docs/bench/thin_tools.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/thin}; POOL=${POOL:-.cache/bench/demos/pool}; MODELS=${MODELS:-.cache/bench/demos/models}
TARGET=${TARGET:-5}; EPISODES=${EPISODES:-3}; PORT=${PORT:-8784}
STUDENT=packaged:qwen2.5-coder-0.5b-instruct; TEACHER=packaged:qwen2.5-coder-1.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh  # serve, stop_servers, best_row
took() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a "$OUT/times.txt"; }
mkdir -p "$OUT"
GROWN=$OUT/grown
if [ ! -s "$OUT/learn.txt" ]; then
  rm -rf "$GROWN"; mkdir -p "$GROWN"; cp -r "$POOL/lancedb" "$GROWN/"
  ln -sfn "$(realpath "$MODELS")" "$GROWN/models"
  cat >"$OUT/teacher.toml" <<TOML
[llm]
model = "$TEACHER"
timeout_s = 900
retries = 0
${TEACHER_URL:+base_url = \"$TEACHER_URL\"}
[explorer]
num_stm_slots = 2
target_exemplars = $TARGET
[memory]
paraphrases_per_exemplar = 2
notes_rewrite_after = 0
hindsight = false
TOML
  t=$(date +%s)
  $BIN learn --episodes "$EPISODES" --no-progress --config "$OUT/teacher.toml" --data-dir "$GROWN" 2>&1 \
    | tee "$OUT/learn.txt"
  took "learn (target $TARGET, at most $EPISODES episodes)" "$t"
fi
[ -z "${LEARN_ONLY:-}" ] || exit 0

# both pools read with today's checks (an exemplar stored before a check existed is refused now)
STARTED=$OUT/pool
if [ ! -s "$OUT/recheck.txt" ]; then
  rm -rf "$STARTED"; mkdir -p "$STARTED"; cp -r "$POOL/lancedb" "$STARTED/"
  ln -sfn "$(realpath "$MODELS")" "$STARTED/models"
  for d in "$STARTED" "$GROWN"; do
    { echo "$d"; $BIN exemplars recheck --data-dir "$d" | tail -1; $BIN exemplars recheck --call --data-dir "$d" | tail -1; } \
      | tee -a "$OUT/recheck.txt"
  done
fi

URL=${STUDENT_URL:-http://127.0.0.1:$PORT/v1}
if [ -z "${STUDENT_URL:-}" ]; then
  mkdir -p "$OUT/serve05"; ln -sfn "$(realpath "$MODELS")" "$OUT/serve05/models"
  serve "$STUDENT" "$PORT" "$OUT/serve05"
fi
for data in pool grown; do
  src=$STARTED; [ "$data" = grown ] && src=$GROWN
  best_row "$URL" "$STUDENT" "$src" bench/dev "rows/dev-$data" "thin-dev-$data"
  best_row "$URL" "$STUDENT" "$src" bench/ste50 "rows/$data" "thin-$data"
done
stop_servers

.venv/bin/python - "$OUT" "$STARTED" "$GROWN" <<'PY'
import json, sys
from collections import Counter
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
out, pool, grown = map(Path, sys.argv[1:])
held = {name: ExemplarStore(open_db(d / "lancedb")).approved_originals() for name, d in (("pool", pool), ("grown", grown))}
row = "retrieval-search-among-candidates-constrained"
result = {"originals": held, "rows": {}, "per_tool": {}}
for data in ("pool", "grown"):
    for prefix in ("dev-", ""):
        run = out / "rows" / f"{prefix}{data}" / row
        s = json.loads((run / "summary.json").read_text())
        result["rows"][f"{prefix}{data}"] = {k: s.get(k) for k in ("n", "wellformed", "api_match", "correct", "strict_correct")}
        if not prefix:
            scores = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
            right, n = Counter(), Counter()
            for r in scores:
                n[r["tool"]] += 1; right[r["tool"]] += r["correct"]
            result["per_tool"][data] = {t: round(100 * right[t] / n[t], 1) for t in sorted(n)}
Path("docs/bench/thin_tools.json").write_text(json.dumps(result, indent=1))
tools = sorted(result["per_tool"]["pool"])
fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2.2]})
for i, data in enumerate(("pool", "grown")):
    a.bar([x + 0.4 * i for x in range(2)], [result["rows"][f"dev-{data}"]["correct"], result["rows"][data]["correct"]], 0.4, label=data)
    b.bar([x + 0.4 * i for x in range(len(tools))], [result["per_tool"][data][t] for t in tools], 0.4, label=data)
a.set_xticks([0.2, 1.2], ["bench/dev", "STE-50 toolbox (195)"]); a.set_ylabel("correct %"); a.legend(fontsize=8)
short = [t.split("__")[-1][-20:] for t in tools]
b.set_xticks([x + 0.2 for x in range(len(tools))], short, rotation=60, ha="right", fontsize=7)
b.set_title("correct % per tool (195 items), 0.5B, must-call, search in 15 + 3 examples, constrained", fontsize=8)
fig.tight_layout(); fig.savefig("docs/bench/thin_tools.png", dpi=120)
print(json.dumps(result["rows"], indent=1)); print(json.dumps(held, indent=1))
PY
