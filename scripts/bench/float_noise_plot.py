"""Session 40's student rows (BENCHMARKS "Session 40") in docs/bench/float_noise.{json,png}: session 39's
default pool (four shared runs, added_asks refusals repaired) as it was, and rechecked with float_noise
(scripts/bench/float_noise.sh); each on the 195 STE-50 toolbox items and bench/dev, items gained and lost
against the pool without the check. usage: float_noise_plot.py"""

from rows_plot import compare, plot

BEFORE = "session 39's default pool"  # label: (runs folder with {bench}, compared with)
ROWS = {
    BEFORE: ("asks/repaired/runs-{bench}", None),
    "rechecked with float_noise": ("asks/noise/runs-{bench}", BEFORE),
}

plot(compare(ROWS), "float_noise", "A number sent with a float's rounding noise (session 40)")
