"""Session 41's student rows (BENCHMARKS "Session 41") in docs/bench/all_runs.{json,png}: session 40's default
pool (four shared runs), every labelled teacher run pooled with it, and that pool rechecked with named_terms
(scripts/bench/all_runs.sh); each on the 195 STE-50 toolbox items and bench/dev, items gained and lost
against the default pool. usage: all_runs_plot.py"""

from rows_plot import compare, plot

DEFAULT = (
    "session 40's default pool (4 runs, 63 originals)"  # label: (runs folder with {bench}, compared with)
)
ROWS = {
    DEFAULT: ("asks/noise/runs-{bench}", None),
    "+ every other labelled run (189 originals)": ("all/pool/runs-{bench}", DEFAULT),
    "the same, rechecked with named_terms": ("all/checked/runs-{bench}", DEFAULT),
}

plot(compare(ROWS), "all_runs", "Every teacher episode pooled, and named_terms (session 41)")
