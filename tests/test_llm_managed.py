"""ManagedVLLM's supervision (start, health, progress, restart, give up, process-group stop) on a
stand-in server process, so it runs in seconds; the real vLLM restart is in test_llm_model.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import anyio
import pytest

from ste_mcp.llm.base import ModelError
from ste_mcp.llm.managed import ManagedVLLM
from tests.fixtures.vllm import FakeVLLM


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_until(predicate, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_start_logs_and_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    server = FakeVLLM(tmp_path).start()
    try:
        assert server.generation == 1 and server.is_running()
        main, child = server.pid, server.child(1)
        assert alive(child)
        log = server.log_path.read_text()
        assert "=== ste-mcp: starting vLLM" in log and "fake vllm start 1" in log
        assert any("ready at http://127.0.0.1:" in m for m in server.messages)
    finally:
        server.stop()
    assert wait_until(lambda: not alive(main) and not alive(child), 5)


def test_killed_server_is_restarted_on_the_same_port(tmp_path: Path) -> None:
    server = FakeVLLM(tmp_path).start()
    try:
        url = server.base_url
        os.kill(server.pid, signal.SIGKILL)
        assert wait_until(lambda: not server.is_running())
        assert anyio.run(server.wait_ready) == 2
        assert server.restarts == 1 and server.base_url == url and server.is_running()
        assert wait_until(lambda: not alive(server.child(1)), 5)  # the dead server's group was ended
        assert any("restarting (1/3)" in m for m in server.messages)
    finally:
        server.stop()


def test_restart_failure_is_a_clear_error(tmp_path: Path) -> None:
    server = FakeVLLM(tmp_path, fail_from=2).start()
    try:
        os.kill(server.pid, signal.SIGKILL)
        assert wait_until(lambda: not server.is_running())
        with pytest.raises(
            ModelError, match=r"(?s)died and could not be restarted: .*exited with code 3.*cannot start"
        ):
            server.wait_ready_sync(30)
    finally:
        server.stop()


def test_gives_up_after_max_restarts(tmp_path: Path) -> None:
    server = FakeVLLM(tmp_path, max_restarts=0).start()
    try:
        os.kill(server.pid, signal.SIGKILL)
        assert wait_until(lambda: not server.is_running())
        with pytest.raises(ModelError, match="already restarted 0 times; giving up"):
            server.wait_ready_sync(30)
    finally:
        server.stop()


def test_start_failure_shows_the_log(tmp_path: Path) -> None:
    with pytest.raises(
        ModelError, match=r"(?s)exited with code 3 while starting \(log: .*vllm.log\).*fake: cannot start"
    ):
        FakeVLLM(tmp_path, fail_from=1).start()


def test_startup_timeout_stops_the_process(tmp_path: Path) -> None:
    server = FakeVLLM(tmp_path, mode="hang", startup_timeout_s=1.5)
    with pytest.raises(ModelError, match=r"did not become healthy within 1\.5 s"):
        server.start()
    assert wait_until(lambda: not alive(server.child(1)), 5)
    server.stop()


def test_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is not a prepared model folder"):
        ManagedVLLM(tmp_path, "x", logs_dir=tmp_path).start()


def test_command_has_the_cpu_recipe(tmp_path: Path) -> None:
    server = ManagedVLLM(tmp_path, "name", logs_dir=tmp_path, kv_cache_gib=3)
    cmd = " ".join(server.command())
    assert "-m vllm.entrypoints.openai.api_server" in cmd and "--host 127.0.0.1" in cmd
    assert "--enable-lora --max-lora-rank 16 --max-loras 2" in cmd and "--enforce-eager" in cmd
    env = server.environment()
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True" and env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3"


def test_dtype_follows_the_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ste_mcp.llm import managed

    assert managed.cpu_has_bf16("flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert managed.cpu_has_bf16("processor: 0\nflags: fpu amx_bf16 amx_tile\n")
    assert not managed.cpu_has_bf16("flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n")
    assert not managed.cpu_has_bf16("model name: avx512_bf16 in a name, not a flag\nflags: fpu\n")
    monkeypatch.setattr(managed, "has_cuda", lambda: False)
    monkeypatch.setattr(managed, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert "--dtype float32" in " ".join(ManagedVLLM(tmp_path, "n", logs_dir=tmp_path).command())
    monkeypatch.setattr(managed, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert "--dtype bfloat16" in " ".join(ManagedVLLM(tmp_path, "n", logs_dir=tmp_path).command())
    monkeypatch.setattr(managed, "has_cuda", lambda: True)
    assert "--dtype auto" in " ".join(ManagedVLLM(tmp_path, "n", logs_dir=tmp_path).command())
    pinned = ManagedVLLM(tmp_path, "n", logs_dir=tmp_path, dtype="bfloat16")
    assert "--dtype bfloat16" in " ".join(pinned.command())


def test_reserved_cores_follow_the_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """vLLM keeps one core out of inference by default: on two cores that is half the machine."""
    from ste_mcp.llm import managed

    monkeypatch.setattr(managed, "has_cuda", lambda: False)
    monkeypatch.delenv("VLLM_CPU_NUM_OF_RESERVED_CPU", raising=False)
    monkeypatch.setattr(managed, "usable_cores", lambda: 2)
    assert ManagedVLLM(tmp_path, "n", logs_dir=tmp_path).environment()["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    monkeypatch.setattr(managed, "usable_cores", lambda: 16)
    assert "VLLM_CPU_NUM_OF_RESERVED_CPU" not in ManagedVLLM(tmp_path, "n", logs_dir=tmp_path).environment()
    pinned = ManagedVLLM(tmp_path, "n", logs_dir=tmp_path, reserved_cores=1)
    assert pinned.environment()["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "1"
    monkeypatch.setattr(managed, "has_cuda", lambda: True)
    assert "VLLM_CPU_NUM_OF_RESERVED_CPU" not in pinned.environment()
