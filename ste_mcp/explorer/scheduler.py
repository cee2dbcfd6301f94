"""The explorer: runs episodes of many tools concurrently, within budgets, safely, resumably.

``await Explorer.from_app(app)`` builds it as every entry point runs it (``serve``, ``explore``,
``learn``, the benchmarks). Work is planned from the trial store (episodes already recorded per tool, interrupted episodes
resumed first), then handed to ``concurrency`` asyncio workers, at most ``tool_concurrency`` episodes
of one tool at a time, breadth first across tools. Only tools the operator allows are explored
(``eligibility``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ste_mcp.explorer.budget import Budget, BudgetExhausted, PauseGate, RateLimiter
from ste_mcp.explorer.episode import ExploreContext, ToolCaller, run_episode
from ste_mcp.explorer.settings import ExplorerSettings
from ste_mcp.explorer.shard import in_shard
from ste_mcp.llm.base import ChatModel, ContextTooLong, ModelError
from ste_mcp.memory.db import Memory
from ste_mcp.memory.trials import TrialRecord, TrialStore
from ste_mcp.safety.redact import Redactor
from ste_mcp.upstream.tools import Tool

if TYPE_CHECKING:
    from ste_mcp.app import App
    from ste_mcp.config import Settings

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_MODEL_ERRORS = 5
MODEL_BACKOFF_S = 2.0  # doubled after each consecutive model error, at most 30 s
COUNTS_REFRESH_S = 10.0  # how stale the approved-exemplar counts may be when an episode is handed out


class ExplorerError(Exception):
    """Exploration cannot go on (e.g. the model server keeps failing); the message says why."""


def eligibility(tool: Tool, settings: ExplorerSettings) -> str | None:
    """Why the explorer must not call ``tool``, or None when it may.

    Safe by default: read-only tools (GET/HEAD/OPTIONS, or marked read-only in the spec) only, unless
    the operator opts a tool in (``explore_tools``, the tool's explore policy) or gives it a sandbox URL.
    """
    if tool.hidden:
        return "hidden"
    if tool.explore.allowed is False:
        return "exploration disabled for this tool"
    if tool.explore.allowed or tool.name in settings.explore_tools or tool.explore.sandbox_base_url:
        return None
    if tool.is_read_only:
        return None
    return f"{tool.method.upper()} is not read-only: opt in with explorer.explore_tools or a sandbox URL"


def context_budget(settings: Settings) -> int:
    """Conversation budget in characters: ``explorer.context_chars``, else ~2 characters per token of
    the model's context left after one reply (numbers and JSON take a token per one or two characters)."""
    s = settings.explorer
    return s.context_chars or 2 * max(512, settings.llm.max_model_len - s.max_tokens)


@dataclass
class Job:
    tool: Tool
    episode: int
    start_slot: int = 0
    counted: bool = False  # already counted against the episode budget (a retried job)


@dataclass
class RunSummary:
    """What one ``Explorer.run`` did."""

    trials: int = 0
    successful_trials: int = 0  # answered, and the explorer's reflection says it worked
    answered: int = 0  # a final answer after a successful call (what the judge reads)
    reflect: bool = True  # explorer.reflect: were the trials asked whether they worked?
    episodes: int = 0
    errors: int = 0
    stopped: dict[str, str] = field(default_factory=dict)  # tool ("*" for all) -> budget reason

    def add(self, other: RunSummary) -> None:
        """Count ``other`` (a later run) in."""
        self.trials += other.trials
        self.successful_trials += other.successful_trials
        self.answered += other.answered
        self.reflect = self.reflect and other.reflect
        self.episodes += other.episodes
        self.errors += other.errors
        self.stopped.update(other.stopped)

    def trials_line(self) -> str:
        """The trials in one line: how many the explorer's reflection calls successful, or with
        reflection off how many were answered after a successful call."""
        if self.reflect:
            return f"{self.trials} trial(s), {self.successful_trials} successful"
        return f"{self.trials} trial(s), {self.answered} answered (not reflected on: explorer.reflect off)"


class Explorer:
    """Explores tools with STE: ``await explorer.run()``; ``pause()``, ``resume()``, ``status()``."""

    def __init__(
        self,
        tools: Iterable[Tool] | Callable[[], Iterable[Tool]],
        *,
        model: ChatModel,
        upstream: ToolCaller,
        store: TrialStore,
        settings: ExplorerSettings | None = None,
        protocol: Any = None,
        secrets: Iterable[str] = (),
        context_chars: int = 12_000,
        on_trial: Callable[[TrialRecord], None] | None = None,
        status_file: Path | None = None,
        adapter: Callable[[], str | None] | None = None,
        exemplar_counts: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._tools = tools if callable(tools) else (lambda fixed=list(tools): fixed)
        self.model = model
        self.adapter = adapter  # the served adapter to explore with (None: the base model)
        # approved original exemplars per tool (explorer.target_exemplars: per-tool stopping)
        self.exemplar_counts = exemplar_counts
        self._counts: dict[str, int] = {}
        self._counts_at = -math.inf
        self.upstream = upstream
        self.store = store
        self.settings = settings or ExplorerSettings()
        if protocol is None:
            from ste_mcp.llm.protocols import protocol_for

            protocol = protocol_for(model.model)
        self.protocol = protocol
        self.redactor = Redactor(secrets)
        self.context_chars = context_chars
        self.on_trial = on_trial
        self.status_file = status_file
        self.gate = PauseGate()
        self.rate = RateLimiter(self.settings.upstream_rate_per_s)
        self.budget = Budget(self.settings)
        self.running = False
        self.last_error: str | None = None
        self.summary = RunSummary(reflect=self.settings.reflect)
        self._in_flight: dict[tuple[str, int], dict[str, Any]] = {}
        self._budget_synced_at = 0.0

    @classmethod
    async def from_app(
        cls,
        app: App,
        *,
        tools: Iterable[Tool] | Callable[[], Iterable[Tool]] | None = None,
        settings: ExplorerSettings | None = None,
        on_trial: Callable[[TrialRecord], None] | None = None,
    ) -> Explorer:
        """The explorer over an open ``App``, wired the same for every caller: the explorer role's model
        (``app.model_for("explorer")``; raises ``ModelUnavailable``), the app's upstream client, trial
        store, secrets, call protocol (``llm.protocol``), context budget, live status file and, when the
        explorer is the app's own model, the adapter the fine-tuning feature serves.

        ``tools`` defaults to the app's visible tools (re-read on every plan, so spec reloads count);
        ``settings`` to ``app.settings.explorer``.
        """
        from ste_mcp.explorer.status import live_status_file
        from ste_mcp.llm.protocols import protocol_for

        model = await app.model_for("explorer")
        full = app.settings
        secrets = app.toolset.secret_values()
        memory = await anyio.to_thread.run_sync(lambda: Memory.open(full, secrets=secrets))
        store = await anyio.to_thread.run_sync(lambda: memory.trials)
        # an adapter trained on the app's model only fits that model: the one the finetune feature serves now
        adapter = app.active_adapter if app.uses_main_model("explorer") else None
        counts = None
        if (settings or full.explorer).target_exemplars is not None:
            counts = (await anyio.to_thread.run_sync(lambda: memory.exemplars)).approved_originals
        return cls(
            app.toolset.visible if tools is None else tools,
            model=model,
            upstream=app.upstream,
            store=store,
            settings=full.explorer if settings is None else settings,
            protocol=protocol_for(model.model, full.llm.protocol),
            secrets=secrets,
            context_chars=context_budget(full),
            on_trial=on_trial,
            status_file=live_status_file(full),
            adapter=adapter,
            exemplar_counts=counts,
        )

    # ---- what to explore -----------------------------------------------------------------------
    def selected(self) -> list[Tool]:
        """The tools this explorer may and should explore (of its shard, ``explorer.shard``)."""
        only = set(self.settings.tools)
        return [
            t
            for t in self._tools()
            if (not only or t.name in only)
            and in_shard(t.name, self.settings.shard)
            and eligibility(t, self.settings) is None
        ]

    def skipped(self) -> dict[str, str]:
        """Tools of this explorer's shard left out, with the reason."""
        only = set(self.settings.tools)
        out = {}
        for t in self._tools():
            if (only and t.name not in only) or not in_shard(t.name, self.settings.shard):
                continue
            reason = eligibility(t, self.settings)
            if reason:
                out[t.name] = reason
        return out

    async def plan(self, episodes: int | None = None) -> list[Job]:
        """Jobs to reach ``episodes`` (default ``num_episodes``) per tool: interrupted episodes first,
        then new ones, round-robin across tools. With ``target_exemplars``, a tool that holds that many
        approved originals gets no new episode, and the tools holding fewest come first."""
        target = self.settings.num_episodes if episodes is None else episodes
        slots = self.settings.num_stm_slots
        progress = await anyio.to_thread.run_sync(self.store.episode_progress)
        await self.refresh_counts(force=True)
        resume: list[Job] = []
        new: dict[str, list[Job]] = {}
        tools = sorted(self.selected(), key=lambda t: self._counts.get(t.name, 0))  # stable: thinnest first
        for tool in tools:
            done = progress.get(tool.name, {})
            resume += [Job(tool, ep, n) for ep, n in sorted(done.items()) if n < slots]
            if self.enough(tool.name) is not None:
                continue
            first = max(done, default=-1) + 1
            new[tool.name] = [Job(tool, first + i) for i in range(max(0, target - len(done)))]
        ordered = list(resume)
        for i in range(max((len(v) for v in new.values()), default=0)):
            ordered += [jobs[i] for jobs in new.values() if i < len(jobs)]
        return ordered

    def enough(self, tool: str) -> str | None:
        """Why ``tool`` needs no new episode (it holds ``target_exemplars`` approved originals), or None."""
        target = self.settings.target_exemplars
        if target is None or self.exemplar_counts is None:
            return None
        held = self._counts.get(tool, 0)
        if held < target:
            return None
        return f"holds {held} approved exemplars (explorer.target_exemplars = {target})"

    async def refresh_counts(self, force: bool = False) -> None:
        """Re-read the approved originals per tool, at most every ``COUNTS_REFRESH_S`` unless ``force``."""
        if self.settings.target_exemplars is None or self.exemplar_counts is None:
            return
        if force or time.monotonic() - self._counts_at >= COUNTS_REFRESH_S:
            self._counts = dict(await anyio.to_thread.run_sync(self.exemplar_counts))
            self._counts_at = time.monotonic()

    # ---- running -------------------------------------------------------------------------------
    def pause(self) -> None:
        self.gate.pause()

    def resume(self) -> None:
        self.gate.resume()

    @property
    def paused(self) -> bool:
        return self.gate.paused

    async def run(self, episodes: int | None = None) -> RunSummary:
        """Explore until every selected tool has ``episodes`` episodes or budgets are used up."""
        used = await anyio.to_thread.run_sync(self.store.stats)
        self.budget = Budget(self.settings, used)
        self._budget_synced_at = time.monotonic()
        self.summary = RunSummary(reflect=self.settings.reflect)
        ctx = ExploreContext(
            model=self.model,
            upstream=self.upstream,
            store=self.store,
            protocol=self.protocol,
            settings=self.settings,
            budget=self.budget,
            rate=self.rate,
            gate=self.gate,
            redactor=self.redactor,
            context_chars=self.context_chars,
            on_phase=self._phase,
            on_trial=self._trial_done,
            adapter=self.adapter if self.settings.use_adapter else None,
        )
        pending = deque(await self.plan(episodes))
        busy: Counter[str] = Counter()
        cond = anyio.Condition()
        model_errors = [0]

        def stopped(tool: str) -> bool:
            return "*" in self.summary.stopped or tool in self.summary.stopped

        async def next_job() -> Job | None:
            await self.refresh_counts()  # exemplars judged meanwhile (serve judges as trials arrive)
            async with cond:
                while True:
                    for job in list(pending):
                        fresh = job.start_slot == 0 and not job.counted
                        if fresh and not stopped(job.tool.name) and (why := self.enough(job.tool.name)):
                            self.summary.stopped[job.tool.name] = why
                        if stopped(job.tool.name):
                            pending.remove(job)
                        elif busy[job.tool.name] < self.settings.tool_concurrency:
                            pending.remove(job)
                            busy[job.tool.name] += 1
                            return job
                    if not pending:
                        return None
                    await cond.wait()

        fatal: list[ExplorerError] = []

        async def worker(tg: anyio.abc.TaskGroup) -> None:
            while (job := await next_job()) is not None:
                try:
                    again = await self._run_job(ctx, job, model_errors)
                except ExplorerError as exc:
                    fatal.append(exc)
                    tg.cancel_scope.cancel()
                    return
                finally:
                    async with cond:
                        busy[job.tool.name] -= 1
                        cond.notify_all()
                if again is not None:
                    async with cond:
                        pending.appendleft(again)
                        cond.notify_all()

        self.running = True
        self._write_status()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.settings.concurrency):
                    tg.start_soon(worker, tg)
        finally:
            self.running = False
            self._in_flight.clear()
            self._write_status()
        if fatal:
            raise fatal[0]
        return self.summary

    async def _run_job(self, ctx: ExploreContext, job: Job, model_errors: list[int]) -> Job | None:
        """Run one episode job; returns a job to retry (after a model error) or None."""
        name = job.tool.name
        try:
            await self._sync_budget()
            if job.start_slot == 0 and not job.counted:
                self.budget.start_episode(name)
            else:
                self.budget.check(name)
            records = await run_episode(ctx, job.tool, job.episode, start_slot=job.start_slot)
            model_errors[0] = 0
        except BudgetExhausted as exc:
            self._stop(self._scope(name), str(exc))
            return None
        except ContextTooLong as exc:  # the same episode would fail the same way: skip it, go on
            self.summary.errors += 1
            self.last_error = str(exc)
            log.warning("explorer: %s episode %d left: %s", name, job.episode, exc)
            return None
        except ModelError as exc:
            model_errors[0] += 1
            self.summary.errors += 1
            self.last_error = str(exc)
            log.warning("explorer: model error in %s episode %d: %s", name, job.episode, exc)
            if model_errors[0] >= MAX_CONSECUTIVE_MODEL_ERRORS:
                raise ExplorerError(
                    f"the model keeps failing ({model_errors[0]} times in a row): {exc}"
                ) from exc
            await anyio.sleep(min(MODEL_BACKOFF_S * 2 ** (model_errors[0] - 1), 30))
            progress = await anyio.to_thread.run_sync(self.store.episode_progress, name)
            return Job(job.tool, job.episode, progress.get(name, {}).get(job.episode, 0), counted=True)
        except Exception as exc:  # a bug or an unexpected upstream failure: log it, keep exploring others
            self.summary.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("explorer: episode %d of %s failed", job.episode, name)
            return None
        finally:
            self._in_flight.pop((name, job.episode), None)
        cut = job.start_slot + len(records) < self.settings.num_stm_slots or (
            records and records[-1].status == "stopped"
        )
        if not cut:
            self.summary.episodes += 1
        elif reason := self.budget.exhausted(name):
            self._stop(self._scope(name), reason)
        return None

    async def _sync_budget(self) -> None:
        """Count other explorer processes' usage (shards, serve) against the global budgets: re-read the
        shared trial store, at most every ``budget_sync_s`` seconds, when a global budget is set."""
        s = self.settings
        if s.max_calls is None and s.max_tokens_total is None:
            return
        if time.monotonic() - self._budget_synced_at < s.budget_sync_s:
            return
        self._budget_synced_at = time.monotonic()
        self.budget.sync(await anyio.to_thread.run_sync(self.store.stats))

    def _scope(self, tool: str) -> str:
        """Whom a used-up budget stops: everything ("*") or one tool."""
        return "*" if self.budget.global_reason() or not self.budget.episodes_left() else tool

    def _stop(self, tool: str, reason: str) -> None:
        if tool not in self.summary.stopped:
            log.info("explorer: stopping %s: %s", "all tools" if tool == "*" else tool, reason)
            self.summary.stopped[tool] = reason

    def _phase(self, tool: str, episode: int, slot: int, phase: str) -> None:
        self._in_flight[(tool, episode)] = {"tool": tool, "episode": episode, "slot": slot, "phase": phase}

    def _trial_done(self, record: TrialRecord) -> None:
        self.summary.trials += 1
        self.summary.successful_trials += int(record.success)
        self.summary.answered += int(record.judgeable)
        if self.on_trial is not None:
            self.on_trial(record)
        self._write_status()

    def _write_status(self) -> None:
        """Leave the live status where ``ste-mcp status`` (another process) can read it."""
        if self.status_file is None:
            return
        try:
            self.status_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_file.with_suffix(".tmp")
            status = {**self.status(), "pid": os.getpid(), "updated_at": time.time()}
            tmp.write_text(json.dumps(status, default=str))
            tmp.replace(self.status_file)
        except OSError as exc:
            log.warning("explorer: cannot write %s: %s", self.status_file, exc)

    # ---- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Live state: running / paused, what is in flight, this run's counts, budgets, skipped tools."""
        s = self.summary
        return {
            "running": self.running,
            "paused": self.paused,
            "in_flight": sorted(self._in_flight.values(), key=lambda d: (d["tool"], d["episode"])),
            "this_run": {
                "trials": s.trials,
                "successful_trials": s.successful_trials,
                "episodes": s.episodes,
                "errors": s.errors,
                "stopped": dict(s.stopped),
            },
            "budget": self.budget.snapshot(),
            "last_error": self.last_error,
            "skipped_tools": self.skipped(),
        }
