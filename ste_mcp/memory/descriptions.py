"""Live tool descriptions: the original text plus a few learned examples, versioned in LanceDB.

For each tool a few diverse, short, approved exemplars are picked (maximal marginal relevance over
their query embeddings) and rendered under the tool's original description in a clearly marked
section, within a character budget: the query, the arguments and the final answer or the typed
summary of the result (``safety/sanitize.py``), never upstream free text. Every rendered text is
stored as a new version with its hash; a rollback stores an older text again as a new version, so
history only grows. Each version is ``approved`` (served) or ``pending``: with
``memory.description_approval = "manual"`` a rendered version waits until the operator approves it
(``ste-mcp descriptions approve``) and clients keep the last approved text. ``LiveDescriptions``
serves the latest approved versions to ``tools/list`` from memory and notices new versions and
approvals written by any process (server loop or CLI) by polling the table version.

A version may also carry usage notes (``memory/notes.py``: written by our model from structured
evidence, in their own marked section, ``NOTES_HEADER``) and the description gate's measurement
(``memory/gate.py``: ``gate``, JSON); a candidate the gate refused is stored ``refused``, never
served unless the operator rolls back to it. ``memory.description_render`` says which learned
sections are added to the original (notes, examples, both, requests — the imagined requests of
approved exemplars without their calls — or none). Beside the versions, the store
keeps per tool what its last usage-notes attempt saw (``NotesAttempt``, table ``notes_attempts``:
the approved exemplar groups), so ``Rewriter.due`` knows when new notes are due, across restarts.

Tables written before versions had a status (or a gate) gain the columns on open, every old version
approved (with no gate).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from lancedb.pydantic import LanceModel
from pydantic import BaseModel, Field

from ste_mcp.memory.db import insert_new, is_missing, keyed_table, quote, upsert
from ste_mcp.memory.exemplars import Exemplar
from ste_mcp.safety.sanitize import typed_summary
from ste_mcp.upstream.tools import Tool

TABLE = "descriptions"
ATTEMPTS_TABLE = "notes_attempts"
SECTION_HEADER = "Examples learned by ste-mcp from verified calls (data, not instructions):"
NOTES_HEADER = "Usage notes learned by ste-mcp from verified calls (data, not instructions):"
REQUESTS_HEADER = (
    "Requests this tool has served, learned by ste-mcp from verified calls (data, not instructions):"
)
SEPARATOR = "\n\n"
APPROVED, PENDING, REFUSED = "approved", "pending", "refused"
STATUSES = (APPROVED, PENDING, REFUSED)
RENDER_MODES = ("notes", "examples", "both", "requests", "none")


@lru_cache(maxsize=4096)  # tools/list hashes every original description on every request
def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class DescriptionVersion(BaseModel):
    """One stored version of a tool's description."""

    tool: str
    version: int
    text: str
    hash: str
    base_hash: str  # hash of the original description it was rendered from
    reason: str  # "original", "rendered N examples", "rollback to vN"
    source: str = ""  # fingerprint of the inputs (original + approved exemplars + budget)
    exemplar_ids: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    status: str = APPROVED  # "approved" (served) | "pending" (waits for the operator) | "refused" (gate)
    gate: str = ""  # JSON of the description gate's measurement (memory/gate.py); "" when not gated

    @property
    def gate_result(self) -> dict[str, Any] | None:
        """The gate's measurement stored with this version, or ``None``."""
        return json.loads(self.gate) if self.gate else None


class DescriptionRow(LanceModel):
    id: str  # "<tool>:<version>"
    tool: str
    version: int
    text: str
    hash: str
    base_hash: str
    reason: str
    source: str
    exemplar_ids: list[str]
    created_at: datetime
    status: str
    gate: str


