"""Evaluation on STE-50: the paper's scorer, the eval runner (`ste-mcp eval`), plots and the learning loop.

from ste_mcp.evaluate import load_bench, run_eval, EvalConfig, score, score_outputs
"""

from ste_mcp.evaluate.bench import Bench, BenchError, BenchItem, load_bench
from ste_mcp.evaluate.run import EvalConfig, EvalResult, run_eval, write_results
from ste_mcp.evaluate.score import ItemScore, Metrics, Summary, score, score_outputs, score_prediction

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
