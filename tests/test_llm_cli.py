"""`ste-mcp model prepare|chat` (serve runs the same ManagedVLLM the fixtures use)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from ste_mcp.cli import main


def test_prepare_a_local_folder(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert main(["model", "prepare", "--model", str(folder), "--data-dir", str(tmp_path / "d")]) == 0
    assert f"ready at {folder.resolve()}" in capsys.readouterr().out


def test_prepare_reports_a_bad_model(tmp_path: Path, capsys) -> None:
    assert main(["model", "prepare", "--model", "packaged:gpt-5", "--data-dir", str(tmp_path)]) == 1
    assert "unknown packaged model 'gpt-5'" in capsys.readouterr().err


def test_chat_with_an_unreachable_server_says_so(tmp_path: Path, capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    common = ["--data-dir", str(tmp_path), "--llm-url", url, "--model", "m"]
    assert main(["model", "chat", *common, "hello"]) == 1
    assert f"model server at {url} unreachable" in capsys.readouterr().err


@pytest.mark.model
def test_chat_prints_the_reply(vllm_server, tmp_path: Path, capsys) -> None:
    """The printed reply is the server's greedy reply to the same messages. (Not a fixed answer: for
    SmolLM2 "The capital..." and "L'Étoile..." are 0.1 nats apart, so bfloat16 on a CPU with native
    bf16 and float32 elsewhere answer differently.)"""
    system, prompt = "You answer geography questions.", "What is the capital of France?"
    args = ["--data-dir", str(tmp_path), "--llm-url", vllm_server.base_url, "--model", vllm_server.model]
    assert main(["model", "chat", *args, "--max-tokens", "16", "--system", system, prompt]) == 0
    printed = capsys.readouterr().out
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    body = {"model": vllm_server.model, "messages": messages, "max_tokens": 16, "temperature": 0}
    reply = httpx.post(f"{vllm_server.base_url}/chat/completions", json=body, timeout=300).json()
    expected = reply["choices"][0]["message"]["content"]
    assert expected.strip() and printed == f"{expected}\n"
