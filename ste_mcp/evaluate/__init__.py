"""Evaluation on STE-50: the paper's scorer, the eval runner (`ste-mcp eval`), plots and the learning loop.

Import from the modules, which keeps each import as light as its job::

    from ste_mcp.evaluate.score import score, score_outputs   # a leaf: pydantic + upstream validation
    from ste_mcp.evaluate.bench import load_bench
    from ste_mcp.evaluate.run import EvalConfig, run_eval     # the runner (the LLM client, httpx)

``score.py`` is a leaf on purpose: the training process scores the adapter gate with it
(``finetune/gate.py``) and must not load the LLM client or the database.
"""
