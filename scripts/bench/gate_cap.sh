#!/usr/bin/env bash
# Session 43, issue 16: the description gate with its held-out queries capped (memory.gate_max_queries, default
# 24 of the tool's own and 24 of its distractors'), on the pool session 42 could not gate in a session
# (.cache/bench/all/optional: 478 approved exemplars over 13 tools; uncapped, ~8 minutes a tool). gate.sh as
# gate_all.sh runs it: the 1.5B writes each tool's notes from the writing half, the 0.5B gates them, then the
# 0.5B client answers the 195 STE-50 toolbox items with the bench's descriptions (base), the gated notes and
# every note (ungated), must-call, the 15 candidates, greedy. rewrite.txt's time stamps give each tool's gate
# time; docs/bench/gate_cap.json holds each tool's n / unasked. Fixed before any row ran; each row runs once.
# usage: flock /tmp/ste-model.lock scripts/bench/gate_cap.sh     Results: $OUT/runs/*, docs/bench/gate_cap.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/bench/all/optional/lancedb ] || { echo "recheck_copy .cache/bench/all/checked into .cache/bench/all/optional first" >&2; exit 1; }
OUT=.cache/bench/gate-cap NAME=gate_cap POOL=.cache/bench/all/optional MODELS=.cache/bench/demos/models \
  scripts/bench/gate.sh
