"""The description gate: a rewritten description is served only if it measurably helps.

``Rewriter.rewrite`` does, per tool: split its approved exemplars by group (an exemplar with its
paraphrases) into a writing part and a held-out part (``memory.gate_heldout_fraction``, by a hash
of the group id: the same split on every run); write usage notes (``memory/notes.py``) from the
writing part and the trials behind it only; render the candidate as ``memory.description_render``
says; then ask the evaluator (the app's model, the evaluation's must-call prompt, greedy, decoded as
``memory.gate_decoding`` says: under the grammar by default) every
held-out query twice — once with the candidate, once with the served description — each time with
the tool's nearest other tools (``memory.gate_distractors``, by MiniLM similarity of name and
description) listed beside it as distractors — with ``memory.gate_neighbour_queries`` the
distractors' own held-out queries too, so notes that pull a neighbour's requests lose; at most
``memory.gate_max_queries`` of each, sampled the same on every run (``sample_queries``) — and score
the first calls with the evaluation's scorer (``ste_mcp.evaluate``: correct, API match, well-formed,
each over every query asked; the exemplar's verified arguments are the ground truth). With
``llm.evaluators`` each of those models is asked too (a stronger client than the app's model: what
helps a 0.5B reader can cost a 1.5B one). The candidate is promoted only when at least one evaluator
gains more held-out answers than it loses with it, on the first of (correct, API match, well-formed)
whose answers changed on balance, and no evaluator loses answers beyond noise on any of the three (the
sign test over the held-out answers that changed, ``memory.gate_worse_p``: more correct answers do not
buy a significant loss of right tools); otherwise, or with fewer than ``memory.gate_min_heldout``
held-out queries, it is stored ``refused`` with the reason and the numbers (served only if the
operator rolls back to it). Every version keeps its measurement (``ste-mcp descriptions history``).

Every rewrite that got as far as writing notes is remembered as the tool's last notes attempt, with
the approved groups it saw (``DescriptionStore.record_notes_attempt``), whether it stored a version
or not (notes refused, same text). ``Rewriter.due`` is the one rule for automatic rewrites
(``ste-mcp learn`` and the server's notes task, ``memory/extension.py``): a tool is due once
``memory.notes_rewrite_after`` approved groups are new since that attempt.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import anyio
import numpy as np
from pydantic import BaseModel, Field, computed_field

from ste_mcp.llm.base import ChatModel
from ste_mcp.memory.descriptions import (
    APPROVED,
    PENDING,
    REFUSED,
    DescriptionStore,
    DescriptionVersion,
    NotesAttempt,
    text_hash,
)
from ste_mcp.memory.embeddings import Embedder
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.exploit import Exploiter, rendering_source, unsafe_reason
from ste_mcp.memory.notes import Notes, ToolEvidence, gather_evidence, upstream_texts, write_notes
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.toolsearch import name_words
from ste_mcp.memory.trials import TrialRecord, TrialStore
from ste_mcp.upstream.tools import Tool

METRICS = ("correct", "api_match", "wellformed")  # compared in this order
GATE_PROMPT = "must-call"
Verdict = Literal["better", "worse", "same", "noise"]


def sign_p(lost: int, gained: int) -> float:
    """One-sided exact sign test: the chance of ``lost`` or more losses among the ``lost + gained``
    answers that changed, were the description to make no difference (each change a fair coin)."""
    n = lost + gained
    return sum(math.comb(n, i) for i in range(lost, n + 1)) / 2**n if n else 1.0


class Measurement(BaseModel):
    """What one evaluator did with one description: metrics (%: ``METRICS``), the other tools it called
    instead (how often), and each held-out query's outcome (id -> right by each of ``METRICS``)."""

    metrics: dict[str, float]
    confused_with: dict[str, int] = Field(default_factory=dict)
    outcomes: dict[str, tuple[bool, bool, bool]] = Field(default_factory=dict)


def paired_changes(ours: Measurement, theirs: Measurement) -> dict[str, list[int]]:
    """Per metric, [gained, lost]: the held-out queries right only with the candidate, and only with
    the served description (queries both runs answered)."""
    both = ours.outcomes.keys() & theirs.outcomes.keys()
    return {
        m: [
            sum(1 for q in both if ours.outcomes[q][i] and not theirs.outcomes[q][i]),
            sum(1 for q in both if theirs.outcomes[q][i] and not ours.outcomes[q][i]),
        ]
        for i, m in enumerate(METRICS)
    }


