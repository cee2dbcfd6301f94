"""``$ref`` resolution of an OpenAPI document (other documents included) into self-contained
JSON Schemas, OpenAPI 3.0 ``nullable``, and the refusal of ``$ref`` cycles that never descend."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from ste_mcp.upstream.specs.common import SpecError, pointer
from ste_mcp.upstream.specs.reading import Limits, is_url, may_reference, parse_document, read_text, relative


class Resolver:
    """Inline ``$ref``s of one OpenAPI document; recursive ones become ``#/$defs/...`` references."""

    def __init__(self, source: str, doc: dict[str, Any], limits: Limits):
        self.source = source
        self.docs: dict[str, Any] = {source: doc}
        self.limits = limits

    def _doc(self, name: str, referrer: str, at: str) -> Any:
        if name not in self.docs:
            self.limits.remaining()
            may_fetch = (lambda url: may_reference(referrer, url, self.limits)) if is_url(referrer) else None
            try:
                self.docs[name] = parse_document(name, read_text(name, self.limits, may_fetch), self.limits)
            except SpecError as exc:
                raise SpecError(f"{self.source}#{at}: $ref to {name} failed: {exc}") from exc
        return self.docs[name]

    def target(self, doc_name: str, ref: str, at: str) -> tuple[str, str, Any]:
        """(document, pointer, value) that ``ref`` (found at ``doc_name#at``) points to."""
        file_part, _, frag = ref.partition("#")
        frag = unquote(frag)  # a URI fragment may percent-encode the pointer
        name = relative(doc_name, file_part, self.limits, at) if file_part else doc_name
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
            return {k: walk(doc, v, f"{where}/{pointer(k)[1:]}", stack) for k, v in value.items()}

        return walk(doc_name, node, at, ()), defs


def fix_nullable(schema: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` -> JSON Schema ``type: [T, "null"]`` (what jsonschema understands)."""
    if isinstance(schema, list):
        return [fix_nullable(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: fix_nullable(v) for k, v in schema.items() if k != "nullable"}
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


def endless_cycle(defs: dict[str, Any]) -> list[str] | None:
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
