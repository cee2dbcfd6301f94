#!/usr/bin/env bash
# Session 47, issue 17 (exploration), NO RESULT YET: what explorer.temperature buys a 1.5B teacher
# once its memory is full. imagine_samples.sh measured the imagination alone (at 1.0, the paper's temperature, the
# 1.5B's first requests restate fewer earlier values and state more new numbers than at 0.6, today's default,
# chosen for a 0.5B explorer); this measures what survives the calls, the judge and the checks. One teacher run
# per temperature in TEMPERATURES: the packaged 1.5B in every role (scripts/bench/teacher.sh: 2 trials an
# episode, hindsight's repair on as the product runs), on a data dir whose long-term memory is session 41's pool
# (seeded_teacher.py: its approved originals as accepted earlier trials, never judged again), one new episode
# per tool. Then compare the exports: kept originals, hand labels, values no pool call sent
# (imagine_samples.py's measures), and the 0.5B student's best row with each export added to the pool.
# TOOLS (space-separated) limits the runs to those tools.
# Started once (session 47, the six tools below in TOOLS): the seeding and one new episode per tool worked, but the
# 0.6 arm's 12 trials took over 20 minutes on 2 cores (one episode at ~3 tokens/s at the end) and the run was
# stopped before any judging; budget ~25-30 min per arm for six tools. Report: scripts/bench/seeded_report.py.
# TOOLS='add_date NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_Espanol
#   NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_Ingles Numbers_Translator__Numbers_Translator
#   Places__Geographic_coordinates_by_placename getWolframAlphaResults'
# usage: [TEMPERATURES='0.6 1.0'] [TOOLS='…'] flock /tmp/ste-model.lock scripts/bench/seeded_teacher.sh
# Results: .cache/bench/seeded/t<temperature>{.jsonl,.time}
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/bench/seeded}; POOL=${POOL:-.cache/bench/all/pool}; MODELS=.cache/bench/demos/models
[ -d "$POOL/lancedb" ] || { echo "build the pool first: scripts/bench/pool.sh's teacher_pool with bench/learned/pool/all.jsonl" >&2; exit 1; }
for temperature in ${TEMPERATURES:-0.6 1.0}; do
  arm=t$temperature
  [ -s "$OUT/$arm.jsonl" ] && continue
  rm -rf "${OUT:?}/$arm"; mkdir -p "$OUT/$arm"
  .venv/bin/python scripts/bench/seeded_teacher.py --pool "$POOL" --into "$OUT/$arm"
  OUT=$OUT NAME=$arm RESUME=1 EPISODES=2 SLOTS=2 MODELS=$MODELS HINDSIGHT='"repair"' \
    EXPLORER=$'tool_concurrency = 1\ntemperature = '"$temperature" scripts/bench/teacher.sh
done