class EvaluatorScore(BaseModel):
    """One evaluator model's numbers (%: ``METRICS``) with the candidate and with the served description.

    ``paired``: per metric, [gained, lost] held-out answers (``paired_changes``); ``worse_p``: a loss
    counts as worse only when its sign-test p is at most this (``memory.gate_worse_p``); 1.0, or no
    paired counts (versions stored before they were kept), compares the percentages alone."""

    evaluator: str
    candidate: dict[str, float]
    baseline: dict[str, float]
    confused_with: dict[str, int] = Field(default_factory=dict)  # the candidate's wrong picks
    paired: dict[str, list[int]] | None = None
    worse_p: float = 1.0

    @computed_field  # stored with the version: the history and the UI show it
    @property
    def verdict(self) -> Verdict:
        """The first of (correct, api_match, wellformed) whose held-out answers changed on balance
        decides: better when more were gained than lost (and no metric lost beyond noise: ``vetoed``),
        else worse; a loss that the sign test cannot tell from noise (p > ``worse_p``) is ``noise``,
        which vetoes nothing. Counted per query asked,
        an ill-formed answer is no API match: a candidate cannot look better by making answers
        ill-formed. Without paired counts (versions stored before they were kept) the percentages
        decide."""
        if self.paired is None:
            ours = tuple(float(self.candidate.get(m, 0.0)) for m in METRICS)
            theirs = tuple(float(self.baseline.get(m, 0.0)) for m in METRICS)
            return "better" if ours > theirs else "same" if ours == theirs else "worse"
        changes = self.changes()
        if changes is None:
            return "same"
        _, gained, lost = changes
        if gained > lost:
            return "worse" if self.vetoed() else "better"
        if self.worse_p >= 1.0:
            return "worse"
        return "worse" if sign_p(lost, gained) <= self.worse_p else "noise"

    def vetoed(self) -> tuple[str, int, int] | None:
        """(metric, gained, lost) of the first metric on which the candidate lost held-out answers beyond
        noise (sign-test p at most ``worse_p``), whichever metric decided: a gain in correct answers does
        not buy a significant loss of right tools (answers sent to a neighbour) or of well-formed ones."""
        for m in METRICS:
            gained, lost = (self.paired or {}).get(m, [0, 0])
            if lost > gained and sign_p(lost, gained) <= self.worse_p:
                return m, gained, lost
        return None

    def changes(self) -> tuple[str, int, int] | None:
        """(metric, gained, lost) of the first metric whose held-out answers changed on balance
        (gained != lost); ``None`` when none did or no paired counts were kept."""
        if self.paired is None:
            return None
        for m in METRICS:
            gained, lost = self.paired.get(m, [0, 0])
            if gained != lost:
                return m, gained, lost
        return None


class GateResult(BaseModel):
    """The gate's word on a candidate, with the numbers (stored with the version as JSON).

    ``candidate``, ``baseline``, ``confused_with`` and ``evaluator`` are the first evaluator's (the app's
    model); ``scores`` holds every evaluator's, the first included."""

    promote: bool
    judged: bool = True  # False: too few held-out queries, or the gate is off
    reason: str
    n: int = 0
    neighbour_queries: int = 0  # of n, held-out queries of the distractors (memory.gate_neighbour_queries)
    unasked: int = 0  # held-out queries beyond memory.gate_max_queries, not asked
    candidate: dict[str, float] = Field(default_factory=dict)
    baseline: dict[str, float] = Field(default_factory=dict)
    distractors: list[str] = Field(default_factory=list)
    confused_with: dict[str, int] = Field(default_factory=dict)  # candidate's wrong picks
    evaluator: str = ""
    scores: list[EvaluatorScore] = Field(default_factory=list)
    prompt: str = GATE_PROMPT


def split_heldout(exemplars: Sequence[Exemplar], fraction: float) -> tuple[list[Exemplar], list[Exemplar]]:
    """(writing, held-out): whole groups (an exemplar and its paraphrases) go to one side, chosen by a
    hash of the group id, so the split is the same on every run and a paraphrase never leaks."""
    writing, heldout = [], []
    for ex in exemplars:
        (heldout if _digest(ex.group) / 0xFFFFFFFF < fraction else writing).append(ex)
    return writing, heldout


