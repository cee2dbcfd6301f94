"""The reliability suite (scripts/bench/faults.py) end to end, two sections at tiny sizes: fuzzed MCP calls
against `ste-mcp serve` on the offline toolbox, and credentials planted in an echoing upstream while `serve`
explores with the canned model. Real processes and HTTP servers on 127.0.0.1 only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench" / "faults.py"


@pytest.mark.slow
def test_fuzz_and_planted_secrets_quick(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    sizes = ["--fuzz-calls", "60", "--fuzz-clients", "2", "--secrets-seconds", "8", "--secrets-calls", "1"]
    sections = ["--no-kill", "--no-hostile", "--no-concurrent"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *sections, *sizes, "--json", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["failed"] == {}, results["failed"]
    assert set(results["sections"]) == {"fuzz", "secrets"}

    fuzz = results["sections"]["fuzz"]
    assert fuzz["calls"] == sum(fuzz["by_category_count"].values()) >= 60
    assert fuzz["invalid_calls"] > 0 and fuzz["valid_calls"] > 0
    assert sum(fuzz["outcomes"].values()) == fuzz["calls"]  # every call got an outcome
    assert fuzz["upstream_requests_by_phase"]["valid+edge"] > 0  # the recorder sees what reaches the toolbox
    assert fuzz["crashes"] == 0, fuzz["examples"]
    assert fuzz["invalid_reached_upstream_except_scalars"] == 0, fuzz["reached_examples"]
    assert fuzz["server_alive_at_end"]

    secrets = results["sections"]["secrets"]
    assert secrets["search_self_check"]  # the search finds every encoding where it is
    assert secrets["upstream_requests_with_all_credentials"] > 0  # the secrets were sent and echoed
    assert secrets["hits_total"] == 0, secrets["hit_detail"]
    assert "## Fuzzed calls" in done.stdout and "## Planted secrets" in done.stdout
