#!/usr/bin/env bash
# One teacher run as the pooled runs of bench/learned/ were made (BENCHMARKS "Exemplar quality"): the
# packaged 1.5B in every role, `ste-mcp learn --episodes 1` over the 13 toolbox tools in a fresh data dir,
# hindsight off (HINDSIGHT=true: on), no usage notes; then its export and what became of each trial: judged, accepted, kept, or
# refused and by which check (memory.judge_checks), and how many of the kept calls send the spec's example
# values. EPISODES (1) and SLOTS (2) set the run's size, TOOLS (names, space-separated) limits it to those tools,
# EXPLORER adds [explorer] lines (ablation.sh), MODELS
# a folder of converted models to share between runs. LEARN_S stops `learn` (SIGTERM: trials recorded so far
# are kept, the managed vLLM is stopped) after that many seconds; RESUME=1 goes on with an existing data dir
# (the explorer resumes from its trial store: interrupted episodes first, then the next ones).
# usage: [OUT=.cache/bench/teacher] [NAME=run6] [HINDSIGHT=true] flock /tmp/ste-model.lock scripts/bench/teacher.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/teacher}; NAME=${NAME:-run6}; DATA=$OUT/$NAME
[ ! -e "$DATA" ] || [ "${RESUME:-}" = 1 ] || { echo "$DATA exists: a teacher run starts from a fresh data dir (RESUME=1 goes on with it)" >&2; exit 1; }
mkdir -p "$DATA"
[ -z "${MODELS:-}" ] || { mkdir -p "$MODELS"; ln -sfn "$(realpath "$MODELS")" "$DATA/models"; }
cat >"$OUT/$NAME.toml" <<TOML
[llm]
model = "packaged:qwen2.5-coder-1.5b-instruct"
timeout_s = 900
retries = 0
[explorer]
num_stm_slots = ${SLOTS:-2}
${EXPLORER:-}
[memory]
paraphrases_per_exemplar = 2
notes_rewrite_after = 0
hindsight = ${HINDSIGHT:-false}
TOML
echo "teacher run $NAME: memory.hindsight = ${HINDSIGHT:-false} (the product default is \"repair\": HINDSIGHT='\"repair\"')" >&2
t=$(date +%s); status=0
timeout -s TERM -k 120 "${LEARN_S:-0}" .venv/bin/ste-mcp learn --episodes ${EPISODES:-1} ${TOOLS:+--tools $TOOLS} --no-progress --config "$OUT/$NAME.toml" \
  --data-dir "$DATA" 2>&1 | tail -20 || status=$?
if [ "$status" != 0 ]; then  # stopped by LEARN_S (124; 137 if it had to be killed), or failed
  [ "${LEARN_S:-0}" != 0 ] && [ $(( $(date +%s) - t )) -ge "$LEARN_S" ] || exit "$status"
  echo "learn stopped after LEARN_S=$LEARN_S s (exit $status)"
fi
echo "learn: $(( $(date +%s) - t )) s wall" | tee ${RESUME:+-a} "$OUT/$NAME.time"
.venv/bin/ste-mcp exemplars export "$OUT/$NAME.jsonl" --data-dir "$DATA"
.venv/bin/python - "$DATA" "$OUT/$NAME.summary.json" <<'PY'
import collections, json, sys
from ste_mcp.memory.checks import spec_examples
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore
from ste_mcp.memory.trials import TrialStore
from ste_mcp.toolbox.server import start_toolbox
from ste_mcp.upstream.specs import load_toolset
from ste_mcp.config import load_settings

db = open_db(f"{sys.argv[1]}/lancedb")
trials = TrialStore(db).trials()
with start_toolbox() as box:
    tools = {t.name: t for t in load_toolset(load_settings(), variables={"TOOLBOX_URL": box.url}).visible()}
outcome = collections.Counter()
for t in trials:
    v = t.verdict or {}
    if not v:
        outcome["unjudged"] += 1
    elif not v.get("accepted"):
        outcome["judge rejected"] += 1
    elif "refused" in v:
        outcome["refused: " + v["refused"].split(":", 1)[0]] += 1
    else:
        outcome["kept"] += 1
def sends_example(trial):
    """Whether the trial's call sends an example value of the spec (stated in the request or not)."""
    arguments = trial.last_call.arguments or {}
    examples = spec_examples(tools[trial.tool].input_schema)
    return any(key in arguments and arguments[key] in values for key, values in examples.items())

calls = [t for t in trials if t.last_call is not None]
examples = sum(map(sends_example, calls))
kept = ExemplarStore(db).find(status="approved")
summary = {
    "trials": len(trials), "successful calls": len(calls), "calls sending a spec example": examples,
    "outcomes": dict(outcome),
    "originals": sum(e.variant_of is None for e in kept), "paraphrases": sum(e.variant_of is not None for e in kept),
    "tools with exemplars": len({e.tool for e in kept}),
}
open(sys.argv[2], "w").write(json.dumps(summary, indent=1))
print(json.dumps(summary))
PY
