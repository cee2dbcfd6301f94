"""Evaluation on STE-50: the paper's scorer, the eval runner (`ste-mcp eval`), plots and the learning loop.

from ste_mcp.evaluate import load_bench, run_eval, EvalConfig, score, score_outputs
"""

from typing import Any

from ste_mcp.evaluate.bench import Bench, BenchError, BenchItem, load_bench
from ste_mcp.evaluate.score import ItemScore, Metrics, Summary, score, score_outputs, score_prediction

# The runner needs the LLM layer (httpx); the scorer must not: the training process scores the gate with it.
_RUNNER = {"EvalConfig", "EvalResult", "run_eval", "write_results"}


def __getattr__(name: str) -> Any:
    if name in _RUNNER:
        from ste_mcp.evaluate import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Bench",
    "BenchError",
    "BenchItem",
    "EvalConfig",
    "EvalResult",
    "ItemScore",
    "Metrics",
    "Summary",
    "load_bench",
    "run_eval",
    "score",
    "score_outputs",
    "score_prediction",
    "write_results",
]
