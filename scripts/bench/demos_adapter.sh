#!/usr/bin/env bash
# Issue 17: an adapter trained in the setting it is served in. The best serving setting for the 0.5B
# student is must-call, search within the 15 candidates + the 3 nearest approved exemplars as worked
# examples; an adapter trained on bare ReAct rows (no examples) lost with the examples beside it (49.7
# against the base model's 53.9 %, BENCHMARKS "Continual learning"). Here the rows are written in that
# setting (`finetune.prompt = must-call`, `finetune.demonstrations = 3`: each row's nearest exemplars of
# other requests as examples, their tools listed beside the row's own).
#
#   1. the pool: every teacher run in bench/learned/ imported into one data dir, then `exemplars recheck`
#      and `recheck --call` (today's checks);
#   2. one round per VARIANT from the base model (`ste-mcp train --no-gate --from-scratch`, call rows only,
#      LR 1e-3, STEPS optimiser steps of 4 rows, 5 tools listed as the search shows 5, rows up to 1,536
#      tokens: none shortened), merged (`adapters export --merged`);
#      VARIANTS: "demos" (must-call + 3 examples), "bare" (must-call, no examples: the control); a
#      suffix -sN trains the same round with finetune.seed N (demos-s1), -fNN with finetune.foreign_examples
#      0.NN (demos-f50: half the rows show only other tools' examples);
#   3. the base model and each merged adapter answer bench/dev and the 195 STE-50 toolbox items in the
#      best setting (search within the candidates + 3 examples from the pool; free and constrained
#      decoding) through scripts/bench/search_retrieval.sh.
#
# Nothing is tuned on the 195 items: LR and steps as scripts/bench/continual_teacher.sh, 3 examples and
# the prompt as the serving setting chosen on bench/dev (BENCHMARKS "Search inside the served tools").
# usage: [OUT=.cache/bench/demos] [STEPS=12] [VARIANTS="demos bare"] [MODELS="base demos bare"] (empty: none)
#        flock /tmp/ste-model.lock scripts/bench/demos_adapter.sh
# Results: $OUT/times.txt, $OUT/{dev-,}<model>/, docs/bench/{dev-,}demos-<model>.json (search_retrieval.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/demos}; STEPS=${STEPS:-12}; PORT=${PORT:-8783}
VARIANTS=${VARIANTS:-demos bare}; MODELS=${MODELS-base $VARIANTS}; BENCHES=${BENCHES:-dev ste50}
STUDENT=packaged:qwen2.5-coder-0.5b-instruct
BIN=.venv/bin/ste-mcp; . scripts/bench/servers.sh; . scripts/bench/pool.sh  # serve, stop_servers; teacher_pool
took() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a "$OUT/times.txt"; }
mkdir -p "$OUT/models" "$OUT/merged"

POOL=$OUT/pool; teacher_pool "$POOL" "$OUT/models"

export STE_MCP_LLM__TIMEOUT_S=900 STE_MCP_LLM__RETRIES=0 STE_MCP_LLM__MODEL=$STUDENT
for variant in $VARIANTS; do
  [ -d "$OUT/merged/$variant" ] && continue
  demos=3; [[ "$variant" == bare* ]] && demos=0
  seed=0; [[ "$variant" == *-s[0-9]* ]] && seed=${variant##*-s}  # e.g. demos-s1: the same round, seed 1
  foreign=0; [[ "$variant" =~ -f([0-9]+) ]] && foreign=0.${BASH_REMATCH[1]}  # demos-f50: foreign_examples 0.50
  D=$OUT/train-$variant; rm -rf "$D"; mkdir -p "$D"; cp -r "$POOL/lancedb" "$D/"
  ln -sfn "$(realpath "$OUT/models")" "$D/models"  # the converted base model, once
  t=$(date +%s)
  STE_MCP_FINETUNE__PROMPT=must-call STE_MCP_FINETUNE__DEMONSTRATIONS=$demos STE_MCP_FINETUNE__LEARNING_RATE=1e-3 \
    STE_MCP_FINETUNE__TOOLS_IN_PROMPT=5 STE_MCP_FINETUNE__MAX_LENGTH=1536 STE_MCP_FINETUNE__SEED=$seed \
    STE_MCP_FINETUNE__FOREIGN_EXAMPLES=$foreign \
    STE_MCP_FINETUNE__HELDOUT_FRACTION=0 STE_MCP_FINETUNE__INCLUDE_FINAL_ANSWER=false \
    $BIN train --no-gate --from-scratch --max-steps "$STEPS" --data-dir "$D" | tee "$OUT/$variant.train.txt"
  id=$(sed -n 's/^adapter \([^ ]*\) .*/\1/p' "$OUT/$variant.train.txt")
  [ -n "$id" ] || { echo "round $variant trained no adapter" >&2; exit 1; }
  took "train $variant ($STEPS steps)" "$t"
  $BIN adapters export "$id" --merged "$OUT/merged/$variant" --data-dir "$D" | tail -1
done

export OUT ROWS="retrieval:search:candidates retrieval:search:candidates:constrained"
for model in $MODELS; do
  src=$STUDENT; [ "$model" = base ] || src=$(realpath "$OUT/merged/$model")
  mkdir -p "$OUT/serve-$model"; ln -sfn "$(realpath "$OUT/models")" "$OUT/serve-$model/models"
  serve "$src" "$PORT" "$OUT/serve-$model"
  for bench in $BENCHES; do
    prefix=$([ "$bench" = dev ] && echo dev- || true)
    [ -s "$OUT/$prefix$model/retrieval-search-among-candidates-constrained/summary.json" ] && continue
    t=$(date +%s)
    STUDENT=$src LLM_URL=http://127.0.0.1:$PORT/v1 BENCH=bench/$bench DATA=$POOL RUNS=$prefix$model \
      NAME=${prefix}demos-$model scripts/bench/search_retrieval.sh
    took "eval $model on $bench" "$t"
  done
  stop_servers
done
