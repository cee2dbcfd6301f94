#!/usr/bin/env bash
# Situation paraphrases (issue 17; BENCHMARKS "Session 28"): the explorer's requests name the operation
# ("Add 7 days to January 15, 2023"), users state their situation ("My visa runs 90 days from ..."). On a
# copy of the rechecked pool of the 1.5B teacher's runs (scripts/bench/thin_tools.sh's $THIN/pool), the
# packaged 1.5B adds N `situation` paraphrases to every approved original (`ste-mcp exemplars paraphrase`),
# checked as live paraphrases are; both pools are rechecked with today's checks, then the 0.5B client
# answers bench/dev and the 195 STE-50 toolbox items in the best setting (must-call, search within the 15
# candidates + the 3 nearest approved exemplars, constrained) from each.
#
# TEACHER_URL: a running server of the 1.5B (default: one of its own); STUDENT_URL: of the 0.5B.
# usage: [OUT=.cache/bench/situ] [THIN=.cache/bench/thin] [MODELS=.cache/bench/demos/models] [N=2]
#        flock /tmp/ste-model.lock scripts/bench/situations.sh
# Results: $OUT/paraphrase.txt, $OUT/recheck.txt, $OUT/times.txt, $OUT/rows/{dev-,}{base,situ}/,
# docs/bench/situations.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/situ}; THIN=${THIN:-.cache/bench/thin}; MODELS=${MODELS:-.cache/bench/demos/models}
N=${N:-2}; PORT=${PORT:-8784}; TPORT=${TPORT:-8782}
STUDENT=packaged:qwen2.5-coder-0.5b-instruct; TEACHER=packaged:qwen2.5-coder-1.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh  # serve, stop_servers, best_row
took() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a "$OUT/times.txt"; }
copy() { rm -rf "$1"; mkdir -p "$1"; cp -r "$THIN/pool/lancedb" "$1/"; ln -sfn "$(realpath "$MODELS")" "$1/models"; }
mkdir -p "$OUT"
if [ ! -s "$OUT/paraphrase.txt" ]; then
  copy "$OUT/base"; copy "$OUT/situ"
  T_URL=${TEACHER_URL:-http://127.0.0.1:$TPORT/v1}
  if [ -z "${TEACHER_URL:-}" ]; then
    mkdir -p "$OUT/serve15"; ln -sfn "$(realpath "$MODELS")" "$OUT/serve15/models"
    serve "$TEACHER" "$TPORT" "$OUT/serve15"
  fi
  printf '[llm]\nmodel = "%s"\ntimeout_s = 900\nretries = 0\nbase_url = "%s"\n' "$TEACHER" "$T_URL" >"$OUT/teacher.toml"
  t=$(date +%s)
  $BIN exemplars paraphrase --style situation -n "$N" --no-progress --config "$OUT/teacher.toml" --data-dir "$OUT/situ" 2>&1 \
    | tail -1 | tee "$OUT/paraphrase.txt"
  took "paraphrase ($N situations per original)" "$t"
  stop_servers
fi

if [ ! -s "$OUT/recheck.txt" ]; then  # both with today's checks (the recheck also reads every paraphrase)
  for d in "$OUT/base" "$OUT/situ"; do
    { echo "$d"; $BIN exemplars recheck --data-dir "$d" | tail -1; } | tee -a "$OUT/recheck.txt"
  done
fi

URL=${STUDENT_URL:-http://127.0.0.1:$PORT/v1}
if [ -z "${STUDENT_URL:-}" ]; then
  mkdir -p "$OUT/serve05"; ln -sfn "$(realpath "$MODELS")" "$OUT/serve05/models"
  serve "$STUDENT" "$PORT" "$OUT/serve05"
fi
for data in base situ; do
  best_row "$URL" "$STUDENT" "$OUT/$data" bench/dev "rows/dev-$data" "situ-dev-$data"
  best_row "$URL" "$STUDENT" "$OUT/$data" bench/ste50 "rows/$data" "situ-$data"
done
stop_servers

.venv/bin/python - "$OUT" <<'PY'
import json, sys
from collections import Counter
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
out = Path(sys.argv[1])
pools = {name: ExemplarStore(open_db(out / name / "lancedb")).approved() for name in ("base", "situ")}
row = "retrieval-search-among-candidates-constrained"
result = {"approved": {k: len(v) for k, v in pools.items()}, "rows": {}, "per_tool": {}}
for data in ("base", "situ"):
    for prefix in ("dev-", ""):
        run = out / "rows" / f"{prefix}{data}" / row
        s = json.loads((run / "summary.json").read_text())
        result["rows"][f"{prefix}{data}"] = {k: s.get(k) for k in ("n", "wellformed", "api_match", "correct", "strict_correct")}
        scores = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
        right, n = Counter(), Counter()
        for r in scores:
            n[r["tool"]] += 1; right[r["tool"]] += r["correct"]
        result["per_tool"][f"{prefix}{data}"] = {t: round(100 * right[t] / n[t], 1) for t in sorted(n)}
Path("docs/bench/situations.json").write_text(json.dumps(result, indent=1))
tools = sorted(result["per_tool"]["base"])
fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2.2]})
for i, data in enumerate(("base", "situ")):
    label = "pool" if data == "base" else "pool + situation paraphrases"
    a.bar([x + 0.4 * i for x in range(2)], [result["rows"][f"dev-{data}"]["correct"], result["rows"][data]["correct"]], 0.4, label=label)
    b.bar([x + 0.4 * i for x in range(len(tools))], [result["per_tool"][data][t] for t in tools], 0.4, label=label)
a.set_xticks([0.2, 1.2], ["bench/dev (65)", "STE-50 toolbox (195)"]); a.set_ylabel("correct %"); a.legend(fontsize=8)
short = [t.split("__")[-1][-20:] for t in tools]
b.set_xticks([x + 0.2 for x in range(len(tools))], short, rotation=60, ha="right", fontsize=7)
b.set_title("correct % per tool (195 items), 0.5B, must-call, search in 15 + 3 examples, constrained", fontsize=8)
fig.tight_layout(); fig.savefig("docs/bench/situations.png", dpi=120)
print(json.dumps(result["rows"], indent=1)); print(json.dumps(result["approved"], indent=1))
PY
