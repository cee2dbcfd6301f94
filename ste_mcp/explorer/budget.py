"""What keeps exploration in bounds: budgets (episodes, calls, tokens), per-upstream rate limits, pause.

Budgets are lifetime budgets: usage recorded in the trial store is counted against them when the
explorer starts, so a restart does not reset them. Global budgets hold across explorer processes on one
store (shards, ``serve`` next to ``explore``): ``sync`` counts what the others have recorded since; they
may be overshot by what the other processes have in flight (unrecorded) at that moment. Per-tool budgets
hold exactly as long as one process explores each tool (shards are disjoint). Calls are reserved before they are made (never
exceeded); tokens are known only after a response, so the token budget is checked before each model
request and may be overshot by at most one response per episode in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ste_mcp.explorer.settings import ExplorerSettings


class BudgetExhausted(Exception):
    """A budget is used up; the message says which."""


class Budget:
    """Global and per-tool limits on episodes, upstream calls and model tokens."""

    def __init__(
        self, settings: ExplorerSettings, used: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        self._s = settings
        self.calls: dict[str, int] = defaultdict(int)
        self.tokens: dict[str, int] = defaultdict(int)
        self.episodes_started = 0
        self.external_calls = 0  # recorded by other processes since this budget was loaded
        self.external_tokens = 0
        for tool, stats in (used or {}).items():
            self.calls[tool] = int(stats.get("calls", 0))
            self.tokens[tool] = int(stats.get("tokens", 0))

    @property
    def total_calls(self) -> int:
        """Upstream calls of every process on the store, as far as known."""
        return sum(self.calls.values()) + self.external_calls

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values()) + self.external_tokens

    def sync(self, used: Mapping[str, Mapping[str, Any]]) -> None:
        """Take in the store's usage now (``TrialStore.stats``): what exceeds this process's own count is
        other processes' work. Never lowers the count (this process's unrecorded calls make the gap small)."""
        calls = sum(int(stats.get("calls", 0)) for stats in used.values())
        tokens = sum(int(stats.get("tokens", 0)) for stats in used.values())
        self.external_calls = max(self.external_calls, calls - sum(self.calls.values()))
        self.external_tokens = max(self.external_tokens, tokens - sum(self.tokens.values()))

    def global_reason(self) -> str | None:
        """Why nothing more can be explored (a global budget is used up), or None."""
        s = self._s
        if s.max_calls is not None and self.total_calls >= s.max_calls:
            return f"global call budget ({s.max_calls}) used up"
        if s.max_tokens_total is not None and self.total_tokens >= s.max_tokens_total:
            return f"global token budget ({s.max_tokens_total}) used up"
        return None

    def exhausted(self, tool: str) -> str | None:
        """Why ``tool`` cannot be explored further (a global or per-tool budget), or None."""
        s = self._s
        if reason := self.global_reason():
            return reason
        if s.max_calls_per_tool is not None and self.calls[tool] >= s.max_calls_per_tool:
            return f"call budget of {tool} ({s.max_calls_per_tool}) used up"
        if s.max_tokens_per_tool is not None and self.tokens[tool] >= s.max_tokens_per_tool:
            return f"token budget of {tool} ({s.max_tokens_per_tool}) used up"
        return None

    def episodes_left(self) -> bool:
        limit = self._s.max_episodes_total
        return limit is None or self.episodes_started < limit

    def start_episode(self, tool: str) -> None:
        """Count a new episode of this run, or raise ``BudgetExhausted``."""
        if not self.episodes_left():
            raise BudgetExhausted(f"episode budget of this run ({self._s.max_episodes_total}) used up")
        self.check(tool)
        self.episodes_started += 1

    def check(self, tool: str) -> None:
        reason = self.exhausted(tool)
        if reason:
            raise BudgetExhausted(reason)

    def reserve_call(self, tool: str) -> None:
        """Count one upstream call before it is made, or raise ``BudgetExhausted``."""
        self.check(tool)
        self.calls[tool] += 1

    def add_tokens(self, tool: str, tokens: int) -> None:
        self.tokens[tool] += tokens

    def snapshot(self) -> dict[str, Any]:
        s = self._s
        return {
            "calls": self.total_calls,
            "max_calls": s.max_calls,
            "tokens": self.total_tokens,
            "max_tokens_total": s.max_tokens_total,
            "episodes_this_run": self.episodes_started,
            "max_episodes_total": s.max_episodes_total,
        }


class RateLimiter:
    """At most ``rate_per_s`` requests per second to each upstream origin, evenly spaced."""

    def __init__(self, rate_per_s: float | None) -> None:
        self._interval = 1.0 / rate_per_s if rate_per_s and rate_per_s > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, base_url: str) -> None:
        if not self._interval:
            return
        key = origin(base_url)
        async with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(key, now))
            self._next[key] = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)


class PauseGate:
    """Exploration waits at its next step while paused (a model request or an upstream call)."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    async def wait(self) -> None:
        await self._open.wait()


def origin(url: str) -> str:
    """scheme://host[:port] of a URL (the unit of rate limiting)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