def _digest(text: str) -> int:
    """A stable 32-bit hash of ``text`` (the same on every run and machine)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _sample_order(exemplars: Sequence[Exemplar]) -> list[Exemplar]:
    """One query of each group before a second of any, each round in hash order of the ids."""
    seen: Counter[str] = Counter()
    ranked = []
    for digest, ex in sorted(((_digest(ex.id or ex.query), ex) for ex in exemplars), key=lambda t: t[0]):
        ranked.append((seen[ex.group], digest, ex))
        seen[ex.group] += 1
    return [ex for *_, ex in sorted(ranked, key=lambda t: t[:2])]


def sample_queries(exemplars: Sequence[Exemplar], k: int | None) -> list[Exemplar]:
    """At most ``k`` of ``exemplars`` (all with ``None``), the same on every run: one query of each
    group before a second of any, in hash order, so a group with many paraphrases does not fill the
    sample, and a growing pool keeps most of an earlier sample."""
    if k is None or len(exemplars) <= k:
        return list(exemplars)
    return _sample_order(exemplars)[:k]


def sample_neighbour_queries(exemplars: Sequence[Exemplar], k: int | None) -> list[Exemplar]:
    """At most ``k`` of the distractors' held-out queries, taken from each distractor in turn (each in
    ``sample_queries``' order), so one neighbour with many exemplars does not crowd the others out."""
    if k is None or len(exemplars) <= k:
        return list(exemplars)
    queues = [
        _sample_order([ex for ex in exemplars if ex.tool == t])
        for t in dict.fromkeys(ex.tool for ex in exemplars)
    ]
    taken = [q[depth] for depth in range(max(map(len, queues))) for q in queues if depth < len(q)]
    return taken[:k]


def nearest_tools(
    tool: Tool, tools: Sequence[Tool], k: int, describe: Callable[[Tool], str], embedder: Embedder
) -> list[Tool]:
    """The ``k`` other tools most similar to ``tool`` (MiniLM cosine of "name words: description")."""
    others = [t for t in tools if t.name != tool.name]
    if k <= 0 or not others:
        return []
    texts = [f"{name_words(t.name)}: {' '.join(describe(t).split())[:500]}" for t in [tool, *others]]
    vectors = embedder.embed(texts)
    similarity = vectors[1:] @ vectors[0]
    order = np.argsort(-similarity, kind="stable")[:k]
    return [others[i] for i in order]


class Evaluator(Protocol):
    """Asks the configured evaluator model held-out queries with a tool shown as ``description``
    beside the ``(tool, description)`` distractors; returns its ``Measurement``.
    ``ste_mcp.evaluate.description_gate.ModelEvaluator`` is the one the CLI uses (the evaluation's
    must-call prompt and scorer)."""

    @property
    def name(self) -> str: ...

    @property
    def variant(self) -> str:
        """How it asks: the prompt variant with its decoding (``must-call+constrained``)."""
        ...

    async def __call__(
        self,
        tool: Tool,
        description: str,
        distractors: Sequence[tuple[Tool, str]],
        heldout: Sequence[Exemplar],
    ) -> Measurement: ...


def _summary(score: EvaluatorScore) -> str:
    text = ", ".join(
        f"{m} {score.candidate.get(m, 0.0):.1f}% vs {score.baseline.get(m, 0.0):.1f}%" for m in METRICS
    )
    changes = score.changes()
    if changes is not None:
        m, gained, lost = changes
        if lost > gained:
            text += f" ({m}: {lost} lost, {gained} gained, sign-test p {sign_p(lost, gained):.2f})"
        else:
            text += f" ({m}: {gained} gained, {lost} lost)"
            if (veto := score.vetoed()) is not None:
                metric, won, gave = veto
                text += f" but ({metric}: {gave} lost, {won} gained, sign-test p {sign_p(gave, won):.2f})"
    return text


def decide(scores: Sequence[EvaluatorScore], n: int) -> tuple[bool, str]:
    """Promote only if at least one evaluator does better with the candidate and none does worse
    beyond noise, each compared on (correct, api_match, wellformed) in that order
    (``EvaluatorScore.verdict``)."""
    if len(scores) == 1:
        summary = f"{_summary(scores[0])} on {n} held-out queries"
    else:
        summary = "; ".join(f"{s.evaluator} {s.verdict}: {_summary(s)}" for s in scores)
        summary += f" on {n} held-out queries"
    verdicts = [s.verdict for s in scores]
    if "worse" not in verdicts and "better" in verdicts:
        return True, f"promoted: better than the served description ({summary})"
    if len(scores) > 1 and "better" in verdicts:
        worse = ", ".join(s.evaluator for s in scores if s.verdict == "worse")
        return False, f"refused: worse for {worse} ({summary})"
    return False, f"refused: not better than the served description ({summary})"


