"""Tool specs: OpenAPI 3.0/3.1 import, native YAML, $refs (dangling, recursive), names, overrides, errors."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
import yaml

from ste_mcp.config import load_settings
from ste_mcp.upstream.settings import UpstreamSettings
from ste_mcp.upstream.specs import TOOL_NAME_RE, SpecError, Toolset, load_spec, load_toolset


def write(tmp_path: Path, name: str, doc: dict | str) -> str:
    path = tmp_path / name
    path.write_text(
        doc
        if isinstance(doc, str)
        else (json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc, sort_keys=False))
    )
    return str(path)


def openapi(paths: dict, components: dict | None = None, version: str = "3.0.3") -> dict:
    doc = {
        "openapi": version,
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "http://api.test/v1"}],
    }
    doc["paths"] = paths
    if components:
        doc["components"] = components
    return doc


def test_openapi_json_and_yaml_give_the_same_tools(tmp_path, upstream_spec):
    doc = json.loads(Path(upstream_spec).read_text())
    from_json = load_spec(str(upstream_spec))
    from_yaml = load_spec(write(tmp_path, "spec.yaml", doc))
    assert [t.name for t in from_json] == [t.name for t in from_yaml]
    assert [t.input_schema for t in from_json] == [t.input_schema for t in from_yaml]
    assert all(TOOL_NAME_RE.match(t.name) for t in from_json)


def test_openapi_from_url(upstream, upstream_spec, tmp_path):
    # serve the spec file through a real HTTP server on 127.0.0.1
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(Path(upstream_spec).parent)
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/{Path(upstream_spec).name}"
        tools = load_spec(url)
    finally:
        httpd.shutdown()
    assert "get_weather" in [t.name for t in tools]
    assert tools[0].source == url


def test_names_from_operation_id_or_method_and_path(tmp_path):
    long_id = "x" * 80
    doc = openapi(
        {
            "/pets/{petId}/toys": {
                "get": {"responses": {}},
                "post": {"operationId": "add toy!", "responses": {}},
            },
            "/a": {"get": {"operationId": long_id}, "put": {"operationId": long_id}},
            "/b": {"get": {"operationId": "keep-Me_1"}},
        }
    )
    names = [t.name for t in load_spec(write(tmp_path, "s.yaml", doc))]
    assert names[0] == "get_pets_petId_toys"
    assert names[1] == "add_toy"
    assert names[2] == "x" * 64 and names[3] == "x" * 62 + "_2"  # truncated, unique
    assert names[4] == "keep-Me_1"
    assert all(TOOL_NAME_RE.match(n) for n in names)
    assert names == [t.name for t in load_spec(write(tmp_path, "s2.yaml", doc))]  # stable


def test_recursive_refs_do_not_crash(tmp_path):
    components = {
        "schemas": {
            "Tree": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "kids": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
                },
            },
            "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
            "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}},
        }
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Tree"}}}}
    doc = openapi(
        {
            "/tree": {"post": {"operationId": "tree", "requestBody": body}},
            "/ab": {
                "post": {
                    "operationId": "ab",
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}
                    },
                }
            },
        },
        components,
    )
    tools = {t.name: t for t in load_spec(write(tmp_path, "r.yaml", doc))}
    tree = tools["tree"].input_schema
    assert tree["properties"]["kids"]["items"] == {"$ref": "#/$defs/Tree"}  # flattened body
    assert tree["$defs"]["Tree"]["properties"]["kids"]["items"] == {"$ref": "#/$defs/Tree"}
    ab = tools["ab"].input_schema  # mutual recursion
    assert ab["properties"]["b"]["properties"]["a"] == {"$ref": "#/$defs/A"}
    assert ab["$defs"]["A"]["properties"]["b"]["properties"]["a"] == {"$ref": "#/$defs/A"}


def test_dangling_ref_names_the_place(tmp_path):
    doc = openapi(
        {
            "/x": {
                "get": {
                    "operationId": "x",
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/Nope"}}
                    ],
                }
            }
        }
    )
    path = write(tmp_path, "d.yaml", doc)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert path in message
    assert "#/paths/~1x/get/parameters/0/schema" in message
    assert "'#/components/schemas/Nope' does not resolve" in message


def refusal(tmp_path, text: str) -> str:
    """The SpecError message for a spec file with ``text`` (it must name the file)."""
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(SpecError, match=r"bad\.yaml") as err:
        load_spec(path)
    return str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("openapi: 3.0.0\npaths: [unclosed", "not valid JSON/YAML (line 2"),
        ('{"openapi": "3.0.0", "paths": {', "not valid JSON/YAML"),
        ("- just\n- a list\n", "must be a mapping at the top level"),
        ("swagger: '2.0'\npaths: {}\n", "Swagger 2.0 is not supported"),
        ("openapi: 3.0.0\ninfo: {}\n", "#/paths: missing"),
        ("openapi: 3.0.0\npaths: {/x: {get: {}}}\n", "no absolute server URL for GET /x"),
        ("hello: world\n", "neither an OpenAPI document"),
    ],
)
def test_malformed_specs(tmp_path, text, expected):
    assert expected in refusal(tmp_path, text)


def test_invalid_parameter_schema_is_a_startup_error(tmp_path):
    doc = openapi(
        {
            "/x": {
                "get": {
                    "operationId": "x",
                    "parameters": [{"name": "q", "in": "query", "schema": {"type": "strin"}}],
                }
            }
        }
    )
    with pytest.raises(SpecError, match=r"tool 'x'.*invalid JSON Schema at input_schema/properties/q"):
        load_spec(write(tmp_path, "s.yaml", doc))


def test_an_operation_the_proxy_cannot_call_is_skipped_not_the_whole_spec(tmp_path, caplog):
    upload = {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}
    doc = openapi(
        {
            "/pets": {"get": {"operationId": "listPets"}},
            "/pets/{id}/image": {
                "post": {
                    "operationId": "uploadImage",
                    "parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}],
                    "requestBody": upload,
                }
            },
        }
    )
    tools = load_spec(write(tmp_path, "pets.yaml", doc))
    assert [t.name for t in tools] == ["listPets"]
    assert "skipping POST /pets/{id}/image" in caplog.text and "multipart/form-data" in caplog.text
    # nothing callable at all is still a clear error
    only_upload = openapi({"/img": {"post": {"operationId": "up", "requestBody": upload}}})
    with pytest.raises(SpecError, match=r"no operation the proxy can call.*no JSON or form media type"):
        load_spec(write(tmp_path, "upload.yaml", only_upload))


def test_missing_file():
    with pytest.raises(SpecError, match="does not exist"):
        load_spec("/nonexistent/spec.yaml")


def test_openapi_30_nullable_and_security(tmp_path, monkeypatch):
    doc = openapi(
        {
            "/x": {
                "get": {
                    "operationId": "x",
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"type": "string", "nullable": True}}
                    ],
                }
            }
        },
        {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
                "tok": {"type": "http", "scheme": "bearer", "x-env": "MY_TOK"},
            }
        },
    )
    doc["security"] = [{"apiKey": [], "tok": []}]
    tool = load_spec(write(tmp_path, "s.yaml", doc))[0]
    assert tool.input_schema["properties"]["q"] == {"type": ["string", "null"]}
    assert [(a.kind, a.name, a.env) for a in tool.auth] == [
        ("header", "X-Key", "STE_MCP_AUTH_APIKEY"),
        ("bearer", "Authorization", "MY_TOK"),
    ]
    assert "X-Key" not in tool.input_schema["properties"]  # never shown to clients
    monkeypatch.setenv("MY_TOK", "tok-value")
    assert Toolset([tool]).secret_values() == ["tok-value"]


NATIVE = """
base_url: ${BASE}
auth:
  - {kind: header, name: X-Api-Key, env: NATIVE_KEY}