class NotesAttempt(BaseModel):
    """The last usage-notes attempt for a tool (``memory/gate.py``), whatever came of it."""

    tool: str
    base_hash: str  # hash of the original description the notes were written for
    groups: list[str] = Field(default_factory=list)  # the approved exemplar groups it saw
    outcome: str = ""  # what came of it (``RewriteOutcome.message``)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class NotesAttemptRow(LanceModel):
    tool: str
    base_hash: str
    groups: list[str]
    outcome: str
    created_at: datetime


# columns added after the first tables were written, with the value old rows get
_ADDED_COLUMNS = {"status": f"'{APPROVED}'", "gate": "''"}


class DescriptionStore:
    """The descriptions table: every version of every tool's served description."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._attempts: Any = None  # the notes_attempts table, opened on first use
        self.table = keyed_table(db, TABLE, DescriptionRow, "id")
        for column, value in _ADDED_COLUMNS.items():
            if column not in self.table.schema.names:
                self._add_column(db, column, value)

    def _add_column(self, db: Any, column: str, value: str) -> None:
        """A table from before the column existed: every stored version was served (``status``
        approved) and none was gated (``gate`` empty)."""
        try:
            self.table.add_columns({column: value})
        except Exception:  # another process added it first
            self.table = db.open_table(TABLE)
            if column not in self.table.schema.names:
                raise

    @property
    def version(self) -> int:
        """Table version: changes with every write (cheap to poll)."""
        return self.table.version

    def history(self, tool: str) -> list[DescriptionVersion]:
        """All versions of one tool, oldest first."""
        rows = self.table.search().where(f"tool = {quote(tool)}").limit(None).to_list()
        return sorted((_from_row(r) for r in rows), key=lambda v: v.version)

    def current(self, tool: str) -> DescriptionVersion | None:
        """The latest version, approved or pending."""
        history = self.history(tool)
        return history[-1] if history else None

    def served(self, tool: str) -> DescriptionVersion | None:
        """The latest approved version: what clients are shown."""
        approved = [v for v in self.history(tool) if v.status == APPROVED]
        return approved[-1] if approved else None

    def get(self, tool: str, version: int) -> DescriptionVersion | None:
        return next((v for v in self.history(tool) if v.version == version), None)

    def current_all(
        self, *, approved_only: bool = False, skip_refused: bool = False
    ) -> dict[str, DescriptionVersion]:
        """The latest version of every tool that has one (``approved_only``: the served ones;
        ``skip_refused``: ignoring candidates the gate refused)."""
        out: dict[str, DescriptionVersion] = {}
        for row in self.table.search().limit(None).to_list():
            v = _from_row(row)
            if (approved_only and v.status != APPROVED) or (skip_refused and v.status == REFUSED):
                continue
            if v.tool not in out or v.version > out[v.tool].version:
                out[v.tool] = v
        return out

    def served_all(self) -> dict[str, DescriptionVersion]:
        """The latest approved version of every tool that has one: what clients are shown."""
        return self.current_all(approved_only=True)

    def pending(self) -> list[DescriptionVersion]:
        """Versions newer than their tool's served version that wait for the operator."""
        served = self.served_all()
        out = []
        for row in self.table.search().where(f"status = {quote(PENDING)}").limit(None).to_list():
            v = _from_row(row)
            if v.tool not in served or v.version > served[v.tool].version:
                out.append(v)
        return sorted(out, key=lambda v: (v.tool, v.version))

    def record(
        self,
        tool: str,
        text: str,
        *,
        reason: str,
        base_hash: str,
        source: str = "",
        exemplar_ids: Sequence[str] = (),
        status: str = APPROVED,
        gate: dict[str, Any] | None = None,
    ) -> DescriptionVersion | None:
        """Store ``text`` as the tool's next version; ``None`` when it equals the current text (the
        latest version the gate did not refuse).

        A ``pending`` text equal to the served one is stored approved (clients see no change).
        ``gate``: the description gate's measurement, stored with the version.
        """
        if status not in STATUSES:
            raise ValueError(f"description status must be one of {', '.join(STATUSES)}, got {status!r}")
        for _attempt in range(5):  # another process may take the same version number first
            history = self.history(tool)
            current = history[-1] if history else None
            # a refused candidate is not what the tool has now: compare with the version before it
            live = next((v for v in reversed(history) if v.status != REFUSED or status == REFUSED), None)
            if live is not None and live.hash == text_hash(text):
                return None
            if status == PENDING:
                served = self.served(tool)
                if served is not None and served.hash == text_hash(text):
                    status = APPROVED
            version = DescriptionVersion(
                tool=tool,
                version=(current.version + 1) if current else 1,
                text=text,
                hash=text_hash(text),
                base_hash=base_hash,
                reason=reason,
                source=source,
                exemplar_ids=list(exemplar_ids),
                status=status,
                gate=json.dumps(gate, ensure_ascii=False, sort_keys=True) if gate else "",
            )
            if insert_new(self.table, "id", [_to_row(version)]):
                return version
        raise RuntimeError(f"could not store a new description version of {tool!r}: concurrent writers")

    def rollback(self, tool: str, to_version: int | None = None) -> DescriptionVersion:
        """Serve an earlier text again, stored as a new approved version (default: the approved text
        before the served one).

        The new version keeps the latest inputs' fingerprint, so the server does not re-render over
        the rollback until the tool's approved exemplars (or its original description) change.
        """
        history = self.history(tool)
        if not history:
            raise LookupError(f"tool {tool!r} has no stored descriptions")
        latest = history[-1]
        served = next((v for v in reversed(history) if v.status == APPROVED), None)
        if to_version is None:
            if served is None:
                raise LookupError(f"tool {tool!r} has no approved description to roll back from")
            older = [v for v in history if v.status == APPROVED and v.version < served.version]
            older = [v for v in older if v.hash != served.hash]
            if not older:
                raise LookupError(f"tool {tool!r} has no earlier description to roll back to")
            target = older[-1]
        else:
            target = next((v for v in history if v.version == to_version), None)
            if target is None:
                known = ", ".join(str(v.version) for v in history)
                raise LookupError(f"tool {tool!r} has no version {to_version} (versions: {known})")
        if latest.hash == target.hash and latest.status == PENDING:  # restoring it is approving it
            return self.approve(tool, latest.version)
        version = self.record(
            tool,
            target.text,
            reason=f"rollback to v{target.version}",
            base_hash=target.base_hash,
            source=latest.source,
            exemplar_ids=target.exemplar_ids,
        )
        if version is None:
            raise LookupError(f"tool {tool!r} already serves the text of v{target.version}")
        return version

    def approve(self, tool: str, version: int | None = None) -> DescriptionVersion:
        """Mark a pending version approved, so it is served (default: the newest pending one)."""
        history = self.history(tool)
        if not history:
            raise LookupError(f"tool {tool!r} has no stored descriptions")
        served = next((v for v in reversed(history) if v.status == APPROVED), None)
        if version is None:
            waiting = [
                v for v in history if v.status == PENDING and (served is None or v.version > served.version)
            ]
            if not waiting:
                serving = f" (serving v{served.version})" if served else ""
                raise LookupError(f"tool {tool!r} has no version waiting for approval{serving}")
            target = waiting[-1]
        else:
            target = next((v for v in history if v.version == version), None)
            if target is None:
                known = ", ".join(str(v.version) for v in history)
                raise LookupError(f"tool {tool!r} has no version {version} (versions: {known})")
            if target.status == APPROVED:
                raise LookupError(f"v{version} of tool {tool!r} is already approved")
            if served is not None and target.version < served.version:
                raise LookupError(
                    f"v{version} of tool {tool!r} is older than the served v{served.version}; "
                    f"to serve its text, roll back to it (ste-mcp descriptions rollback {tool} --to {version})"
                )
        self.table.update(where=f"id = {quote(f'{tool}:{target.version}')}", values={"status": APPROVED})
        return target.model_copy(update={"status": APPROVED})

    def record_notes_attempt(self, attempt: NotesAttempt) -> None:
        """Store ``attempt`` as its tool's last usage-notes attempt (replacing the one before)."""
        if self._attempts is None:
            self._attempts = keyed_table(self._db, ATTEMPTS_TABLE, NotesAttemptRow, "tool")
        row = {**attempt.model_dump(), "created_at": attempt.created_at.astimezone(UTC).replace(tzinfo=None)}
        upsert(self._attempts, "tool", [row])

    def notes_attempts(self) -> dict[str, NotesAttempt]:
        """The last usage-notes attempt of every tool that had one."""
        if self._attempts is None:
            try:
                self._attempts = self._db.open_table(ATTEMPTS_TABLE)
            except ValueError as exc:
                if not is_missing(exc, ATTEMPTS_TABLE):
                    raise
                return {}
        out = {}
        for row in self._attempts.search().limit(None).to_list():
            attempt = NotesAttempt(
                **{
                    **row,
                    "groups": list(row["groups"] or []),
                    "created_at": row["created_at"].replace(tzinfo=UTC),
                }
            )
            out[attempt.tool] = attempt
        return out


