"""Import tool specs: OpenAPI 3.0/3.1 (JSON or YAML, path or URL) and ste-mcp's native YAML.

Native YAML (hand-written tools, or overrides for an imported OpenAPI document)::

    base_url: ${TOOLBOX_URL}          # ${NAME} is replaced from ``variables``
    auth:                             # optional, for every tool of this file
      - {kind: bearer, env: MY_API_TOKEN}        # or {kind: header|query, name: X-Key, env: ...}
    import: ./petstore.yaml           # optional: an OpenAPI document (path relative to this file, or URL)
    tools:                            # optional: hand-written tools
      - name: add
        description: Add two numbers.
        method: POST                  # default GET
        path: /add
        body: json                    # json (default when any param is in: body) | form
        params:
          a: {type: number, in: body, required: true, description: First addend.}
    overrides:                        # per tool (by its imported name): any of
      listPets: {name: list_pets, description: ..., hidden: false, read_only: true,
                 explore: {allowed: true, sandbox_base_url: "http://sandbox:8080"}}

Everything that is wrong raises ``SpecError`` naming the file and the JSON pointer of the place.
Untrusted documents are bounded: one spec (with every document it references) may read at most
``upstream.spec_max_bytes`` and must load within ``upstream.spec_load_timeout_s``; YAML aliases may not
expand the document by more than ``MAX_YAML_EXPANSION`` nodes (a "billion laughs" alias bomb is
refused before anything walks it). A document fetched from a URL may only reference (``$ref``,
``import``) documents of its own origin or of ``upstream.spec_ref_origins``, never local files; a local
spec may reference local files and URLs. A ``$ref`` cycle that never descends into the value (A -> B
-> A through ``allOf``/``$ref`` only) is refused: validating against it would never end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx2
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ste_mcp.upstream.settings import UpstreamSettings
from ste_mcp.upstream.tools import AuthRef, ExplorePolicy, Param, Tool
from ste_mcp.upstream.urls import WHOLE_BODY, origin

if TYPE_CHECKING:
    from ste_mcp.config import Settings

TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_SPEC_REDIRECTS = 5
MAX_YAML_ALIASES = 10_000  # alias uses per document
MAX_YAML_EXPANSION = 1_000_000  # nodes that aliases may add to a document once expanded
_NATIVE_KEYS = {"base_url", "auth", "import", "tools", "overrides"}
_OVERRIDE_KEYS = {"name", "description", "hidden", "read_only", "explore"}
_NATIVE_TOOL_KEYS = {
    "name",
    "description",
    "method",
    "path",
    "params",
    "body",
    "base_url",
    "auth",
} | _OVERRIDE_KEYS


class SpecError(Exception):
    """A spec cannot be used; the message names the file and the place in it."""


@dataclass
class _Limits:
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
    def of(cls, source: str, settings: UpstreamSettings) -> _Limits:
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


# ---------------------------------------------------------------- reading documents


def _is_url(source: str) -> bool:
    try:
        return urlsplit(source).scheme in ("http", "https")
    except ValueError:  # e.g. a broken IPv6 host
        return False


def _read_text(source: str, limits: _Limits, may_fetch: Callable[[str], bool] | None = None) -> str:
    """The text of a file or URL, within ``limits``; with ``may_fetch``, every redirect hop of a URL
    must pass it (a referenced document cannot redirect elsewhere)."""
    if _is_url(source):
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


def _fetch(source: str, limits: _Limits, may_fetch: Callable[[str], bool] | None) -> str:
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

    def __init__(self, stream: str, limits: _Limits):
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


def _parse(source: str, text: str, limits: _Limits) -> Any:
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


def _relative(base: str, ref: str, limits: _Limits, at: str) -> str:
    """Where ``ref`` (found in document ``base`` at ``at``) points; a document fetched from a URL may
    only point to URLs of its own origin or of ``upstream.spec_ref_origins`` (``SpecError`` otherwise)."""
    if _is_url(base):
        try:
            target = urljoin(base, ref)  # "/x" and "file:..." are resolved as URLs, never as local paths
        except ValueError as exc:
            raise SpecError(f"{base}#{at}: reference '{ref[:200]}' is not a valid URL ({exc})") from None
        if not _may_reference(base, target, limits):
            raise SpecError(
                f"{base}#{at}: reference '{ref[:200]}' leaves the origin of the document ({target[:200]}): "
                "a spec from a URL may only reference documents of its own origin "
                "(allow others with upstream.spec_ref_origins)"
            )
        return target
    if _is_url(ref) or Path(ref).is_absolute():
        return ref
    return str(Path(base).expanduser().resolve().parent / ref)


def _may_reference(base: str, target: str, limits: _Limits) -> bool:
    """Whether a document at URL ``base`` may load ``target`` (a URL of its origin or an allowed one)."""
    if not _is_url(target):
        return False
    try:
        where = origin(target)
    except (ValueError, httpx2.InvalidURL):  # not a parsable URL
        return False
    return where == origin(base) or where in limits.ref_origins


def _pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# ---------------------------------------------------------------- $ref resolution


class _Resolver:
    """Inline ``$ref``s of one OpenAPI document; recursive ones become ``#/$defs/...`` references."""

    def __init__(self, source: str, doc: dict[str, Any], limits: _Limits):
        self.source = source
        self.docs: dict[str, Any] = {source: doc}
        self.limits = limits

    def _doc(self, name: str, referrer: str, at: str) -> Any:
        if name not in self.docs:
            self.limits.remaining()
            may_fetch = (
                (lambda url: _may_reference(referrer, url, self.limits)) if _is_url(referrer) else None
            )
            try:
                self.docs[name] = _parse(name, _read_text(name, self.limits, may_fetch), self.limits)
            except SpecError as exc:
                raise SpecError(f"{self.source}#{at}: $ref to {name} failed: {exc}") from exc
        return self.docs[name]

    def target(self, doc_name: str, ref: str, at: str) -> tuple[str, str, Any]:
        """(document, pointer, value) that ``ref`` (found at ``doc_name#at``) points to."""
        file_part, _, frag = ref.partition("#")
        frag = unquote(frag)  # a URI fragment may percent-encode the pointer
        name = _relative(doc_name, file_part, self.limits, at) if file_part else doc_name
        node = self._doc(name, doc_name, at)
        if frag and not frag.startswith("/"):
            raise SpecError(f"{doc_name}#{at}: $ref '{ref}' is not a JSON pointer")
        for raw in frag.split("/")[1:] if frag else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise SpecError(f"{doc_name}#{at}: $ref '{ref}' does not resolve (no '{key}')")
        return name, frag, node

    def deref(self, doc_name: str, node: Any, at: str) -> Any:
        """Follow a chain of ``$ref``s (for parameters, request bodies): no recursion expected."""
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str):
                raise SpecError(f"{doc_name}#{at}/$ref: must be a string")
            doc_name, frag, node = self.target(doc_name, ref, at)
            if (doc_name, frag) in seen:
                raise SpecError(f"{self.source}#{at}: $ref cycle through '{ref}'")
            seen.add((doc_name, frag))
            at = frag
        return node

    def schema(self, doc_name: str, node: Any, at: str) -> tuple[Any, dict[str, Any]]:
        """A JSON Schema with refs inlined, and the ``$defs`` its recursive refs need."""
        defs: dict[str, Any] = {}
        recursive: set[tuple[str, str]] = set()
        names: dict[tuple[str, str], str] = {}

        def def_name(key: tuple[str, str]) -> str:
            if key not in names:
                base = re.sub(r"[^A-Za-z0-9_.-]", "_", key[1].rsplit("/", 1)[-1]) or "root"
                name, i = base, 2
                while name in names.values():
                    name, i = f"{base}_{i}", i + 1
                names[key] = name
            return names[key]

        def walk(doc: str, value: Any, where: str, stack: tuple[tuple[str, str], ...]) -> Any:
            if isinstance(value, list):
                return [walk(doc, v, f"{where}/{i}", stack) for i, v in enumerate(value)]
            if not isinstance(value, dict):
                return value
            if "$ref" in value and isinstance(value["$ref"], str):
                target_doc, frag, target = self.target(doc, value["$ref"], where)
                key = (target_doc, frag)
                if key in stack:
                    recursive.add(key)
                    return {"$ref": f"#/$defs/{def_name(key)}"}
                resolved = walk(target_doc, target, frag, (*stack, key))
                siblings = {k: walk(doc, v, f"{where}/{k}", stack) for k, v in value.items() if k != "$ref"}
                if key in recursive:
                    defs[def_name(key)] = resolved
                    resolved = {"$ref": f"#/$defs/{def_name(key)}"}
                if siblings:  # 3.1 allows keywords beside $ref
                    return {"allOf": [resolved], **siblings}
                return resolved
            return {k: walk(doc, v, f"{where}/{_pointer(k)[1:]}", stack) for k, v in value.items()}

        return walk(doc_name, node, at, ()), defs


