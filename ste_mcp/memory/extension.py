"""The memory feature in the server: live descriptions, ``find_tool_examples``, ``search_tools``,
exemplar resources, and the background loop that judges new trials, keeps exemplars, re-renders
descriptions and keeps the tool-search index in step with the tools and approved exemplars.

The loop also polls the descriptions table, so versions written by another process (e.g.
``ste-mcp descriptions rollback``) are served and announced (``tools/list_changed``) within
``memory.poll_s``.

When ``memory.description_render`` shows usage notes (``notes``, ``both``) and
``memory.notes_rewrite_after`` is not 0, a second background task rewrites them: every
``memory.poll_s`` in which the exemplar table changed, it asks ``Rewriter.due`` (``memory/gate.py``)
which tools have enough new approved exemplar groups and rewrites those one at a time, through the
description gate (writer: the explorer's model; evaluators: the app's and ``llm.evaluators``). While a model is unreachable
it postpones (said once in the log); after a failure it tries again ``NOTES_RETRY_S`` later. A version
it writes is served and announced by the loop above, like any other.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from mcp.shared.exceptions import MCPError

from ste_mcp.evaluate.description_gate import EvaluatorError, gate_evaluators
from ste_mcp.llm.base import ModelError
from ste_mcp.memory.dates import as_of
from ste_mcp.memory.db import Memory
from ste_mcp.memory.descriptions import LiveDescriptions, example_result
from ste_mcp.memory.exemplars import Exemplar
from ste_mcp.memory.exploit import Exploiter, ExploitReport, unsafe_reason
from ste_mcp.memory.gate import RewriteOutcome, Rewriter
from ste_mcp.memory.language import sibling_caller
from ste_mcp.memory.toolsearch import ToolDoc, tool_docs
from ste_mcp.memory.trials import TrialRecord
from ste_mcp.server.extensions import CALL_TOOL, SEARCH_TOOL, BaseExtension

if TYPE_CHECKING:
    from ste_mcp.app import App
    from ste_mcp.upstream.tools import Tool, ToolResult

log = logging.getLogger(__name__)

FIND_TOOL = "find_tool_examples"
RESOURCE_PREFIX = "ste-mcp://exemplars/"
MAX_K = 10
MAX_TASK_CHARS = 2000
MAX_SEARCH_K = 20
JUDGE_BATCH_ROUNDS = 8  # trials judged per pass = judge_concurrency x this
OPTIMIZE_EVERY_WRITES = 100  # exemplar table versions between compactions
NOTES_RETRY_S = 60.0  # the notes task tries again this long after a failed or postponed pass

_FIND_TOOL_DEF = types.Tool(
    name=FIND_TOOL,
    description=(
        "Find worked examples of tool calls for a task: the nearest verified examples across all tools "
        "(query, tool, arguments, result), best first. Use it to pick a tool and fill in its arguments."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "task": {"type": "string", "description": "What you want to do, in your own words."},
            "k": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_K,
                "default": 3,
                "description": "How many.",
            },
        },
        "required": ["task"],
        "additionalProperties": False,
    },
    annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
)


_SEARCH_TOOL_DEF = types.Tool(
    name=SEARCH_TOOL,
    description=(
        "Find the tools for a task: the best matching tools of this server, best first, each with its "
        "description and input schema, and verified example calls of those tools for similar requests. "
        "Then call one by name."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What you want to do, in your own words."},
            "k": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_SEARCH_K,
                "default": 5,
                "description": "How many tools.",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
)


def create(app: App) -> MemoryExtension:
    return MemoryExtension(app)


def exploration_calls(
    app: App,
) -> tuple[Callable[[Tool, dict[str, Any]], Awaitable[ToolResult]], Callable[[Tool], bool]]:
    """How the memory feature calls a tool beside the explorer (a sibling's result for
    ``result_language``, a recheck's call): as the explorer does (its sandbox URL, if any, at most
    ``explorer.upstream_rate_per_s`` calls a second to each upstream), and only the tools exploration
    may call (``explorer.scheduler.eligibility``: read-only or opted in)."""
    from ste_mcp.explorer.budget import RateLimiter
    from ste_mcp.explorer.scheduler import eligibility

    rate = RateLimiter(app.settings.explorer.upstream_rate_per_s)

    async def call(tool: Tool, arguments: dict[str, Any]) -> ToolResult:
        await rate.acquire(tool.explore.sandbox_base_url or tool.base_url)
        return await app.upstream.call(tool, arguments, purpose="explore")

    return call, lambda tool: eligibility(tool, app.settings.explorer) is None


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _json_result(payload: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
        structured_content=payload,
    )


def _text_and_k(
    tool: str, arguments: dict[str, Any], text_key: str, *, default_k: int, max_k: int
) -> tuple[str, int] | types.CallToolResult:
    """A meta-tool's (text, k) arguments, or the error result that says what is wrong with them."""
    text, k = arguments.get(text_key), arguments.get("k", default_k)
    unknown = set(arguments) - {text_key, "k"}
    if unknown:
        return _error(f"unknown argument(s) for {tool}: {', '.join(sorted(unknown))[:200]}")
    if not isinstance(text, str) or not text.strip():
        return _error(f"argument '{text_key}' is required: a non-empty string describing what you want to do")
    if len(text) > MAX_TASK_CHARS:
        return _error(f"argument '{text_key}' is too long ({len(text)} characters; at most {MAX_TASK_CHARS})")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        return _error(f"argument 'k' must be an integer from 1 to {max_k}, got {k!r}")
    return text, k