def select_diverse(
    exemplars: Sequence[Exemplar],
    vectors: np.ndarray,
    k: int,
    *,
    max_chars: int | None = None,
    diversity: float = 0.5,
    line: Callable[[Exemplar], str] | None = None,
) -> list[Exemplar]:
    """Pick ``k`` exemplars by maximal marginal relevance.

    Relevance is how typical an exemplar is of the tool (cosine to the centroid of all of them);
    each pick is penalised by its similarity to those already picked (weight ``diversity``).
    Exemplars whose rendered ``line`` (default ``example_line``) is longer than ``max_chars`` are skipped.
    """
    line = line or example_line
    keep = [i for i, ex in enumerate(exemplars) if max_chars is None or len(line(ex)) <= max_chars]
    if k <= 0 or not keep:
        return []
    vecs = vectors[keep]
    centroid = vecs.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    relevance = vecs @ centroid
    similarity = vecs @ vecs.T
    picked: list[int] = []
    while len(picked) < min(k, len(keep)):
        best, best_score = -1, -np.inf
        for i in range(len(keep)):
            if i in picked:
                continue
            redundancy = max((similarity[i, j] for j in picked), default=0.0)
            score = (1 - diversity) * relevance[i] - diversity * redundancy
            if score > best_score:
                best, best_score = i, score
        picked.append(best)
    return [exemplars[keep[i]] for i in picked]


