r"""Secret redaction: applied to everything before it is stored, logged, described or trained on.

Two kinds of secrets are removed:

* the values the operator configured (the toolset's auth env vars, ``Toolset.secret_values()``) in
  every encoding an upstream plausibly echoes them in: JSON string escaping (``\"``, ``\\``, ``\/``,
  ``\uXXXX``, nested levels), percent-encoding (either hex case, ``+`` or ``%20`` for a space,
  double-encoded), HTML entities, any mix of these, and base64 (standard and URL-safe, with or without
  padding, also inside a longer base64 string such as a ``Basic`` credential);
* anything shaped like a credential: ``Bearer``/``Basic`` tokens, well-known key prefixes (``sk-``,
  ``ghp_``, ``xoxb-``, ``AKIA``, ``hf_``...), JWTs, long hex or base64 strings mixing cases and digits,
  and the value of ``api_key=...`` / ``"token": "..."`` style pairs (a quoted value up to its closing
  quote, whatever characters it holds; also inside an escaped JSON string).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 4  # shorter configured values are not searched for (they would match everywhere)
_MIN_B64_CHARS = 8  # base64 fragments shorter than this are too likely to occur by chance
_JSON_SHORT = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
_HTML_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}

_SECRET_KEYS = (
    r"api[_-]?key|apikey|x-api-key|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|token"
    r"|secret|client[_-]?secret|password|passwd|pwd|private[_-]?key|session[_-]?id|signature"
)
# key, separator (quotes and := allowed, as in query strings, headers, JSON, YAML) and the value
_PAIR = re.compile(
    rf"""(?ix)
    (?P<key>\b(?:{_SECRET_KEYS})\b)
    (?P<sep>["']?\s*[:=]\s*["']?)
    (?P<value>[^\s"'&,;}}<>]{{3,}})
    """
)
# a quoted value: everything up to its closing quote, whatever it holds (a generated password has "}", ","
# or spaces, where ``_PAIR`` would stop and leave the rest); JSON escapes inside are part of the value
_QUOTED_PAIR = re.compile(
    rf"""(?ix)
    (?P<head>\b(?:{_SECRET_KEYS})\b["']?\s*[:=]\s*(?P<q>["']))
    (?P<value>(?:\\.|(?!(?P=q))[^\\\n])+)
    (?P=q)
    """
)
# the same inside a JSON string (an upstream's body quoted in a message): \"password\":\"…\"
_ESCAPED_PAIR = re.compile(
    rf"""(?ix)
    (?P<head>\b(?:{_SECRET_KEYS})\b\\["']\s*[:=]\s*\\(?P<q>["']))
    (?P<value>(?:(?!\\(?P=q))[^\n])+)
    \\(?P=q)
    """
)
_SHAPE = re.compile(r"(?:string|text|\[REDACTED\]) of \d+ characters|list of \d+ \w+|object with \d+ keys")
_SCHEMES = re.compile(r"(?i)\b(?P<scheme>bearer|basic|token)\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_PREFIXED = re.compile(
    r"""(?x)
    \b(?:
        sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}
      | (?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}
      | github_pat_[A-Za-z0-9_]{20,}
      | xox[abposr]-[A-Za-z0-9-]{10,}
      | hf_[A-Za-z0-9]{20,}
      | AKIA[0-9A-Z]{16}
      | AIza[0-9A-Za-z_-]{35}
      | glpat-[A-Za-z0-9_-]{20,}
      | (?:rk|pk|sk)_(?:live|test)_[A-Za-z0-9]{16,}
    )
    """
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_B64 = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_=-])")


def _hex(value: int, width: int = 0) -> str:
    """``value`` in hex as a pattern matching either case (``2[fF]``)."""
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in f"{value:0{width}x}")


def _char_pattern(char: str) -> str:
    """Every way an upstream may have encoded ``char`` inside a string that echoes a secret."""
    if char.isascii() and char.isalnum():  # no encoder escapes these
        return char
    code = ord(char)
    if code > 0xFFFF:  # JSON writes it as a surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        unicode_escape = rf"\\+u{_hex(high, 4)}\\+u{_hex(low, 4)}"
    else:
        unicode_escape = rf"\\+u{_hex(code, 4)}"
    alternatives = [unicode_escape, "".join(f"%(?:25)*{_hex(b, 2)}" for b in char.encode())]
    if char in _JSON_SHORT:  # any depth of JSON-in-JSON escaping
        alternatives.append(r"\\+" + re.escape(_JSON_SHORT[char]))
    if char == " ":
        alternatives.append(r"\+")
    if char in _HTML_NAMED:
        alternatives += [f"&{_HTML_NAMED[char]};", f"&#0*{code};", f"&#[xX]0*{_hex(code)};"]
    alternatives.append(re.escape(char))
    return "(?:" + "|".join(alternatives) + ")"


def _encoded_pattern(secret: str) -> str:
    """A regex matching ``secret`` with each character other than an ASCII letter or digit literal or
    escaped (JSON, percent, HTML), in any mix."""
    return "".join(_char_pattern(c) for c in secret)


def _base64_fragments(secret: str) -> set[str]:
    """Base64 forms of ``secret``: whole (padded or not), and the part that stays the same wherever it
    sits inside a longer encoded value (three alignments), standard and URL-safe alphabets."""
    raw = secret.encode()
    out: set[str] = set()
    whole = base64.b64encode(raw).decode()
    out |= {whole, whole.rstrip("=")}
    for skip in range(3):
        encoded = base64.b64encode(b"\0" * skip + raw).decode()
        start, end = -(-8 * skip // 6), 8 * (skip + len(raw)) // 6
        out.add(encoded[start:end])
    out |= {f.replace("+", "-").replace("/", "_") for f in out}
    return {f for f in out if len(f.rstrip("=")) >= _MIN_B64_CHARS}


_SEGMENTS = re.compile(r"[_+/-]+")


def _redact_value(match: re.Match[str]) -> str:
    """A quoted key-value pair with its value (only) redacted; a value that only tells a shape (what
    ``sanitize.typed_summary`` writes for a long string: "string of 50 characters") is no secret."""
    if _SHAPE.fullmatch(match["value"]):
        return match[0]
    start, end = match.span("value")
    return match[0][: start - match.start()] + REDACTED + match[0][end - match.start() :]


def _looks_random(token: str) -> bool:
    """A long token mixing upper case, lower case and digits (and not a path) is treated as a key,
    unless it reads as an identifier: words and numbers joined by ``_`` or ``-``, no part of 3 or more
    characters mixing letters and digits (``Password_Generator_API__Password_of_length_50``, a tool name)."""
    return (
        token.count("/") <= 1
        and any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
        and any(
            len(part) >= 3 and any(c.isdigit() for c in part) and any(c.isalpha() for c in part)
            for part in _SEGMENTS.split(token)
        )
    )


class Redactor:
    """Removes known secret values and credential-shaped strings from text and JSON-like values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        # per secret (longest first, so that a secret containing another is removed whole): a plain
        # substring every encoding keeps (its longest ASCII letter/digit run), checked with a fast
        # ``in`` before the regex runs; base64 forms as literals
        self._known: list[tuple[str, re.Pattern[str]]] = []
        for secret in values:
            fragments = sorted(_base64_fragments(secret), key=len, reverse=True)
            self._known += [(f, re.compile(re.escape(f))) for f in fragments]
            anchor = max(_ALNUM_RUN.findall(secret), key=len, default="")
            self._known.append((anchor, re.compile(_encoded_pattern(secret))))

    def redact_known(self, text: str) -> str:
        """``text`` with the configured secrets (in any encoding) replaced by ``[REDACTED]``."""
        for anchor, pattern in self._known:
            if text and anchor in text:
                text = pattern.sub(REDACTED, text)
        return text

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED]``."""
        if not text:
            return text
        text = self.redact_known(text)
        text = _SCHEMES.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
        for quoted in (_QUOTED_PAIR, _ESCAPED_PAIR):
            text = quoted.sub(_redact_value, text)
        text = _PAIR.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)
        text = _PREFIXED.sub(REDACTED, text)
        text = _JWT.sub(REDACTED, text)
        text = _HEX.sub(REDACTED, text)
        return _B64.sub(lambda m: REDACTED if _looks_random(m[0]) else m[0], text)

    def redact_value(self, value: Any) -> Any:
        """Redact every string inside a JSON-like value (dict keys included)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(k)): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """One-off redaction of ``text`` (build a ``Redactor`` once when redacting many strings)."""
    return Redactor(secrets).redact(text)
