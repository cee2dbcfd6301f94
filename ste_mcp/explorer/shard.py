"""Sharded exploration: explorer processes split the tools among themselves without a coordinator.

``explorer.shard = "i/n"`` (``--shard i/n``) makes a process explore only the tools whose shard is
``i`` of ``n``. A tool's shard depends on its name alone (a 64-bit BLAKE2b hash of it, mapped by jump
consistent hashing, Lamping & Veach 2014): every process computes the same partition, adding or
removing a tool moves no other tool, and going from ``n`` to ``n + 1`` shards moves only about
``1/(n + 1)`` of the tools. The shards are disjoint and cover every tool, so processes on one shared
trial store never explore the same tool (no duplicated episodes) and together explore all of them.
"""

from __future__ import annotations

import hashlib

_MASK64 = (1 << 64) - 1
_LCG = 2862933555777941757  # the 64-bit linear congruential step of jump consistent hashing


class ShardError(ValueError):
    """A shard spec that is not ``i/n`` with ``0 <= i < n``."""


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``; raises ``ShardError`` naming what is wrong."""
    index, sep, count = spec.strip().partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ShardError(f"shard {spec!r} must be 'i/n', e.g. '0/4' (shard i of n, counting from 0)")
    i, n = int(index), int(count)
    if n < 1 or i >= n:
        raise ShardError(f"shard {spec!r}: need n >= 1 and 0 <= i < n")
    return i, n


def shard_of(name: str, count: int) -> int:
    """The shard (0 .. count-1) of the tool ``name`` among ``count`` shards."""
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
    bucket, jump = -1, 0
    while jump < count:
        bucket = jump
        key = (key * _LCG + 1) & _MASK64
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def in_shard(name: str, spec: str) -> bool:
    """Whether the tool ``name`` belongs to the shard ``spec`` (``"i/n"``)."""
    index, count = parse_shard(spec)
    return count == 1 or shard_of(name, count) == index