tools:
  - name: add
    description: Add two numbers.
    method: POST
    path: /add
    params:
      a: {type: number, in: body, required: true, description: First.}
      b: {type: number, required: true}
  - name: city_time
    path: /time/{city}
    params:
      city: {type: string, in: path}
      tz: {type: string}
    explore: {allowed: false}
"""


def test_native_yaml(tmp_path):
    tools = {
        t.name: t
        for t in load_spec(write(tmp_path, "n.yaml", NATIVE), variables={"BASE": "http://127.0.0.1:1234"})
    }
    add = tools["add"]
    assert add.method == "POST" and add.body_mode == "json" and add.base_url == "http://127.0.0.1:1234"
    assert add.input_schema == {
        "type": "object",
        "properties": {"a": {"type": "number", "description": "First."}, "b": {"type": "number"}},
        "required": ["a", "b"],
    }
    assert [p.location for p in add.params] == ["body", "body"]  # POST params default to the body
    city = tools["city_time"]
    assert [(p.name, p.location, p.required) for p in city.params] == [
        ("city", "path", True),
        ("tz", "query", False),
    ]
    assert city.explore.allowed is False
    assert city.auth[0].env == "NATIVE_KEY"


def test_native_yaml_errors(tmp_path):
    with pytest.raises(SpecError, match=r"unknown variable \$\{BASE\}"):
        load_spec(write(tmp_path, "n.yaml", NATIVE))
    bad = NATIVE.replace("name: add", "name: 'add me'")
    with pytest.raises(SpecError, match=r"#/tools/0/name: 'add me' is not a valid tool name"):
        load_spec(write(tmp_path, "n2.yaml", bad), variables={"BASE": "http://x.test"})
    bad = NATIVE.replace("method: POST", "method: POST\n    colour: red")
    with pytest.raises(SpecError, match=r"#/tools/0: unknown key\(s\) \['colour'\]"):
        load_spec(write(tmp_path, "n3.yaml", bad), variables={"BASE": "http://x.test"})


def test_native_import_with_overrides(tmp_path, upstream_spec):
    spec = {
        "import": str(upstream_spec),
        "overrides": {
            "get_weather": {"name": "weather", "description": "Better words.", "explore": {"allowed": True}},
            "get_big": {"hidden": True},
            "create_item": {"read_only": True},
        },
    }
    toolset = Toolset(load_spec(write(tmp_path, "o.yaml", spec)))
    weather = toolset.get("weather")
    assert weather is not None and toolset.get("get_weather") is None
    assert weather.description == "Better words." and weather.explore.allowed is True
    assert toolset.get("get_big").hidden and "get_big" not in [t.name for t in toolset.visible()]
    assert toolset.get("create_item").is_read_only
    with pytest.raises(SpecError, match=r"#/overrides/nope: no tool named 'nope'"):
        load_spec(write(tmp_path, "o2.yaml", {**spec, "overrides": {"nope": {"hidden": True}}}))


def test_toolset_names_unique_across_specs(tmp_path, upstream_spec, data_dir):
    settings = load_settings(data_dir=str(data_dir), specs=[str(upstream_spec), str(upstream_spec)])
    toolset = load_toolset(settings)
    names = [t.name for t in toolset]
    assert len(names) == len(set(names)) == 2 * 13
    assert "get_weather_2" in toolset


def test_refs_into_another_file(tmp_path):
    write(tmp_path, "common.yaml", {"Limit": {"type": "integer", "maximum": 50}})
    doc = openapi(
        {
            "/x": {
                "get": {
                    "operationId": "x",
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"$ref": "common.yaml#/Limit"}}
                    ],
                }
            }
        }
    )
    tool = load_spec(write(tmp_path, "main.yaml", doc))[0]
    assert tool.input_schema["properties"]["limit"] == {"type": "integer", "maximum": 50}


def alias_bomb(levels: int = 9, *, native: bool = False) -> str:
    """A "billion laughs" document: 9 aliases per level, 9**levels strings once expanded. The native
    one hangs (or exhausts memory) in anything that walks it, e.g. ``${VAR}`` substitution."""
    anchors = ["&l0 [" + ", ".join(['"lol"'] * 9) + "]"]
    anchors += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    if native:
        lines = ["base_url: http://api.test", "tools:", "  - name: lol", "    path: /lol", "    description:"]
        return "\n".join(lines + [f"      - {a}" for a in anchors]) + "\n"
    lines = ["openapi: 3.0.0", *(f"l{i}: {a}" for i, a in enumerate(anchors))]
    return "\n".join(lines) + f"\npaths: {{/x: {{get: {{x-lol: *l{levels}}}}}}}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (alias_bomb(), "too many YAML aliases: they expand the document by more than 1,000,000 nodes"),
        (alias_bomb(native=True), "too many YAML aliases: they expand the document by more than"),
        ("openapi: 3.0.0\na: &a [1]\nb: [" + ", ".join(["*a"] * 10_001) + "]\n", "too many YAML aliases"),
        ("openapi: 3.0.0\nloop: &loop {self: *loop}\npaths: {}\n", "recursive YAML alias"),
        ("openapi: 3.0.0\nloop: &loop [*loop]\npaths: {}\n", "recursive YAML alias"),
    ],
    ids=["billion-laughs", "billion-laughs-native", "many-aliases", "recursive-mapping", "recursive-list"],
)
def test_yaml_alias_bombs_are_refused(tmp_path, text, expected):
    assert expected in refusal(tmp_path, text)


def test_yaml_anchors_and_aliases_still_work(tmp_path):
    text = """
