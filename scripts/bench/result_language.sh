#!/usr/bin/env bash
# result_language on the pooled teacher runs (BENCHMARKS, session 21): the four runs of
# scripts/bench/gate.sh, and the six with runs 6 and 7, imported into fresh data dirs as they were exported,
# then `ste-mcp exemplars recheck --call` (what an upgraded install runs on its stored exemplars: each
# original whose request asks for a language is called again on the offline toolbox and moves to the
# sibling that answers in it, or is rejected); then the best setting of "Search inside the served tools"
# (the packaged 0.5B, must-call, search within the 15 candidates + 3 examples, free and constrained) on
# bench/dev and on the 195 toolbox items, one managed vLLM (LLM_URL: one already serving the 0.5B).
# usage: [OUT=.cache/bench/gate3] flock /tmp/ste-model.lock scripts/bench/result_language.sh
# Results: $OUT/{dev-,}lang{4,6}/, docs/bench/{dev-,}lang{4,6}.{json,png}, $OUT/lang{4,6}.recheck.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate3}; PORT=${PORT:-8781}; L=bench/learned
FOUR=(toolbox-teacher-1.5b toolbox-teacher-1.5b-run2 toolbox-teacher-1.5b-contrast-run4
      toolbox-teacher-1.5b-contrast-run5)
SIX=("${FOUR[@]}" toolbox-teacher-1.5b-run6 toolbox-teacher-1.5b-run7)
pool() {  # pool NAME RUN...: import the runs into $OUT/NAME, then recheck with calls
  local name=$1; shift
  [ ! -e "$OUT/$name" ] || { echo "$OUT/$name exists" >&2; exit 1; }
  for run in "$@"; do .venv/bin/ste-mcp exemplars import "$L/$run.jsonl" --data-dir "$OUT/$name" | tail -1; done
  .venv/bin/ste-mcp exemplars recheck --call --data-dir "$OUT/$name" | tee "$OUT/$name.recheck.txt"
}
pool lang4 "${FOUR[@]}"
pool lang6 "${SIX[@]}"
if [ -z "${LLM_URL:-}" ]; then
  .venv/bin/ste-mcp model serve --data-dir "$OUT/serve05" --model packaged:qwen2.5-coder-0.5b-instruct \
    --port "$PORT" >"$OUT/serve05.log" 2>&1 &
  S=$!; trap 'kill $S; wait $S 2>/dev/null' EXIT
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 2; done
  LLM_URL=http://127.0.0.1:$PORT/v1
fi
export LLM_URL OUT ROWS="retrieval:search:candidates retrieval:search:candidates:constrained"
for name in lang4 lang6; do
  BENCH=bench/dev DATA=$OUT/$name RUNS=dev-$name NAME=dev-$name scripts/bench/search_retrieval.sh
  BENCH=bench/ste50 DATA=$OUT/$name RUNS=$name NAME=$name scripts/bench/search_retrieval.sh
done
# before (session 20's rows, $OUT/{dev-tw4,tw4,tw6}: scripts/bench/search_retrieval.sh on toolword4/6) and after
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = Path(sys.argv[1])
rows = {}
for label, runs in (("four runs", ("tw4", "lang4")), ("six runs", ("tw6", "lang6"))):
    for bench, prefix in (("dev", "dev-"), ("195", "")):
        for arm, run in zip(("before", "result_language"), runs):
            for decode, row in (("free", ""), ("constrained", "-constrained")):
                path = out / f"{prefix}{run}" / f"retrieval-search-among-candidates{row}" / "summary.json"
                if path.exists():
                    s = json.loads(path.read_text())
                    rows[f"{label}, {bench}, {arm}, {decode}"] = {
                        k: s[k] for k in ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct")
                    } | {"per_tool": {t: [v["api_match"], v["correct"]] for t, v in s["per_tool"].items()}}
Path("docs/bench/result_language.json").write_text(json.dumps(rows, indent=1) + "\n")
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
for ax, metric, title in ((axes[0], "correct", "correct %"), (axes[1], "api_match", "API match % (of well-formed)")):
    keys = [k for k in rows if ", 195, " in k and k.endswith("free")]
    bars = ax.bar(range(len(keys)), [rows[k][metric] for k in keys],
                  color=["#999" if "before" in k else "#2a7" for k in keys])
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(keys)), [k.replace(", 195", "").replace(", free", "").replace(", ", "\n") for k in keys], fontsize=8)
    ax.set_title(title, fontsize=9)
ax.set_ylim(0, 100)
fig.suptitle("STE-50 toolbox subset (195), 0.5B client, search within the 15 + 3 examples, free decoding: "
             "before and after result_language", fontsize=9)
fig.tight_layout()
fig.savefig("docs/bench/result_language.png", dpi=120)
print(json.dumps({k: v["correct"] for k, v in rows.items()}))
PY
