"""Claims: one process judges each trial, however many share the database.

Serving replicas, a foreground ``ste-mcp learn`` and the server all look for unjudged trials in the
same table; without a claim each would judge every one of them (the verdicts agree, the ids are
deterministic, but the judge's model time is spent once per process). Before judging a trial a
process inserts a claim row keyed by the trial id (LanceDB ``merge_insert`` on the unenforced primary
key: of two processes inserting the same new id, one commit wins, the other finds it taken). A claim
expires after ``memory.claim_ttl_s``, so the trials of a process killed mid-judging are taken over;
a finished claim is released (deleted) once the verdict is stored.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ste_mcp.memory.db import in_list, insert_new, keyed_table, quote

log = logging.getLogger(__name__)

TABLE = "claims"
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # the trial id
        pa.field("owner", pa.string()),
        pa.field("expires_at", pa.float64()),  # unix seconds
    ]
)


def process_owner() -> str:
    """A name for this process that no other process shares: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ClaimStore:
    """Claims on trial ids, held by ``owner`` (default: this process, see ``process_owner``)."""

    def __init__(self, db: Any, *, owner: str | None = None) -> None:
        self.table = keyed_table(db, TABLE, SCHEMA, "id")
        self.owner = owner or process_owner()

    def take(self, ids: Sequence[str], *, ttl_s: float) -> set[str]:
        """Claim for ``ttl_s`` seconds those of ``ids`` that nobody holds (or whose claim has
        expired); returns the ids this owner holds now, its own earlier claims included."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return set()
        now = time.time()
        self.table.delete(f"expires_at < {now!r} AND {in_list('id', ids)}")
        rows = [{"id": i, "owner": self.owner, "expires_at": now + ttl_s} for i in ids]
        try:
            insert_new(self.table, "id", rows)
        except Exception as exc:  # a concurrent claim committed first: read back who holds what
            log.debug("claim of %d trial(s) conflicted: %s", len(ids), exc)
        held = self.table.search().where(in_list("id", ids)).select(["id", "owner"]).limit(None).to_list()
        return {r["id"] for r in held if r["owner"] == self.owner}

    def release(self, ids: Sequence[str]) -> None:
        """Drop this owner's claims on ``ids`` (the trials are judged, or given back)."""
        if ids:
            self.table.delete(f"owner = {quote(self.owner)} AND {in_list('id', list(ids))}")

    def holders(self) -> dict[str, str]:
        """Unexpired claims: trial id -> owner."""
        now = time.time()
        rows = self.table.search().select(["id", "owner", "expires_at"]).limit(None).to_list()
        return {r["id"]: r["owner"] for r in rows if r["expires_at"] >= now}
