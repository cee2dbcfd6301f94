#!/usr/bin/env bash
# Session 47, issue 17 (exploration): explorer.imagine_samples at the imagination step
# (scripts/bench/imagine_samples.py): the packaged 1.5B teacher imagines each toolbox tool's first request of an
# episode SAMPLES times with one sample and with CHOICES samples kept least like the memory, the memory being
# session 41's pool (.cache/bench/all/pool: ROWS=0 all_runs.sh builds it); nothing called or judged.
# Runs at commit 36aafed only (the setting was removed after it: BENCHMARKS "Session 47"); at a later commit the
# .py stops at its import of memory.requests.resemblance. The pool: bench/learned/pool/all.jsonl imported (teacher_pool).
# TEMPERATURE sets the explorer's for both arms (default: explorer.temperature, 0.6); OUT_JSON where to write.
# usage: [SAMPLES=6] [CHOICES=4] [TEMPERATURE=1.0 OUT_JSON=docs/bench/imagine_samples_t1.json] flock /tmp/ste-model.lock scripts/bench/imagine_samples.sh
# Results: docs/bench/imagine_samples.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin/ste-mcp; OUT=.cache/bench/imagine-samples; PORT=${PORT:-8797}; POOL=${POOL:-.cache/bench/all/pool}
MODELS=.cache/bench/demos/models; TEACHER=packaged:qwen2.5-coder-1.5b-instruct
. scripts/bench/servers.sh
[ -d "$POOL/lancedb" ] || { echo "build the pool first: ROWS=0 scripts/bench/all_runs.sh" >&2; exit 1; }
mkdir -p "$OUT/serve15"; ln -sfn "$(realpath "$MODELS")" "$OUT/serve15/models"
serve "$TEACHER" "$PORT" "$OUT/serve15"
.venv/bin/python scripts/bench/imagine_samples.py --pool "$POOL" --llm-url "http://127.0.0.1:$PORT/v1" \
  --model "$TEACHER" --samples "${SAMPLES:-6}" --choices "${CHOICES:-4}" ${TEMPERATURE:+--temperature $TEMPERATURE} \
  --out "${OUT_JSON:-docs/bench/imagine_samples.json}"
stop_servers
