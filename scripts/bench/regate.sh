#!/usr/bin/env bash
# The noise-aware gate on the candidates both clients judged (BENCHMARKS "A loss vetoes only beyond
# noise"). Needs the data dirs of `OUT=.cache/bench/gate3 EVAL15=1 scripts/bench/gate.sh` (the notes the
# 1.5B wrote, refused there because the two clients disagreed). Run from the repository root:
#
#   OUT=.cache/bench/gate3 flock /tmp/ste-model.lock scripts/bench/regate.sh
#
# A copy of $OUT/gated has every refused candidate measured again (`ste-mcp descriptions regate`) by both
# clients under memory.gate_worse_p (default 0.2): a client vetoes only a loss the sign test cannot call
# noise. The 0.5B client then answers the 195 toolbox items with what that serves, the 1.5B client LIMIT15
# (78) of them: the same rows as gate.sh's, one more column. With BEST=1 the 0.5B also runs `--prompt
# best` (prompt and decoding chosen on bench/dev) on the 195 items, with the bench's descriptions, and
# the 1.5B on its LIMIT15.
# Results: $OUT/runs/regated*, docs/bench/$NAME.json and .png (NAME=regate).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate3}; NAME=${NAME:-regate}; BEST=${BEST:-}
PORT=${PORT:-8781}; WPORT=${WPORT:-8782}; LIMIT15=${LIMIT15:-78}
URL=http://127.0.0.1:$PORT/v1; WURL=http://127.0.0.1:$WPORT/v1
STUDENT=packaged:qwen2.5-coder-0.5b-instruct
STRONG=packaged:qwen2.5-coder-1.5b-instruct
BIN=.venv/bin/ste-mcp
export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_MEMORY__DESCRIPTION_RENDER=notes
export STE_MCP_LLM__EVALUATORS="[{\"model\": \"$STRONG\", \"base_url\": \"$WURL\"}]"
TOOLS=$(.venv/bin/python -c "from ste_mcp.toolbox import ENDPOINTS; print(*(e.name for e in ENDPOINTS))")
[ -d "$OUT/gated/lancedb" ] || { echo "no $OUT/gated: run EVAL15=1 scripts/bench/gate.sh first" >&2; exit 1; }

# shellcheck source=scripts/bench/servers.sh
. scripts/bench/servers.sh
run_eval() {  # NAME SETTING DATA_DIR MODEL URL [LIMIT] [EXTRA...]
  local start; start=$(date +%s)
  # shellcheck disable=SC2086
  $BIN eval --bench bench/ste50 --tools $TOOLS --setting "$2" --prompt "${PROMPT:-must-call}" --concurrency 8 \
    --llm-url "$5" --model "$4" --data-dir "$3" --out "$OUT/runs/$1" ${6:+--limit $6} "${@:7}" | tail -4
  clock "eval $1" "$start"
}

serve "$STUDENT" "$PORT" "$OUT/serve05"
serve "$STRONG" "$WPORT" "$OUT/serve15"
if [ ! -s "$OUT/runs/regate.txt" ]; then
  rm -rf "${OUT:?}/regated"; mkdir -p "$OUT/regated"; cp -r "$OUT/gated/lancedb" "$OUT/regated/"
  ln -s "$(realpath "$OUT/models")" "$OUT/regated/models"
  start=$(date +%s)
  $BIN descriptions regate --llm-url "$URL" --model "$STUDENT" --data-dir "$OUT/regated" | tee "$OUT/runs/regate.txt"
  clock "regate (gate: 0.5B and 1.5B, gate_worse_p ${STE_MCP_MEMORY__GATE_WORSE_P:-0.2})" "$start"
fi
for tool in $TOOLS; do $BIN descriptions history "$tool" --data-dir "$OUT/regated" 2>/dev/null || true; done \
  > "$OUT/runs/regate-history.txt"
[ -s "$OUT/runs/regated/summary.json" ] || run_eval regated descriptions "$OUT/regated" "$STUDENT" "$URL"
if [ -n "$BEST" ] && [ ! -s "$OUT/runs/best/summary.json" ]; then
  PROMPT=best run_eval best base "$OUT/base" "$STUDENT" "$URL"
fi
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true  # the 1.5B client has the cores to itself
[ -s "$OUT/runs/regated-1.5b/summary.json" ] ||
  run_eval regated-1.5b descriptions "$OUT/regated" "$STRONG" "$WURL" "$LIMIT15"
if [ -n "$BEST" ] && [ ! -s "$OUT/runs/best-1.5b/summary.json" ]; then
  PROMPT=best run_eval best-1.5b base "$OUT/base" "$STRONG" "$WURL" "$LIMIT15"
fi
stop_servers

.venv/bin/python - "$OUT" "$NAME" <<'PY'
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = Path(sys.argv[1])
keys = ("n", "wellformed", "api_match", "correct", "exact_name", "strict_correct", "prompt", "constrained", "prompt_dev")
rows = {d.name: {k: v for k, v in json.loads((d / "summary.json").read_text()).items() if k in keys}
        for d in sorted((out / "runs").iterdir()) if (d / "summary.json").exists()}
result = {"rows": rows, "regate": (out / "runs" / "regate.txt").read_text().splitlines(),
          "history": (out / "runs" / "regate-history.txt").read_text().splitlines()}
Path(f"docs/bench/{sys.argv[2]}.json").write_text(json.dumps(result, indent=1))
labels = {"base": "bench\ndescriptions", "small": "notes the 0.5B\nalone passes",
          "gated": "both pass,\nany loss vetoes", "regated": "both pass, a loss\nbeyond noise vetoes",
          "ungated": "every note\nserved"}
fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
for ax, client, who in zip(axes, ("", "-1.5b"), ("0.5B", "1.5B")):
    names = [n for n in labels if f"{n}{client}" in rows]
    bars = ax.bar(range(len(names)), [rows[f"{n}{client}"]["correct"] for n in names],
                  color=["#999", "#8ac", "#c88", "#4a4", "#cc8"][: len(names)])
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(names)), [labels[n] for n in names], fontsize=7)
    ax.set_ylabel("correct %")
    ax.set_title(f"STE-50 toolbox items ({rows['base' + client]['n']}), packaged {who} client, must-call", fontsize=9)
fig.tight_layout(); fig.savefig(f"docs/bench/{sys.argv[2]}.png", dpi=120)
for name, r in rows.items():
    print(name, {k: r.get(k) for k in ("n", "correct", "api_match", "strict_correct", "prompt", "constrained")})
PY
