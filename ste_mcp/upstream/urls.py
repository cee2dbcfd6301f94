"""Build an upstream request from a tool and its (validated) arguments, inside the tool's allowlist.

The tool's base URL is an allowlist: arguments can never change the scheme, host or port, nor leave
the base path. Path values are percent-encoded; ``..``, absolute URLs and CR/LF in values are refused.
Header values must be printable ASCII (surrounding blanks are trimmed, as every HTTP parser does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx2

from ste_mcp.upstream.tools import Tool

WHOLE_BODY = "$body"  # Param.wire_name of a parameter that is the whole request body
_FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "authorization", "cookie"}
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")
_TEMPLATE = re.compile(r"\{([^{}]+)\}")


class UnsafeRequest(ValueError):
    """An argument would make the request leave the tool's allowlisted origin or inject headers."""


class InvalidArgument(ValueError):
    """An argument value that HTTP cannot carry where the tool puts it (e.g. non-ASCII in a header)."""


@dataclass
class RequestParts:
    method: str
    url: httpx2.URL
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: dict[str, Any] | None = None
    has_body: bool = False


def origin(url: httpx2.URL | str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports made explicit."""
    u = _parse(url) if isinstance(url, str) else url
    port = u.port or {"http": 80, "https": 443}.get(u.scheme)
    return u.scheme, u.host, port


@lru_cache(maxsize=256)
def _parse(url: str) -> httpx2.URL:
    """Base URLs are few and parsed on every call: parse each once (httpx2.URL is immutable)."""
    return httpx2.URL(url)


def within_base(url: httpx2.URL, base_url: str) -> bool:
    """Whether ``url`` is on the origin of ``base_url`` and inside its path (whole segments, no ``..``)."""
    base = _parse(base_url)
    if origin(url) != origin(base):
        return False
    prefix = base.path.rstrip("/")
    path = url.path
    if ".." in path.split("/"):
        return False
    return not prefix or path == prefix or path.startswith(prefix + "/")


def wire_text(value: Any) -> str:
    """A scalar or JSON value as OpenAPI puts it in a query, path or header (``true``, ``12``, JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _check_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise UnsafeRequest(f"argument '{name}': CR/LF/NUL characters are not allowed")
    return value


def _header_value(name: str, value: Any) -> str:
    text = _check_line(name, wire_text(value)).strip(" \t")
    for i, char in enumerate(text):
        if char != "\t" and (char < " " or char == "\x7f"):
            raise InvalidArgument(
                f"argument '{name}': control character {char!r} at position {i} is not allowed in a header"
            )
        if char > "\x7f":
            raise InvalidArgument(
                f"argument '{name}': header values must be ASCII (found {char!r} at position {i})"
            )
    return text


def _path_value(name: str, value: Any) -> str:
    text = _check_line(name, wire_text(value))
    if ".." in text:
        raise UnsafeRequest(f"argument '{name}': '..' is not allowed in a path parameter")
    if _ABSOLUTE.match(text):
        raise UnsafeRequest(f"argument '{name}': an absolute URL is not allowed in a path parameter")
    if text == "" or text == ".":
        raise UnsafeRequest(f"argument '{name}': an empty or '.' path segment is not allowed")
    return quote(text, safe="")


def build_request(tool: Tool, arguments: dict[str, Any], base_url: str) -> RequestParts:
    """The request for ``tool`` called with ``arguments`` against ``base_url`` (raises UnsafeRequest)."""
    by_wire = {p.wire_name or p.name: p for p in tool.params if p.location == "path"}
    pieces: dict[str, str] = {}
    for wire, param in by_wire.items():
        if param.name in arguments:
            pieces[wire] = _path_value(param.name, arguments[param.name])

    def fill(m: re.Match[str]) -> str:
        if m.group(1) not in pieces:
            raise UnsafeRequest(f"argument '{m.group(1)}': required path parameter is missing")
        return pieces[m.group(1)]

    path = _TEMPLATE.sub(fill, tool.path)
    base = _parse(base_url)
    try:
        url = base.copy_with(raw_path=(base.raw_path.decode().rstrip("/") + "/" + path.lstrip("/")).encode())
    except httpx2.InvalidURL as exc:
        longest = max(pieces, key=lambda wire: len(pieces[wire]), default=None)
        culprit = f"argument '{by_wire[longest].name}': " if longest else ""
        raise InvalidArgument(
            f"{culprit}the request URL would be too long ({exc}; the encoded path has {len(path):,} characters)"
        ) from None
    if not within_base(url, base_url):
        raise UnsafeRequest(f"the request would leave {base_url}")
    parts = RequestParts(method=tool.method.upper(), url=url)
    body: dict[str, Any] = {}
    cookies: list[str] = []
    for param in tool.params:
        if param.name not in arguments or param.location == "path":
            continue
        value, wire = arguments[param.name], param.wire_name or param.name
        if param.location == "query":
            values = value if isinstance(value, list) else [value]
            parts.params += [(wire, _check_line(param.name, wire_text(v))) for v in values]
        elif param.location == "header":
            if wire.lower() in _FORBIDDEN_HEADERS:
                raise UnsafeRequest(f"argument '{param.name}': header '{wire}' cannot be set by a client")
            parts.headers[wire] = _header_value(param.name, value)
        elif param.location == "cookie":
            cookies.append(f"{wire}={quote(_check_line(param.name, wire_text(value)), safe='')}")
        elif wire == WHOLE_BODY:
            parts.has_body = True
            if tool.body_mode == "form" and isinstance(value, dict):
                parts.data = {k: wire_text(v) for k, v in value.items()}
            else:
                parts.json = value
        else:
            body[wire] = value
    if cookies:
        parts.headers["Cookie"] = "; ".join(cookies)
    if body:
        parts.has_body = True
        if tool.body_mode == "form":
            parts.data = {k: wire_text(v) for k, v in body.items()}
        else:
            parts.json = body
    return parts
