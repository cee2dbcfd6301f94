#!/usr/bin/env bash
# Issue 17, item 2: the paper's ablations at a size a laptop affords. Each variant is one teacher run
# (scripts/bench/teacher.sh: the packaged 1.5B in every role over the 13 toolbox tools, hindsight off) of
# 2 episodes × 2 trials per tool, one episode of a tool at a time so that the second reads the first's
# long-term memory (explorer.tool_concurrency = 1):
#   full       STE as the product runs it;
#   noltm      no long-term memory: the second episode's imagination prompt lists no earlier request
#              (explorer.ltm_max_items = 0; the explorer still refuses to repeat a request word for word);
#   noreflect  no reflection: no trial is asked whether it worked (explorer.reflect = false), requests are
#              remembered unmarked;
#   nostm      no short-term memory: 4 episodes × 1 trial, so no trial sees another's conversation (the
#              same number of trials; long-term memory kept).
# Each run's export is imported into a fresh store and rechecked (teacher_pool), then the packaged 0.5B student
# answers in the best setting (must-call, search within the 15 candidates + the 3 nearest approved exemplars,
# constrained, greedy) on the 195 STE-50 toolbox items and bench/dev (65), one managed vLLM-CPU for all rows.
# usage: [OUT=.cache/bench/ablation] [VARIANTS="full noltm noreflect nostm"] flock /tmp/ste-model.lock scripts/bench/ablation.sh
# Results: $OUT/<variant>{.jsonl,.summary.json,.time}, $OUT/runs-*/, docs/bench/ablation.{json,png} (ablation_plot.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/ablation}; VARIANTS=${VARIANTS:-full noltm noreflect nostm}; PORT=${PORT:-8787}
CONVERTED=${CONVERTED:-.cache/bench/demos/models}; STUDENT=packaged:qwen2.5-coder-0.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh; . scripts/bench/pool.sh  # serve, best_row; teacher_pool
mkdir -p "$OUT" "$CONVERTED"
for v in $VARIANTS; do
  [ -s "$OUT/$v.jsonl" ] && continue
  one=$'tool_concurrency = 1'
  case $v in
    full) episodes=2 slots=2 explorer=$one ;;
    noltm) episodes=2 slots=2 explorer=$one$'\nltm_max_items = 0' ;;
    noreflect) episodes=2 slots=2 explorer=$one$'\nreflect = false' ;;
    nostm) episodes=4 slots=1 explorer=$one ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  rm -rf "${OUT:?}/$v"
  OUT=$OUT NAME=$v EPISODES=$episodes SLOTS=$slots EXPLORER=$explorer MODELS=$OUT/models scripts/bench/teacher.sh
done
for v in $VARIANTS; do teacher_pool "$OUT/pool-$v" "$CONVERTED" "$OUT/$v.jsonl"; done

mkdir -p "$OUT/serve"; ln -sfn "$(realpath "$CONVERTED")" "$OUT/serve/models"
serve "$STUDENT" "$PORT" "$OUT/serve"
URL=http://127.0.0.1:$PORT/v1
for v in $VARIANTS; do
  for bench in ste50 dev; do best_row "$URL" "$STUDENT" "$OUT/pool-$v" "bench/$bench" "runs-$v-$bench" "ablation-$v-$bench"; done
done
stop_servers

.venv/bin/python - "$OUT" $VARIANTS <<'PY'
import json, sys
from pathlib import Path
out, variants = Path(sys.argv[1]), sys.argv[2:]
keep = ("n", "wellformed", "api_match", "correct", "strict_correct")
rows = []
for v in variants:
    pool = out / f"pool-{v}"
    if not (out / f"runs-{v}-dev").exists():
        continue
    summary = json.loads((out / f"{v}.summary.json").read_text())
    wall = int((out / f"{v}.time").read_text().split()[1])
    best = "retrieval-search-among-candidates-constrained"
    rows.append({"variant": v, "teacher_wall_s": wall, "teacher": summary,
                 **{b: {k: json.loads((out / f"runs-{v}-{b}" / best / "summary.json").read_text()).get(k) for k in keep}
                    for b in ("ste50", "dev")}})
    print(v, wall, summary["originals"], summary["tools with exemplars"], rows[-1]["ste50"]["correct"], rows[-1]["dev"]["correct"])
Path("docs/bench/ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
PY
.venv/bin/python scripts/bench/ablation_plot.py
