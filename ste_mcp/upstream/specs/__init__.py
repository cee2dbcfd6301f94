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

from ste_mcp.upstream.specs.common import TOOL_NAME_RE, SpecError
from ste_mcp.upstream.specs.toolset import Toolset, load_spec, load_toolset, toolbox_spec_path

__all__ = ["TOOL_NAME_RE", "SpecError", "Toolset", "load_spec", "load_toolset", "toolbox_spec_path"]
