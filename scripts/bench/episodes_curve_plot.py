"""docs/bench/episodes_curve.json (scripts/bench/episodes_curve.sh) as docs/bench/episodes_curve.png: the 0.5B
student's correct % against the 1.5B teacher's exploration, in episodes per tool and in CPU-hours.
usage: episodes_curve_plot.py"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

points = json.loads(Path("docs/bench/episodes_curve.json").read_text())
fig, (by_episode, by_hour) = plt.subplots(1, 2, figsize=(11, 4.2))
for bench, label, marker in (("ste50", "195 STE-50 toolbox items", "o"), ("dev", "bench/dev (65)", "s")):
    xs = [p["episodes"] for p in points]
    hours = [p["cpu_hours"] for p in points]
    ys = [p[bench]["correct"] for p in points]
    by_episode.plot(xs, ys, marker=marker, label=label)
    by_hour.plot(hours, ys, marker=marker, label=label)
    for x, y in zip(xs, ys, strict=True):
        by_episode.annotate(
            f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
        )
by_episode.set_xlabel("teacher episodes per tool (pooled 1-episode runs; 0: best zero-shot prompt)")
by_hour.set_xlabel("teacher CPU-hours (2 cores × wall)")
for ax in (by_episode, by_hour):
    ax.set_ylabel("correct % (0.5B, best setting, constrained)")
    ax.set_ylim(0, 100)
    ax.axhline(58, color="#999999", linestyle=":", linewidth=1)
    ax.legend(fontsize=8, loc="lower right")
by_episode.text(4.2, 60, "issue 17's 58 % (195 items)", fontsize=7, color="#666666")
fig.suptitle("What the teacher's exploration buys the 0.5B student", fontsize=10)
fig.tight_layout()
fig.savefig("docs/bench/episodes_curve.png", dpi=110)
print("docs/bench/episodes_curve.png")