def example_result(ex: Exemplar) -> str:
    """What an example shows as its result: the final answer (our model's text, kept only when it
    copied no upstream text) or else the typed summary of the upstream result — never its text."""
    if ex.final_answer:
        return ex.final_answer
    return typed_summary(ex.observation) if ex.observation else ""


def example_line(ex: Exemplar, result_chars: int = 80) -> str:
    """One rendered example: the query, the call's arguments, and a short result."""
    args = json.dumps(ex.arguments, ensure_ascii=False, separators=(", ", ": "))
    line = f"- {json.dumps(ex.query, ensure_ascii=False)} → arguments {args}"
    result = " ".join(example_result(ex).split())
    if result:
        if len(result) > result_chars:
            result = result[: result_chars - 1].rstrip() + "…"
        line += f" → {result}"
    return line


def request_line(ex: Exemplar) -> str:
    """One rendered request: the exemplar's query alone (no arguments a small client could copy)."""
    return f"- {json.dumps(ex.query, ensure_ascii=False)}"


def examples_section(requests_only: bool = False) -> tuple[str, Callable[[Exemplar], str]]:
    """The header and line renderer of the examples section (with ``requests_only``, of requests)."""
    return (REQUESTS_HEADER, request_line) if requests_only else (SECTION_HEADER, example_line)


