"""Session 39's student rows (BENCHMARKS "Session 39") in docs/bench/added_asks.{json,png}: the four
shared-memory teacher runs pooled without the added_asks check, and with it and what it refused replayed
through hindsight's repair (scripts/bench/added_asks.sh; the pool with the check and no repair, when its rows
were run); each on the 195 STE-50 toolbox items and bench/dev, items gained and lost against the pool without
the check. usage: added_asks_plot.py"""

from rows_plot import BEST, CACHE, compare, plot

WITHOUT = "four runs pooled, without added_asks"  # label: (runs folder with {bench}, compared with)
CHECKED = ("with added_asks, refused only", ("asks/checked/runs-{bench}", WITHOUT))
REPAIRED = ("with added_asks, refused repaired", ("asks/repaired/runs-{bench}", WITHOUT))
checked_ran = (CACHE / "asks/checked/runs-ste50" / BEST / "scores.jsonl").exists()
ROWS = dict([(WITHOUT, ("asks/without/runs-{bench}", None)), *([CHECKED] if checked_ran else []), REPAIRED])

plot(compare(ROWS), "added_asks", "A request that asks for more than its call (session 39)")
