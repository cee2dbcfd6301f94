"""The promotion gate: a candidate adapter replaces the current one only if it is better.

Both are asked the held-out exemplars' queries as the evaluation asks them (greedy, each reply
prefilled with "Thought:" or, in the must-call prompt, "Action:"; first call only, stopping at
"Observation:"), their outputs are scored with the evaluation's scorer (the paper's metrics: well-formed / API match / correct), and
``decide`` compares the numbers and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

METRICS = ("correct", "api_match", "wellformed")  # compared in this order
STOP = "Observation:"
# What the evaluation prefills in each prompt variant (``finetune.prompt``): the ReAct protocol's
# REACT_PREFIX and must-call's MUST_CALL_PREFIX; not imported from there because the training process
# must not load the LLM client stack.
PREFIX = {"paper": "Thought:", "must-call": "Action:"}


class Decision(BaseModel):
    """The gate's word on a candidate; ``judged`` is False when it had too few held-out rows to say."""

    promote: bool
    reason: str
    judged: bool = True


def generate(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[list[dict[str, str]]],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
    prefix: str = "",
) -> list[str]:
    """Greedy replies to chat conversations (rendered with the model's chat template), cut at "Observation:".

    ``prefix`` starts every reply (prefilled, and part of the returned text). Without "Thought:" a
    small base model may open a ReAct reply with "Observation:", which the stop cuts to nothing.
    """
    import torch

    tokenizer.padding_side = "left"
    texts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) + prefix
        for c in conversations
    ]
    outputs: list[str] = []
    model.eval()
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(model.device)
        with torch.no_grad():
            ids = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                stop_strings=[STOP],
                tokenizer=tokenizer,
            )
        for row in ids[:, batch["input_ids"].shape[1] :]:
            text = prefix + tokenizer.decode(row, skip_special_tokens=True)
            outputs.append(text.split(STOP)[0].rstrip())
    return outputs


def score(
    items: Sequence[dict[str, Any]], outputs: Sequence[str], tool_names: Sequence[str]
) -> dict[str, Any]:
    """The paper's metrics (percentages) of raw ReAct outputs against the items' ground-truth calls."""
    from ste_mcp.evaluate.score import score_outputs

    return score_outputs(items, outputs, tool_names)


def evaluate_adapters(
    model: Any,
    tokenizer: Any,
    heldout: Sequence[dict[str, Any]],
    *,
    candidate: str,
    baseline: str | None,
    tool_names: Sequence[str],
    max_new_tokens: int,
    prompt: str = "paper",
) -> dict[str, Any]:
    """Metrics of the candidate adapter and of the baseline (an adapter, or the base model) on ``heldout``,
    asked in the ``prompt`` variant the rows were written in."""
    from peft import PeftModel

    names = list(tool_names) or sorted({item["tool"] for item in heldout})
    conversations = [item["prompt"] for item in heldout]

    def ask(m: Any) -> list[str]:
        return generate(m, tokenizer, conversations, max_new_tokens=max_new_tokens, prefix=PREFIX[prompt])

    peft_model = PeftModel.from_pretrained(model, candidate, adapter_name="candidate")
    try:
        candidate_out = ask(peft_model)
        if baseline:
            peft_model.load_adapter(baseline, adapter_name="baseline")
            peft_model.set_adapter("baseline")
            baseline_out = ask(peft_model)
        else:
            with peft_model.disable_adapter():
                baseline_out = ask(peft_model)
    finally:
        peft_model.unload()  # the base model is left as it was given
    return {
        "eval": score(heldout, candidate_out, names),
        "baseline": score(heldout, baseline_out, names),
        "predictions": [
            {"id": item["id"], "candidate": c, "baseline": b}
            for item, c, b in zip(heldout, candidate_out, baseline_out, strict=True)
        ],
    }


def decide(
    candidate: dict[str, Any], baseline: dict[str, Any], min_delta: float = 0.0, min_heldout: int = 1
) -> Decision:
    """Promote only if the candidate beats the baseline on (correct, api_match, wellformed), in that order.

    Fewer than ``min_heldout`` held-out rows decide nothing (one row of two is 50 points): the candidate
    is left unjudged, for the operator to promote or not.
    """
    n = int(candidate.get("n", 0))
    if n < max(min_heldout, 1):
        return Decision(
            promote=False,
            judged=False,
            reason=f"not judged: {n} held-out exemplars, fewer than the {max(min_heldout, 1)} the gate "
            "needs (finetune.gate_min_heldout); registered as a candidate "
            "(`ste-mcp adapters promote <id>` serves it)",
        )
    summary = (
        ", ".join(f"{m} {candidate.get(m, 0.0):.1f}% vs {baseline.get(m, 0.0):.1f}%" for m in METRICS)
        + f" on {n} held-out exemplars"
    )
    ours = tuple(float(candidate.get(m, 0.0)) for m in METRICS)
    theirs = tuple(float(baseline.get(m, 0.0)) for m in METRICS)
    if ours <= theirs:
        return Decision(promote=False, reason=f"refused: not better than the current model ({summary})")
    if ours[0] - theirs[0] < min_delta:
        return Decision(
            promote=False,
            reason=f"refused: correct gained less than the required {min_delta:.1f} points ({summary})",
        )
    return Decision(promote=True, reason=f"promoted: better than the current model ({summary})")