def _fix_nullable(schema: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` -> JSON Schema ``type: [T, "null"]`` (what jsonschema understands)."""
    if isinstance(schema, list):
        return [_fix_nullable(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _fix_nullable(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")
_DEF_REF = "#/$defs/"


def _in_place_refs(schema: Any) -> set[str]:
    """Names of the ``$defs`` that ``schema`` applies to the same value (not to a part of it)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEF_REF):
            names.add(ref[len(_DEF_REF) :])
        for key in _IN_PLACE_LISTS:
            if isinstance(node.get(key), list):
                stack += node[key]
        stack += [node.get(key) for key in _IN_PLACE_ONE]
        if isinstance(node.get("dependentSchemas"), dict):
            stack += node["dependentSchemas"].values()
    return names


def _endless_cycle(defs: dict[str, Any]) -> list[str] | None:
    """A cycle of ``$defs`` that refer to each other without descending into the value (A -> B -> A),
    as the list of names (first repeated last), or None."""
    edges = {name: sorted(_in_place_refs(schema) & set(defs)) for name, schema in defs.items()}
    state: dict[str, str] = {}  # "open": on the current path, "done": no cycle through it
    for start in edges:
        if start in state:
            continue
        path, pending = [start], [iter(edges[start])]
        state[start] = "open"
        while path:
            name = next(pending[-1], None)
            if name is None:
                state[path.pop()] = "done"
                pending.pop()
            elif state.get(name) == "open":
                return [*path[path.index(name) :], name]
            elif name not in state:
                state[name] = "open"
                path.append(name)
                pending.append(iter(edges[name]))
    return None


# ---------------------------------------------------------------- names


def _tool_name(operation_id: Any, method: str, path: str) -> str:
    if isinstance(operation_id, str) and TOOL_NAME_RE.match(operation_id):
        return operation_id
    raw = operation_id if isinstance(operation_id, str) and operation_id else f"{method}_{path}"
    name = re.sub(r"[^A-Za-z0-9-]+", "_", raw).strip("_") or method
    return name[:64]


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 2
    while candidate in taken:
        suffix = f"_{i}"
        candidate, i = name[: 64 - len(suffix)] + suffix, i + 1
    taken.add(candidate)
    return candidate


def _hash(tool: Tool) -> str:
    data = tool.model_dump(include={"description", "input_schema", "method", "path", "base_url", "params"})
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- OpenAPI


def _server_url(servers: Any, source: str, at: str) -> str | None:
    if not servers:
        return None
    if not isinstance(servers, list) or not isinstance(servers[0], dict) or "url" not in servers[0]:
        raise SpecError(f"{source}#{at}: servers must be a list of objects with a 'url'")
    server = servers[0]
    url = str(server["url"])
    for var, spec in (server.get("variables") or {}).items():
        url = url.replace("{" + var + "}", str((spec or {}).get("default", "")))
    return urljoin(source, url) if _is_url(source) else url


def _security_auth(doc: dict[str, Any], requirements: Any, source: str) -> list[AuthRef]:
    """Auth from securitySchemes: the value comes from ``x-env`` or ``STE_MCP_AUTH_<SCHEME>``."""
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    auth: list[AuthRef] = []
    for requirement in requirements or []:
        for scheme_name in requirement or {}:
            scheme = schemes.get(scheme_name)
            if not isinstance(scheme, dict):
                raise SpecError(f"{source}#/components/securitySchemes: no scheme '{scheme_name}'")
            env = scheme.get("x-env") or "STE_MCP_AUTH_" + re.sub(r"[^A-Z0-9]", "_", scheme_name.upper())
            kind, where = scheme.get("type"), scheme.get("in")
            if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
                auth.append(AuthRef(kind="bearer", env=env))
            elif kind == "apiKey" and where in ("header", "query"):
                auth.append(AuthRef(kind=where, name=scheme["name"], env=env))
        if auth:
            break  # the first satisfiable alternative
    return auth


def _openapi_tools(
    source: str, doc: dict[str, Any], limits: _Limits, base_url: str | None = None
) -> list[Tool]:
    version = str(doc.get("openapi", ""))
    if not version.startswith("3."):
        raise SpecError(f"{source}#/openapi: unsupported version '{version}' (OpenAPI 3.0 or 3.1 expected)")
    resolver = _Resolver(source, doc, limits)
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        raise SpecError(f"{source}#/paths: missing or not an object")
    root_server = _server_url(doc.get("servers"), source, "/servers")
    tools: list[Tool] = []
    taken: set[str] = set()
    for path, item in paths.items():
        limits.remaining()
        item_at = _pointer("paths", path)
        item = resolver.deref(source, item, item_at)
        if not isinstance(item, dict):
            raise SpecError(f"{source}#{item_at}: path item must be an object")
        path_server = _server_url(item.get("servers"), source, f"{item_at}/servers")
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op_at = f"{item_at}/{method}"
            op = item[method]
            if not isinstance(op, dict):
                raise SpecError(f"{source}#{op_at}: operation must be an object")
            url = (
                base_url
                or _server_url(op.get("servers"), source, f"{op_at}/servers")
                or path_server
                or root_server
            )
            if not url or not _is_url(url):
                raise SpecError(
                    f"{source}#/servers: no absolute server URL for {method.upper()} {path} "
                    "(add 'servers' or wrap the spec in a native YAML with base_url)"
                )
            tool = _openapi_operation(resolver, doc, source, path, method, item, op, op_at, url)
            tool.name = _unique(tool.name, taken)
            tools.append(tool)
    return tools


def _openapi_operation(
    resolver: _Resolver,
    doc: dict[str, Any],
    source: str,
    path: str,
    method: str,
    item: dict[str, Any],
    op: dict[str, Any],
    op_at: str,
    base_url: str,
) -> Tool:
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[Param] = []
    all_defs: dict[str, Any] = {}
    legacy = str(doc.get("openapi", "")).startswith("3.0")

    def add(name: str, schema: Any, param: Param) -> None:
        if name in properties:  # same name in two locations: qualify the later one
            param.wire_name = param.wire_name or name
            name = param.name = f"{param.location}_{name}"
        properties[name] = _fix_nullable(schema) if legacy else schema
        if param.required:
            required.append(name)
        params.append(param)

    declared: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for level, at in (
        (item.get("parameters"), "/".join(op_at.split("/")[:-1])),
        (op.get("parameters"), op_at),
    ):
        for i, raw in enumerate(level or []):
            p_at = f"{at}/parameters/{i}"
            p = resolver.deref(source, raw, p_at)
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or "in" not in p:
                raise SpecError(f"{source}#{p_at}: a parameter needs 'name' (a string) and 'in'")
            declared[(p["name"], p["in"])] = (p, p_at)  # operation level overrides path level
    for (name, location), (p, p_at) in declared.items():
        if location not in ("path", "query", "header", "cookie"):
            raise SpecError(f"{source}#{p_at}/in: unknown location '{location}'")
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            continue
        schema, defs = resolver.schema(source, p.get("schema", {}), f"{p_at}/schema")
        all_defs.update(defs)
        schema = dict(schema) if isinstance(schema, dict) else {}
        if p.get("description") and "description" not in schema:
            schema["description"] = p["description"]
        is_required = bool(p.get("required")) or location == "path"
        add(name, schema, Param(name=name, location=location, required=is_required))

    body_mode = "none"
    body = op.get("requestBody")
    if body is not None:
        b_at = f"{op_at}/requestBody"
        body = resolver.deref(source, body, b_at)
        content = (body or {}).get("content") or {}
        media = next((m for m in content if m == "application/json" or m.endswith("+json")), None)
        body_mode = "json"
        if media is None and "application/x-www-form-urlencoded" in content:
            media, body_mode = "application/x-www-form-urlencoded", "form"
        if media is None:
            raise SpecError(f"{source}#{b_at}/content: no JSON or form media type (has {sorted(content)})")
        schema, defs = resolver.schema(
            source, content[media].get("schema", {}), f"{b_at}/content/{_pointer(media)[1:]}/schema"
        )
        all_defs.update(defs)
        body_required = bool(body.get("required"))
        if isinstance(schema, dict) and set(schema) == {"$ref"}:  # a recursive schema: flatten its definition
            schema = all_defs.get(schema["$ref"].rsplit("/", 1)[-1], schema)
        props = (
            schema.get("properties")
            if isinstance(schema, dict) and schema.get("type", "object") == "object"
            else None
        )
        if isinstance(props, dict) and props and not set(props) & set(properties):
            inner_required = set(schema.get("required") or [])
            for name, prop in props.items():
                add(
                    name,
                    prop,
                    Param(name=name, location="body", required=body_required and name in inner_required),
                )
        else:
            if body.get("description") and isinstance(schema, dict) and "description" not in schema:
                schema = {**schema, "description": body["description"]}
            name = "body" if "body" not in properties else "request_body"
            add(name, schema, Param(name=name, location="body", wire_name=WHOLE_BODY, required=body_required))

    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    if all_defs:
        cycle = _endless_cycle(all_defs)
        if cycle:
            raise SpecError(
                f"{source}#{op_at}: $ref cycle {' -> '.join(cycle)} never descends into the value "
                "(only $ref/allOf/anyOf/oneOf/not on the way): validating against it would never end"
            )
        input_schema["$defs"] = all_defs
    description = "\n\n".join(str(op[k]).strip() for k in ("summary", "description") if op.get(k)) or (
        f"{method.upper()} {path}"
    )
    security = op.get("security", doc.get("security"))
    return Tool(
        name=_tool_name(op.get("operationId"), method, path),
        description=description,
        input_schema=input_schema,
        method=method.upper(),
        path=path,
        base_url=base_url,
        params=params,
        body_mode=body_mode,
        auth=_security_auth(doc, security, source),
        source=source,
    )


# ---------------------------------------------------------------- native YAML


def _substitute(value: Any, variables: dict[str, str], source: str, at: str = "") -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                raise SpecError(f"{source}#{at}: unknown variable ${{{m.group(1)}}}")
            return variables[m.group(1)]

        return _VAR_RE.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, variables, source, f"{at}/{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, source, f"{at}/{k}") for k, v in value.items()}
    return value


def _auth_list(raw: Any, source: str, at: str) -> list[AuthRef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(f"{source}#{at}: must be a list")
    try:
        return [AuthRef.model_validate(a) for a in raw]
    except ValueError as exc:
        raise SpecError(f"{source}#{at}: {exc}") from exc


def _check_keys(value: Any, allowed: set[str], source: str, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{source}#{at}: must be a mapping")
    unknown = set(value) - allowed
    if unknown:
        raise SpecError(f"{source}#{at}: unknown key(s) {sorted(unknown)} (allowed: {sorted(allowed)})")
    return value


def _native_tool(raw: Any, source: str, at: str, base_url: str | None, auth: list[AuthRef]) -> Tool:
    t = _check_keys(raw, _NATIVE_TOOL_KEYS, source, at)
    for key in ("name", "path"):
        if not isinstance(t.get(key), str) or not t[key]:
            raise SpecError(f"{source}#{at}/{key}: required string")
    if not TOOL_NAME_RE.match(t["name"]):
        raise SpecError(
            f"{source}#{at}/name: '{t['name']}' is not a valid tool name (^[A-Za-z0-9_-]{{1,64}}$)"
        )
    method = str(t.get("method", "GET")).upper()
    if method.lower() not in HTTP_METHODS:
        raise SpecError(f"{source}#{at}/method: unknown HTTP method '{method}'")
    url = t.get("base_url") or base_url
    if not isinstance(url, str) or not _is_url(url):
        raise SpecError(f"{source}#{at}: no absolute http(s) base_url (got {url!r})")
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[Param] = []
    raw_params = t.get("params") or {}
    if not isinstance(raw_params, dict):
        raise SpecError(f"{source}#{at}/params: must be a mapping of name -> JSON Schema with 'in'")
    for name, spec in raw_params.items():
        p_at = f"{at}/params/{_pointer(name)[1:]}"
        if not isinstance(spec, dict):
            raise SpecError(f"{source}#{p_at}: must be a mapping")
        schema = {k: v for k, v in spec.items() if k not in ("in", "required", "wire_name")}
        location = spec.get("in", "body" if method in ("POST", "PUT", "PATCH") else "query")
        if location not in ("path", "query", "header", "cookie", "body"):
            raise SpecError(f"{source}#{p_at}/in: unknown location '{location}'")
        is_required = bool(spec.get("required")) or location == "path"
        params.append(
            Param(name=name, location=location, wire_name=spec.get("wire_name"), required=is_required)
        )
        properties[name] = schema
        if is_required:
            required.append(name)
    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    has_body = any(p.location == "body" for p in params)
    body_mode = t.get("body", "json") if has_body else "none"
    if body_mode not in ("json", "form", "none"):
        raise SpecError(f"{source}#{at}/body: must be json or form")
    tool = Tool(
        name=t["name"],
        description=str(t.get("description") or f"{method} {t['path']}"),
        input_schema=input_schema,
        method=method,
        path=t["path"],
        base_url=url,
        params=params,
        body_mode=body_mode,
        auth=_auth_list(t.get("auth"), source, f"{at}/auth") or auth,
        source=source,
    )
    _apply_override(tool, {k: t[k] for k in ("hidden", "read_only", "explore") if k in t}, source, at)
    return tool


def _apply_override(tool: Tool, override: dict[str, Any], source: str, at: str) -> None:
    _check_keys(override, _OVERRIDE_KEYS, source, at)
    if "name" in override:
        if not isinstance(override["name"], str) or not TOOL_NAME_RE.match(override["name"]):
            raise SpecError(f"{source}#{at}/name: {override['name']!r} is not a valid tool name")
        tool.name = override["name"]
    if "description" in override:
        tool.description = str(override["description"])
    if "hidden" in override:
        tool.hidden = bool(override["hidden"])
    if "read_only" in override:
        tool.read_only = None if override["read_only"] is None else bool(override["read_only"])
    if "explore" in override:
        try:
            tool.explore = ExplorePolicy.model_validate(override["explore"])
        except ValueError as exc:
            raise SpecError(f"{source}#{at}/explore: {exc}") from exc


def _native_tools(source: str, doc: dict[str, Any], variables: dict[str, str], limits: _Limits) -> list[Tool]:
    _check_keys(doc, _NATIVE_KEYS, source, "")
    doc = _substitute(doc, variables, source)
    base_url = doc.get("base_url")
    auth = _auth_list(doc.get("auth"), source, "/auth")
    tools: list[Tool] = []
    if doc.get("import"):
        if not isinstance(doc["import"], str):
            raise SpecError(f"{source}#/import: must be a path or URL (a string)")
        imported = _relative(source, doc["import"], limits, "/import")
        may_fetch = (lambda url: _may_reference(source, url, limits)) if _is_url(source) else None
        imported_doc = _parse(imported, _read_text(imported, limits, may_fetch), limits)
        if not isinstance(imported_doc, dict) or "openapi" not in imported_doc:
            raise SpecError(
                f"{source}#/import: {imported} is not an OpenAPI document (a mapping with 'openapi'; "
                f"got {type(imported_doc).__name__})"
            )
        tools += _openapi_tools(imported, imported_doc, limits, base_url)
        for tool in tools:
            tool.auth = tool.auth or auth
    raw_tools = doc.get("tools") or []
    if not isinstance(raw_tools, list):
        raise SpecError(f"{source}#/tools: must be a list")
    tools += [_native_tool(t, source, f"/tools/{i}", base_url, auth) for i, t in enumerate(raw_tools)]
    overrides = doc.get("overrides") or {}
    by_name = {t.name: t for t in tools}
    for name, override in _check_keys(overrides, set(overrides), source, "/overrides").items():
        if name not in by_name:
            raise SpecError(f"{source}#/overrides/{name}: no tool named '{name}' (have {sorted(by_name)})")
        _apply_override(by_name[name], override or {}, source, f"/overrides/{_pointer(name)[1:]}")
    names = [t.name for t in tools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"{source}: duplicate tool name(s) {dupes}")
    return tools


# ---------------------------------------------------------------- public API


def load_spec(
    source: str, *, variables: dict[str, str] | None = None, settings: UpstreamSettings | None = None
) -> list[Tool]:
    """Tools of one spec: OpenAPI 3.0/3.1 or native YAML, by file path or http(s) URL, within the
    time, size and reference limits of ``settings`` (``upstream.spec_*``)."""
    if not _is_url(source):
        source = str(Path(source).expanduser().resolve())
    limits = _Limits.of(source, settings or UpstreamSettings())
    doc = _parse(source, _read_text(source, limits), limits)
    if not isinstance(doc, dict):
        raise SpecError(f"{source}: a spec must be a mapping at the top level")
    if "swagger" in doc:
        raise SpecError(f"{source}#/swagger: Swagger 2.0 is not supported (convert it to OpenAPI 3)")
    try:
        if "openapi" in doc:
            tools = _openapi_tools(source, doc, limits)
        elif "tools" in doc or "import" in doc:
            tools = _native_tools(source, doc, dict(variables or {}), limits)
        else:
            raise SpecError(
                f"{source}: neither an OpenAPI document ('openapi') nor a native spec ('tools'/'import')"
            )
    except (AttributeError, TypeError, KeyError, ValueError) as exc:  # a value of an unexpected type
        raise SpecError(f"{source}: malformed spec ({type(exc).__name__}: {exc})") from None
    checked: set[str] = set()
    for tool in tools:
        limits.remaining()
        _check_input_schema(tool, source, checked)
        tool.spec_hash = _hash(tool)
    return tools


def _check_input_schema(tool: Tool, source: str, checked: set[str]) -> None:
    """Each property and definition of ``tool.input_schema`` must be a valid JSON Schema (each distinct
    one is checked once per spec: large specs repeat the same few; the object around them is ours)."""
    schema = tool.input_schema
    parts = [("properties", k, v) for k, v in (schema.get("properties") or {}).items()]
    parts += [("$defs", k, v) for k, v in (schema.get("$defs") or {}).items()]
    for section, name, part in parts:
        key = json.dumps(part, sort_keys=True, default=str)
        if key in checked:
            continue
        try:
            Draft202012Validator.check_schema(part)
        except SchemaError as exc:
            where = "/".join([section, _pointer(name)[1:], *(str(p) for p in exc.absolute_path)])
            raise SpecError(
                f"{source}: tool '{tool.name}' ({tool.method} {tool.path}): invalid JSON Schema "
                f"at input_schema/{where}: {exc.message}"
            ) from exc
        checked.add(key)


class Toolset:
    """The tools served, by name (unique across specs)."""

    def __init__(self, tools: list[Tool]):
        self._tools: dict[str, Tool] = {}
        taken: set[str] = set()
        for tool in tools:
            tool.name = _unique(tool.name, taken)
            self._tools[tool.name] = tool

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def visible(self) -> list[Tool]:
        """Tools shown to clients (not hidden by an override)."""
        return [t for t in self._tools.values() if not t.hidden]

    def secret_values(self) -> list[str]:
        """Current values of the environment variables used for auth (for redaction)."""
        envs = {a.env for t in self._tools.values() for a in t.auth}
        return sorted({os.environ[e] for e in envs if os.environ.get(e)})


def toolbox_spec_path() -> str:
    """The packaged native spec of the offline toolbox (uses ``${TOOLBOX_URL}``)."""
    return str(resources.files("ste_mcp") / "tool_specs" / "toolbox.yaml")


def load_toolset(settings: Settings, *, variables: dict[str, str] | None = None) -> Toolset:
    """All tools of ``settings.specs``; with no specs, the packaged toolbox spec."""
    sources = list(settings.specs) or [toolbox_spec_path()]
    tools: list[Tool] = []
    for source in sources:
        tools += load_spec(source, variables=variables, settings=settings.upstream)
    return Toolset(tools)
