"""The LanceDB database and the one handle on its stores.

The database is a folder under the data directory (``Settings.db_dir``) or, with ``memory.uri``, a
prefix on object storage (``s3://bucket/prefix``, also ``gs://`` and ``az://``) shared by every process:
serving replicas, explorers and the trainer. Credentials and the endpoint come from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ALLOW_HTTP``; LanceDB reads them itself), never from the URI or a settings file.

Concurrent writers on object storage are safe because Lance commits a table version with a conditional
PUT (``If-None-Match: *``): of two writers committing the same version one gets a conflict and retries
on top of the other. AWS S3, MinIO, R2 and SeaweedFS honour it; a store that ignores the header
silently loses commits, so use ``s3+ddb://bucket/prefix?ddbTableName=T`` (a DynamoDB commit table)
there.

Conditional PUT orders commits, not rows: two writers that both find a key absent would both insert
it (``merge_insert`` plans against the version it read). ``keyed_table`` records the key column as the
table's unenforced primary key, which makes Lance check the keys each commit inserted against the
commits it lands on; the later writer then re-plans and finds the key present. Write to a keyed table
with ``insert_new`` or ``upsert``.

``Memory`` opens the connection once and each store on it once; ``quote`` and ``in_list`` are the one
place SQL literals for ``where`` filters are written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import lancedb
import pyarrow as pa

from ste_mcp.memory.settings import OBJECT_SCHEMES

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ste_mcp.memory.claims import ClaimStore
    from ste_mcp.memory.descriptions import DescriptionStore
    from ste_mcp.memory.embeddings import Embedder
    from ste_mcp.memory.exemplars import ExemplarStore
    from ste_mcp.memory.toolsearch import ToolIndex
    from ste_mcp.memory.trials import TrialStore


def is_object_uri(location: Path | str) -> bool:
    """Whether ``location`` names object storage (``s3://…``) rather than a local folder."""
    return isinstance(location, str) and urlsplit(location).scheme in OBJECT_SCHEMES


def open_db(location: Path | str) -> lancedb.DBConnection:
    """Open (creating if needed) the database in a folder or at an object-storage URI.

    Reads are consistent with writes from other processes (explorer, trainer, CLI, other replicas) at
    once: every read checks for a newer table version.
    """
    if is_object_uri(location):
        return lancedb.connect(location, read_consistency_interval=timedelta(0))
    path = Path(location)
    path.mkdir(parents=True, exist_ok=True)
    return lancedb.connect(str(path), read_consistency_interval=timedelta(0))


def db_location(settings: Any) -> Path | str:
    """Where the settings put the database: ``memory.uri`` when set, else ``Settings.db_dir``."""
    return settings.memory.uri or settings.db_dir


def open_settings_db(settings: Any) -> lancedb.DBConnection:
    """The database the settings point at (see ``db_location``)."""
    return open_db(db_location(settings))


def table_names(db: lancedb.DBConnection) -> set[str]:
    result = db.list_tables()
    names = getattr(result, "tables", result)
    return set(names)


def is_missing(exc: Exception, name: str) -> bool:
    """Whether ``exc`` is LanceDB saying table ``name`` does not exist (or not yet: another process
    may be half-way through creating it)."""
    return isinstance(exc, ValueError) and f"'{name}' was not found" in str(exc)


def _missing(db: lancedb.DBConnection, exc: Exception, name: str) -> bool:
    """``is_missing``, or (another wording of the error) the table is not listed."""
    return is_missing(exc, name) or name not in table_names(db)


PRIMARY_KEY = "lance-schema:unenforced-primary-key"
OPEN_DEADLINE_S = 30.0  # how long a racing start may keep a table unopenable before we give up
_creating = threading.Lock()  # one table creation at a time in this process


def open_table(db: lancedb.DBConnection, name: str, schema: Any) -> Any:
    """Open table ``name``, creating it with ``schema`` if it does not exist.

    Safe when several processes (replicas starting together on one store) or threads do it at once:
    a table another process is creating can be listed before it can be opened, and of two creates
    one commit loses; both are retried until the table opens (``OPEN_DEADLINE_S``)."""
    deadline = time.monotonic() + OPEN_DEADLINE_S
    pause = 0.02
    while True:
        try:
            return db.open_table(name)
        except ValueError as exc:
            if not _missing(db, exc, name):
                raise
        try:
            with _creating:
                return db.create_table(name, schema=schema, exist_ok=True)
        except Exception as exc:  # a concurrent create won, or is still writing its first version
            if time.monotonic() > deadline:
                raise
            log.debug("table %s: create raced (%s), opening again", name, exc)
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def keyed_table(db: lancedb.DBConnection, name: str, schema: Any, key: str) -> Any:
    """Open (creating if needed) table ``name`` with ``key`` as its unenforced primary key, so that
    concurrent ``merge_insert`` calls inserting the same new key conflict instead of storing it twice.

    A new table records the key in its schema when it is created (one commit, nothing for a racing
    process to undo). Tables written before the key was recorded get it on open (``key`` made
    non-nullable first); a process doing the same at the same time is waited for."""
    table = open_table(db, name, keyed_schema(schema, key))
    deadline = time.monotonic() + OPEN_DEADLINE_S
    while not _is_key(table, key):
        try:
            if table.schema.field(key).nullable:
                table.alter_columns({"path": key, "nullable": False})
            table.set_unenforced_primary_key(key)
        except Exception:  # another process changed the schema first: read what it left
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            if time.monotonic() > deadline:
                raise RuntimeError(f"table {name}: {key} was set as its key but does not read back as one")
        table = db.open_table(name)
    return table


def keyed_schema(schema: Any, key: str) -> pa.Schema:
    """``schema`` (an arrow schema or a ``LanceModel``) with ``key`` non-nullable and recorded as
    the unenforced primary key."""
    arrow = schema if isinstance(schema, pa.Schema) else schema.to_arrow_schema()
    index = arrow.get_field_index(key)
    field = arrow.field(index).with_nullable(False)
    field = field.with_metadata({**(field.metadata or {}), f"{PRIMARY_KEY}:position": "1"})
    return arrow.set(index, field)


def _is_key(table: Any, column: str) -> bool:
    metadata = table.schema.field(column).metadata or {}
    return any(k.decode().startswith(PRIMARY_KEY) for k in metadata)


def insert_new(table: Any, key: str, rows: list[dict[str, Any]]) -> int:
    """Insert the ``rows`` whose ``key`` the keyed ``table`` does not hold yet; returns how many."""
    result = table.merge_insert(key).when_not_matched_insert_all().execute(_typed(table, rows))
    return result.num_inserted_rows


def upsert(table: Any, key: str, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into the keyed ``table``, replacing those whose ``key`` it holds."""
    table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(
        _typed(table, rows)
    )


def _typed(table: Any, rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` typed by ``table``'s schema: ``merge_insert`` does not coerce plain dicts to a
    non-nullable key."""
    return pa.Table.from_pylist(rows, schema=table.schema)


def quote(value: str) -> str:
    """``value`` as a SQL string literal for a LanceDB ``where`` filter."""
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')`` for a LanceDB ``where`` filter."""
    return f"{column} IN ({', '.join(quote(v) for v in values)})"


class Memory:
    """One connection to the database and each store on it, opened once on first use.

    Thread-safe to share once a store is opened; open stores from one thread first (the server does
    at start).
    """

    def __init__(
        self, db: lancedb.DBConnection, *, secrets: Iterable[str] = (), embedder: Embedder | None = None
    ) -> None:
        self.db = db
        self._secrets = tuple(secrets)
        self._embedder = embedder

    @classmethod
    def open(cls, settings: Any, *, secrets: Iterable[str] = ()) -> Memory:
        """The database the settings point at; ``secrets`` are redacted from stored trials."""
        return cls(open_settings_db(settings), secrets=secrets)

    @cached_property
    def trials(self) -> TrialStore:
        from ste_mcp.memory.trials import TrialStore

        return TrialStore(self.db, secrets=self._secrets)

    @cached_property
    def exemplars(self) -> ExemplarStore:
        from ste_mcp.memory.exemplars import ExemplarStore

        return ExemplarStore(self.db, embedder=self._embedder)

    @cached_property
    def descriptions(self) -> DescriptionStore:
        from ste_mcp.memory.descriptions import DescriptionStore

        return DescriptionStore(self.db)

    @cached_property
    def claims(self) -> ClaimStore:
        """This process's claims on trials to judge (``memory/claims.py``)."""
        from ste_mcp.memory.claims import ClaimStore

        return ClaimStore(self.db)

    @cached_property
    def tool_index(self) -> ToolIndex:
        from ste_mcp.memory.toolsearch import ToolIndex

        return ToolIndex(self.db, embedder=self._embedder)
