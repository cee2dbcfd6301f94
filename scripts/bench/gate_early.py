"""What ``finetune.gate_stop_early`` saves, replayed on the gates of two real rounds (no model time).

Session 31's two rounds (scripts/bench/gate_unexplored.sh: share 0 and 0.5 of rows with other tools'
examples only) recorded every held-out answer of both models: the explored tools' rows and the left-out
tools' rows asked as unexplored (the round's ``predictions.jsonl``), and session 32's second question, the
same exemplars asked as served (``gate_served.py``'s ``served-<variant>.json``). Here those 106 recorded
answer pairs are replayed through the gate's own ``evaluate_adapters`` (peft and generation replaced by the
record, nothing else), once asking every row and once stopping early, and ``gate.decide`` gives both verdicts.
Rows asked stand for the gate's time: each is one generation per model, of prompts alike in length.

usage: [OUT=.cache/bench/gate-unexplored] .venv/bin/python scripts/bench/gate_early.py
Results: docs/bench/gate_early.json
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

VARIANTS = {"f0": "share 0", "f50": "share 0.5"}


def gate_rows(out: Path, variant: str) -> tuple[list[dict], dict[str, tuple[str, str]], dict]:
    """The round's held-out rows with the served question added, and each row's recorded answers."""
    (folder,) = (out / f"train-{variant}" / "adapters").glob("r001-*")
    held = [json.loads(line) for line in (folder / "heldout.jsonl").read_text().splitlines()]
    recorded = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    served = json.loads((out / f"served-{variant}.json").read_text())
    answers: dict[str, tuple[str, str]] = {}
    for row, said in zip(held, recorded, strict=True):
        assert row["id"] == said["id"]
        row["prompt"] = f"{'unexplored' if row.get('unexplored') else 'explored'}/{row['id']}"
        answers[row["prompt"]] = (said["candidate"], said["baseline"])
    truth = {row["id"]: row for row in held if row.get("unexplored")}
    for said in served["answers"]:
        row = {**truth[said["id"]], "prompt": f"served/{said['id']}"}
        row.pop("unexplored")
        row["served"] = True
        held.append(row)
        answers[row["prompt"]] = (said["candidate"], said["baseline"])
    return held, answers, served


def replay(held: list[dict], answers: dict[str, tuple[str, str]], stop: float | None) -> tuple[dict, int]:
    """The gate's result on the recorded answers, and how many rows it asked."""
    from ste_mcp.finetune import gate

    class Recorded:
        active = "candidate"

        def set_adapter(self, name: str) -> None:
            self.active = name

        @contextmanager
        def disable_adapter(self):
            self.active = "base"
            yield
            self.active = "candidate"

        def unload(self) -> None:
            pass

    model = Recorded()
    asked: list[str] = []

    def generate(m, tokenizer, prompts, **kw) -> list[str]:
        if model.active == "candidate":
            asked.extend(prompts)
        return [answers[p][0 if model.active == "candidate" else 1] for p in prompts]

    with (
        mock.patch("peft.PeftModel.from_pretrained", lambda *a, **k: model),
        mock.patch.object(gate, "generate", generate),
    ):
        names = sorted({row["tool"] for row in held})
        result = gate.evaluate_adapters(
            None,
            None,
            held,
            candidate="c",
            baseline=None,
            tool_names=names,
            max_new_tokens=96,
            prompt="must-call",
            stop_worse_p=stop,
        )
    return result, len(asked)


def main() -> None:
    from ste_mcp.finetune.gate import decide
    from ste_mcp.finetune.settings import FinetuneSettings

    out = Path(os.environ.get("OUT", ".cache/bench/gate-unexplored"))
    worse_p = FinetuneSettings().gate_worse_p
    report = {}
    for variant, label in VARIANTS.items():
        held, answers, served = gate_rows(out, variant)
        row: dict = {"round": label, "rows": len(held)}
        for mode, stop in (("every row", None), ("stop early", worse_p)):
            result, asked = replay(held, answers, stop)
            verdict = decide(
                result["eval"],
                result["baseline"],
                unexplored=result.get("unexplored"),
                served=result.get("served"),
                worse_p=worse_p,
            )
            row[mode] = {"asked": asked, "promote": verdict.promote, "reason": verdict.reason}
        row["served_question_s"] = served["seconds"]  # 40 rows × 2 models, measured in session 32
        report[variant] = row
        full, early = row["every row"], row["stop early"]
        print(
            f"{label}: {full['asked']} -> {early['asked']} rows asked; verdict {full['promote']} -> "
            f"{early['promote']}; {early['reason'][:120]}"
        )
        assert full["promote"] == early["promote"], "stopping early changed the verdict"
    Path("docs/bench/gate_early.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