def example_view(ex: Exemplar) -> dict[str, Any]:
    """What clients see of an exemplar (no provenance internals), as of today (``dates.as_of``: a
    request counted from today shows today's days, not those of the day it was verified)."""
    ex = as_of(ex)
    view: dict[str, Any] = {"tool": ex.tool, "query": ex.query, "arguments": ex.arguments}
    result = example_result(ex)  # the final answer or a typed summary: never upstream text
    if result:
        view["result"] = result
    if ex.score is not None:
        view["score"] = round(ex.score, 4)
    return view


class MemoryExtension(BaseExtension):
    """Serves learned knowledge to every client and keeps it up to date."""

    name = "memory"

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings.memory
        self.memory = Memory.open(app.settings, secrets=app.toolset.secret_values())
        self.exemplars = self.memory.exemplars
        self.descriptions = self.memory.descriptions
        self.trials = self.memory.trials
        self.exploiter = Exploiter(
            self.trials,
            self.exemplars,
            self.descriptions,
            self.settings,
            secrets=app.toolset.secret_values(),
            claims=self.memory.claims,
            siblings=sibling_caller(app.toolset.visible, *exploration_calls(app)),
        )
        self.live = LiveDescriptions(self.descriptions)
        self.rewriter = Rewriter(self.trials, self.exemplars, self.descriptions, self.settings)
        self.tool_index = self.memory.tool_index
        self._indexed_version: int | None = None  # exemplar table version the index reflects
        self._indexed_tools: set[str] = set()  # the visible tools at that sync
        self.steps = 0  # completed background passes
        self._rendered_version: int | None = None
        self._optimized_at: dict[str, int] = {}  # table -> version after its last compaction
        self._model_error: str | None = None
        self._notes_model_error: str | None = None

    def describe(self, tool: Tool) -> str:
        """The description ``tools/list`` serves for ``tool`` (``DescriptionProvider``): the approved one."""
        return self.live.describe(tool)

    # ---- tools -------------------------------------------------------------------------------
    def list_tools(self) -> list[types.Tool]:
        return [_FIND_TOOL_DEF, _SEARCH_TOOL_DEF]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult | None:
        if name == FIND_TOOL:
            checked = _text_and_k(FIND_TOOL, arguments, "task", default_k=3, max_k=MAX_K)
            if isinstance(checked, types.CallToolResult):
                return checked
            examples = await anyio.to_thread.run_sync(self.find_examples, *checked)
            return _json_result({"examples": [example_view(ex) for ex in examples]})
        if name == SEARCH_TOOL:
            checked = _text_and_k(SEARCH_TOOL, arguments, "query", default_k=5, max_k=MAX_SEARCH_K)
            if isinstance(checked, types.CallToolResult):
                return checked
            return _json_result(await anyio.to_thread.run_sync(self.search_tools, *checked))
        return None

    def search_tools(self, query: str, k: int) -> dict[str, Any]:
        """The ``k`` visible tools best matching ``query``, as served now (live descriptions)."""
        if self._indexed_version is None:
            self.sync_tool_index()
        visible = {t.name: t for t in self.app.toolset.visible()}
        # the index holds the tools visible at its last sync; filter only when that set has changed since
        among = None if visible.keys() == self._indexed_tools else visible
        n = self.settings.search_examples
        vector = None  # one embedding for the tools and the examples, when either needs it
        if n or self.settings.tool_search != "text":
            vector = self.exemplars.embedder.embed_one(query)
        out = []
        hits = self.tool_index.search(query, k, mode=self.settings.tool_search, among=among, vector=vector)
        for hit in hits:
            tool = visible[hit.tool]
            view: dict[str, Any] = {
                "name": tool.name,
                "description": self.app.describe(tool),
                "input_schema": tool.served_schema,
                "score": hit.score,
            }
            if hit.kind == "request":
                view["similar_request"] = hit.matched
            out.append(view)
        found: dict[str, Any] = {"tools": out}
        examples = self._examples(vector, n, {view["name"] for view in out}) if n and out else []
        if examples:
            found["examples"] = [example_view(ex) for ex in examples]
        found["call"] = f"call a tool by its name, or through {CALL_TOOL}(name, arguments)"
        return found

    def sync_tool_index(self) -> None:
        """Index the visible tools (name, description) and the requests of their approved exemplars."""
        version = self.exemplars.version
        requests: dict[str, list[str]] = {}
        for ex in self.exemplars.approved():
            if unsafe_reason(ex) is None:
                requests.setdefault(ex.tool, []).append(ex.query)
        docs: list[ToolDoc] = []
        visible = self.app.toolset.visible()
        for tool in visible:
            docs += tool_docs(tool.name, tool.description, reversed(requests.get(tool.name, [])))
        report = self.tool_index.sync(docs)
        if report.added or report.removed:
            log.info(
                "tool search index: %d added, %d removed, %d documents",
                report.added,
                report.removed,
                report.total,
            )
        self._indexed_version = version
        self._indexed_tools = {tool.name for tool in visible}

    def find_examples(self, task: str, k: int) -> list[Exemplar]:
        """Nearest approved exemplars of the tools this server shows."""
        visible = {t.name for t in self.app.toolset.visible()}
        return self._examples(self.exemplars.embedder.embed_one(task), k, visible)

    def _examples(self, vector: Any, k: int, tools: set[str]) -> list[Exemplar]:
        """The ``k`` approved exemplars of ``tools`` nearest to the embedded request, safe to show."""
        hits = self.exemplars.search_vector(vector, k * 3)
        return [ex for ex in hits if ex.tool in tools and unsafe_reason(ex) is None][:k]

    # ---- resources ---------------------------------------------------------------------------
    def list_resource_templates(self) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                name="tool-exemplars",
                uri_template=RESOURCE_PREFIX + "{tool}",
                description="Verified examples of calling one tool (JSON).",
                mime_type="application/json",
            )
        ]

    def list_resources(self) -> list[types.Resource]:
        return [
            types.Resource(
                name=f"exemplars-{tool.name}",
                uri=RESOURCE_PREFIX + tool.name,
                description=f"Verified examples of calling {tool.name} (JSON).",
                mime_type="application/json",
            )
            for tool in self.app.toolset.visible()
        ]

    async def read_resource(self, uri: str) -> str | None:
        if not uri.startswith(RESOURCE_PREFIX):
            return None
        name = uri.removeprefix(RESOURCE_PREFIX)
        if name not in {t.name for t in self.app.toolset.visible()}:
            raise MCPError(types.INVALID_PARAMS, f"No tool named {name!r} on this server (resource {uri})")
        exemplars = await anyio.to_thread.run_sync(self.exemplars.approved, name)
        payload = {
            "tool": name,
            "description_version": self.live.version_of(name),
            "exemplars": [
                example_view(ex) | {"id": ex.id, "variant_of": ex.variant_of}
                for ex in exemplars
                if unsafe_reason(ex) is None
            ],
        }
        return json.dumps(payload, ensure_ascii=False)

    # ---- background --------------------------------------------------------------------------
    def background(self) -> list[Callable[[], Awaitable[None]]]:
        s = self.settings
        if s.description_render in ("notes", "both") and s.notes_rewrite_after > 0:
            return [self.run_forever, self.run_notes_forever]
        return [self.run_forever]

    async def run_forever(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.warn_stale_exemplars)
        except Exception:  # a hint only: never keeps the loop from starting
            log.exception("could not recheck the stored exemplars")
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("memory loop step failed; retrying in %.1f s", self.settings.poll_s)
            self.steps += 1
            await anyio.sleep(self.settings.poll_s)

    def warn_stale_exemplars(self) -> int:
        """Log how many stored exemplars today's checks would refuse (stored by an older version; they
        are still served) and the command that rejects them; returns that number."""
        from ste_mcp.memory.recheck import recheck

        tools = {tool.name: tool for tool in self.app.toolset.visible()}
        report = recheck(self.exemplars, tools, self.settings, dry_run=True)
        if report.failed:
            example, why = report.failed[0]
            log.warning(
                "%d stored exemplar(s) fail today's checks and are still served (e.g. %s: %s); "
                "`ste-mcp exemplars recheck` rejects them",
                len(report.failed),
                example.id,
                why,
            )
        return len(report.failed)

    async def step(self) -> set[str]:
        """One pass: judge new trials, re-render changed tools, serve and announce new versions.

        Returns the tools whose served description changed.
        """
        pending = await anyio.to_thread.run_sync(self.trials.unjudged)
        if pending:  # a bounded batch per pass, so descriptions improve while a backlog is judged
            await self.exploit(pending[: self.settings.judge_concurrency * JUDGE_BATCH_ROUNDS])
        version = await anyio.to_thread.run_sync(lambda: self.exemplars.version)
        if version != self._rendered_version:
            await anyio.to_thread.run_sync(self.exploiter.render, self.app.toolset.visible())
            self._rendered_version = version
            await anyio.to_thread.run_sync(self._maintain)
            await anyio.to_thread.run_sync(self.sync_tool_index)
        changed = await anyio.to_thread.run_sync(self.live.refresh)
        if changed:
            log.info("descriptions changed: %s", ", ".join(sorted(changed)))
            await self.app.notify_tools_changed()
        return changed

    def _maintain(self) -> None:
        """Index the exemplars once there are many; compact both tables every so many writes."""
        self.exemplars.ensure_index(self.settings.index_min_rows)
        for name, table in (("exemplars", self.exemplars.table), ("descriptions", self.descriptions.table)):
            if table.version - self._optimized_at.get(name, 0) >= OPTIMIZE_EVERY_WRITES:
                table.optimize()
                self._optimized_at[name] = table.version

    async def exploit(self, pending: list[TrialRecord]) -> ExploitReport | None:
        """Judge ``pending`` with the judge's model, paraphrase with the paraphraser's (``llm.judge``,
        ``llm.paraphrase``; default the app's model); postponed (``None``) while one is unreachable."""
        try:
            model = await self.app.model_for("judge")
            paraphraser = await self.app.model_for("paraphrase")
        except Exception as exc:  # ModelUnavailable: the proxy and descriptions keep working
            if str(exc) != self._model_error:
                log.warning("judging postponed: %s", exc)
                self._model_error = str(exc)
            return None
        self._model_error = None
        tools = {t.name: t for t in self.app.toolset}
        report = await self.exploiter.process(model, tools, pending=pending, paraphraser=paraphraser)
        if report.judged:
            log.info(
                "judged %d trial(s): %d accepted, %d refused as unsafe, %d exemplar(s), %d paraphrase(s)",
                report.judged,
                report.accepted,
                report.refused,
                report.exemplars,
                report.paraphrases,
            )
        if report.claimed_elsewhere:
            log.info("%d trial(s) left to another process judging them", report.claimed_elsewhere)
        for error in report.errors[:3]:
            log.warning("judging failed: %s", error)
        return report

    # ---- usage notes -------------------------------------------------------------------------
    async def rewrite_notes(
        self,
        targets: Sequence[Tool] | None = None,
        *,
        on_start: Callable[[int], None] | None = None,
        on_done: Callable[[RewriteOutcome], None] | None = None,
    ) -> list[RewriteOutcome]:
        """Rewrite, one at a time, the usage notes of those of ``targets`` (default: every visible
        tool) that are due (``Rewriter.due``), through the description gate; writer: the explorer's
        model, evaluators: the app's and ``llm.evaluators``. ``on_start(n)`` is told how many are due,
        ``on_done`` gets each outcome. Raises ``ModelUnavailable``, ``ModelError`` or ``EvaluatorError``;
        the tools done before stay done."""
        tools = self.app.toolset.visible()
        due = await anyio.to_thread.run_sync(self.rewriter.due, tools if targets is None else targets)
        if on_start is not None:
            on_start(len(due))
        if not due:
            return []
        writer = await self.app.model_for("explorer")
        evaluators = await gate_evaluators(self.app)
        outcomes = []
        for tool in due:
            outcome = await self.rewriter.rewrite(tool, tools, writer=writer, evaluator=evaluators)
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
        return outcomes

    async def notes_pass(self) -> bool:
        """One pass of the server's notes task (``rewrite_notes``): logs what it did; ``False`` when it
        was postponed (a model is unreachable, said once) or failed (logged), to be tried again."""
        from ste_mcp.app import ModelUnavailable

        try:
            await self.rewrite_notes(on_done=self._log_notes)
        except (ModelError, EvaluatorError) as exc:
            log.warning("usage notes failed: %s; trying again in %.0f s", exc, NOTES_RETRY_S)
            return False
        except ModelUnavailable as exc:  # the proxy and descriptions keep working
            if str(exc) != self._notes_model_error:
                log.warning("usage notes postponed: %s", exc)
                self._notes_model_error = str(exc)
            return False
        self._notes_model_error = None
        return True

    async def run_notes_forever(self) -> None:
        """The notes task: a pass every ``memory.poll_s`` in which the exemplar table changed, and
        ``NOTES_RETRY_S`` after one that was postponed or failed."""
        seen: int | None = None  # exemplar table version of the last pass
        retry_at = math.inf
        while True:
            try:
                version = await anyio.to_thread.run_sync(lambda: self.exemplars.version)
                if version != seen or time.monotonic() >= retry_at:
                    seen = version
                    done = await self.notes_pass()
                    retry_at = math.inf if done else time.monotonic() + NOTES_RETRY_S
            except Exception:
                log.exception("usage notes pass failed; trying again in %.0f s", NOTES_RETRY_S)
                retry_at = time.monotonic() + NOTES_RETRY_S
            await anyio.sleep(self.settings.poll_s)

    @staticmethod
    def _log_notes(outcome: RewriteOutcome) -> None:
        log.info("usage notes of %s: %s", outcome.tool, outcome.message)
        for reason in outcome.notes.dropped if outcome.notes else ():
            log.info("usage notes of %s: line left out, it %s", outcome.tool, reason)
