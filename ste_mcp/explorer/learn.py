"""Stages of the learning loop after exploration, shared by ``ste-mcp learn`` and the benchmarks
(``ste_mcp.evaluate.loop``): judge every pending trial (not only the bounded batch one ``serve`` pass
takes) with the roles' models, in the batches ``serve`` uses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ste_mcp.app import App
    from ste_mcp.memory.exploit import ExploitReport
    from ste_mcp.memory.extension import MemoryExtension


class LearnError(Exception):
    """A stage of the loop failed; the message says which and why."""


@dataclass
class JudgeTotals:
    """What judging did over all batches (``ExploitReport`` summed)."""

    judged: int = 0
    accepted: int = 0
    refused: int = 0
    exemplars: int = 0
    paraphrases: int = 0
    repaired: int = 0  # kept after hindsight restated a refused request (memory.hindsight = "repair")
    claimed_elsewhere: int = 0  # judged by another process sharing the database
    errors: list[str] = field(default_factory=list)

    def add(self, report: ExploitReport | JudgeTotals) -> None:
        """Count a judging batch's report (or another pass's totals) in."""
        self.judged += report.judged
        self.accepted += report.accepted
        self.refused += report.refused
        self.exemplars += report.exemplars
        self.paraphrases += report.paraphrases
        self.repaired += report.repaired
        self.claimed_elsewhere += report.claimed_elsewhere
        self.errors += report.errors


def memory_of(app: App) -> MemoryExtension:
    """The app's memory feature (exemplars, descriptions, the judge pipeline); ``LearnError`` if absent."""
    from ste_mcp.memory.extension import MemoryExtension

    memory = app.extension("memory")
    if not isinstance(memory, MemoryExtension):
        raise LearnError("the memory feature is not installed: nothing can judge the trials")
    return memory


async def judge_pending(
    app: App,
    tools: Iterable[str] | None = None,
    *,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int, JudgeTotals], None] | None = None,
) -> JudgeTotals:
    """Judge every unjudged trial (of ``tools``, default all) into exemplars and paraphrases.

    Opens the judge's and the paraphraser's models first, so an unreachable one raises
    ``ModelUnavailable`` instead of postponing. ``on_start(n)`` is told how many trials wait,
    ``on_batch(done, totals)`` is called after each batch.
    """
    from ste_mcp.memory.extension import JUDGE_BATCH_ROUNDS

    memory = memory_of(app)
    await app.model_for("judge")
    await app.model_for("paraphrase")
    unjudged = await anyio.to_thread.run_sync(memory.trials.unjudged)
    wanted = None if tools is None else set(tools)
    pending = [t for t in unjudged if wanted is None or t.tool in wanted]
    if on_start is not None:
        on_start(len(pending))
    totals = JudgeTotals()
    batch = memory.settings.judge_concurrency * JUDGE_BATCH_ROUNDS
    for start in range(0, len(pending), batch):
        chunk = pending[start : start + batch]
        report = await memory.exploit(chunk)
        if report is None:
            raise LearnError("judging stopped: the judge's model became unreachable")
        totals.add(report)
        if on_batch is not None:
            on_batch(len(chunk), totals)
    return totals
