"""The embedded LanceDB database under the data directory: one place opens it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import lancedb


def open_db(db_dir: Path | str) -> lancedb.DBConnection:
    """Open (creating if needed) the database folder.

    Reads are consistent with writes from other processes (explorer, trainer, CLI) at once.
    """
    path = Path(db_dir)
    path.mkdir(parents=True, exist_ok=True)
    return lancedb.connect(str(path), read_consistency_interval=timedelta(0))


def table_names(db: lancedb.DBConnection) -> set[str]:
    result = db.list_tables()
    names = getattr(result, "tables", result)
    return set(names)
