#!/usr/bin/env bash
# The judge check `stated_numbers` (issue 17, exemplar quality; BENCHMARKS "Session 29"): a call may not
# send a whole number the request never gives. On a copy of the pool of the 1.5B teacher's runs
# (scripts/bench/demos_adapter.sh's $DEMOS/pool), `ste-mcp exemplars recheck` rejects what today's checks
# refuse; then the 0.5B client answers bench/dev and the 195 STE-50 toolbox items in the best setting
# (must-call, search within the 15 candidates + the 3 nearest approved exemplars, constrained) from the
# pool as it was and as rechecked, on one server in one run.
# DEV_ONLY=1: bench/dev only.
# usage: [DEMOS=.cache/bench/demos] [OUT=.cache/bench/stated] [DEV_ONLY=1] flock /tmp/ste-model.lock scripts/bench/stated_numbers.sh
# Results: $OUT/recheck.txt, $OUT/times.txt, $OUT/rows/{dev-,}{pool,checked}/, docs/bench/stated_numbers.json
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMOS=${DEMOS:-.cache/bench/demos}; OUT=${OUT:-.cache/bench/stated}; PORT=${PORT:-8786}
STUDENT=packaged:qwen2.5-coder-0.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh  # serve, stop_servers, best_row
mkdir -p "$OUT"
for name in pool checked; do
  [ -d "$OUT/$name/lancedb" ] && continue
  mkdir -p "$OUT/$name"; cp -r "$DEMOS/pool/lancedb" "$OUT/$name/"; ln -sfn "$(realpath "$DEMOS/models")" "$OUT/$name/models"
done
[ -s "$OUT/recheck.txt" ] || $BIN exemplars recheck --data-dir "$OUT/checked" | tee "$OUT/recheck.txt"
mkdir -p "$OUT/serve05"; ln -sfn "$(realpath "$DEMOS/models")" "$OUT/serve05/models"
serve "$STUDENT" "$PORT" "$OUT/serve05"
URL=http://127.0.0.1:$PORT/v1
for data in pool checked; do best_row "$URL" "$STUDENT" "$OUT/$data" bench/dev "rows/dev-$data" "stated-dev-$data"; done
if [ -z "${DEV_ONLY:-}" ]; then
  for data in pool checked; do best_row "$URL" "$STUDENT" "$OUT/$data" bench/ste50 "rows/$data" "stated-$data"; done
fi
stop_servers
.venv/bin/python - "$OUT" <<'PY'  # the rows in one file (search_retrieval.sh writes one per row)
import json, sys
from pathlib import Path
out, row = Path(sys.argv[1]), "retrieval-search-among-candidates-constrained"
result = {name: json.loads((out / "rows" / name / row / "summary.json").read_text())
          for name in ("dev-pool", "dev-checked", "pool", "checked") if (out / "rows" / name / row).exists()}
result = {k: {m: v.get(m) for m in ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct", "recall")}
          for k, v in result.items()}
result["recheck"] = (out / "recheck.txt").read_text().strip().splitlines()[-1]
Path("docs/bench/stated_numbers.json").write_text(json.dumps(result, indent=1))
for name in ("dev-pool", "dev-checked", "pool", "checked"):
    for ext in ("json", "png"):
        Path(f"docs/bench/stated-{name}.{ext}").unlink(missing_ok=True)
PY