@dataclass
class _Split:
    """A tool's approved exemplars split for the gate, and what it lists and asks beside them."""

    approved: list[Exemplar]
    writing: list[Exemplar]
    heldout: list[Exemplar]
    neighbours: list[Tool]
    neighbour_heldout: list[Exemplar]  # the distractors' own held-out exemplars


@dataclass
class _Prepared:
    """What ``Rewriter.rewrite`` gathers from the database before the notes are written."""

    split: _Split
    trials: list[TrialRecord]
    evidence: ToolEvidence


class RewriteOutcome(BaseModel):
    """What ``Rewriter.rewrite`` did for one tool."""

    tool: str
    message: str
    notes: Notes | None = None
    gate: GateResult | None = None
    version: DescriptionVersion | None = None

    @property
    def result(self) -> Literal["promoted", "refused", "skipped"]:
        """promoted: a new version passed the gate (served, or pending the operator); refused: the
        notes check or the gate refused the candidate; skipped: nothing written or nothing changed."""
        if self.version is not None and self.gate is not None and self.gate.promote:
            return "promoted"
        if (self.notes is not None and self.notes.refused) or (
            self.gate is not None and not self.gate.promote
        ):
            return "refused"
        return "skipped"


def approved_groups(exemplars: Sequence[Exemplar]) -> list[str]:
    """The groups (an exemplar and its paraphrases) of ``exemplars`` that may be shown, sorted."""
    return sorted({ex.group for ex in exemplars if unsafe_reason(ex) is None})


