"""Reading spec documents within limits: files and URLs (size, time, redirects), JSON/YAML parsing
with the alias-bomb guard, and where a document may reference other documents."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
import yaml

from ste_mcp.upstream.settings import UpstreamSettings
from ste_mcp.upstream.specs.common import SpecError
from ste_mcp.upstream.urls import origin

MAX_SPEC_REDIRECTS = 5
MAX_YAML_ALIASES = 10_000  # alias uses per document
MAX_YAML_EXPANSION = 1_000_000  # nodes that aliases may add to a document once expanded


@dataclass
class Limits:
    """What loading one spec may cost (all its documents together), and where it may reference."""

    source: str  # the spec being loaded, for messages
    timeout_s: float
    max_bytes: int
    ref_origins: frozenset[tuple[str, str, int | None]] = frozenset()
    deadline: float = field(init=False)
    bytes_read: int = 0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    @classmethod
    def of(cls, source: str, settings: UpstreamSettings) -> Limits:
        return cls(
            source,
            settings.spec_load_timeout_s,
            settings.spec_max_bytes,
            frozenset(origin(o) for o in settings.spec_ref_origins),
        )

    def remaining(self) -> float:
        """Seconds left; raises ``SpecError`` once the deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SpecError(
                f"{self.source}: loading the spec took longer than {self.timeout_s:g} s "
                "(upstream.spec_load_timeout_s)"
            )
        return left

    def count(self, name: str, size: int) -> None:
        """Add ``size`` bytes read from ``name``; raises ``SpecError`` past ``max_bytes``."""
        self.bytes_read += size
        if self.bytes_read > self.max_bytes:
            what = "spec" if name == self.source else f"spec with {name}"
            raise SpecError(
                f"{self.source}: {what} is larger than {self.max_bytes:,} bytes (upstream.spec_max_bytes)"
            )


def is_url(source: str) -> bool:
    """Whether ``source`` is an http(s) URL (anything else is a local path)."""
    try:
        return urlsplit(source).scheme in ("http", "https")
    except ValueError:  # e.g. a broken IPv6 host
        return False


