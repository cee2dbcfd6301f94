"""One STE episode: a conversation (short-term memory) of ``num_stm_slots`` trials of one tool.

Each trial is ``imagine`` (a new user query, with the tool's long-term memory read from the store),
``trial`` (a ReAct / native tool-call loop in which the tool is really executed through the upstream
client) and ``reflect`` (did it work: yes or no). The trial is recorded in the store before the next
one begins; an episode interrupted by a crash resumes from its recorded trials.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio

from ste_mcp.explorer import prompts
from ste_mcp.explorer.budget import Budget, BudgetExhausted, PauseGate, RateLimiter
from ste_mcp.explorer.settings import ExplorerSettings
from ste_mcp.llm.base import ChatModel, ChatResponse, ContextTooLong, Message
from ste_mcp.llm.protocols import FinalAnswer, ParsedCall, ParseError, tool_def
from ste_mcp.memory.checks import format_values, numbers_stated, quoted_examples
from ste_mcp.memory.requests import request_problem
from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.safety.redact import Redactor
from ste_mcp.upstream.tools import Tool, ToolResult


class ToolCaller(Protocol):
    """What the explorer needs of the upstream layer (``ste_mcp.upstream.client.UpstreamClient``)."""

    async def call(self, tool: Tool, arguments: dict[str, Any], *, purpose: str = "client") -> ToolResult: ...


PhaseHook = Callable[[str, int, int, str], None]  # tool, episode, slot, phase


@dataclass
class _Pending:
    trial: TrialRecord
    done: bool = False
    error: BaseException | None = None


class TrialWriter:
    """Records trials for many concurrent episodes: ``await record(trial)`` returns once the trial is
    committed; trials arriving while a commit runs are committed together in the next one."""

    def __init__(self, store: TrialStore) -> None:
        self.store = store
        self._pending: list[_Pending] = []
        self._lock = anyio.Lock()

    async def record(self, trial: TrialRecord) -> None:
        entry = _Pending(trial)
        self._pending.append(entry)
        async with self._lock:
            if not entry.done:
                batch, self._pending = self._pending, []
                try:
                    await anyio.to_thread.run_sync(self.store.record_many, [p.trial for p in batch])
                except Exception as exc:
                    for p in batch:
                        p.error = exc
                finally:
                    for p in batch:
                        p.done = True
        if entry.error is not None:
            raise entry.error


@dataclass
class ExploreContext:
    """Everything an episode needs. Guards (budget, rate limit, pause) are shared by all episodes."""

    model: ChatModel
    upstream: ToolCaller
    store: TrialStore
    protocol: Any  # ReActProtocol | NativeToolProtocol
    settings: ExplorerSettings = field(default_factory=ExplorerSettings)
    budget: Budget | None = None
    rate: RateLimiter | None = None
    gate: PauseGate | None = None
    redactor: Redactor = field(default_factory=Redactor)
    context_chars: int = 12_000
    on_phase: PhaseHook | None = None
    on_trial: Callable[[TrialRecord], None] | None = None
    writer: TrialWriter | None = None
    adapter: Callable[[], str | None] | None = None  # the served adapter to explore with, if any

    @property
    def model_name(self) -> str:
        """The served model the next call goes to: the current adapter, else the base model."""
        return (self.adapter() if self.adapter else None) or self.model.model

    def __post_init__(self) -> None:
        if self.writer is None:
            self.writer = TrialWriter(self.store)
        if self.budget is None:
            self.budget = Budget(self.settings)
        if self.rate is None:
            self.rate = RateLimiter(self.settings.upstream_rate_per_s)
        if self.gate is None:
            self.gate = PauseGate()


@dataclass
class _Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_ms: float = 0.0
    tool_ms: float = 0.0


def tool_definition(tool: Tool) -> dict[str, Any]:
    """The tool as the explorer model sees it (the spec's original description)."""
    return tool_def(tool.name, tool.description, tool.input_schema)


def system_message(ctx: ExploreContext, tool: Tool) -> Message:
    content = ctx.protocol.system_prompt([tool_definition(tool)], prompts.EXPLORER_INSTRUCTIONS)
    return {"role": "system", "content": content}


async def _chat(
    ctx: ExploreContext, tool: Tool, messages: list[Message], usage: _Usage, **kwargs: Any
) -> ChatResponse:
    assert ctx.gate is not None and ctx.budget is not None
    await ctx.gate.wait()
    ctx.budget.check(tool.name)
    kwargs.setdefault("max_tokens", ctx.settings.max_tokens)
    options = {"model": ctx.model_name, "temperature": ctx.settings.temperature, **kwargs}
    try:
        response = await ctx.model.chat(fit_context(messages, ctx.context_chars), **options)
    except ContextTooLong:  # the character budget guessed tokens wrong (digits, JSON): halve it, once
        response = await ctx.model.chat(fit_context(messages, ctx.context_chars // 2, keep_last=1), **options)
    used = response.usage.prompt_tokens + response.usage.completion_tokens
    ctx.budget.add_tokens(tool.name, used)
    usage.prompt_tokens += response.usage.prompt_tokens
    usage.completion_tokens += response.usage.completion_tokens
    usage.llm_ms += response.latency_ms
    return response


async def imagine(
    ctx: ExploreContext, tool: Tool, messages: list[Message], *, first: bool, usage: _Usage | None = None
) -> str:
    """Ask for a new user query (appending to ``messages``). The first one of an episode carries the LTM.

    One corrective retry when the reply holds no request, repeats one already tried with this tool
    (a small model copies its last request; the repeat is kept if the retry repeats too), or names the
    tool / talks about tools (``memory/requests.py``; kept if the retry does too: the trial still
    teaches the explorer, but the exploiter will not make it a demonstration).
    """
    usage = usage or _Usage()
    ltm = await anyio.to_thread.run_sync(ctx.store.ltm, tool.name)
    if first:
        prompt = prompts.imagine_first(
            tool.name, tool.description, ltm, max_items=ctx.settings.ltm_max_items, schema=tool.input_schema
        )
    else:
        prompt = prompts.IMAGINE_NEXT
    query = ctx.redactor.redact(await _ask_request(ctx, tool, messages, prompt, usage))
    if not query:
        query = ctx.redactor.redact(await _ask_request(ctx, tool, messages, prompts.IMAGINE_RETRY, usage))
    elif _same_text(query) in {_same_text(q) for q, _ in ltm}:
        retry = await _ask_request(ctx, tool, messages, prompts.IMAGINE_DIFFERENT, usage)
        query = ctx.redactor.redact(retry) or query
    elif request_problem(query, tool.name, description=tool.documentation) is not None:
        # it would teach nothing about choosing the tool: once more, in a user's words
        retry = ctx.redactor.redact(await _ask_request(ctx, tool, messages, prompts.IMAGINE_NATURAL, usage))
        if retry and request_problem(retry, tool.name, description=tool.documentation) is None:
            query = retry
    elif quoted := quoted_examples(query, tool.input_schema):
        # the schema's example values (a required parameter's "default"): the exemplar would be refused
        # (memory.judge_checks placeholder_arguments) and teaches a client to copy them
        again = prompts.IMAGINE_OWN_VALUES.format(values=format_values(quoted))
        retry = ctx.redactor.redact(await _ask_request(ctx, tool, messages, again, usage))
        if retry and not quoted_examples(retry, tool.input_schema):
            query = retry
    elif not prompts.parameters(tool.input_schema) and (numbers := numbers_stated(query)):
        # a tool without arguments cannot send a number the request states: the trial would be refused
        # (memory.judge_checks request_numbers; session 35-36: 8-11 of 12 trials of such tools, "the top 5
        # car makes", "a password of 20 characters", "a token valid for 2 hours")
        again = prompts.IMAGINE_NO_NUMBERS.format(numbers=", ".join(numbers[:3]))
        retry = ctx.redactor.redact(await _ask_request(ctx, tool, messages, again, usage))
        if retry and not numbers_stated(retry):
            query = retry
    return query or prompts.NO_QUERY


def _same_text(text: str) -> str:
    return " ".join(text.lower().split())


async def _ask_request(
    ctx: ExploreContext, tool: Tool, messages: list[Message], prompt: str, usage: _Usage
) -> str:
    """One imagination turn: the request as the conversation keeps it ("" when there is none)."""
    messages.append({"role": "user", "content": prompt})
    response = await _chat(
        ctx,
        tool,
        messages,
        usage,
        max_tokens=min(ctx.settings.max_tokens, 160),
        response_format=prompts.REQUEST_FORMAT,
    )
    query = read_request(response.text)
    messages.append({"role": "assistant", "content": query or response.text})
    return query


_BROKEN_REQUEST = re.compile(r'\s*\{\s*"request"\s*:\s*"(?P<body>.*)', re.DOTALL)


def read_request(text: str) -> str:
    """The user request in an imagination reply: the ``request`` field of the JSON the model was asked
    for, else (a server without structured output) the reply's text, cleaned by ``clean_query``.

    JSON that does not parse is not taken for the request (it would be tried, judged and served with its
    braces): one closed by a brace but not its string is read up to the brace; one cut off before its end
    (the token limit) is no request, so the explorer asks again. The trial prompt's date sentence, copied
    into the request from the conversation, is taken out."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("request"), str):
        text = data["request"]
    elif data is None and (broken := _BROKEN_REQUEST.match(text or "")):
        body = broken["body"].rstrip()
        if not body.endswith("}"):
            return ""
        text = body[:-1].rstrip().removesuffix('"').replace('\\"', '"')
    return clean_query(prompts.without_today_sentence(text))


async def trial(
    ctx: ExploreContext, tool: Tool, messages: list[Message], query: str, *, usage: _Usage | None = None
) -> tuple[list[Turn], str | None]:
    """Try to fulfil ``query`` with the tool: at most ``max_turn`` steps that may call it, each call
    really executed, then one that must answer.

    The first step must call (answering from memory teaches nothing). A call identical to the one before
    is not made again: the model is asked for its final answer instead (a small model otherwise repeats
    a good call until its turns run out, and the trial is lost). Returns the turns and the final answer
    (None when there is none: an unconstrained model kept calling). Raises ``BudgetExhausted`` with the
    turns so far in ``exc.turns`` when a budget stops the trial.
    """
    usage = usage or _Usage()
    assert ctx.budget is not None and ctx.rate is not None and ctx.gate is not None
    tools = [tool_definition(tool)]
    messages.append(
        {
            "role": "user",
            "content": prompts.trial_prompt(query, dated=prompts.dated(query, tool.input_schema)),
        }
    )
    turns: list[Turn] = []
    previous: tuple[str, dict[str, Any]] | None = None  # the last call made
    answer_now = False
    try:
        for turn_index in range(ctx.settings.max_turn + 1):
            before = (usage.prompt_tokens, usage.completion_tokens, usage.llm_ms)
            last = answer_now or turn_index == ctx.settings.max_turn
            kwargs = ctx.protocol.request_kwargs(tools, must_call=turn_index == 0, must_answer=last)
            response = await _chat(ctx, tool, messages, usage, **kwargs)
            parsed = ctx.protocol.parse(response, [tool.name])
            messages.append(ctx.protocol.assistant_message(response))
            turn = Turn(
                raw=_raw(response),
                kind="parse_error",
                prompt_tokens=usage.prompt_tokens - before[0],
                completion_tokens=usage.completion_tokens - before[1],
                llm_ms=usage.llm_ms - before[2],
            )
            turns.append(turn)
            if isinstance(parsed, FinalAnswer):
                turn.kind, turn.thought = "final", parsed.thought
                return turns, ctx.redactor.redact(parsed.text)
            if isinstance(parsed, ParseError):
                turn.observation, turn.is_error, turn.error_kind = parsed.message, True, "parse"
                messages.append(ctx.protocol.observation_message(parsed, parsed.message))
                continue
            assert isinstance(parsed, ParsedCall)
            if last:  # an unconstrained model called when it had to answer: the call is not made
                turn.observation, turn.is_error, turn.error_kind = prompts.TURNS_EXHAUSTED, True, "turns"
                break
            if previous == (parsed.tool, parsed.arguments):
                turn.kind, turn.tool, turn.arguments, turn.thought = (
                    "repeat",
                    parsed.tool,
                    parsed.arguments,
                    parsed.thought,
                )
                turn.observation, answer_now = prompts.REPEATED_CALL, True
                messages.append(ctx.protocol.observation_message(parsed, turn.observation))
                continue
            previous = (parsed.tool, parsed.arguments)
            try:
                ctx.budget.reserve_call(tool.name)
            except BudgetExhausted:
                turns.pop()  # this call is never made
                raise
            turn.kind, turn.tool, turn.arguments, turn.thought = (
                "call",
                parsed.tool,
                parsed.arguments,
                parsed.thought,
            )
            await ctx.gate.wait()
            await ctx.rate.acquire(tool.explore.sandbox_base_url or tool.base_url)
            result = await ctx.upstream.call(tool, parsed.arguments, purpose="explore")
            turn.tool_ms = result.elapsed_ms
            usage.tool_ms += result.elapsed_ms
            turn.is_error, turn.error_kind, turn.http_status = (
                result.is_error,
                result.error_kind,
                result.status,
            )
            turn.observation = observation_text(result, ctx.settings.observation_chars, ctx.redactor)
            messages.append(ctx.protocol.observation_message(parsed, turn.observation))
    except BudgetExhausted as exc:
        exc.turns = turns  # type: ignore[attr-defined]
        raise
    return turns, None


async def reflect(
    ctx: ExploreContext, tool: Tool, messages: list[Message], query: str, *, usage: _Usage | None = None
) -> tuple[str, str]:
    """Ask whether the query was fulfilled. Returns ("yes" | "no" | "", raw reply)."""
    usage = usage or _Usage()
    messages.append({"role": "user", "content": prompts.reflect_prompt(query)})
    response = await _chat(
        ctx, tool, messages, usage, max_tokens=8, structured={"choice": list(prompts.REFLECT_CHOICES)}
    )
    messages.append({"role": "assistant", "content": response.text})
    match = re.search(r"\b(yes|no)\b", response.text.lower())
    return (match.group(1) if match else ""), response.text


async def run_episode(
    ctx: ExploreContext, tool: Tool, episode: int, *, start_slot: int = 0
) -> list[TrialRecord]:
    """Run (or resume at ``start_slot``) one episode of ``tool``; every trial is recorded before the next.

    Stops early, without error, when a budget is used up (a trial cut short is recorded as "stopped").
    Model errors propagate: the trial in flight is lost, the recorded ones stay.
    """
    messages: list[Message] = [system_message(ctx, tool)]
    if start_slot:
        earlier = await anyio.to_thread.run_sync(ctx.store.episode_trials, tool.name, episode)
        for record in earlier[:start_slot]:
            messages.extend(record.messages)
        start_slot = len(earlier[:start_slot])
    records: list[TrialRecord] = []
    for slot in range(start_slot, ctx.settings.num_stm_slots):
        record = await _one_trial(ctx, tool, episode, slot, messages)
        if record is None:
            break
        assert ctx.writer is not None
        await ctx.writer.record(record)
        records.append(record)
        if ctx.on_trial is not None:
            ctx.on_trial(record)
        if record.status == "stopped":
            break
    return records


async def _one_trial(
    ctx: ExploreContext, tool: Tool, episode: int, slot: int, messages: list[Message]
) -> TrialRecord | None:
    started, t0 = datetime.now(UTC), time.perf_counter()
    model_name = ctx.model_name  # recorded with the trial: the adapter it started with, or the base
    mark = len(messages)
    usage = _Usage()
    phase = ctx.on_phase or (lambda *_: None)
    turns: list[Turn] = []
    final: str | None = None
    reflection = reflection_raw = ""
    status = "answered"
    try:
        phase(tool.name, episode, slot, "imagine")
        query = await imagine(ctx, tool, messages, first=slot == 0, usage=usage)
    except BudgetExhausted:
        return None
    try:
        phase(tool.name, episode, slot, "trial")
        turns, final = await trial(ctx, tool, messages, query, usage=usage)
        if final is None:
            status = "turns_exhausted"
        elif ctx.settings.reflect:
            phase(tool.name, episode, slot, "reflect")
            reflection, reflection_raw = await reflect(ctx, tool, messages, query, usage=usage)
    except BudgetExhausted as exc:
        turns = getattr(exc, "turns", turns)
        status = "stopped"
    return TrialRecord(
        tool=tool.name,
        episode=episode,
        slot=slot,
        spec_hash=tool.spec_hash,
        query=query,
        turns=turns,
        final_answer=final,
        reflection=reflection,
        reflection_raw=reflection_raw,
        status=status,  # type: ignore[arg-type]
        messages=messages[mark:],  # redacted by the store
        model=model_name,
        protocol=getattr(ctx.protocol, "name", ""),
        prompt_version=prompts.PROMPT_VERSION,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        started_at=started,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
        llm_ms=usage.llm_ms,
        tool_ms=usage.tool_ms,
    )


def observation_text(result: ToolResult, limit: int, redactor: Redactor) -> str:
    """What the model is shown of a tool result: redacted, truncated, errors marked as such."""
    text = result.text or ("(empty response)" if not result.is_error else "(no details)")
    if result.is_error and not text.lower().startswith("error"):
        text = f"Error: {text}"
    text = redactor.redact(text)
    if len(text) > limit:
        text = text[:limit] + f"... [truncated, {len(text) - limit} more characters]"
    return text


_ROLE_PREFIX = re.compile(
    r"^(?:user\s+)?(?:request|query|question|user|new request)\s*[:\-]\s*", re.IGNORECASE
)
_FORMAT_LINE = re.compile(r"^(?:thought|action|action input|observation|final answer)\s*:", re.IGNORECASE)


def clean_query(text: str) -> str:
    """The user query in a model's imagination reply: the first content line without labels or
    quotes (else what a "Thought:" or "Observation:" line says: small models label their request with
    the last label of the system prompt); "" when there is none."""
    thought = ""
    for line in (text or "").splitlines():
        line = line.replace("**", "").strip().strip("*#>").strip()
        if _FORMAT_LINE.match(line):
            if not thought and line.lower().startswith(("thought", "observation")):
                thought = _unquoted(line.split(":", 1)[1])
            continue
        line = _unquoted(_ROLE_PREFIX.sub("", line))
        if line:
            return line[:500]
    return thought[:500]


_QUOTES = {'"': '"', "'": "'", "“": "”"}


def _unquoted(text: str) -> str:
    """``text`` without the quotes around it (a pair, or one left open at the start): "'Hi'" -> "Hi",
    but "… the letter 'a'" keeps its own."""
    text = text.strip()
    while text and text[0] in _QUOTES:
        close = _QUOTES[text[0]]
        text = (text[1:-1] if len(text) > 1 and text.endswith(close) else text[1:]).strip()
    if text.endswith(tuple(_QUOTES.values())) and not any(q in text[:-1] for q in (text[-1], "“")):
        text = text[:-1].rstrip()  # a closing quote whose opening one the model left out
    return text


def fit_context(messages: list[Message], max_chars: int, *, keep_last: int = 3) -> list[Message]:
    """The conversation within ``max_chars``: older message texts are shortened first (the system
    message and the last ``keep_last`` messages are kept whole)."""
    total = sum(len(m.get("content") or "") for m in messages)
    if total <= max_chars:
        return messages
    out = [dict(m) for m in messages]
    for m in out[1:-keep_last]:
        content = m.get("content") or ""
        if len(content) > 200:
            total -= len(content) - 200
            m["content"] = content[:200] + "…"
            if total <= max_chars:
                break
    return out


def _raw(response: ChatResponse) -> str:
    if response.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in response.tool_calls]
        return (
            json.dumps({"text": response.text, "tool_calls": calls}) if response.text else json.dumps(calls)
        )
    return response.text
