"""Exemplars: judged, sanitised trials (and paraphrases of their queries) kept in LanceDB.

An exemplar is what STE keeps from a good trial: query, tool, arguments, an observation summary and
the final answer, with its provenance (trial ids, models, judge verdict, spec hash, time) and a
status — ``candidate`` until approved (automatically on judge acceptance, or by an operator),
``approved`` (used by descriptions, retrieval and fine-tuning) or ``rejected``. Paraphrases are
stored as exemplars of their own with ``variant_of`` set to the original's id; they share its call.
The query is embedded (packaged MiniLM) for nearest-neighbour retrieval.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from lancedb.index import Bitmap, HnswSq
from lancedb.pydantic import LanceModel, Vector
from pydantic import BaseModel, Field

from ste_mcp.memory.db import in_list, keyed_table, quote, upsert
from ste_mcp.memory.embeddings import DIM, Embedder, get_embedder
from ste_mcp.memory.requests import normalise

TABLE = "exemplars"
Status = Literal["candidate", "approved", "rejected"]
STATUSES: tuple[str, ...] = ("candidate", "approved", "rejected")
INDEX_MIN_ROWS = 5_000  # below this a flat scan is already fast


class Provenance(BaseModel):
    """Where an exemplar came from."""

    trial_ids: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)  # explorer, judge, paraphraser
    verdict: dict[str, Any] = Field(default_factory=dict)  # the judge's answers, with reasons
    spec_hash: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Exemplar(BaseModel):
    """One worked example of a tool call. ``score`` is set by ``ExemplarStore.search`` (cosine)."""

    id: str = ""
    tool: str
    query: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    observation: str = ""  # summary of what the tool returned
    final_answer: str = ""
    variant_of: str | None = None  # id of the exemplar this one paraphrases
    status: Status = "candidate"
    status_reason: str = ""
    provenance: Provenance = Field(default_factory=Provenance)
    score: float | None = None

    @property
    def group(self) -> str:
        """The id shared by an exemplar and its paraphrases."""
        return self.variant_of or self.id


def exemplar_id(*parts: str) -> str:
    """Deterministic id, so that processing a trial twice upserts instead of duplicating."""
    return "ex-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


class ExemplarRow(LanceModel):
    id: str
    tool: str
    query: str
    arguments: str  # JSON object
    observation: str
    final_answer: str
    variant_of: str  # "" for originals
    status: str
    status_reason: str
    trial_ids: list[str]
    models: list[str]
    verdict: str  # JSON object
    spec_hash: str
    created_at: datetime  # UTC
    updated_at: datetime  # UTC
    vector: Vector(DIM)  # type: ignore[valid-type]


_COLUMNS = [name for name in ExemplarRow.model_fields if name != "vector"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ExemplarStore:
    """The exemplars table. All methods are synchronous (LanceDB embedded); wrap in a thread if needed."""

    def __init__(self, db: Any, embedder: Embedder | None = None) -> None:
        self.db = db
        self.embedder = embedder or get_embedder()
        self.table = keyed_table(db, TABLE, ExemplarRow, "id")

    # ---- writing -------------------------------------------------------------------------------
    def add(self, exemplars: Sequence[Exemplar], vectors: np.ndarray | None = None) -> list[Exemplar]:
        """Insert or update exemplars (by id; ids are derived from the content when empty).

        Queries are embedded unless their normalised ``vectors`` are given (one row per exemplar).
        """
        if not exemplars:
            return []
        stored = []
        for ex in exemplars:
            if not ex.id:
                ex = ex.model_copy(update={"id": exemplar_id(ex.tool, ex.query, json.dumps(ex.arguments))})
            stored.append(ex)
        if vectors is None:
            vectors = self.embedder.embed([ex.query for ex in stored])
        upsert(self.table, "id", [_to_row(ex, vec) for ex, vec in zip(stored, vectors, strict=True)])
        return stored

    def set_status(self, ids: Sequence[str], status: Status, reason: str = "") -> int:
        """Set the status of exemplars and of their paraphrases; returns how many rows changed."""
        if status not in STATUSES:
            raise ValueError(f"unknown exemplar status {status!r} (expected one of {', '.join(STATUSES)})")
        if not ids:
            return 0
        where = f"{in_list('id', ids)} OR {in_list('variant_of', ids)}"
        result = self.table.update(
            where=where, values={"status": status, "status_reason": reason, "updated_at": _now()}
        )
        return int(getattr(result, "rows_updated", 0))

    # ---- reading -------------------------------------------------------------------------------
    def get(self, exemplar_id: str) -> Exemplar | None:
        rows = self._select(f"id = {quote(exemplar_id)}", limit=1)
        return rows[0] if rows else None

    def find(
        self,
        tool: str | None = None,
        status: Status | None = None,
        *,
        originals_only: bool = False,
        limit: int | None = None,
    ) -> list[Exemplar]:
        """Exemplars filtered by tool and status, oldest first."""
        rows = self._select(self._where(tool, status, originals_only), limit=limit)
        return sorted(rows, key=lambda ex: (ex.provenance.created_at, ex.id))

    def approved(self, tool: str | None = None) -> list[Exemplar]:
        """Approved exemplars (originals and paraphrases) — what descriptions and training use."""
        return self.find(tool, "approved")

    def approved_by_tool(self) -> dict[str, tuple[list[Exemplar], np.ndarray]]:
        """Approved originals of every tool with their query vectors, in one read."""
        rows = self.table.search().where(self._where(None, "approved", True)).limit(None).to_list()
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["tool"], []).append(row)
        return {
            tool: ([_from_row(r) for r in group], np.asarray([r["vector"] for r in group], dtype=np.float32))
            for tool, group in grouped.items()
        }

    def search(
        self,
        text: str,
        k: int = 5,
        tool: str | None = None,
        *,
        status: Status | None = "approved",
        distinct: bool = True,
        per_tool: int = 0,
    ) -> list[Exemplar]:
        """The ``k`` exemplars whose queries are nearest to ``text``, best first, with ``score``.

        ``distinct`` keeps only the best of an exemplar and its paraphrases; ``per_tool`` (> 0) at most
        that many of any one tool, so that the nearest tools all show up.
        """
        if k <= 0:
            return []
        return self.search_vector(
            self.embedder.embed_one(text), k, tool, status=status, distinct=distinct, per_tool=per_tool
        )

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 5,
        tool: str | None = None,
        *,
        status: Status | None = "approved",
        distinct: bool = True,
        per_tool: int = 0,
    ) -> list[Exemplar]:
        """``search`` with an already embedded query."""
        fetch = k * (20 if per_tool > 0 else 4 if distinct else 1)
        query = self.table.search(vector, vector_column_name="vector").distance_type("cosine")
        where = self._where(tool, status)
        if where:
            query = query.where(where, prefilter=True)
        rows = query.select([*_COLUMNS, "_distance"]).limit(fetch).to_list()
        out: list[Exemplar] = []
        seen: set[str] = set()
        of_tool: dict[str, int] = {}
        for row in rows:
            ex = _from_row(row)
            ex.score = round(1.0 - float(row["_distance"]), 6)
            if distinct and ex.group in seen:
                continue
            if per_tool > 0 and of_tool.get(ex.tool, 0) >= per_tool:
                continue
            seen.add(ex.group)
            of_tool[ex.tool] = of_tool.get(ex.tool, 0) + 1
            out.append(ex)
            if len(out) == k:
                break
        return out

    def near_duplicate(
        self, exemplar: Exemplar, min_similarity: float, vector: np.ndarray | None = None
    ) -> Exemplar | None:
        """A stored exemplar of the same tool (any status, paraphrases included) that ``exemplar``
        repeats: the same words, or a query at least ``min_similarity`` similar with the same
        arguments. A rejected one counts too: a repeat should not slip past the operator's veto.
        ``vector``: the query's embedding, when already computed."""
        same_words = normalise(exemplar.query)
        if vector is None:
            vector = self.embedder.embed_one(exemplar.query)
        for other in self.search_vector(vector, k=5, tool=exemplar.tool, status=None, distinct=False):
            if other.id == exemplar.id:
                continue
            if normalise(other.query) == same_words:
                return other
            if (other.score or 0.0) >= min_similarity and other.arguments == exemplar.arguments:
                return other
        return None

    def counts(self) -> dict[str, dict[str, int]]:
        """Per tool: number of exemplars by status (originals and paraphrases together)."""
        table = self.table.search().select(["tool", "status"]).limit(None).to_arrow()
        out: dict[str, dict[str, int]] = {}
        for tool, status in zip(table["tool"].to_pylist(), table["status"].to_pylist(), strict=True):
            per_tool = out.setdefault(tool, dict.fromkeys(STATUSES, 0))
            per_tool[status] = per_tool.get(status, 0) + 1
        return out

    def approved_originals(self) -> dict[str, int]:
        """Per tool: how many approved original exemplars it holds (paraphrases not counted)."""
        where = self._where(None, "approved", True)
        table = self.table.search().where(where).select(["tool"]).limit(None).to_arrow()
        return dict(Counter(table["tool"].to_pylist()))

    def has_trial(self, trial_id: str) -> bool:
        return self.table.count_rows(f"array_has(trial_ids, {quote(trial_id)})") > 0

    @property
    def version(self) -> int:
        """Table version: changes with every write (cheap to poll)."""
        return self.table.version

    # ---- maintenance ---------------------------------------------------------------------------
    def ensure_index(self, min_rows: int = INDEX_MIN_ROWS) -> bool:
        """Build the vector index (IVF_HNSW_SQ, cosine) and scalar indexes once the table is large.

        Returns whether an index was built now. Rows added later are searched flat until
        ``optimize()`` folds them into the index.
        """
        existing = {idx.name for idx in self.table.list_indices()}
        if self.table.count_rows() < min_rows or "vector_idx" in existing:
            return False
        self.table.create_index("vector", config=HnswSq(distance_type="cosine"), name="vector_idx")
        for column in ("tool", "status"):
            if f"{column}_idx" not in existing:
                self.table.create_index(column, config=Bitmap(), name=f"{column}_idx")
        return True

    def optimize(self) -> None:
        """Compact fragments and fold new rows into the indexes."""
        self.table.optimize()

    # ---- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _where(tool: str | None, status: str | None, originals_only: bool = False) -> str:
        parts = []
        if tool is not None:
            parts.append(f"tool = {quote(tool)}")
        if status is not None:
            parts.append(f"status = {quote(status)}")
        if originals_only:
            parts.append("variant_of = ''")
        return " AND ".join(parts)

    def _select(self, where: str, limit: int | None = None) -> list[Exemplar]:
        query = self.table.search()
        if where:
            query = query.where(where)
        return [_from_row(r) for r in query.select(_COLUMNS).limit(limit).to_list()]


