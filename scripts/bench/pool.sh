# The teacher pool of the bench rounds (sourced by demos_adapter.sh, gate_unexplored.sh; needs BIN):
# teacher_pool DIR MODELS imports every 1.5B teacher run in bench/learned/ into the data dir DIR (its
# models/ a link to MODELS, converted once) and rechecks it with today's checks (`exemplars recheck`,
# then `recheck --call`); a DIR that holds a store is kept as it is.
teacher_pool() {
  [ -d "$1/lancedb" ] && return 0
  mkdir -p "$1" "$2"; ln -sfn "$(realpath "$2")" "$1/models"
  for run in bench/learned/*.jsonl; do $BIN exemplars import "$run" --data-dir "$1" | tail -1; done
  $BIN exemplars recheck --data-dir "$1" | tail -2
  $BIN exemplars recheck --call --data-dir "$1" | tail -2
}
