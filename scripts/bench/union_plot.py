"""Session 38's student rows (BENCHMARKS "Session 38") in docs/bench/union.{json,png}: the live repair run
(scripts/bench/shared_curve.sh, .cache/bench/shared4) beside session 36's run with the same prompt and no
repair (shared3) and session 37's replayed repair of it, and the three runs of sessions 35-36 pooled, plain
and repaired (scripts/bench/union.sh); each row on the 195 STE-50 toolbox items and bench/dev, items gained
and lost against the row it is compared with. usage: union_plot.py"""

from rows_plot import compare, plot

ROWS = {  # label: (runs folder with {bench}, the label it is compared with)
    "one run, no repair (s36, 2 passes)": ("shared3/runs-k2-{bench}", None),
    "the same, repair replayed (s37)": ("repair-shared3/runs-{bench}", "one run, no repair (s36, 2 passes)"),
    "one run, repair live (s38, 2 passes)": ("shared4/runs-k2-{bench}", "one run, no repair (s36, 2 passes)"),
    "three runs pooled, no repair": ("union/plain/runs-{bench}", None),
    "three runs pooled, repair replayed": ("union/repaired/runs-{bench}", "three runs pooled, no repair"),
}

plot(compare(ROWS), "union", "Hindsight's repair, live and at a pooled size (session 38)")
