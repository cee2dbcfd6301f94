"""Markdown for benchmark reports: tables, and replacing one section of docs/BENCHMARKS.md in place."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# the paper's candidates-15 numbers (correct %, its own evaluation; see the bench README)
PAPER_CORRECT: list[tuple[str, str, str, str]] = [
    ("Llama-2-7B-chat", "10.7", "41.7", "73.3"),
    ("Mistral-7B-Instruct", "30.1", "47.9", "76.8"),
]


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value).replace("|", "\\|")


def replace_section(path: Path | str, heading: str, body: str) -> Path:
    """Replace the ``## heading`` section of a Markdown file (up to the next ``## ``), or append it."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
