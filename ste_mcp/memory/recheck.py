"""Recheck: stored exemplars against today's rules.

The checks an exemplar passes are those of the version that stored it. When a rule is added or
sharpened (a judge check, a request filter), exemplars stored before keep being served as
demonstrations, rendered into descriptions and trained on. ``recheck`` reads every approved and candidate
exemplar again with the checks an import applies — the tool's argument schema, instructions in any
field, a request that names or talks about a tool, and the ``memory.judge_checks`` that read only the
request and the call, and for a paraphrase the values its original states — and rejects those that
fail, with the reason (an original takes its paraphrases with it). No model is asked; nothing is
deleted (``ste-mcp exemplars approve ID`` undoes a rejection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.exploit import exemplar_problem, unsafe_reason
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.upstream.tools import Tool

__all__ = ["RecheckReport", "recheck"]

REASON_PREFIX = "recheck: "


@dataclass
class RecheckReport:
    checked: int = 0
    unserved: int = 0  # exemplars of tools the toolset no longer serves (left as they are)
    failed: list[tuple[Exemplar, str]] = field(default_factory=list)  # (exemplar, why)
    rejected: int = 0  # rows rejected (paraphrases of a failed original included)


def recheck(
    store: ExemplarStore,
    tools: Mapping[str, Tool],
    settings: MemorySettings,
    *,
    tool: str | None = None,
    dry_run: bool = False,
) -> RecheckReport:
    """Check the approved and candidate exemplars (of ``tool``, or all) again; reject those that fail
    unless ``dry_run``."""
    report = RecheckReport()
    live = [ex for status in ("approved", "candidate") for ex in store.find(tool, status)]
    failed_originals: set[str] = set()
    by_id = {ex.id: ex for ex in live}
    for ex in sorted(live, key=lambda e: e.variant_of is not None):  # originals first
        served = tools.get(ex.tool)
        if served is None:
            report.unserved += 1
            continue
        report.checked += 1
        if ex.variant_of in failed_originals:
            continue  # goes with its original
        original = (by_id.get(ex.variant_of) or store.get(ex.variant_of)) if ex.variant_of else None
        problem = exemplar_problem(
            ex.tool,
            served,
            query=ex.query,
            arguments=ex.arguments,
            observation=ex.observation,
            final_answer=ex.final_answer,
            other_tools=[name for name in tools if name != ex.tool],
            checks=settings.judge_checks,
            original_query=original.query if original is not None else None,
        ) or unsafe_reason(ex)
        if problem is None:
            continue
        report.failed.append((ex, problem))
        if ex.variant_of is None:
            failed_originals.add(ex.id)
        if not dry_run:
            report.rejected += store.set_status([ex.id], "rejected", REASON_PREFIX + problem)
    return report
