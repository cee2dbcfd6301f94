"""The MCP Inspector CLI (an independent, older-protocol client) lists and calls a tool over stdio."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.common import REPO, STE_MCP

INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"  # last release for node 20
CACHE = REPO / ".cache" / "inspector"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def inspector() -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node not installed: the MCP Inspector CLI cannot run here")
    binary = CACHE / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), INSPECTOR],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return binary


def run_inspector(inspector: Path, spec: Path, data_dir: Path, *method: str) -> dict:
    command = [str(inspector), "--cli", "-e", f"STE_MCP_DATA_DIR={data_dir}", STE_MCP]
    command += ["serve", "--spec", str(spec), "--no-explore", "--method", *method]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


def test_inspector_lists_and_calls(inspector, upstream, upstream_spec, data_dir):
    listed = run_inspector(inspector, upstream_spec, data_dir, "tools/list")
    tools = {t["name"]: t for t in listed["tools"]}
    assert tools["get_weather"]["inputSchema"]["required"] == ["city"]
    assert tools["get_weather"]["annotations"]["readOnlyHint"] is True

    called = run_inspector(
        inspector,
        upstream_spec,
        data_dir,
        "tools/call",
        "--tool-name",
        "get_weather",
        "--tool-arg",
        "city=Quito",
        "--tool-arg",
        "days=2",
    )
    assert not called.get("isError")
    assert json.loads(called["content"][0]["text"])["city"] == "Quito"
    assert upstream.count == 1