def _to_row(ex: Exemplar, vector: np.ndarray) -> dict[str, Any]:
    created = ex.provenance.created_at
    if created.tzinfo is not None:
        created = created.astimezone(UTC).replace(tzinfo=None)
    return {
        "id": ex.id,
        "tool": ex.tool,
        "query": ex.query,
        "arguments": json.dumps(ex.arguments, ensure_ascii=False, sort_keys=True),
        "observation": ex.observation,
        "final_answer": ex.final_answer,
        "variant_of": ex.variant_of or "",
        "status": ex.status,
        "status_reason": ex.status_reason,
        "trial_ids": list(ex.provenance.trial_ids),
        "models": list(ex.provenance.models),
        "verdict": json.dumps(ex.provenance.verdict, ensure_ascii=False, sort_keys=True),
        "spec_hash": ex.provenance.spec_hash,
        "created_at": created,
        "updated_at": _now(),
        "vector": vector.tolist(),
    }


def _from_row(row: dict[str, Any]) -> Exemplar:
    return Exemplar(
        id=row["id"],
        tool=row["tool"],
        query=row["query"],
        arguments=json.loads(row["arguments"] or "{}"),
        observation=row["observation"],
        final_answer=row["final_answer"],
        variant_of=row["variant_of"] or None,
        status=row["status"],
        status_reason=row["status_reason"],
        provenance=Provenance(
            trial_ids=list(row["trial_ids"] or []),
            models=list(row["models"] or []),
            verdict=json.loads(row["verdict"] or "{}"),
            spec_hash=row["spec_hash"],
            created_at=row["created_at"].replace(tzinfo=UTC),
        ),
    )


def status_fields(settings: Any) -> dict[str, dict[str, int]]:
    """Per-tool fields for ``ste-mcp status``: exemplars approved / candidate / rejected."""
    from ste_mcp.memory.db import Memory

    counts = Memory.open(settings).exemplars.counts()
    return {
        tool: {
            "exemplars": c["approved"],
            "exemplar_candidates": c["candidate"],
            "exemplars_rejected": c["rejected"],
        }
        for tool, c in counts.items()
    }
