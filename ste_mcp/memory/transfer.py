"""Exemplars moved between data directories: exported as JSON Lines, imported as untrusted input.

The format (``FORMAT``, ``VERSION``) is UTF-8 JSON Lines. The first line is the header::

    {"format": "ste-mcp-exemplars", "version": 1, "written_by": "ste-mcp 0.1.0",
     "exported_at": "2026-12-03T02:00:00Z", "status": "approved", "tools": null, "exemplars": 2}

(``status``: what was exported, ``approved``/``candidate``/``rejected``/``all``; ``tools``: the
``--tool`` selection or ``null``; ``exemplars``: the number of lines that follow, so that a
truncated copy is noticed). Then one exemplar per line, each original before its paraphrases::

    {"id": "ex-…", "group": "ex-…", "variant_of": null, "tool": "get_weather",
     "query": "Will it rain in Paris tomorrow?", "arguments": {"city": "Paris"},
     "observation": "{\\"rain_mm\\":2.5}", "final_answer": "Yes, about 2.5 mm.",
     "status": "approved", "status_reason": "judge accepted (automatic approval)",
     "provenance": {"trial_ids": [...], "models": [...], "verdict": {...}, "spec_hash": "…",
                    "created_at": "2026-12-01T10:00:00Z"}}

``group`` is the original's id (``variant_of`` of a paraphrase, else ``id``). Query vectors and
search scores are not part of the format: the importing store embeds the queries itself. Unknown
fields are errors; a field added later comes with a new ``VERSION``, and a reader refuses versions it
does not know.

Importing reads the whole file first: one malformed line (not JSON, a missing or mistyped field,
a wrong header) raises ``TransferError`` naming its line and field, and nothing is written. Then
each exemplar gets the checks a live trial gets in ``Exploiter.make_exemplar`` — the file is
untrusted input:

* refused: a tool the configured toolset does not serve (unless ``any_tool``), arguments that do not
  validate against the tool's input schema, instructions to a model in the query, arguments,
  observation or final answer (``injection_reason``, with the other served tools' names), a query
  that is no user request (``request_problem``), a request and call that fail the checks of
  ``memory.judge_checks`` which read only those (``checks.check_call``: numbers the request states and
  the call drops, the spec's example values the request does not state; a paraphrase is checked on
  its own, and must keep the values its original states: ``checks.dropped_values``), a repeat of a stored exemplar of another group
  (``memory.duplicate_similarity``), and a paraphrase whose original is neither imported with it nor
  already stored (links stay valid) or is of another tool;
* cleaned like a live exemplar (``exploit.Cleaner``): markup and control characters stripped,
  lengths capped, secrets redacted (configured values and credential-shaped strings), the observation
  summarised again (``typed_summary``: free text becomes its type and length), judge reasons withheld
  when they quote instructions;
* skipped as duplicates: the same tool, words (``normalise``) and arguments as a stored exemplar or
  an earlier line, or an id the file repeats. Importing a file twice adds nothing the second time. An
  exemplar whose id is stored with other content (another data dir's trial of the same tool, episode
  and slot: ids come from the trial) is imported under a new id, its paraphrases linked to it.

Statuses are the file's unless ``status`` overrides them (``candidate`` for a file from a source
that is not trusted: nothing reaches a description until an operator approves it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ste_mcp import __version__
from ste_mcp.memory.embeddings import get_embedder
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore, Provenance, Status, exemplar_id
from ste_mcp.memory.exploit import Cleaner, exemplar_problem, unsafe_reason
from ste_mcp.memory.requests import normalise
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.upstream.tools import Tool

FORMAT = "ste-mcp-exemplars"
VERSION = 1
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
ExportStatus = Literal["candidate", "approved", "rejected", "all"]


class TransferError(ValueError):
    """The file cannot be imported (nothing was written); the message names the line and field."""


class ExportHeader(BaseModel):
    """The first line of an export."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["ste-mcp-exemplars"] = FORMAT
    version: int = VERSION
    written_by: str = f"ste-mcp {__version__}"
    exported_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    status: ExportStatus = "approved"
    tools: list[str] | None = None
    exemplars: int = Field(ge=0)


class ExportedProvenance(Provenance):
    model_config = ConfigDict(extra="forbid")