def read_text(source: str, limits: Limits, may_fetch: Callable[[str], bool] | None = None) -> str:
    """The text of a file or URL, within ``limits``; with ``may_fetch``, every redirect hop of a URL
    must pass it (a referenced document cannot redirect elsewhere)."""
    if is_url(source):
        return _fetch(source, limits, may_fetch)
    path = Path(source).expanduser()
    if not path.is_file():
        raise SpecError(f"{source}: spec file does not exist")
    with path.open("rb") as f:
        data = f.read(limits.max_bytes - limits.bytes_read + 1)
    limits.count(source, len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (byte {exc.start})") from exc


def _fetch(source: str, limits: Limits, may_fetch: Callable[[str], bool] | None) -> str:
    chunks: list[bytes] = []
    url = source
    try:
        with httpx2.Client(timeout=min(30.0, limits.remaining())) as client:
            for _ in range(MAX_SPEC_REDIRECTS + 1):
                with client.stream("GET", url) as response:
                    if response.is_redirect and response.next_request is not None:
                        url = str(response.next_request.url)
                        if may_fetch is not None and not may_fetch(url):
                            raise SpecError(
                                f"{source}: redirected to {url[:200]}, which it may not reference"
                            )
                        continue
                    response.raise_for_status()
                    for chunk in response.iter_bytes():
                        limits.count(source, len(chunk))
                        limits.remaining()  # a server trickling bytes cannot hold start-up
                        chunks.append(chunk)
                    encoding = response.charset_encoding or "utf-8"
                    break
            else:
                raise SpecError(f"{source}: more than {MAX_SPEC_REDIRECTS} redirects")
    except httpx2.TimeoutException as exc:
        limits.remaining()  # the overall deadline, if that is what passed
        raise SpecError(f"{source}: cannot fetch spec: timed out ({type(exc).__name__})") from exc
    except httpx2.HTTPError as exc:
        raise SpecError(f"{source}: cannot fetch spec: {exc}") from exc
    try:
        return b"".join(chunks).decode(encoding, errors="replace")
    except LookupError:  # an unknown charset in Content-Type
        return b"".join(chunks).decode("utf-8", errors="replace")


class _AliasBomb(Exception):
    """A YAML document whose aliases expand too far (or into a cycle); the message says which."""


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: it counts composed nodes and alias uses while composing, and
    before constructing anything checks what the aliases expand to (shared nodes counted each time
    they are used), so an alias bomb or a recursive alias is refused instead of hanging whatever walks
    the document later."""

    def __init__(self, stream: str, limits: Limits):
        super().__init__(stream)
        self.nodes = 0
        self.aliases = 0
        self.limits = limits

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _AliasBomb(f"too many YAML aliases (more than {MAX_YAML_ALIASES})")
        else:
            self.nodes += 1
            if self.nodes % 4096 == 0:
                self.limits.remaining()
        return super().compose_node(parent, index)

    def check_expansion(self, root: yaml.Node) -> None:
        """Raise ``_AliasBomb`` if the aliases add more than ``MAX_YAML_EXPANSION`` nodes or recurse."""
        if not self.aliases:
            return
        limit = self.nodes + MAX_YAML_EXPANSION
        sizes: dict[int, int] = {}  # id(node) -> size with aliases expanded
        visiting: set[int] = set()
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            children = _children(node)
            if done:
                visiting.discard(key)
                size = 1 + sum(sizes[id(child)] for child in children)
                if size > limit:
                    raise _AliasBomb(
                        f"too many YAML aliases: they expand the document by more than "
                        f"{MAX_YAML_EXPANSION:,} nodes (an alias bomb?)"
                    )
                sizes[key] = size
            elif key not in sizes:
                if key in visiting:
                    raise _AliasBomb("recursive YAML alias (a node that contains itself)")
                visiting.add(key)
                stack.append((node, True))
                stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_document(source: str, text: str, limits: Limits) -> Any:
    """The JSON or YAML document ``text`` of ``source``; ``SpecError`` says where it is broken."""
    if text.lstrip()[:1] in ("{", "["):  # JSON: parsed natively (a YAML parser takes ~50x longer)
        try:
            return json.loads(text)
        except RecursionError:
            raise SpecError(f"{source}: nested too deeply") from None
        except ValueError:
            pass  # YAML flow style, or broken: the YAML parser says where
    loader = _SpecLoader(text, limits)  # JSON is YAML
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        loader.check_expansion(node)
        return loader.construct_document(node)
    except _AliasBomb as exc:
        raise SpecError(f"{source}: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(f"{source}: not valid JSON/YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    finally:
        loader.dispose()


def relative(base: str, ref: str, limits: Limits, at: str) -> str:
    """Where ``ref`` (found in document ``base`` at ``at``) points; a document fetched from a URL may
    only point to URLs of its own origin or of ``upstream.spec_ref_origins`` (``SpecError`` otherwise)."""
    if is_url(base):
        try:
            target = urljoin(base, ref)  # "/x" and "file:..." are resolved as URLs, never as local paths
        except ValueError as exc:
            raise SpecError(f"{base}#{at}: reference '{ref[:200]}' is not a valid URL ({exc})") from None
        if not may_reference(base, target, limits):
            raise SpecError(
                f"{base}#{at}: reference '{ref[:200]}' leaves the origin of the document ({target[:200]}): "
                "a spec from a URL may only reference documents of its own origin "
                "(allow others with upstream.spec_ref_origins)"
            )
        return target
    if is_url(ref) or Path(ref).is_absolute():
        return ref
    return str(Path(base).expanduser().resolve().parent / ref)


def may_reference(base: str, target: str, limits: Limits) -> bool:
    """Whether a document at URL ``base`` may load ``target`` (a URL of its origin or an allowed one)."""
    if not is_url(target):
        return False
    try:
        where = origin(target)
    except (ValueError, httpx2.InvalidURL):  # not a parsable URL
        return False
    return where == origin(base) or where in limits.ref_origins
