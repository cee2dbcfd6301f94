"""The promotion gate: a candidate adapter replaces the current one only if it is better.

Both are asked the held-out exemplars' queries as the evaluation asks them (greedy, each reply
prefilled with "Thought:" or, in the must-call prompt, "Action:"; first call only, stopping at
"Observation:"), their outputs are scored with the evaluation's scorer (the paper's metrics: well-formed / API match / correct), and
``decide`` compares the numbers and says why. The held-out rows of the tools the round left out
(leave-tools-out) are scored apart, each asked two ways (``unexplored``: as a tool nobody explored, with
other tools' examples only; ``served``: as the left-out tool is served until the next round, with its own
exemplars as examples), with each answer's outcome paired between the two models: a candidate worse on
either beyond noise is refused whatever it gains on the explored tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

METRICS = ("correct", "api_match", "wellformed")  # compared in this order
# the left-out tools' two questions (the marks of their held-out rows) and how each asks them
LEFT_OUT = {
    "unexplored": "asked as tools nobody explored",
    "served": "asked as served until the next round, with their own examples",
}
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


def compare(
    items: Sequence[dict[str, Any]],
    candidate: Sequence[str],
    baseline: Sequence[str],
    tool_names: Sequence[str],
) -> dict[str, Any]:
    """Both models' metrics on ``items`` and, per metric, [gained, lost]: the items right with the
    candidate only, and with the baseline only."""
    from ste_mcp.evaluate.score import score_prediction, summarize

    ours, theirs = (
        [score_prediction({"output": o}, i, tool_names) for i, o in zip(items, outputs, strict=True)]
        for outputs in (candidate, baseline)
    )
    return {
        "candidate": summarize(ours).model_dump(exclude={"items"}),
        "baseline": summarize(theirs).model_dump(exclude={"items"}),
        "paired": {
            m: [
                sum(1 for a, b in zip(ours, theirs, strict=True) if getattr(a, m) and not getattr(b, m)),
                sum(1 for a, b in zip(ours, theirs, strict=True) if getattr(b, m) and not getattr(a, m)),
            ]
            for m in METRICS
        },
    }


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
    stop_worse_p: float | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Metrics of the candidate adapter and of the baseline (an adapter, or the base model) on ``heldout``,
    asked in the ``prompt`` variant the rows were written in, ``batch_size`` rows at a time (both models).

    With ``stop_worse_p`` (the gate's ``worse_p``) the left-out tools' rows are asked first, and asking stops
    once a question to them refuses the candidate whatever the rows not yet asked would answer
    (``certain_loss``): the result then holds the rows asked and ``stopped_early`` says how many of how many.
    """
    from peft import PeftModel

    names = list(tool_names) or sorted({item["tool"] for item in heldout})
    order = _asking_order(heldout) if stop_worse_p is not None else list(range(len(heldout)))
    questions = sum(1 for p in LEFT_OUT if any(item.get(p) for item in heldout))
    each = None if stop_worse_p is None else share(stop_worse_p, questions)
    peft_model = PeftModel.from_pretrained(model, candidate, adapter_name="candidate")
    if baseline:
        peft_model.load_adapter(baseline, adapter_name="baseline")
    asked: list[int] = []
    candidate_out: list[str] = []
    baseline_out: list[str] = []

    def ask(rows: list[int]) -> list[str]:
        return generate(
            peft_model,
            tokenizer,
            [heldout[i]["prompt"] for i in rows],
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            prefix=PREFIX[prompt],
        )

    stopped = ""
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            peft_model.set_adapter("candidate")
            candidate_out += ask(rows)
            if baseline:
                peft_model.set_adapter("baseline")
                baseline_out += ask(rows)
            else:
                with peft_model.disable_adapter():
                    baseline_out += ask(rows)
            asked += rows
            if each is not None and (
                stopped := _refused_already(heldout, asked, candidate_out, baseline_out, names, each)
            ):
                break
    finally:
        peft_model.unload()  # the base model is left as it was given
    result = split_scores([heldout[i] for i in asked], candidate_out, baseline_out, names)
    if len(asked) < len(heldout):
        result["stopped_early"] = {"asked": len(asked), "rows": len(heldout), "part": stopped}
    return result


def _asking_order(heldout: Sequence[dict[str, Any]]) -> list[int]:
    """The left-out tools' rows first (each question's rows together), then the explored tools'."""
    rank = {part: n for n, part in enumerate(LEFT_OUT)}
    return sorted(
        range(len(heldout)),
        key=lambda i: min((rank[p] for p in LEFT_OUT if heldout[i].get(p)), default=len(rank)),
    )


def _refused_already(
    heldout: Sequence[dict[str, Any]],
    asked: list[int],
    candidate: list[str],
    baseline: list[str],
    names: Sequence[str],
    worse_p: float,
) -> str:
    """The left-out question (``LEFT_OUT``'s key) that refuses the candidate whatever the rows not yet asked
    answer, or ""."""
    sofar = split_scores([heldout[i] for i in asked], candidate, baseline, names)
    done = set(asked)
    for part in LEFT_OUT:
        remaining = sum(1 for i, item in enumerate(heldout) if item.get(part) and i not in done)
        if certain_loss(sofar.get(part), remaining, worse_p):
            return part
    return ""