base_url: http://api.test
tools:
  - name: add
    path: /add
    params:
      a: &number {type: number, in: query, required: true}
      b: {<<: *number, description: Second.}
  - name: neg
    path: /neg
    params:
      a: *number
"""
    tools = {t.name: t for t in load_spec(write(tmp_path, "anchors.yaml", text))}
    assert tools["add"].input_schema["properties"] == {
        "a": {"type": "number"},
        "b": {"type": "number", "description": "Second."},
    }
    assert tools["neg"].input_schema["required"] == ["a"]


def test_spec_size_is_capped(tmp_path):
    path = write(tmp_path, "big.yaml", "openapi: 3.0.0\npaths: {}\n# " + "x" * 2048 + "\n")
    with pytest.raises(SpecError, match=r"big\.yaml: spec is larger than 1,024 bytes"):
        load_spec(path, settings=UpstreamSettings(spec_max_bytes=1024))


def test_a_required_parameters_spec_default_is_served_as_an_example() -> None:
    """Marketplace specs put an example in a required parameter's ``default``; clients are shown it as an
    example (a required value is never absent, so no default applies), the stored schema keeps it for the
    judge's checks, and an optional parameter's default stays a default."""
    from ste_mcp.upstream.tools import served_schema

    schema = {
        "type": "object",
        "properties": {
            "lat": {"type": "number", "default": 37.4666405},
            "moneda": {"type": "string", "default": "DOLARES", "examples": ["EUROS", "DOLARES"]},
            "timestamp": {"type": "integer", "default": 1589932800},
        },
        "required": ["lat", "moneda"],
    }
    served = served_schema(schema)
    assert served["properties"]["lat"] == {"type": "number", "examples": [37.4666405]}
    assert served["properties"]["moneda"] == {"type": "string", "examples": ["DOLARES", "EUROS"]}
    assert served["properties"]["timestamp"] == {"type": "integer", "default": 1589932800}
    assert served["required"] == ["lat", "moneda"]
    assert schema["properties"]["lat"] == {"type": "number", "default": 37.4666405}  # not changed in place
    optional = {"type": "object", "properties": {"n": {"type": "integer", "default": 3}}}
    assert served_schema(optional) is optional