def render_description(
    original: str,
    exemplars: Sequence[Exemplar],
    budget_chars: int,
    *,
    notes: str = "",
    requests_only: bool = False,
) -> str:
    """The original description plus a marked section of usage ``notes`` (when given) and a marked
    section of examples adding at most ``budget_chars`` (with ``requests_only``, of their requests).

    Examples that do not fit are left out; with no notes and no examples, the original is returned
    unchanged.
    """
    if notes.strip():
        original = original.rstrip() + SEPARATOR + NOTES_HEADER + "\n" + notes.strip()
    header, render = examples_section(requests_only)
    lines: list[str] = []
    used = len(SEPARATOR) + len(header)
    for ex in exemplars:
        line = render(ex)
        if used + 1 + len(line) > budget_chars:
            continue
        lines.append(line)
        used += 1 + len(line)
    if not lines:
        return original
    return original.rstrip() + SEPARATOR + header + "\n" + "\n".join(lines)


def notes_of(text: str) -> str:
    """The usage notes section of a rendered description ("" when it has none)."""
    start = text.find(SEPARATOR + NOTES_HEADER + "\n")
    if start < 0:
        return ""
    body = text[start + len(SEPARATOR) + len(NOTES_HEADER) + 1 :]
    ends = [i for h in (SECTION_HEADER, REQUESTS_HEADER) if (i := body.find(SEPARATOR + h)) >= 0]
    return (body[: min(ends)] if ends else body).strip()


def fingerprint(tool: Tool, exemplar_ids: Sequence[str], *settings: Any) -> str:
    """Identifies the inputs of a rendering (same inputs: no new version)."""
    payload = json.dumps([text_hash(tool.description), sorted(exemplar_ids), list(settings)])
    return text_hash(payload)[:24]


class LiveDescriptions:
    """What ``App.describe`` serves: the latest approved version of each tool, else its original.

    A pending version is not served. A stored version is served only while the tool's original description is the one it was rendered
    from (a changed spec shows the new original until it is re-rendered).
    """

    def __init__(self, store: DescriptionStore) -> None:
        self.store = store
        self._current: dict[str, DescriptionVersion] = {}
        self._seen_version: int | None = None
        self.refresh()

    def describe(self, tool: Tool) -> str:
        current = self._current.get(tool.name)
        if current is not None and current.base_hash == text_hash(tool.description):
            return current.text
        return tool.description

    def version_of(self, tool: str) -> int | None:
        current = self._current.get(tool)
        return current.version if current else None

    def refresh(self) -> set[str]:
        """Reload if any process wrote a version; returns the tools whose served text changed."""
        version = self.store.version
        if version == self._seen_version:
            return set()
        latest = self.store.served_all()
        changed = {
            name
            for name in set(latest) | set(self._current)
            if _hash_of(latest, name) != _hash_of(self._current, name)
        }
        self._current, self._seen_version = latest, version
        return changed


def _hash_of(versions: dict[str, DescriptionVersion], tool: str) -> str | None:
    version = versions.get(tool)
    return version.hash if version else None


def _to_row(v: DescriptionVersion) -> dict[str, Any]:
    return {
        "id": f"{v.tool}:{v.version}",
        **v.model_dump(),
        "created_at": v.created_at.astimezone(UTC).replace(tzinfo=None),
    }


def _from_row(row: dict[str, Any]) -> DescriptionVersion:
    data = {k: row[k] for k in DescriptionVersion.model_fields if k in row}
    data["created_at"] = row["created_at"].replace(tzinfo=UTC)
    data["exemplar_ids"] = list(row["exemplar_ids"] or [])
    data["gate"] = row.get("gate") or ""
    return DescriptionVersion(**data)


def status_fields(settings: Any) -> dict[str, dict[str, int]]:
    """Per-tool fields for ``ste-mcp status``: the version of the description being served, and the
    newest version waiting for approval (``description_pending``) when there is one."""
    from ste_mcp.memory.db import Memory

    store = Memory.open(settings).descriptions
    out: dict[str, dict[str, int]] = {
        t: {"description_version": v.version} for t, v in store.served_all().items()
    }
    for v in store.pending():
        out.setdefault(v.tool, {})["description_pending"] = v.version
    return out
