#!/usr/bin/env bash
# Session 22's checks (result_date, present_arguments, a length counts characters) on the pooled teacher
# exemplars the student is served (BENCHMARKS "Session 22"): a copy of the pool of "Session 21" ($OUT/lang5:
# four teacher runs + run 8), held to today's checks as an upgraded install does it (`exemplars recheck`,
# then `recheck --call`); the same with teacher run 9 (made with these checks live) imported; then the best
# setting of "Search inside the served tools" (the packaged 0.5B, must-call, search within the 15 candidates
# + 3 examples, free and constrained) on bench/dev and on the 195 toolbox items, one managed vLLM
# (LLM_URL: one already serving the 0.5B).
# usage: [OUT=.cache/bench/gate3] flock /tmp/ste-model.lock scripts/bench/dates.sh
# Results: $OUT/{dev-,}dates{5,9}/, docs/bench/{dev-,}dates{5,9}.json, docs/bench/dates.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate3}; PORT=${PORT:-8781}; RUN9=${RUN9:-.cache/bench/teacher/run9.jsonl}
pool() {  # pool NAME [EXPORT]: lang5 copied, [EXPORT imported,] rechecked without and with calls
  local name=$1; [ ! -e "$OUT/$name" ] || { echo "$OUT/$name exists" >&2; exit 1; }
  mkdir -p "$OUT/$name"; cp -r "$OUT/lang5/lancedb" "$OUT/$name/"
  [ -z "${2:-}" ] || .venv/bin/ste-mcp exemplars import "$2" --data-dir "$OUT/$name" | tail -1
  .venv/bin/ste-mcp exemplars recheck --data-dir "$OUT/$name" | tee "$OUT/$name.recheck.txt"
  .venv/bin/ste-mcp exemplars recheck --call --data-dir "$OUT/$name" | tee -a "$OUT/$name.recheck.txt"
}
pool dates5
pool dates9 "$RUN9"
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh
if [ -z "${LLM_URL:-}" ]; then
  mkdir -p "$OUT/serve05"; serve packaged:qwen2.5-coder-0.5b-instruct "$PORT" "$OUT/serve05"
  LLM_URL=http://127.0.0.1:$PORT/v1
fi
export LLM_URL OUT ROWS="retrieval:search:candidates retrieval:search:candidates:constrained"
for name in dates5 dates9; do
  BENCH=bench/dev DATA=$OUT/$name RUNS=dev-$name NAME=dev-$name scripts/bench/search_retrieval.sh
  BENCH=bench/ste50 DATA=$OUT/$name RUNS=$name NAME=$name scripts/bench/search_retrieval.sh
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from ste_mcp.evaluate.plot import plot_settings
out = Path(sys.argv[1])
rows = {}
for label, run in (("lang5 (session 21)", "lang5"), ("lang5, today's checks", "dates5"), ("+ run 9", "dates9")):
    for bench, prefix in (("dev", "dev-"), ("195", "")):
        for decode, row in (("free", ""), ("constrained", "-constrained")):
            path = out / f"{prefix}{run}" / f"retrieval-search-among-candidates{row}" / "summary.json"
            if path.exists():
                s = json.loads(path.read_text())
                rows[f"{label}, {bench}, {decode}"] = {
                    k: s[k] for k in ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct")
                } | {"per_tool": {t: [v["api_match"], v["correct"]] for t, v in s["per_tool"].items()}}
Path("docs/bench/dates.json").write_text(json.dumps(rows, indent=1) + "\n")
plot_settings({k.replace(", ", "\n"): v for k, v in rows.items() if ", 195, " in k}, Path("docs/bench/dates.png"),
              title="STE-50 toolbox subset (195), 0.5B, search within the 15 + 3 examples: session 22's checks")
print(json.dumps({k: v["correct"] for k, v in rows.items()}))
PY
