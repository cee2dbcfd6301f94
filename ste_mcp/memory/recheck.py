"""Recheck: stored exemplars against today's rules.

The checks an exemplar passes are those of the version that stored it. When a rule is added or
sharpened (a judge check, a request filter), exemplars stored before keep being served as
demonstrations, rendered into descriptions and trained on. ``recheck`` reads every approved and candidate
exemplar again with the checks an import applies — the tool's argument schema, instructions in any
field, a request that names or talks about a tool, and the ``memory.judge_checks`` that read only the
request and the call, and for a paraphrase the values its original states — and rejects those that
fail, with the reason (an original takes its paraphrases with it). No model is asked; nothing is
deleted (``ste-mcp exemplars approve ID`` undoes a rejection).

``recheck_results`` (``--call``) applies the checks that read the tool's result, which an exemplar keeps
only as a typed summary: each original whose request asks for a language, for one day relative to
today or gives a name is called again (only tools exploration may call) and, as the Exploiter would,
moves with its paraphrases to the sibling tool that answers in that language, or is rejected when its
result is clearly in another (``result_language``), gives dates but not the day asked, counted from the
day of the recheck (``result_date``), or deals with none of the names it gives (``named_terms``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ste_mcp.memory.dates import asks_a_day, date_problem, days_of
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.exploit import Cleaner, exemplar_problem, moved_exemplar, unsafe_reason
from ste_mcp.memory.language import answering_sibling, asked_language, language_problem, sibling_caller
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.terms import documentation_of, named_terms, unnamed_terms
from ste_mcp.upstream.tools import Tool, ToolResult

__all__ = ["RecheckReport", "ResultsReport", "recheck", "recheck_results"]

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
            made=ex.provenance.created_at,
        ) or unsafe_reason(ex)
        if problem is None:
            continue
        report.failed.append((ex, problem))
        if ex.variant_of is None:
            failed_originals.add(ex.id)
        if not dry_run:
            report.rejected += store.set_status([ex.id], "rejected", REASON_PREFIX + problem)
    return report


@dataclass
class ResultsReport:
    called: int = 0
    failed_calls: int = 0  # the upstream answered with an error: the exemplar is left as it is
    moved: list[tuple[Exemplar, str]] = field(default_factory=list)  # (original, the sibling it moved to)
    failed: list[tuple[Exemplar, str]] = field(default_factory=list)  # (original, why)
    rows: int = 0  # rows moved or rejected, paraphrases included


async def recheck_results(
    store: ExemplarStore,
    tools: Mapping[str, Tool],
    settings: MemorySettings,
    call: Callable[[Tool, dict[str, Any]], Awaitable[ToolResult]],
    may_call: Callable[[Tool], bool],
    *,
    secrets: Iterable[str] = (),
    tool: str | None = None,
    dry_run: bool = False,
) -> ResultsReport:
    """Call the approved and candidate originals (of ``tool``, or all) whose request asks for a language
    or a day relative to today, or gives a name, again, with ``call``, and move or reject them by
    ``result_language``, ``result_date`` and ``named_terms`` unless ``dry_run``."""
    report = ResultsReport()
    language = "result_language" in settings.judge_checks
    day = "result_date" in settings.judge_checks
    names = "named_terms" in settings.judge_checks
    if not (language or day or names):
        return report
    siblings = sibling_caller(tools.values, call, may_call)
    cleaner = Cleaner(settings, secrets)
    live = [ex for status in ("approved", "candidate") for ex in store.find(tool, status)]
    groups: dict[str, list[Exemplar]] = {}
    for ex in live:
        groups.setdefault(ex.group, []).append(ex)
    today = days_of([datetime.now(UTC)])

    def reads_result(query: str) -> bool:
        return (
            (language and asked_language(query) is not None)
            or (day and asks_a_day(query))
            or (names and bool(named_terms(query)))
        )

    for ex in [e for e in live if e.variant_of is None and reads_result(e.query)]:
        served = tools.get(ex.tool)
        if served is None or not may_call(served):
            continue
        result = await call(served, dict(ex.arguments))
        report.called += 1
        if result.is_error:
            report.failed_calls += 1
            continue
        found = (
            await answering_sibling(ex.query, result.text, served, ex.arguments, siblings)
            if language
            else None
        )
        if found is not None:
            sibling, text = found
            report.moved.append((ex, sibling.name))
            if not dry_run:
                others = [name for name in tools if name != sibling.name]
                summary = cleaner.summary(cleaner.redactor.redact(text), others)
                moved = [
                    moved_exemplar(e, sibling.name, summary, moved_from=e.tool, note=REASON_PREFIX)
                    for e in groups[ex.id]
                ]
                report.rows += len(store.add(moved))
            continue
        if language and (problem := language_problem(ex.query, result.text)):
            name = "result_language"
        elif day and (problem := date_problem(ex.query, result.text, today)):
            name = "result_date"
        elif names and (
            problem := unnamed_terms(ex.query, ex.arguments, result.text, documentation_of(served))
        ):
            name = "named_terms"
        else:
            continue
        report.failed.append((ex, f"{name}: {problem}"))
        if not dry_run:
            report.rows += store.set_status([ex.id], "rejected", f"{REASON_PREFIX}{name}: {problem}")
    return report