def certain_loss(part: dict[str, Any] | None, remaining: int, worse_p: float) -> bool:
    """Whether ``left_out_loss`` will find a loss on this question however its ``remaining`` rows not yet
    asked turn out: even were every one of them a gain on ``correct`` (the metric that decides first), the
    candidate would still have lost more answers than it gained, at sign-test p at most ``worse_p``."""
    from ste_mcp.memory.gate import sign_p

    if not part:
        return False
    gained, lost = part["paired"]["correct"]
    best_case = gained + remaining
    return lost > best_case and (worse_p >= 1.0 or sign_p(lost, best_case) <= worse_p)


def split_scores(
    heldout: Sequence[dict[str, Any]],
    candidate: Sequence[str],
    baseline: Sequence[str],
    tool_names: Sequence[str],
) -> dict[str, Any]:
    """The gate's result: metrics on the explored tools' held-out rows (``eval``, ``baseline``), the
    left-out tools' comparisons (``unexplored`` and ``served``, when the round left tools out) and every
    answer."""
    explored = [i for i, item in enumerate(heldout) if not any(item.get(p) for p in LEFT_OUT)]

    def pick(seq: Sequence[Any], idx: list[int]) -> list[Any]:
        return [seq[i] for i in idx]

    known = compare(pick(heldout, explored), pick(candidate, explored), pick(baseline, explored), tool_names)
    result: dict[str, Any] = {
        "eval": known["candidate"],
        "baseline": known["baseline"],
        "predictions": [
            {
                "id": item["id"],
                "candidate": c,
                "baseline": b,
                **{p: True for p in LEFT_OUT if item.get(p)},
            }
            for item, c, b in zip(heldout, candidate, baseline, strict=True)
        ],
    }
    for part in LEFT_OUT:
        apart = [i for i, item in enumerate(heldout) if item.get(part)]
        if apart:
            result[part] = {
                "tools": sorted({heldout[i]["tool"] for i in apart}),
                **compare(pick(heldout, apart), pick(candidate, apart), pick(baseline, apart), tool_names),
            }
    return result


def left_out_loss(part: dict[str, Any] | None, worse_p: float, asked: str = LEFT_OUT["unexplored"]) -> str:
    """Why the candidate is worse than the baseline on one question to the left-out tools beyond noise
    ("" if it is not; ``asked`` says how they were asked): the first metric on which some answer changed
    decides; a loss counts when the one-sided sign test over the answers that changed gives p at most
    ``worse_p`` (1.0: any loss)."""
    from ste_mcp.memory.gate import sign_p

    if not part:
        return ""
    ours, theirs = part["candidate"], part["baseline"]
    for m in METRICS:
        gained, lost = part["paired"][m]
        if gained == lost:
            continue
        p = sign_p(lost, gained)
        if lost < gained or (worse_p < 1.0 and p > worse_p):
            return ""
        return (
            f"the tools it was not trained on ({', '.join(part.get('tools', []))}), {asked}: "
            f"{m} {ours.get(m, 0.0):.1f}% vs {theirs.get(m, 0.0):.1f}% on "
            f"{ours.get('n', 0)} requests ({lost} lost, {gained} gained; sign test p = {p:.3f})"
        )
    return ""


def share(worse_p: float, questions: int) -> float:
    """Each question's part of ``worse_p`` when ``questions`` are asked of the left-out tools (1.0, any loss
    refuses, stays 1.0)."""
    return worse_p if worse_p >= 1.0 else worse_p / max(questions, 1)


def decide(
    candidate: dict[str, Any],
    baseline: dict[str, Any],
    min_delta: float = 0.0,
    min_heldout: int = 1,
    unexplored: dict[str, Any] | None = None,
    worse_p: float = 0.2,
    served: dict[str, Any] | None = None,
) -> Decision:
    """Promote only if the candidate beats the baseline on (correct, api_match, wellformed), in that order,
    and is not worse beyond noise on the left-out tools, asked either way (``unexplored``, ``served``:
    ``split_scores``' parts).

    A loss on the left-out tools refuses it whatever else it gains; the questions asked share one
    ``worse_p`` (each at ``worse_p`` / their number), so that asking twice does not double the chance of
    refusing a candidate for noise. Otherwise fewer than ``min_heldout`` held-out rows decide nothing (one
    row of two is 50 points): the candidate is left unjudged, for the operator to promote or not.
    """
    asked = [(part, LEFT_OUT[key]) for key, part in (("unexplored", unexplored), ("served", served)) if part]
    each = share(worse_p, len(asked))
    for part, how in asked:
        loss = left_out_loss(part, each, how)
        if loss:
            return Decision(promote=False, reason=f"refused: worse than the current model on {loss}")
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
