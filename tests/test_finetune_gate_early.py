"""The gate stops asking once a question to the left-out tools refuses the candidate whatever the rows not
yet asked would answer (``finetune.gate_stop_early``). peft and generation are scripted here (which adapter
answers which row); ``test_finetune_model`` runs the real gate on the packaged model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ste_mcp.finetune import gate
from ste_mcp.finetune.gate import certain_loss, decide, evaluate_adapters
from tests.test_finetune_leave_out import NAMES, SERVED, answers, items, pool, settings


class ScriptedPeft:
    """The part of peft's ``PeftModel`` the gate uses: which adapter is active."""

    def __init__(self) -> None:
        self.active = "candidate"
        self.unloaded = False

    def load_adapter(self, path: str, adapter_name: str) -> None:
        assert adapter_name == "baseline"

    def set_adapter(self, name: str) -> None:
        self.active = name

    @contextmanager
    def disable_adapter(self) -> Iterator[None]:
        active, self.active = self.active, "base"
        yield
        self.active = active

    def unload(self) -> None:
        self.unloaded = True


def held_rows() -> list[dict]:
    """10 explored rows, 16 left-out rows asked as unexplored and 16 as served; each row's prompt names it."""
    rows = items("translate", 10) + items("stock", 16, "unexplored") + items("stock", 16, "served")
    for row in rows:
        part = "unexplored" if row.get("unexplored") else "served" if row.get("served") else "explored"
        row["prompt"] = f"{part}/{row['id']}"
    return rows


def scripted(monkeypatch: pytest.MonkeyPatch, right: dict[str, set[str]]) -> list[str]:
    """Each model answers right exactly the prompts in ``right[model]``; returns the prompts asked, in order."""
    peft = ScriptedPeft()
    monkeypatch.setattr("peft.PeftModel.from_pretrained", lambda model, path, adapter_name: peft)
    asked: list[str] = []
    by_prompt = {row["prompt"]: row for row in held_rows()}

    def generate(model, tokenizer, conversations, **kw) -> list[str]:
        assert model is peft
        if peft.active == "candidate":
            asked.extend(conversations)
        return [
            answers([by_prompt[c]], {by_prompt[c]["id"]} if c in right[peft.active] else set())[0]
            for c in conversations
        ]

    monkeypatch.setattr(gate, "generate", generate)
    return asked


def ask(held: list[dict], stop: float | None, baseline: str | None = None) -> dict:
    return evaluate_adapters(
        object(),
        None,
        held,
        candidate="cand",
        baseline=baseline,
        tool_names=NAMES,
        max_new_tokens=8,
        prompt="must-call",
        stop_worse_p=stop,
        batch_size=4,
    )


def verdict(result: dict, worse_p: float = 0.2):
    return decide(
        result["eval"],
        result["baseline"],
        unexplored=result.get("unexplored"),
        served=result.get("served"),
        worse_p=worse_p,
    )


def test_certain_loss_holds_whatever_the_rows_not_asked_answer() -> None:
    def part(gained: int, lost: int) -> dict:
        return {"paired": {"correct": [gained, lost]}}

    assert certain_loss(part(0, 12), 4, 0.1)  # even 12 lost vs 4 gained: p 0.038
    assert not certain_loss(part(0, 8), 8, 0.1)  # 8 more gains would be a tie
    assert not certain_loss(part(0, 6), 2, 0.1)  # 6 lost vs 2 gained: p 0.145, noise
    assert certain_loss(part(0, 6), 2, 1.0)  # any loss refuses
    assert not certain_loss(part(3, 1), 0, 1.0) and not certain_loss(None, 0, 0.2)


def test_a_candidate_that_loses_the_unexplored_tools_is_refused_before_the_rest_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = held_rows()
    prompts = [row["prompt"] for row in held]
    explored = {p for p in prompts if p.startswith("explored/")}
    left_out = set(prompts) - explored
    # better where it trained, wrong on every left-out request the base model answers right
    asked = scripted(monkeypatch, {"candidate": explored, "base": left_out})
    early = ask(held, stop=0.2)
    assert early["stopped_early"] == {"asked": 12, "rows": 42, "part": "unexplored"}
    assert asked == prompts[10:22]  # the left-out rows first; 12 lost with 4 to go cannot become noise
    assert early["unexplored"]["paired"]["correct"] == [0, 12] and "served" not in early
    assert early["eval"]["n"] == 0 and len(early["predictions"]) == 12
    stopped = verdict(early)
    assert not stopped.promote and stopped.judged and "asked as tools nobody explored" in stopped.reason

    asked.clear()
    full = ask(held, stop=None)  # every row, in the held-out file's order
    assert "stopped_early" not in full and asked == prompts and full["eval"]["n"] == 10
    assert not verdict(full).promote  # the verdict the whole set gives


def test_a_candidate_the_left_out_tools_cannot_refuse_is_asked_every_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = held_rows()
    prompts = [row["prompt"] for row in held]
    explored = {p for p in prompts if p.startswith("explored/")}
    # against a baseline adapter: 6 lost of the served question's answers and 2 gained, p 0.145: noise
    served = [p for p in prompts if p.startswith("served/")]
    asked = scripted(
        monkeypatch,
        {"candidate": set(prompts) - set(served[:6]), "baseline": set(prompts) - explored - set(served[6:8])},
    )
    result = ask(held, stop=0.2, baseline="current")
    assert "stopped_early" not in result and sorted(asked) == sorted(prompts)
    assert result["served"]["paired"]["correct"] == [2, 6] and result["eval"]["n"] == 10
    assert verdict(result).promote


@pytest.mark.anyio
async def test_a_round_stopped_early_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ste_mcp.finetune import rounds
    from ste_mcp.finetune.registry import AdapterRegistry

    jobs: list[dict] = []

    async def scripted_training(cmd, log, pid_file, threads) -> int:
        """Writes what an early-stopped gate returns: the left-out rows asked, all lost."""
        from tests.fixtures.finetune import fake_adapter

        work = Path(cmd[-1]).parent
        jobs.append(json.loads((work / "job.json").read_text()))
        held = [json.loads(line) for line in (work / "heldout.jsonl").read_text().splitlines()]
        fake_adapter(work, "x").rename(work / "adapter")
        left = [h for h in held if h.get("unexplored")]
        result = gate.split_scores(left, answers(left, set()), answers(left, {h["id"] for h in left}), NAMES)
        result["stopped_early"] = {"asked": len(left), "rows": len(held), "part": "unexplored"}
        (work / "result.json").write_text(json.dumps({**result, "train": {}}))
        return 0

    monkeypatch.setattr(rounds, "_run_process", scripted_training)
    outcome = await rounds.run_round(
        adapters_dir=tmp_path / "adapters",
        base=rounds.BaseModelRef(path=str(tmp_path), base_id="org/base"),
        tools=SERVED,
        exemplars=pool(),
        settings=settings(general_examples=0, heldout_fraction=0.3, gate_min_heldout=2),
    )
    assert jobs[0]["settings"]["gate_stop_early"] is True  # the training process is told to stop early
    assert outcome.status == "rejected" and "not trained on" in outcome.reason
    assert outcome.reason.endswith("held-out rows: the rest could not change it)")
    manifest = AdapterRegistry(tmp_path / "adapters").get(outcome.adapter.id)
    assert manifest.metrics["stopped_early"]["part"] == "unexplored"
