"""Untrusted text from upstreams (and from models that read it) before it reaches memory.

Two steps, both needed before anything becomes an exemplar, a description or training data:

* ``clean_text`` strips control and invisible format characters and markup (HTML/XML tags,
  Markdown images/links/code fences), collapses whitespace and caps the length;
* ``injection_reason`` says why a text must be refused — it carries instructions to a model
  ("ignore previous instructions…", chat-template role tags, tool-call syntax aimed at tools,
  exfiltration links) — or ``None`` when it looks like plain data.

Refusing is deliberately eager: a wrongly refused exemplar costs one example; an accepted injection
would be served to every client in a tool description.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

ELLIPSIS = "…"

_TAG = re.compile(r"</?[A-Za-z!?/][^<>]{0,500}>")
_MD_IMAGE_OR_LINK = re.compile(r"!?\[([^\[\]]{0,500})\]\([^)]{0,2000}\)")
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CODE_FENCE = re.compile(r"```[A-Za-z0-9_-]*")
_SPACES = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

# (reason, pattern) — checked on the raw text and on the cleaned text, case-insensitively
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "instruction to the model (override of earlier instructions)",
        re.compile(
            r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b"
            r"[^.\n]{0,40}\b(instructions?|prompts?|messages?|rules|guidelines|directions|context)\b"
        ),
    ),
    (
        "instruction to the model (new role or instructions)",
        re.compile(
            r"\b(you are now|from now on,? you|new instructions?|system prompt|developer mode|jailbreak"
            r"|do not (tell|inform|mention)[^.\n]{0,30}\buser|without (telling|informing) the user"
            r"|(assistant|ai|model|llm|agent)s?,? (must|should) (now )?(always|never|call|run|use|send|reply|respond|ignore))\b"
        ),
    ),
    (
        "chat-template role tag",
        re.compile(
            r"<\|[a-z_]{2,30}\|>|\[/?INST\]|<</?SYS>>|</?s>|<\s*/?\s*(system|assistant|user|im_start|im_end)\b"
            r"|^\s*#*\s*(system|assistant|developer)\s*:",
            re.M,
        ),
    ),
    (
        "tool-call syntax",
        re.compile(
            r"^\s*(action|action input|thought|observation|final answer)\s*:|<\s*/?\s*(tool_call|function_call|tool_use|invoke)\b"
            r"|\"(tool_calls|function_call)\"\s*:|\b(call|invoke|use|run|execute|trigger)\s+(the\s+)?(tool|function|api)\s+[`'\"]?\w",
            re.M,
        ),
    ),
    (
        "hidden-instruction marker",
        re.compile(
            r"<\s*(important|instructions?|secret|hidden)\s*>|\bIMPORTANT\s*:\s*(you|the assistant|ai)\b"
        ),
    ),
    (
        "exfiltration link",
        re.compile(
            r"!\[[^\]]*\]\(\s*https?://|\b(send|post|upload|forward|leak|exfiltrate|transmit)\b[^.\n]{0,60}\bhttps?://"
            r"|https?://[^\s\"'<>]*(\{|\$\{|%7B)[^\s\"'<>]*"
        ),
    ),
]
_INJECTION_RULES = [(reason, re.compile(p.pattern, p.flags | re.I)) for reason, p in _RULES]


def clean_text(text: str, max_chars: int) -> str:
    """Plain, printable text of at most ``max_chars`` characters (``…`` marks a cut)."""
    text = unicodedata.normalize("NFKC", str(text))
    text = _ANSI.sub("", html.unescape(text))
    text = _MD_IMAGE_OR_LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _CODE_FENCE.sub(" ", text)
    text = "".join(_keep(ch) for ch in text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    text = "\n".join(line.strip() for line in text.split("\n")).strip()
    if len(text) > max_chars:
        text = text[: max(0, max_chars - 1)].rstrip() + ELLIPSIS
    return text


def _keep(ch: str) -> str:
    if ch in "\n\t":
        return ch
    if ch == "\r":
        return "\n"
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn"):  # controls, zero-width/bidi format chars, unassigned
        return ""
    if category in ("Zl", "Zp"):
        return "\n"
    return ch


def injection_reason(text: str, *, tool_names: Iterable[str] = ()) -> str | None:
    """Why ``text`` must not be shown to a model as data, or ``None``.

    ``tool_names`` are the names of served tools: a text that names another tool as something to
    call (``send_email(...)``, ``use send_email``) is refused as tool-call syntax aimed at it.
    """
    raw = unicodedata.normalize("NFKC", str(text))
    candidates = (raw, clean_text(raw, max_chars=len(raw) + 1))
    for reason, pattern in _INJECTION_RULES:
        for candidate in candidates:
            match = pattern.search(candidate)
            if match is not None:
                return f"{reason}: {_snippet(match.group(0))!r}"
    for name in tool_names:
        call = re.search(
            rf"\b{re.escape(name)}\s*\(|\b(call|invoke|use|run|execute)\s+[`'\"]?{re.escape(name)}\b",
            raw,
            re.IGNORECASE,
        )
        if call is not None:
            return f"tool-call syntax aimed at tool {name!r}: {_snippet(call.group(0))!r}"
    return None


def _snippet(text: str, limit: int = 40) -> str:
    """A short, printable excerpt of a refused match (stored as the refusal reason)."""
    text = _SPACES.sub(" ", "".join(_keep(ch) for ch in text).replace("\n", " ")).strip()
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
