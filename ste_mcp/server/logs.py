"""Logging for the server: stderr (never stdout, which carries stdio MCP) and a file in the data dir.

Every record passes through a redacting filter, so secrets never land in a log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from ste_mcp.safety.redact import Redactor

LOG_FILE = "ste-mcp.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Replaces configured secret values and credential-shaped strings in each record's message."""

    def __init__(self, secrets: Callable[[], Iterable[str]] = tuple):
        super().__init__()
        self._secrets = secrets
        self._key: tuple[str, ...] | None = None
        self._redactor = Redactor()

    @property
    def redactor(self) -> Redactor:
        key = tuple(sorted(self._secrets()))
        if key != self._key:  # the secrets are known once the toolset is loaded
            self._key, self._redactor = key, Redactor(key)
        return self._redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.redactor
        record.msg = redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact(record.exc_text)
        return True


def setup_logging(
    logs_dir: Path, *, secrets: Callable[[], Iterable[str]] = tuple, level: int = logging.INFO
) -> Path:
    """Send ste-mcp's logs to stderr and ``logs_dir/ste-mcp.log``; returns the file's path.

    ``secrets`` returns the current secret values (e.g. ``lambda: app.toolset.secret_values()``).
    """
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / LOG_FILE
    redacting = RedactingFilter(secrets)
    stderr = logging.StreamHandler()  # stderr by default
    file = RotatingFileHandler(path, maxBytes=10_000_000, backupCount=3, encoding="utf-8")
    root = logging.getLogger()
    for handler in (stderr, file):
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(redacting)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("ste_mcp").setLevel(level)
    return path
