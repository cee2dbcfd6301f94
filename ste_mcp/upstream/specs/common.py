"""What every part of spec loading shares: ``SpecError``, tool names, JSON pointers."""

from __future__ import annotations

import re

TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class SpecError(Exception):
    """A spec cannot be used; the message names the file and the place in it."""


def pointer(*parts: str | int) -> str:
    """The JSON pointer (RFC 6901) of ``parts``, e.g. ``pointer("paths", "/a/{b}")`` -> ``/paths/~1a~1{b}``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... (within 64 characters) if taken; adds the result to ``taken``."""
    candidate, i = name, 2
    while candidate in taken:
        suffix = f"_{i}"
        candidate, i = name[: 64 - len(suffix)] + suffix, i + 1
    taken.add(candidate)
    return candidate