class ExportedExemplar(BaseModel):
    """One exemplar line of an export."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    group: str = Field(pattern=ID_PATTERN)
    variant_of: str | None = Field(default=None, pattern=ID_PATTERN)
    tool: str = Field(min_length=1)
    query: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    observation: str = ""
    final_answer: str = ""
    status: Status
    status_reason: str = ""
    provenance: ExportedProvenance = Field(default_factory=ExportedProvenance)

    @model_validator(mode="after")
    def _group_matches(self) -> ExportedExemplar:
        if self.group != (self.variant_of or self.id):
            raise ValueError("group must be variant_of for a paraphrase, else id")
        return self

    @classmethod
    def of(cls, exemplar: Exemplar) -> ExportedExemplar:
        data = exemplar.model_dump(exclude={"score"})
        data["provenance"] = ExportedProvenance(**data["provenance"])
        return cls(group=exemplar.group, **data)


# ---- export -------------------------------------------------------------------------------------
def export_exemplars(
    store: ExemplarStore, out: TextIO, *, tools: Sequence[str] = (), status: ExportStatus = "approved"
) -> int:
    """Write the header and the exemplars of ``tools`` (all when empty) with ``status`` to ``out``;
    returns how many exemplars were written."""
    wanted = None if status == "all" else status
    found = [ex for tool in tools for ex in store.find(tool, wanted)] if tools else store.find(None, wanted)
    ordered = _originals_first(found)
    header = ExportHeader(status=status, tools=list(tools) or None, exemplars=len(ordered))
    out.write(header.model_dump_json() + "\n")
    for ex in ordered:
        out.write(ExportedExemplar.of(ex).model_dump_json() + "\n")
    return len(ordered)


def _originals_first(exemplars: Sequence[Exemplar]) -> list[Exemplar]:
    """Each original followed by its paraphrases; paraphrases whose original is absent at the end."""
    variants: dict[str, list[Exemplar]] = {}
    for ex in exemplars:
        if ex.variant_of:
            variants.setdefault(ex.variant_of, []).append(ex)
    ordered: list[Exemplar] = []
    for ex in exemplars:
        if not ex.variant_of:
            ordered += [ex, *variants.pop(ex.id, [])]
    return ordered + [ex for group in variants.values() for ex in group]


# ---- import -------------------------------------------------------------------------------------
def read_export(lines: Iterable[str]) -> list[tuple[int, ExportedExemplar]]:
    """The exemplars of an export with their line numbers; raises ``TransferError`` on the first bad
    line. Blank lines are ignored."""
    header: ExportHeader | None = None
    records: list[tuple[int, ExportedExemplar]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise TransferError(f"line {number}: not JSON ({exc})") from None
        if header is None:
            header = _header(number, data)
            continue
        try:
            records.append((number, ExportedExemplar.model_validate(data)))
        except ValidationError as exc:
            raise TransferError(f"line {number}: {_first_error(exc)}") from None
    if header is None:
        raise TransferError(f"line 1: empty file (expected the {FORMAT} header)")
    if len(records) != header.exemplars:
        raise TransferError(
            f"the header says {header.exemplars} exemplar(s) but the file holds {len(records)} (cut short?)"
        )
    return records


def _header(number: int, data: Any) -> ExportHeader:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TransferError(f"line {number}: field 'format': expected the header of a {FORMAT} file")
    if data.get("version") != VERSION:
        raise TransferError(
            f"line {number}: field 'version': {data.get('version')!r} is not a version this ste-mcp reads "
            f"({VERSION}; a newer ste-mcp wrote it?)"
        )
    try:
        return ExportHeader.model_validate(data)
    except ValidationError as exc:
        raise TransferError(f"line {number}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(line)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"field {where!r}: {error['msg']}{more}"


class Refusal(BaseModel):
    line: int
    id: str
    tool: str
    reason: str


class ImportReport(BaseModel):
    """What an import did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    added: int = 0
    paraphrases: int = 0  # of the added ones
    duplicates: int = 0
    refused: list[Refusal] = []


@dataclass
class _Outcome:
    """An exemplar of the file, as decided: the id it is (or is already) stored under, or refused."""

    stored_id: str | None
    tool: str


@dataclass
class _Plan:
    report: ImportReport
    exemplars: list[Exemplar] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)


