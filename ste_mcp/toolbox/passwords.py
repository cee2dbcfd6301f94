"""Random secrets from ``secrets``: "Password Generator API" and "Token API".

Generated values are returned to the caller only; the toolbox logs no request or response bodies.
"""

from __future__ import annotations

import secrets
import string

from ste_mcp.toolbox.api import Endpoint, invalid

SYMBOLS = "!@#$%^&*()-_=+[]{};:,.?"
CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS)
ALPHABET = "".join(CLASSES)
BASE_LENGTH = 16
MAX_LENGTH = 512
TOKEN_TTL_S = 300  # "Token is only valid for ~5 minutes"


def password(length: int) -> str:
    """A cryptographically random password; from length 4 on it has every character class."""
    while True:
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if length < len(CLASSES) or all(any(c in cls for c in candidate) for cls in CLASSES):
            return candidate


def base() -> dict[str, str]:
    """A strong random password of the default length."""
    return {"password": password(BASE_LENGTH)}


def of_length(length: str) -> dict[str, str]:
    """A random password of ``length`` characters (1 to ``MAX_LENGTH``)."""
    text = length.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_LENGTH:
        raise invalid("length", f"must be a whole number from 1 to {MAX_LENGTH}, got {length!r}")
    return {"password": password(int(text))}


def token() -> dict[str, str | int]:
    """A fresh random bearer token and how long it is valid."""
    return {"token": secrets.token_urlsafe(32), "token_type": "Bearer", "expires_in": TOKEN_TTL_S}


ENDPOINTS = [
    Endpoint("Password_Generator_API__Base", "/password", base),
    Endpoint("Password_Generator_API__Password_of_length_50", "/password/length", of_length),
    Endpoint("Token_API__generate", "/token/generate", token),
]
