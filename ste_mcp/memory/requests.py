"""What makes an imagined request worth keeping as a demonstration.

A demonstration teaches a client to map a user's words to a tool. A request that names the tool
("… using the VehicleControlAPI_gallon_to_liter tool?") or talks about tools instead of asking for a
result ("Create a tool that …", "What specific task do you want to automate?") teaches nothing about
choosing it, and a request that repeats one already stored adds weight without information. The
explorer asks for another request when one of these is imagined (``explorer/episode.py``), and the
exploiter refuses to store what still gets through (``memory/exploit.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ste_mcp.safety.sanitize import first_rule_match

__all__ = ["normalise", "request_problem"]

# An identifier as code writes it: snake_case, a dotted/dashed path, or CamelCase with two humps.
_IDENTIFIER = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:(?:__?|[.-])[A-Za-z0-9]+)+|[a-z]*[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*"
)
_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Requests about tools rather than for a result. Each rule names what it caught.
_META_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        (
            "asks for a tool to be built",
            r"\b(create|build|write|design|develop|implement|make)\s+(me\s+)?(a|an|the|some)?\s*"
            r"(new\s+|simple\s+|custom\s+)?(tool|function|api|endpoint|script|program|plugin)s?\b",
        ),
        ("asks the user back", r"\b(what|which)\b[^?]{0,60}\b(do|would)\s+you\s+(want|like|need)\b"),
        # the imagination reply's JSON itself, taken for the request (stores from before read_request
        # stopped taking JSON that does not parse)
        ("is the model's JSON, not a user's words", r'^\s*\{\s*"request"\s*:'),
        ("talks about the tool", r"\b(this|that|the|your)\s+(tool|plugin)\b"),
        (
            # "What are the parameters and options available for the Unlimited Language API?", "the most
            # recent updates to the Token API": about an API itself, which no call of it answers
            "asks about an API, not for a result",
            r"\b(parameters?|options?|features?|updates?|documentation|docs|versions?|endpoints?|methods?"
            r"|capabilities|limits?)\b[^.?!]{0,40}?\b(api|tool|endpoint|service)s?\b",
        ),
        ("talks about the tool", r"\b(this|that|your)\s+(api|function|endpoint)\b"),
        ("talks about the tool", r"\bhow\s+(can|do|should|would)\s+(i|we|you)\s+use\s+(it|this|that)\b"),
        (
            "talks about the tool",
            # the tool's name in between may be several words ("using the Stadia Maps Time Zone API"), or
            # redacted ("the [REDACTED] tool")
            r"\b(using|use|call|calling|invoke|invoking|via|with|through|employ|employing|utili[sz]e|utili[sz]ing)"
            r"\s+the\s+(\S+\s+){1,5}?(api|tool|endpoint)\b",
        ),
    )
)


def name_parts(name: str) -> set[str]:
    """The lower-case words of an identifier: ``VehicleControlAPI_gallon_to_liter`` → vehicle, control,
    api, gallon, to, liter."""
    return {p.lower() for p in _PART.findall(name)}


def normalise(text: str) -> str:
    """A request as compared for duplicates: lower case, words only."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def request_problem(
    query: str, tool: str, *, other_tools: Iterable[str] = (), description: str = ""
) -> str | None:
    """Why ``query`` should not become a demonstration for ``tool``, or ``None``.

    Refused: the tool's (or another served tool's) name as an identifier, a code-style identifier that
    shares two or more words with the tool's name, requests about tools instead of for a result, and
    requests that copy ``COPIED_WORDS`` or more consecutive words of the tool's ``description`` (pass
    ``Tool.documentation``: its parameters' descriptions are shown to the explorer too).
    """
    lowered = query.lower()
    for name in (tool, *other_tools):
        if len(name) >= 4 and re.search(rf"(?<![\w]){re.escape(name.lower())}(?![\w])", lowered):
            return f"names the tool {name!r}"
    wanted = name_parts(tool) - {"get", "to", "the", "of", "by", "a", "api"}
    for identifier in _IDENTIFIER.findall(query):
        shared = name_parts(identifier) & wanted
        if len(shared) >= 2 or (len(wanted) == 1 and shared):
            return f"names the tool by an identifier: {identifier[:60]!r}"
    hit = first_rule_match(_META_RULES, query)
    if hit is not None:
        return f"{hit[0]}: {hit[1][:60]!r}"
    copied = _copied_words(query, description)
    if copied:
        return f"copies the tool's description: {copied[:60]!r}"
    return None


COPIED_WORDS = 6  # a user's request shares a few words with a description, not a whole clause


def _copied_words(query: str, description: str) -> str:
    """The first run of ``COPIED_WORDS`` consecutive words of ``query`` found in ``description``."""
    if not description:
        return ""
    words = normalise(query).split()
    source = f" {normalise(description)} "
    for i in range(len(words) - COPIED_WORDS + 1):
        run = " ".join(words[i : i + COPIED_WORDS])
        if f" {run} " in source:
            return run
    return ""
