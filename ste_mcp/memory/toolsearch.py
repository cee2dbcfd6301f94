"""Learned tool search: a hybrid index (LanceDB full-text + MiniLM vectors) over the served tools.

Each tool contributes documents to one LanceDB table:

* ``tool``: its name split into words, then its description (what every MCP client reads);
* ``request``: the imagined requests of its approved exemplars and their paraphrases — STE's own
  query → tool pairs, which is what makes this better than searching descriptions alone: a request
  is phrased the way users ask, a description the way API authors write.

A query is asked of the vector column (cosine; ``mode="vector"``, the default chosen on bench/dev),
of the full-text index (BM25; ``"text"``), or of both (``"hybrid"``); each list is reduced to tools in
order of their best document, and in hybrid mode the two tool rankings are fused with reciprocal rank
fusion (RRF, k = ``RRF_K``). ``sync`` makes the table hold exactly the documents it is given,
embedding only new texts, so a restart or a new exemplar costs little and 10,000 tools are embedded
once.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from lancedb.index import FTS
from lancedb.pydantic import LanceModel, Vector

from ste_mcp.memory.db import in_list, insert_new, keyed_table
from ste_mcp.memory.embeddings import DIM, Embedder, get_embedder

TABLE = "tool_search"
RRF_K = 60  # the usual reciprocal-rank-fusion constant: later ranks still count
DEPTH = 100  # documents read first from each list per query (then deeper until they name k tools)
MAX_DESCRIPTION_CHARS = 1000  # of a description indexed (MiniLM reads ~256 tokens anyway)
MAX_REQUESTS_PER_TOOL = 64
Kind = Literal["tool", "request"]
SearchMode = Literal["hybrid", "vector", "text"]


class ToolDocRow(LanceModel):
    id: str  # hash of (tool, kind, text): unchanged documents are never re-embedded
    tool: str
    kind: str
    text: str
    vector: Vector(DIM)  # type: ignore[valid-type]


@dataclass(frozen=True)
class ToolDoc:
    """One searchable text about a tool."""

    tool: str
    kind: Kind
    text: str

    @property
    def id(self) -> str:
        return "td-" + hashlib.sha256(f"{self.tool}\x1f{self.kind}\x1f{self.text}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ToolHit:
    """A tool found for a query: fused score, and the document that matched it best."""

    tool: str
    score: float
    matched: str
    kind: str


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    total: int


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[_\-%./:]+")
_WORDS = re.compile(r"\w+", re.UNICODE)


def name_words(name: str) -> str:
    """``Numbers__Get_math_fact`` -> ``Numbers Get math fact``; ``getWolframAlpha`` -> ``get Wolfram Alpha``."""
    spaced = _SEPARATORS.sub(" ", name)
    return " ".join(_CAMEL.sub(" ", spaced).split())


def tool_docs(
    name: str, description: str, requests: Iterable[str] = (), *, max_requests: int = MAX_REQUESTS_PER_TOOL
) -> list[ToolDoc]:
    """The documents of one tool: name + description, then up to ``max_requests`` distinct requests."""
    head = f"{name_words(name)}: {' '.join(description.split())[:MAX_DESCRIPTION_CHARS]}".strip(": ")
    docs = [ToolDoc(name, "tool", head)]
    seen: set[str] = set()
    for request in requests:
        text = " ".join(request.split())
        key = text.casefold()
        if not text or key in seen:
            continue
        seen.add(key)
        docs.append(ToolDoc(name, "request", text))
        if len(seen) >= max_requests:
            break
    return docs


def _deep_enough(read: Callable[[int], list[dict[str, Any]]], k: int, depth: int) -> list[dict[str, Any]]:
    """``read(limit)``'s documents, read ``depth`` deep and then twice as deep until they name ``k`` tools
    or the list ends: a few tools with many requests must not fill the first ``depth`` documents and leave
    a search with fewer than ``k`` tools."""
    while True:
        rows = read(depth)
        if len(rows) < depth or len({row["tool"] for row in rows}) >= k:
            return rows
        depth *= 2


def _fts_query(text: str) -> str:
    """Plain words only: the full-text parser must never see operators or quotes from a client."""
    return " ".join(_WORDS.findall(text))[:1000]


class ToolIndex:
    """The tool-search table: ``sync`` documents in, ``search`` tools out."""

    def __init__(self, db: Any, *, table: str = TABLE, embedder: Embedder | None = None) -> None:
        self.db = db
        self.name = table
        self.embedder = embedder or get_embedder()
        self._lock = threading.Lock()  # one sync at a time per process
        self.table = keyed_table(db, table, ToolDocRow, "id")  # replicas syncing at once add a doc once
        self._fts_version: int | None = None

    def __len__(self) -> int:
        return self.table.count_rows()

    def tools(self) -> set[str]:
        """The tools that have documents in the index."""
        rows = self.table.search().select(["tool"]).limit(None).to_arrow()
        return set(rows["tool"].to_pylist())

    def sync(self, docs: Sequence[ToolDoc]) -> SyncReport:
        """Make the table hold exactly ``docs``: remove stale rows, embed and add new ones."""
        with self._lock:
            wanted = {doc.id: doc for doc in docs}
            have = self._ids()
            stale = sorted(have - wanted.keys())
            new = [doc for key, doc in wanted.items() if key not in have]
            if stale:
                for start in range(0, len(stale), 500):
                    chunk = ", ".join(f"'{key}'" for key in stale[start : start + 500])  # ids are hex
                    self.table.delete(f"id IN ({chunk})")
            if new:
                vectors = self.embedder.embed([doc.text for doc in new])
                rows = [
                    {
                        "id": doc.id,
                        "tool": doc.tool,
                        "kind": doc.kind,
                        "text": doc.text,
                        "vector": vec.tolist(),
                    }
                    for doc, vec in zip(new, vectors, strict=True)
                ]
                self._insert(rows)
            if stale or new or self._fts_version is None:
                self._ensure_fts(force=bool(stale or new))
            return SyncReport(added=len(new), removed=len(stale), total=len(wanted))

    def _ids(self) -> set[str]:
        """The ids of the documents the table holds."""
        return set(self.table.search().select(["id"]).limit(None).to_arrow()["id"].to_pylist())

    def _insert(self, rows: list[dict[str, Any]], attempts: int = 3) -> None:
        """Insert the rows the table does not hold yet; a replica inserting the same documents at
        the same moment can make a commit conflict: read what landed and insert the rest."""
        for attempt in range(attempts):
            if not rows:
                return
            try:
                insert_new(self.table, "id", rows)
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                have = self._ids()
                rows = [row for row in rows if row["id"] not in have]

    def _ensure_fts(self, *, force: bool) -> None:
        if self.table.count_rows() == 0:
            return
        has_index = any("text" in idx.columns for idx in self.table.list_indices())
        if force or not has_index:
            self.table.create_index("text", config=FTS(with_position=False), replace=True)
        self._fts_version = self.table.version

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        depth: int = DEPTH,
        mode: SearchMode = "vector",
        among: Collection[str] | None = None,
        vector: np.ndarray | None = None,
    ) -> list[ToolHit]:
        """The ``k`` tools best matching ``query``, best first.

        ``mode``: ``vector`` (MiniLM), ``text`` (full text) or ``hybrid`` (RRF of both rankings).
        ``among``: rank only these tools (a filter applied before the nearest documents are taken).
        ``vector``: the query's embedding, when the caller already has it.
        """
        query = " ".join(query.split())
        if k <= 0 or not query or self.table.count_rows() == 0 or (among is not None and not among):
            return []
        where = in_list("tool", sorted(among)) if among is not None else None

        def reader(base: Any, score: str) -> Callable[[int], list[dict[str, Any]]]:
            """A reader of the first ``limit`` documents of ``base``, only of ``among``'s tools."""
            if where:
                base = base.where(where, prefilter=True)
            base = base.select(["tool", "kind", "text", score])
            return lambda limit: base.limit(limit).to_list()

        dense = []
        if mode != "text":
            if vector is None:
                vector = self.embedder.embed_one(query)
            nearest = self.table.search(vector, vector_column_name="vector").distance_type("cosine")
            dense = _deep_enough(reader(nearest, "_distance"), k, depth)
        words = _fts_query(query) if mode != "vector" else ""
        sparse = []
        if words:
            try:
                sparse = _deep_enough(reader(self.table.search(words, query_type="fts"), "_score"), k, depth)
            except (ValueError, RuntimeError):  # no FTS index yet (another process is building it)
                sparse = []
        scores: dict[str, float] = {}
        best: dict[str, tuple[int, dict[str, Any]]] = {}
        for ranked in (dense, sparse):
            seen: set[str] = set()
            for row in ranked:
                tool = row["tool"]
                if tool in seen:
                    continue
                seen.add(tool)
                rank = len(seen)
                scores[tool] = scores.get(tool, 0.0) + 1.0 / (RRF_K + rank)
                if tool not in best or rank < best[tool][0]:
                    best[tool] = (rank, row)
        order = sorted(scores, key=lambda t: (-scores[t], t))[:k]
        return [
            ToolHit(tool=t, score=round(scores[t], 6), matched=best[t][1]["text"], kind=best[t][1]["kind"])
            for t in order
        ]