class Importer:
    """Checks, cleans and de-duplicates exported exemplars for one store (``None``: none exists yet)."""

    def __init__(
        self,
        store: ExemplarStore | None,
        tools: Mapping[str, Tool],
        settings: MemorySettings,
        *,
        secrets: Iterable[str] = (),
        any_tool: bool = False,
        status: Status | None = None,
    ) -> None:
        self.store = store
        self.tools = tools
        self.settings = settings
        self.cleaner = Cleaner(settings, secrets)
        self.any_tool = any_tool
        self.status = status
        self.embedder = store.embedder if store is not None else get_embedder()

    def run(self, records: Sequence[tuple[int, ExportedExemplar]], *, dry_run: bool = False) -> ImportReport:
        """Store what passes (unless ``dry_run``) and report added / duplicate / refused."""
        plan = self._decide(records)
        plan.report.dry_run = dry_run
        if not dry_run and plan.exemplars:
            if self.store is None:
                raise ValueError("no exemplar store to import into")
            self.store.add(plan.exemplars, vectors=np.asarray(plan.vectors, dtype=np.float32))
        return plan.report

    def _decide(self, records: Sequence[tuple[int, ExportedExemplar]]) -> _Plan:
        """Decide every exemplar (originals first, so that paraphrases know their original's fate)."""
        plan = _Plan(ImportReport())
        outcomes: dict[str, _Outcome] = {}
        queries = {rec.id: rec.query for _, rec in records}  # a paraphrase's original, by id
        known = self._stored_keys({rec.tool for _, rec in records})
        vectors = self._embed(
            [self.cleaner.text(rec.query, self.settings.max_query_chars) for _, rec in records]
        )
        order = sorted(range(len(records)), key=lambda i: records[i][1].variant_of is not None)
        for i in order:
            number, record = records[i]
            if record.id in outcomes:  # an id the file repeats: the first line decides
                plan.report.duplicates += 1
                continue
            try:
                exemplar = self._check(record, outcomes, queries)
            except _Refused as exc:
                reason = self.cleaner.redactor.redact(str(exc))
                plan.report.refused.append(
                    Refusal(line=number, id=record.id, tool=record.tool, reason=reason)
                )
                outcomes[record.id] = _Outcome(None, record.tool)
                continue
            if exemplar is None:  # the same id is stored
                plan.report.duplicates += 1
                outcomes[record.id] = _Outcome(record.id, record.tool)
                continue
            key = _key(exemplar)
            if key in known:
                plan.report.duplicates += 1
                outcomes[record.id] = _Outcome(known[key], record.tool)
                continue
            repeated = self._near_duplicate(exemplar, vectors[i])
            if repeated is not None:
                reason = f"query: repeats exemplar {repeated.id} ({repeated.status})"
                plan.report.refused.append(
                    Refusal(line=number, id=record.id, tool=record.tool, reason=reason)
                )
                outcomes[record.id] = _Outcome(None, record.tool)
                continue
            known[key] = exemplar.id
            outcomes[record.id] = _Outcome(exemplar.id, record.tool)
            plan.exemplars.append(exemplar)
            plan.vectors.append(vectors[i])
            plan.report.added += 1
            plan.report.paraphrases += exemplar.variant_of is not None
        return plan

    def _check(
        self, record: ExportedExemplar, outcomes: Mapping[str, _Outcome], queries: Mapping[str, str]
    ) -> Exemplar | None:
        """The exemplar to store for ``record``; ``None`` when it is stored already (its id, the same
        content). ``queries``: the file's requests by id (a paraphrase's original may be among them)."""
        tool = self.tools.get(record.tool)
        if tool is None and not self.any_tool:
            raise _Refused(
                f"tool {record.tool!r} is not served by the configured toolset (--any-tool imports it)"
            )
        variant_of = self._original(record, outcomes)
        stored = self._stored(record.id)
        others = [name for name in self.tools if name != record.tool]
        problem = exemplar_problem(
            record.tool,
            tool,
            query=record.query,
            arguments=record.arguments,
            observation=record.observation,
            final_answer=record.final_answer,
            other_tools=others,
            checks=self.settings.judge_checks,
            original_query=self._original_query(record, queries),
            made=record.provenance.created_at,
        )
        if problem is not None:
            raise _Refused(problem)
        exemplar = self._cleaned(record, variant_of, others)
        unsafe = unsafe_reason(exemplar)
        if unsafe is not None:
            raise _Refused(unsafe)
        if stored is not None:
            if _key(stored) == _key(exemplar):
                return None
            # another data dir's exemplar: ids come from the trial (tool, episode, slot), so two
            # explorations of one tool share them
            exemplar = exemplar.model_copy(update={"id": exemplar_id(record.id, *_key(exemplar))})
        return exemplar

    def _original_query(self, record: ExportedExemplar, queries: Mapping[str, str]) -> str | None:
        """The request of a paraphrase's original: in the file, or stored (None for an original)."""
        if record.variant_of is None:
            return None
        if record.variant_of in queries:
            return queries[record.variant_of]
        stored = self._stored(record.variant_of)
        return stored.query if stored is not None else None

    def _original(self, record: ExportedExemplar, outcomes: Mapping[str, _Outcome]) -> str | None:
        """The id a paraphrase links to here (its original may be stored under another id)."""
        if record.variant_of is None:
            return None
        outcome = outcomes.get(record.variant_of)
        if outcome is None:
            stored = self._stored(record.variant_of)
            if stored is None:
                raise _Refused(f"its original {record.variant_of} is neither in the file nor stored")
            if stored.variant_of is not None:
                raise _Refused(f"variant_of names {record.variant_of}, itself a paraphrase")
            outcome = _Outcome(stored.id, stored.tool)
        if outcome.stored_id is None:
            raise _Refused(f"its original {record.variant_of} was refused")
        if outcome.tool != record.tool:
            raise _Refused(f"its original {record.variant_of} is an exemplar of tool {outcome.tool!r}")
        return outcome.stored_id

    def _cleaned(self, record: ExportedExemplar, variant_of: str | None, others: Sequence[str]) -> Exemplar:
        s, clean = self.settings, self.cleaner
        provenance = record.provenance
        if self.status is None:
            status, status_reason = record.status, clean.reason(record.status_reason)
        else:
            status, status_reason = self.status, f"imported as {self.status}"
        return Exemplar(
            id=record.id,
            tool=record.tool,
            query=clean.text(record.query, s.max_query_chars).replace("\n", " "),
            arguments={k: clean.value(v) for k, v in record.arguments.items()},
            observation=clean.summary(record.observation, others) if record.observation else "",
            final_answer=clean.text(record.final_answer, s.max_answer_chars),
            variant_of=variant_of,
            status=status,
            status_reason=status_reason,
            provenance=Provenance(
                trial_ids=[clean.text(t, 200) for t in provenance.trial_ids],
                models=[clean.text(m, 200) for m in provenance.models],
                verdict=self._verdict(provenance.verdict),
                spec_hash=clean.text(provenance.spec_hash, 64),
                created_at=provenance.created_at,
            ),
        )

    def _verdict(self, value: Any) -> Any:
        """A judge's verdict from the file: every string cleaned (withheld if it carries instructions)."""
        if isinstance(value, str):
            return self.cleaner.reason(value)
        if isinstance(value, dict):
            return {self.cleaner.text(str(k), 64): self._verdict(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._verdict(v) for v in value]
        return value

    def _stored(self, exemplar_id: str) -> Exemplar | None:
        return self.store.get(exemplar_id) if self.store is not None else None

    def _stored_keys(self, tools: Iterable[str]) -> dict[tuple[str, str, str], str]:
        """(tool, words, arguments) -> id of every stored exemplar of ``tools``."""
        if self.store is None:
            return {}
        return {_key(ex): ex.id for tool in tools for ex in self.store.find(tool)}

    def _near_duplicate(self, exemplar: Exemplar, vector: np.ndarray) -> Exemplar | None:
        if self.store is None:
            return None
        repeated = self.store.near_duplicate(exemplar, self.settings.duplicate_similarity, vector)
        return repeated if repeated is not None and repeated.group != exemplar.group else None

    def _embed(self, queries: Sequence[str]) -> list[np.ndarray]:
        return list(self.embedder.embed([q.replace("\n", " ") for q in queries]))


class _Refused(Exception):
    """An exemplar of the file that is not imported; the message says which field and why."""


def _key(exemplar: Exemplar) -> tuple[str, str, str]:
    return exemplar.tool, normalise(exemplar.query), json.dumps(exemplar.arguments, sort_keys=True)
