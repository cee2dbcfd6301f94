"""How the checks read text and argument values: folded to plain words, and every scalar of a call."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["leaves", "plain"]


def plain(text: str) -> str:
    """Lower case, no accents, words of letters and digits only."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w.]+", " ", bare).split())


def leaves(value: Any) -> Iterator[str]:
    """The text of every scalar in an argument value (booleans and nulls have no number)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)
