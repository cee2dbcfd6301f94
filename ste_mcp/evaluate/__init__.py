"""Evaluation on STE-50: the paper's scorer, the eval runner (`ste-mcp eval`) and plots."""

from ste_mcp.evaluate.score import ItemScore, Metrics, Summary, score, score_outputs, score_prediction

__all__ = ["ItemScore", "Metrics", "Summary", "score", "score_outputs", "score_prediction"]
