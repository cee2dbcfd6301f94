# Managed model servers for the bench scripts (sourced by gate.sh, regate.sh, dates.sh, adapter_search.sh,
# continual_teacher.sh; needs BIN and OUT).
# serve MODEL PORT DIR starts `ste-mcp model serve` and waits until it is healthy; every server started
# is stopped on exit. clock LABEL START appends a duration to $OUT/runs/times.txt. best_row: one eval row
# in the best setting (below).
PIDS=()
stop_servers() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap stop_servers EXIT
serve() {  # MODEL PORT DIR: a managed vLLM, waited for
  $BIN model serve --data-dir "$3" --model "$1" --port "$2" >"$3/serve.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 900); do
    curl -sf "http://127.0.0.1:$2/health" >/dev/null && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 2
  done
  echo "model server for $1 did not start: $3/serve.log" >&2; exit 1
}
clock() { echo "$1: $(( $(date +%s) - $2 )) s" | tee -a "$OUT/runs/times.txt"; }
# best_row URL CLIENT DATA BENCH RUNS NAME [LIMIT]: the client (served at URL) answers BENCH (bench/…) in the
# best setting (must-call, search within the 15 candidates + the 3 nearest approved exemplars of DATA,
# constrained) into $OUT/RUNS (its one-row chart there too); a row whose summary is there is kept. Appends its time to $OUT/times.txt.
best_row() {
  [ -s "$OUT/$5/retrieval-search-among-candidates-constrained/summary.json" ] && return 0
  local t; t=$(date +%s)
  OUT=$OUT LLM_URL=$1 STUDENT=$2 DATA=$3 BENCH=$4 RUNS=$5 NAME=$6 LIMIT=${7:-} DOCS=$OUT/$5 \
    ROWS=retrieval:search:candidates:constrained scripts/bench/search_retrieval.sh
  echo "eval $6: $(( $(date +%s) - t )) s" | tee -a "$OUT/times.txt"
}
