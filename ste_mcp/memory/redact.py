"""Secret redaction: applied to everything before it is stored, logged, described or trained on.

Two kinds of secrets are removed:

* the exact values the operator configured (the toolset's auth env vars, ``Toolset.secret_values()``),
  also in their URL-encoded form;
* anything shaped like a credential: ``Bearer``/``Basic`` tokens, well-known key prefixes (``sk-``,
  ``ghp_``, ``xoxb-``, ``AKIA``, ``hf_``...), JWTs, long hex or base64 strings mixing cases and digits,
  and the value of ``api_key=...`` / ``"token": "..."`` style pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

REDACTED = "[REDACTED]"

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


def _looks_random(token: str) -> bool:
    """A long token mixing upper case, lower case and digits (and not a path) is treated as a key."""
    return (
        token.count("/") <= 1
        and any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
    )


class Redactor:
    """Removes known secret values and credential-shaped strings from text and JSON-like values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                values.add(secret)
                values.add(quote(secret, safe=""))
        # longest first so that a secret containing another is removed whole
        self._known = (
            re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))
            if values
            else None
        )

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED]``."""
        if not text:
            return text
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        text = _SCHEMES.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
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
