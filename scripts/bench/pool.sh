# The teacher pool of the bench rounds (sourced by demos_adapter.sh, gate_unexplored.sh, episodes_curve.sh,
# added_asks.sh, float_noise.sh;
# needs BIN): teacher_pool DIR MODELS [RUN.jsonl ...] imports the given 1.5B teacher runs (default: every
# run in bench/learned/) into the data dir DIR (its models/ a link to MODELS, converted once) and rechecks it
# with today's checks (`exemplars recheck`, then `recheck --call`); a DIR that holds a store is kept as it is.
teacher_pool() {
  [ -d "$1/lancedb" ] && return 0
  local dir=$1 models=$2; shift 2
  [ $# -gt 0 ] || set -- bench/learned/*.jsonl
  mkdir -p "$dir" "$models"; ln -sfn "$(realpath "$models")" "$dir/models"
  for run in "$@"; do $BIN exemplars import "$run" --data-dir "$dir" | tail -1; done
  $BIN exemplars recheck --data-dir "$dir" | tail -2
  $BIN exemplars recheck --call --data-dir "$dir" | tail -2
}
# recheck_copy SRC DIR MODELS: a copy of SRC's store in DIR (its models/ a link to MODELS), rechecked with
# today's checks (an import refuses without storing; a recheck records why): what a new check refuses in a pool
# that had been rechecked without it. A DIR that holds a store is kept as it is.
recheck_copy() {
  [ -d "$2/lancedb" ] && return 0
  mkdir -p "$2"; cp -r "$1/lancedb" "$2/"; ln -sfn "$(realpath "$3")" "$2/models"
  $BIN exemplars recheck --data-dir "$2" | tail -2
}
