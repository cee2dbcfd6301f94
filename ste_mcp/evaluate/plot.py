"""PNG charts of eval results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

METRICS = ("wellformed", "api_match", "correct", "strict_correct")
LABELS = {
    "wellformed": "well-formed",
    "api_match": "API match",
    "correct": "correct",
    "strict_correct": "strict correct",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_settings(summaries: Mapping[str, Mapping[str, Any]], path: Path | str, title: str = "") -> Path:
    """Grouped bars: the metrics (%) for each labelled summary (e.g. one per setting); strict correct
    only when every summary has it (older summaries do not)."""
    plt = _pyplot()
    labels = list(summaries)
    metrics = [m for m in METRICS if all(summaries[label].get(m) is not None for label in labels)]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(labels) + 2), 3.6))
    for i, metric in enumerate(metrics):
        xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(labels))]
        values = [float(summaries[label].get(metric, 0.0)) for label in labels]
        bars = ax.bar(xs, values, width, label=LABELS[metric])
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 122)  # room above 100 % for the legend: it must not hide a bar's label
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("%")
    ax.set_title(title or "STE-50: first call of each answer")
    ax.legend(fontsize=8, loc="upper center", ncols=len(metrics), frameon=False)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_curve(
    efforts: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    path: Path | str,
    *,
    xlabel: str = "exploration episodes per tool",
    ylabel: str = "correct (%)",
    title: str = "",
) -> Path:
    """Lines of a metric against exploration effort, one per labelled series (``None``: not measured)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, values in series.items():
        points = [(x, y) for x, y in zip(efforts, values, strict=True) if y is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xticks(list(efforts))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
