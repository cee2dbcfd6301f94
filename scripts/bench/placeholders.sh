#!/usr/bin/env bash
# The spec's example values (BENCHMARKS "Placeholders: the spec's example is not the user's value"): the
# four pooled 1.5B teacher runs imported with today's checks (placeholder_arguments and request_numbers
# hold for imports: $OUT/placeholder) against the same runs as session 15 imported them ($OUT/gated, from
# scripts/bench/gate.sh), the packaged 0.5B client, search within the 15 candidates + 3 examples, free and
# constrained; and the best zero-shot row (must-call, the 15 candidates, constrained). One managed vLLM for
# every row. BENCH=bench/dev first (RUNS dev-…), then bench/ste50.
# usage: [BENCH=bench/dev] flock /tmp/ste-model.lock scripts/bench/placeholders.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate3}; PORT=${PORT:-8781}; BENCH=${BENCH:-bench/ste50}
STUDENT=packaged:qwen2.5-coder-0.5b-instruct; TAG=""; [ "$BENCH" = bench/dev ] && TAG=dev-
[ -d "$OUT/gated/lancedb" ] || { echo "run scripts/bench/gate.sh first (it imports the exemplars as before)" >&2; exit 1; }
if [ ! -d "$OUT/placeholder/lancedb" ]; then
  for run in toolbox-teacher-1.5b toolbox-teacher-1.5b-run2 toolbox-teacher-1.5b-contrast-run4 toolbox-teacher-1.5b-contrast-run5; do
    .venv/bin/ste-mcp exemplars import "bench/learned/$run.jsonl" --data-dir "$OUT/placeholder" | tail -1
  done
fi
mkdir -p "$OUT/serve05"
.venv/bin/ste-mcp model serve --data-dir "$OUT/serve05" --model $STUDENT --port "$PORT" >"$OUT/serve05/serve.log" 2>&1 &
S=$!; trap 'kill $S; wait $S 2>/dev/null' EXIT
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 2; done
export LLM_URL=http://127.0.0.1:$PORT/v1 OUT BENCH
ROWS="base:candidates::constrained retrieval:search:candidates retrieval:search:candidates:constrained" \
  DATA=$OUT/gated RUNS=${TAG}ph-before NAME=${TAG}placeholders_before scripts/bench/search_retrieval.sh
ROWS="retrieval:search:candidates retrieval:search:candidates:constrained" \
  DATA=$OUT/placeholder RUNS=${TAG}ph-after NAME=${TAG}placeholders_after scripts/bench/search_retrieval.sh
# one table and one plot for the run: docs/bench/${TAG}placeholders.{json,png}
TAG=$TAG .venv/bin/python - <<'PY'
import json, os
from pathlib import Path
from ste_mcp.evaluate.plot import plot_settings
tag = os.environ["TAG"]
rows = {}
for when in ("before", "after"):
    path = Path(f"docs/bench/{tag}placeholders_{when}.json")
    rows |= {f"{when}:{name}": row for name, row in json.loads(path.read_text()).items()}
    path.unlink(); Path(f"docs/bench/{tag}placeholders_{when}.png").unlink()
Path(f"docs/bench/{tag}placeholders.json").write_text(json.dumps(rows, indent=1))
labels = {"before:base-constrained": "zero-shot\n(constrained)",
          "before:retrieval-search-among-candidates": "examples\nas before",
          "before:retrieval-search-among-candidates-constrained": "as before,\nconstrained",
          "after:retrieval-search-among-candidates": "examples,\ntoday's checks",
          "after:retrieval-search-among-candidates-constrained": "today's checks,\nconstrained"}
n = next(iter(rows.values()))["n"]
where = "bench/dev" if tag else "STE-50 toolbox subset"
plot_settings({labels[k]: v for k, v in rows.items()}, f"docs/bench/{tag}placeholders.png",
              title=f"{where} ({n} items), 0.5B client, must-call, search within the 15 + 3 examples")
print(json.dumps(rows))
PY