class Rewriter:
    """Writes usage notes for tools and gates the rewritten descriptions (one database)."""

    def __init__(
        self,
        trials: TrialStore,
        exemplars: ExemplarStore,
        descriptions: DescriptionStore,
        settings: MemorySettings,
        *,
        embedder: Embedder | None = None,
    ) -> None:
        self.trials = trials
        self.exemplars = exemplars
        self.descriptions = descriptions
        self.settings = settings
        self.exploiter = Exploiter(trials, exemplars, descriptions, settings)
        self.embedder = embedder or exemplars.embedder

    def served_text(self, tool: Tool) -> str:
        """What clients are shown for ``tool`` now (its original when no version serves this spec)."""
        served = self.descriptions.served(tool.name)
        if served is not None and served.base_hash == text_hash(tool.description):
            return served.text
        return tool.description

    def due(self, tools: Sequence[Tool]) -> list[Tool]:
        """Those of ``tools`` whose usage notes are due for an automatic rewrite: the render mode shows
        notes, ``memory.notes_rewrite_after`` is not 0, and at least that many approved groups are new
        since the tool's last notes attempt (every group, when it had none for its current original)."""
        s = self.settings
        if s.notes_rewrite_after <= 0 or s.description_render not in ("notes", "both"):
            return []
        by_tool: dict[str, list[Exemplar]] = {}
        for ex in self.exemplars.approved():
            by_tool.setdefault(ex.tool, []).append(ex)
        attempts = self.descriptions.notes_attempts()
        out = []
        for tool in tools:
            last = attempts.get(tool.name)
            seen = set(last.groups) if last and last.base_hash == text_hash(tool.description) else set()
            new = set(approved_groups(by_tool.get(tool.name, []))) - seen
            if len(new) >= s.notes_rewrite_after:
                out.append(tool)
        return out

    async def rewrite(
        self,
        tool: Tool,
        tools: Sequence[Tool],
        *,
        writer: ChatModel,
        evaluator: Evaluator | Sequence[Evaluator],
        writer_model_name: str | None = None,
    ) -> RewriteOutcome:
        """Write notes for ``tool`` with ``writer``, gate the candidate with ``evaluator`` (one, or several:
        the app's model first, then ``llm.evaluators``), store it.

        The database and embedding work runs in worker threads: a server's event loop keeps serving."""
        s = self.settings
        if s.description_render not in ("notes", "both"):
            return RewriteOutcome(
                tool=tool.name,
                message=f"memory.description_render = {s.description_render!r} shows no usage notes: "
                "set it to 'notes' or 'both' to rewrite",
            )
        prepared = await anyio.to_thread.run_sync(self._prepare, tool, tools)
        if prepared is None:
            return RewriteOutcome(tool=tool.name, message="no approved exemplars to write notes from")
        notes = await write_notes(
            writer,
            prepared.evidence,
            tool.description,
            neighbours={t.name: t.description for t in prepared.split.neighbours},
            neighbour_arguments={t.name: t.argument_names for t in prepared.split.neighbours},
            budget_tokens=s.notes_budget_tokens,
            arguments=s.notes_arguments,
            upstream=upstream_texts(prepared.trials),
            model_name=writer_model_name,
        )
        approved = prepared.split.approved
        if notes.refused:
            outcome = RewriteOutcome(tool=tool.name, notes=notes, message=f"notes refused: {notes.refused}")
            return await anyio.to_thread.run_sync(self._attempted, tool, approved, outcome)
        candidate, picked = await anyio.to_thread.run_sync(
            self._candidate, tool, prepared.split.writing, notes.text
        )
        current = await anyio.to_thread.run_sync(self.served_text, tool)
        if candidate == current:
            outcome = RewriteOutcome(
                tool=tool.name, notes=notes, message="the notes did not change the description"
            )
            return await anyio.to_thread.run_sync(self._attempted, tool, approved, outcome)
        gate = await self._judge_split(tool, candidate, current, prepared.split, evaluator)
        version = await anyio.to_thread.run_sync(
            lambda: self._record(tool, candidate, picked, notes, gate, approved)
        )
        where = f"v{version.version} {version.status}" if version else "not stored (same text)"
        outcome = RewriteOutcome(
            tool=tool.name, notes=notes, gate=gate, version=version, message=f"{where}: {gate.reason}"
        )
        return await anyio.to_thread.run_sync(self._attempted, tool, approved, outcome)

    async def regate(
        self,
        tool: Tool,
        tools: Sequence[Tool],
        *,
        evaluator: Evaluator | Sequence[Evaluator],
        version: int | None = None,
    ) -> RewriteOutcome:
        """Measure a stored candidate again — ``version``, default the tool's newest refused one —
        against what is served now, with today's evaluators and gate settings (after adding an
        evaluator, or changing ``memory.gate_worse_p``), on the same held-out split. A candidate that
        passes is stored as a new version (served, or pending the operator); one refused again stores
        nothing. No notes are written."""
        history = await anyio.to_thread.run_sync(self.descriptions.history, tool.name)
        if version is not None:
            target = next((v for v in history if v.version == version), None)
            if target is None:
                return RewriteOutcome(tool=tool.name, message=f"no version {version}")
        else:
            target = next((v for v in reversed(history) if v.status == REFUSED), None)
            if target is None:
                return RewriteOutcome(tool=tool.name, message="no refused version to measure again")
        if target.base_hash != text_hash(tool.description):
            return RewriteOutcome(
                tool=tool.name, message=f"v{target.version} was written for another original description"
            )
        current = await anyio.to_thread.run_sync(self.served_text, tool)
        if target.text == current:
            return RewriteOutcome(tool=tool.name, message=f"v{target.version} is what is served")
        split = await anyio.to_thread.run_sync(self._split, tool, tools)
        if split is None:
            return RewriteOutcome(tool=tool.name, message="no approved exemplars to measure with")
        gate = await self._judge_split(tool, target.text, current, split, evaluator)
        if not gate.promote:
            return RewriteOutcome(tool=tool.name, gate=gate, message=f"v{target.version} {gate.reason}")
        s = self.settings
        earlier = target.gate_result or {}
        record = {**gate.model_dump(), "regate_of": target.version}
        record |= {k: earlier[k] for k in ("notes_model", "notes_tokens", "notes_dropped") if k in earlier}
        stored = await anyio.to_thread.run_sync(
            lambda: self.descriptions.record(
                tool.name,
                target.text,
                reason=f"re-gate of v{target.version}: {gate.reason}",
                base_hash=target.base_hash,
                source=target.source,
                exemplar_ids=target.exemplar_ids,
                status=APPROVED if s.description_approval == "auto" else PENDING,
                gate=record,
            )
        )
        where = f"v{stored.version} {stored.status}" if stored else "not stored (same text)"
        return RewriteOutcome(
            tool=tool.name, gate=gate, version=stored, message=f"{where} (v{target.version}): {gate.reason}"
        )

    def _split(self, tool: Tool, tools: Sequence[Tool]) -> _Split | None:
        """The writing / held-out split, the nearest tools and their held-out queries; ``None``
        without approved exemplars."""
        s = self.settings
        approved = self._servable(tool.name)
        if not approved:
            return None
        writing, heldout = split_heldout(approved, s.gate_heldout_fraction)
        if not writing:  # every group fell on the held-out side: write from them, nothing to measure
            writing, heldout = approved, []
        neighbours = nearest_tools(tool, tools, s.gate_distractors, self.served_text, self.embedder)
        neighbour_heldout = [
            ex
            for other in (neighbours if s.gate_neighbour_queries else [])
            for ex in split_heldout(self._servable(other.name), s.gate_heldout_fraction)[1]
        ]
        return _Split(approved, writing, heldout, neighbours, neighbour_heldout)

    def _prepare(self, tool: Tool, tools: Sequence[Tool]) -> _Prepared | None:
        """The split, the trials behind its writing part and the evidence for the notes; ``None``
        without approved exemplars."""
        split = self._split(tool, tools)
        if split is None:
            return None
        held_trials = {t for ex in split.heldout for t in ex.provenance.trial_ids}
        trials = [t for t in self.trials.trials(tool.name) if t.id not in held_trials]
        evidence = gather_evidence(
            tool,
            trials,
            split.writing,
            neighbours=[t.name for t in split.neighbours],
            confused_with=self._confused_with(tool, trials),
            other_tools=[t.name for t in tools if t.name != tool.name],
        )
        return _Prepared(split, trials, evidence)

    async def _judge_split(
        self,
        tool: Tool,
        candidate: str,
        current: str,
        split: _Split,
        evaluator: Evaluator | Sequence[Evaluator],
    ) -> GateResult:
        """``judge`` on the split's held-out queries, with its distractors and their queries."""
        return await self.judge(
            tool,
            candidate,
            current,
            split.neighbours,
            split.heldout,
            evaluator,
            neighbour_heldout=split.neighbour_heldout,
        )

    def _servable(self, tool: str) -> list[Exemplar]:
        """The approved exemplars of ``tool`` that may be shown (the gate's writing and held-out pool)."""
        return [ex for ex in self.exemplars.approved(tool) if unsafe_reason(ex) is None]

    def _attempted(self, tool: Tool, approved: Sequence[Exemplar], outcome: RewriteOutcome) -> RewriteOutcome:
        """Remember the attempt and what it saw (``due`` counts new groups from it); returns ``outcome``."""
        self.descriptions.record_notes_attempt(
            NotesAttempt(
                tool=tool.name,
                base_hash=text_hash(tool.description),
                groups=approved_groups(approved),
                outcome=outcome.message,
            )
        )
        return outcome

    async def judge(
        self,
        tool: Tool,
        candidate: str,
        current: str,
        neighbours: Sequence[Tool],
        heldout: Sequence[Exemplar],
        evaluator: Evaluator | Sequence[Evaluator],
        *,
        neighbour_heldout: Sequence[Exemplar] = (),
    ) -> GateResult:
        """Measure ``candidate`` against ``current`` on ``heldout`` (``memory.description_gate``), and on
        ``neighbour_heldout``, the distractors' own held-out exemplars (asked with the same listing:
        notes that pull a neighbour's requests to the tool lose there)."""
        s = self.settings
        names = [t.name for t in neighbours]
        if s.description_gate == "off":
            return GateResult(
                promote=True,
                judged=False,
                reason="promoted unmeasured (memory.description_gate = off)",
                distractors=names,
            )
        if len(heldout) < s.gate_min_heldout:
            return GateResult(
                promote=False,
                judged=False,
                n=len(heldout),
                distractors=names,
                reason=f"refused: too few held-out exemplars to measure ({len(heldout)} queries, the gate "
                f"needs {s.gate_min_heldout}: memory.gate_min_heldout); "
                f"`ste-mcp descriptions approve {tool.name} N` serves it anyway",
            )
        distractors = [(t, self.served_text(t)) for t in neighbours]
        cap = s.gate_max_queries and max(s.gate_max_queries, s.gate_min_heldout)  # never below the minimum
        other_queries = sample_neighbour_queries(neighbour_heldout, cap)
        asked = [*sample_queries(heldout, cap), *other_queries]
        evaluators = [evaluator] if callable(evaluator) else list(evaluator)
        scores: dict[int, EvaluatorScore] = {}

        async def measure(i: int) -> None:
            ours = await evaluators[i](tool, candidate, distractors, asked)
            theirs = await evaluators[i](tool, current, distractors, asked)
            scores[i] = EvaluatorScore(
                evaluator=evaluators[i].name,
                candidate=ours.metrics,
                baseline=theirs.metrics,
                confused_with=ours.confused_with,
                paired=paired_changes(ours, theirs),
                worse_p=s.gate_worse_p,
            )

        async with anyio.create_task_group() as group:  # different models: asked at once
            for i in range(len(evaluators)):
                group.start_soon(measure, i)
        measured = [scores[i] for i in range(len(evaluators))]
        promote, reason = decide(measured, len(asked))
        if unasked := len(heldout) + len(neighbour_heldout) - len(asked):
            reason += f"; {unasked} more held-out queries not asked (memory.gate_max_queries)"
        first = measured[0]
        return GateResult(
            promote=promote,
            reason=reason,
            n=len(asked),
            neighbour_queries=len(other_queries),
            unasked=unasked,
            candidate=first.candidate,
            baseline=first.baseline,
            distractors=names,
            confused_with=first.confused_with,
            evaluator=first.evaluator,
            scores=measured,
            prompt=evaluators[0].variant,
        )

    def _candidate(self, tool: Tool, writing: Sequence[Exemplar], notes: str) -> tuple[str, list[Exemplar]]:
        """The candidate description: the render mode's sections from the notes and the writing part's
        examples (held-out exemplars are never shown in it)."""
        ids = {ex.id for ex in writing}
        originals, vectors = self.exemplars.approved_by_tool().get(tool.name, ([], np.zeros((0, 1))))
        keep = [i for i, ex in enumerate(originals) if ex.id in ids]
        return self.exploiter.compose(tool, [originals[i] for i in keep], vectors[keep], notes)

    def _record(
        self,
        tool: Tool,
        text: str,
        picked: Sequence[Exemplar],
        notes: Notes,
        gate: GateResult,
        approved: Sequence[Exemplar],
    ) -> DescriptionVersion | None:
        s = self.settings
        base = text_hash(tool.description)
        now = self.descriptions.current(tool.name)
        if now is None or now.base_hash != base:
            self.descriptions.record(tool.name, tool.description, reason="original", base_hash=base)
        count = sum(1 for v in self.descriptions.history(tool.name) if v.reason.startswith("notes v"))
        status = (APPROVED if s.description_approval == "auto" else PENDING) if gate.promote else REFUSED
        originals = [ex for ex in approved if ex.variant_of is None]
        gate_record = {
            **gate.model_dump(),
            "notes_model": notes.model,
            "notes_tokens": notes.tokens,
            "notes_dropped": notes.dropped,  # the lines the notes checks left out, and why
        }
        return self.descriptions.record(
            tool.name,
            text,
            reason=f"notes v{count + 1} ({notes.tokens} tokens): {gate.reason}",
            base_hash=base,
            # the inputs render() sees once this is served: it does not re-render over it
            source=rendering_source(tool, originals, s, notes.text),
            exemplar_ids=[ex.id for ex in picked],
            status=status,
            gate=gate_record,
        )

    def _confused_with(self, tool: Tool, trials: Sequence[Any]) -> dict[str, int]:
        """Other tools the judge's "inappropriate" rejections point to: the tool of the approved
        exemplar nearest to each rejected request."""
        out: Counter[str] = Counter()
        for trial in trials:
            verdict = trial.verdict or {}
            appropriate = verdict.get("appropriate") or {}
            if verdict.get("accepted", True) or appropriate.get("ok", True):
                continue
            hits = self.exemplars.search(trial.query, 1)
            if hits and hits[0].tool != tool.name:
                out[hits[0].tool] += 1
        return dict(out.most_common(3))


async def rewrite_all(
    rewriter: Rewriter,
    tools: Sequence[Tool],
    targets: Sequence[Tool],
    *,
    writer: ChatModel,
    evaluator: Evaluator | Sequence[Evaluator],
    writer_model_name: str | None = None,
) -> list[RewriteOutcome]:
    """``Rewriter.rewrite`` for each of ``targets`` in turn (``tools``: every served tool, the
    distractors are chosen among them)."""
    out = []
    for tool in targets:
        out.append(
            await rewriter.rewrite(
                tool, tools, writer=writer, evaluator=evaluator, writer_model_name=writer_model_name
            )
        )
    return out
