#!/usr/bin/env bash
# Session 44, issue 16: usage notes whose argument line is written from the evidence (notes.argument_line: each
# argument by name, with the format of the values that worked), under the gate that counts API match over every
# query asked (a candidate no longer wins by making answers ill-formed). Otherwise gate_cap.sh's run (session 43,
# OUT=.cache/bench/gate-referral): the 478-exemplar pool, the 1.5B writes, the 0.5B gates (24 + 24 queries), then
# the 0.5B client on the 195 STE-50 toolbox items and the 1.5B client on 78 of them (6 a tool), each with the
# gated and the ungated notes. The base rows (the bench's descriptions, which neither change touches: same pool,
# models and greedy decoding) are session 43's, copied, not rerun. Fixed before any row ran; each row runs once.
# usage: flock /tmp/ste-model.lock scripts/bench/gate_args.sh     Results: $OUT/runs/*, docs/bench/$NAME.{json,png}
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/gate-args}; NAME=${NAME:-gate_args}; BASE_FROM=${BASE_FROM:-.cache/bench/gate-referral}
mkdir -p "$OUT/runs"
for row in base base-1.5b; do
  [ -s "$OUT/runs/$row/summary.json" ] || cp -r "$BASE_FROM/runs/$row" "$OUT/runs/$row"
done
# the run measured the argument line when it was the only behaviour; it is now memory.notes_arguments = evidence
export STE_MCP_MEMORY__NOTES_ARGUMENTS=evidence
OUT=$OUT NAME=$NAME POOL=.cache/bench/all/optional scripts/bench/gate_all.sh
