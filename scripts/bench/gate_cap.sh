#!/usr/bin/env bash
# Session 43, issue 16: the description gate with its held-out queries capped (memory.gate_max_queries, default
# 24 of the tool's own and 24 of its distractors'), on the pool session 42 could not gate in a session
# (.cache/bench/all/optional: 478 approved exemplars over 13 tools; uncapped, ~8 minutes a tool). gate.sh as
# gate_all.sh runs it: the 1.5B writes each tool's notes from the writing half, the 0.5B gates them, then the
# 0.5B client answers the 195 STE-50 toolbox items with the bench's descriptions (base), the gated notes and
# every note (ungated), must-call, the 15 candidates, greedy. rewrite.txt's time stamps give each tool's gate
# time; docs/bench/$NAME.json holds each tool's n / unasked. Fixed before any row ran; each row runs once.
# Session 43 stopped the first run (OUT=.cache/bench/gate-cap) after 5 tools, to gate notes without bare "use X
# instead" lines (notes.bare_referral): OUT=.cache/bench/gate-referral NAME=gate_referral, the default here. A
# prompt that asked for 'Not for <requests>: use <tool>' lines was stopped after 3 tools (.cache/bench/gate-notfor:
# the 1.5B echoed the prompt's bullets into its lines) and reverted.
# usage: flock /tmp/ste-model.lock scripts/bench/gate_cap.sh     Results: $OUT/runs/*, docs/bench/$NAME.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/bench/all/optional/lancedb ] || { echo "recheck_copy .cache/bench/all/checked into .cache/bench/all/optional first" >&2; exit 1; }
OUT=${OUT:-.cache/bench/gate-referral} NAME=${NAME:-gate_referral} POOL=.cache/bench/all/optional \
  MODELS=.cache/bench/demos/models scripts/bench/gate.sh
