"""Call protocols: how a model asks for a tool, and how its reply is parsed.

Two protocols share one interface (``CallProtocol``):

- ``ReActProtocol``: the STE paper's text format (``Thought`` / ``Action`` / ``Action Input``, then
  ``Observation:`` from us, and ``Final Answer:`` to finish). On vLLM a grammar constrains decoding
  so that every reply parses; what the model must learn is *which* tool and *which* values.
- ``NativeToolProtocol``: OpenAI-style ``tools`` / ``tool_calls`` (needs a server-side tool parser).

``parse`` returns a ``ParsedCall``, a ``FinalAnswer`` or a ``ParseError`` whose message is short and
corrective, usable directly as the observation text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ste_mcp.llm.base import ChatResponse, Message

OBSERVATION = "Observation:"


@dataclass(frozen=True)
class ParsedCall:
    """A well-formed call of a known tool. ``call_id`` is the native tool-call id ("" for ReAct)."""

    tool: str
    arguments: dict[str, Any]
    thought: str = ""
    call_id: str = ""


@dataclass(frozen=True)
class FinalAnswer:
    text: str
    thought: str = ""


@dataclass(frozen=True)
class ParseError:
    """The reply could not be used; ``message`` tells the model what to fix. ``call_id``: native only."""

    message: str
    call_id: str = field(default="", compare=False)


Parsed = ParsedCall | FinalAnswer | ParseError


def tool_def(name: str, description: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAI function-tool definition."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": dict(parameters or {"type": "object", "properties": {}}),
        },
    }


def function_of(tool: Any) -> dict[str, Any]:
    """``{"name", "description", "parameters"}`` of an OpenAI tool dict, a plain dict or an upstream Tool."""
    if isinstance(tool, Mapping):
        fn = tool.get("function", tool)
        return {
            "name": fn["name"],
            "description": str(fn.get("description") or ""),
            "parameters": fn.get("parameters")
            or fn.get("input_schema")
            or {"type": "object", "properties": {}},
        }
    return {"name": tool.name, "description": tool.description, "parameters": tool.input_schema}


def as_tool_defs(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI tool dicts for tools given as dicts or upstream ``Tool`` objects."""
    return [tool_def(**function_of(t)) for t in tools]


def format_react_call(tool: str, arguments: Mapping[str, Any], thought: str = "") -> str:
    """A call step in the ReAct format (what a model should write, what fine-tuning teaches); the
    thought defaults to naming the tool, so that demonstrations and training targets continue
    ``REACT_PREFIX`` the way the prompt asks."""
    head = f"Thought: {thought or f'{tool} fits this request.'}\n"
    return f"{head}Action: {tool}\nAction Input: {json.dumps(dict(arguments), ensure_ascii=False)}"


def format_final_answer(text: str, thought: str = "") -> str:
    head = f"Thought: {thought}\n" if thought else ""
    return f"{head}Final Answer: {text}"


def observation_message(text: str) -> Message:
    """The ReAct observation turn (a tool result or a parse error's message)."""
    return {"role": "user", "content": f"{OBSERVATION} {text}"}


class CallProtocol(Protocol):
    name: str

    def system_prompt(self, tools: Sequence[Any], instructions: str = "") -> str: ...

    def request_kwargs(
        self, tools: Sequence[Any], *, must_call: bool = False, must_answer: bool = False
    ) -> dict[str, Any]: ...

    def parse(self, response: ChatResponse, tool_names: Collection[str]) -> Parsed: ...

    def assistant_message(self, response: ChatResponse) -> Message: ...

    def observation_message(self, call: Parsed | None, text: str) -> Message: ...


# ---------------------------------------------------------------------------------------------- ReAct

# The call format comes last: small models imitate the last example in the prompt, and a format that
# ends with "Final Answer" or "Observation:" gets exactly that back (measured on bench/dev, never on
# STE-50 test items: docs/BENCHMARKS.md, "Learning curve").
_REACT_FORMAT = """\
When a tool's result you already have answers the request, reply with "Final Answer: <the answer>". \
Otherwise call a tool: reply with exactly these three lines and nothing else:
Thought: <one line: which tool fits and why>
Action: <the tool name, one of: {names}>
Action Input: <the arguments as one JSON object, e.g. {{"key_1": "value_1", "key_2": 2}}>
The tool's result comes back to you in a message starting with "{obs}"; never write it yourself. \
Make one call at a time."""
# An unconstrained reply starts from this (vLLM continues it): the model cannot open with "Observation:".
REACT_PREFIX = "Thought:"

_JSON_GRAMMAR = r"""
object ::= "{" ws (member (ws "," ws member)*)? ws "}"
member ::= string ws ":" ws value
value ::= object | array | string | number | "true" | "false" | "null"
array ::= "[" ws (value (ws "," ws value)*)? ws "]"
string ::= "\"" ([^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))* "\""
number ::= integer ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
integer ::= "-"? ("0" | [1-9] [0-9]*)
ws ::= [ \t\n]{0,8}
"""

_ACTION = re.compile(r"^\s*Action\s*:", re.MULTILINE)
_ACTION_LINE = re.compile(r"^\s*Action\s*:[ \t]*(.*)$", re.MULTILINE)
_ACTION_INPUT = re.compile(r"^\s*Action\s*Input\s*:", re.MULTILINE)
_FINAL = re.compile(r"^\s*Final\s*Answer\s*:", re.MULTILINE)
_THOUGHT = re.compile(
    r"Thought\s*:\s*(.*?)(?=^\s*(?:Action|Final\s*Answer)\s*:|\Z)", re.DOTALL | re.MULTILINE
)


def react_grammar(
    tools: Sequence[Any], *, must_call: bool = False, must_answer: bool = False, thought: bool = True
) -> str:
    """An EBNF grammar (xgrammar, as vLLM's ``structured_outputs.grammar``) for one ReAct step.

    ``tools``: tool dicts or upstream ``Tool`` objects, whose Action Input is held to their parameters
    (only the declared names, each once, each value of its declared type or enum, every required one), or bare
    tool names (any JSON object). ``must_call``: the step is a call (no final answer); ``must_answer``:
    the step is the final answer (no call). ``thought``: the step may open with one ``Thought:`` line
    (a prompt that asks for no thought gets none: unasked, a small model rambles there and then calls
    what it rambled about).
    """
    if must_call and must_answer:
        raise ValueError("a step cannot be both a call and the final answer")
    calls, rules = [], []
    for i, tool in enumerate(sorted(tools, key=_tool_name)):
        if isinstance(tool, str):
            name, args = tool, "object"
        else:
            fn = function_of(tool)
            name, args = fn["name"], f"args{i}"
            rules.extend(_arguments_rules(args, fn["parameters"]))
        calls.append(f'{json.dumps(name)} "\\nAction Input: " {args}')
    step = "action" if must_call else "final" if must_answer else "(action | final)"
    head = [
        f'root ::= ("Thought: " line "\\n")? {step}' if thought else f"root ::= {step}",
        "line ::= [^\\n]{0,300}",  # a thought is one short line: a rambling one would eat max_tokens
        'action ::= "Action: " (' + (" | ".join(calls) or '""') + ")",
        'final ::= "Final Answer: " [^\\n]{1,2000}',  # one line: text after it could hold a stray Action
    ]
    return "\n".join([*head, *rules]) + _JSON_GRAMMAR


def _tool_name(tool: Any) -> str:
    return tool if isinstance(tool, str) else function_of(tool)["name"]


# Up to this many declared keys, an arguments object may hold them in any order (one rule per set of
# keys already written: 2**n rules); a tool with more keeps the declared order, required keys first.
ANY_ORDER_MAX_KEYS = 6


def _arguments_rules(rule: str, schema: Mapping[str, Any]) -> list[str]:
    """Rules for one tool's arguments object: declared keys only (what ``validate_arguments`` accepts),
    each at most once (a free grammar lets a small model repeat one key until it runs out of tokens),
    every required key present. The keys come in any order (an adapter writes them in the order its
    exemplars had; a fixed order made it drop or garble the keys it wanted first) up to
    ``ANY_ORDER_MAX_KEYS`` keys; beyond that, required keys first, then optional ones, in declared order."""
    properties = schema.get("properties") or {}
    if not properties:
        return [f'{rule} ::= "{{" ws "}}"']
    keys = list(properties)
    required = {k for k in schema.get("required") or [] if k in properties}
    rules = []
    for j, key in enumerate(keys):
        value = _value_rule(properties[key])
        rules.append(f'{rule}k{j} ::= {json.dumps(json.dumps(key, ensure_ascii=False))} ws ":" ws {value}')
    if len(keys) <= ANY_ORDER_MAX_KEYS:
        return [*_any_order_rules(rule, keys, required), *rules]
    return [*_declared_order_rules(rule, keys, required), *rules]


def _any_order_rules(rule: str, keys: list[str], required: set[str]) -> list[str]:
    """``{rule}s{mask}``: what may follow once the keys in ``mask`` (a bit set) are written."""
    need = sum(1 << j for j, k in enumerate(keys) if k in required)
    full = (1 << len(keys)) - 1

    def after(mask: int) -> str:
        lead = '"{" ws' if mask == 0 else 'ws "," ws'
        nexts = [f"{lead} {rule}k{j} {rule}s{mask | 1 << j}" for j in range(len(keys)) if not mask & 1 << j]
        close = ['"{" ws "}"' if mask == 0 else 'ws "}"'] if mask & need == need else []
        return " | ".join(f"({alt})" for alt in nexts + close)

    return [f"{rule} ::= {after(0)}"] + [f"{rule}s{mask} ::= {after(mask)}" for mask in range(1, full + 1)]


def _declared_order_rules(rule: str, keys: list[str], required: set[str]) -> list[str]:
    """Required keys first, then any optional ones, each in declared order."""
    first = [f"{rule}k{j}" for j, k in enumerate(keys) if k in required]
    optional = [f"{rule}k{j}" for j, k in enumerate(keys) if k not in required]
    sep = 'ws "," ws'
    rules = []
    # t{i}: optional keys i.. , each present or not, each after a comma
    for i, member in enumerate(optional):
        rest = f" {rule}t{i + 1}" if i + 1 < len(optional) else ""
        rules.append(f"{rule}t{i} ::= ({sep} {member})?{rest}")
    tail = f" {rule}t0" if optional else ""
    if first:
        body = f" {sep} ".join(first) + tail
    else:  # the first optional key present has no comma before it
        starts = [m + (f" {rule}t{i + 1}" if i + 1 < len(optional) else "") for i, m in enumerate(optional)]
        body = f"({' | '.join(starts)})?"
    return [f'{rule} ::= "{{" ws {body} ws "}}"', *rules]


_TYPE_RULES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": '("true" | "false")',
    "array": "array",
    "object": "object",
    "null": '"null"',
}


def _value_rule(schema: Any) -> str:
    """The grammar expression of one parameter's value: its enum, its type(s), or any JSON value."""
    if not isinstance(schema, Mapping):
        return "value"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return "(" + " | ".join(json.dumps(json.dumps(v, ensure_ascii=False)) for v in enum) + ")"
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not all(t in _TYPE_RULES for t in types):
        return "value"
    if "integer" in types and "number" in types:
        types = [t for t in types if t != "integer"]
    return "(" + " | ".join(_TYPE_RULES[t] for t in types) + ")"


def _names(tool_names: Collection[str]) -> str:
    return ", ".join(sorted(tool_names))


class ReActProtocol:
    """The paper's text protocol. ``constrained``: send a vLLM grammar so that every reply parses;
    ``prefill``: otherwise start every reply with ``REACT_PREFIX``."""

    name = "react"

    def __init__(self, constrained: bool = True, prefill: bool = True) -> None:
        self.constrained = constrained
        self.prefill = prefill

    def system_prompt(self, tools: Sequence[Any], instructions: str = "") -> str:
        fns = [function_of(t) for t in tools]
        listing = "\n\n".join(
            f"{fn['name']}: {fn['description'].strip()}\nParameters: {json.dumps(fn['parameters'], ensure_ascii=False)}"
            for fn in fns
        )
        parts = [instructions.strip()] if instructions.strip() else []
        parts.append(f"You have access to the following tools:\n\n{listing}")
        parts.append(_REACT_FORMAT.format(names=_names(fn["name"] for fn in fns), obs=OBSERVATION))
        return "\n\n".join(parts)

    def request_kwargs(
        self, tools: Sequence[Any], *, must_call: bool = False, must_answer: bool = False
    ) -> dict[str, Any]:
        """Request options for one step; (constrained) ``must_call``: the step is a tool call,
        ``must_answer``: the step is the final answer."""
        kwargs: dict[str, Any] = {"stop": [OBSERVATION]}
        if self.constrained:
            grammar = react_grammar(tools, must_call=must_call, must_answer=must_answer)
            kwargs["structured"] = {"grammar": grammar}
        elif self.prefill:
            kwargs["prefix"] = REACT_PREFIX
        return kwargs

    def parse(self, response: ChatResponse, tool_names: Collection[str]) -> Parsed:
        return parse_react(response.text, tool_names)

    def assistant_message(self, response: ChatResponse) -> Message:
        return {"role": "assistant", "content": response.text.split(OBSERVATION, 1)[0].rstrip()}

    def observation_message(self, call: Parsed | None, text: str) -> Message:
        return observation_message(text)


def parse_react(text: str, tool_names: Collection[str]) -> Parsed:
    """Parse one ReAct step by the paper's rules (one Action + Action Input, JSON from first { to last })."""
    text = text.split(OBSERVATION, 1)[0]
    thought_match = _THOUGHT.search(text)
    thought = thought_match.group(1).strip() if thought_match else ""
    actions = _ACTION.findall(text)
    inputs = _ACTION_INPUT.findall(text)
    final = _FINAL.search(text)
    if not actions and not inputs:
        if final:
            answer = text[final.end() :].strip()
            if answer:
                return FinalAnswer(answer, thought)
            return ParseError('"Final Answer:" is empty. Write the answer to the user after it.')
        return ParseError(
            'No "Action:" or "Final Answer:" found. Call a tool with "Action: <tool name>" and '
            '"Action Input: {...}", or finish with "Final Answer: <answer>".'
        )
    if final:
        return ParseError('Write either one Action with its Action Input or a "Final Answer:", not both.')
    if len(actions) > 1 or len(inputs) > 1:
        return ParseError(
            f"Found {max(len(actions), len(inputs))} actions. Make ONE call at a time: a single "
            '"Action:" and a single "Action Input:", then wait for the Observation.'
        )
    if not actions:
        return ParseError(
            '"Action Input:" without an "Action:" line. Name the tool with "Action: <tool name>".'
        )
    if not inputs:
        return ParseError(
            '"Action:" without an "Action Input:" line. Give the arguments as "Action Input: {...}".'
        )
    name = _ACTION_LINE.search(text).group(1).strip().strip("`'\"")  # type: ignore[union-attr]
    if name not in tool_names:
        shown = name if len(name) <= 60 else name[:57] + "..."
        return ParseError(
            f'Unknown tool "{shown}". The only valid values after "Action:" are: {_names(tool_names)}.'
        )
    raw = text[_ACTION_INPUT.search(text).end() :]  # type: ignore[union-attr]
    return _arguments(name, raw, thought, brace_span=True)


def _arguments(name: str, raw: str, thought: str, *, brace_span: bool, call_id: str = "") -> Parsed:
    if brace_span:
        start, end = raw.find("{"), raw.rfind("}")
        if start < 0 or end < start:
            return ParseError(
                f'The arguments for "{name}" must be one JSON object in braces, e.g. {{"key": "value"}}.'
            )
        raw = raw[start : end + 1]
    elif not raw.strip():
        raw = "{}"
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError as exc:
        return ParseError(
            f'The arguments for "{name}" are not valid JSON ({exc.msg} at char {exc.pos}). Fix the JSON.',
            call_id,
        )
    if not isinstance(arguments, dict):
        return ParseError(
            f'The arguments for "{name}" must be a JSON object, not {type(arguments).__name__}.', call_id
        )
    return ParsedCall(name, arguments, thought, call_id)


# --------------------------------------------------------------------------------------------- native


class NativeToolProtocol:
    """OpenAI-style tool calls. ``tool_choice``: "auto" (call or answer), "required", or a forced tool."""

    name = "native"

    def __init__(self, tool_choice: str | dict[str, Any] = "auto", strict: bool = False) -> None:
        self.tool_choice = tool_choice
        self.strict = strict

    def system_prompt(self, tools: Sequence[Any], instructions: str = "") -> str:
        return instructions.strip()

    def request_kwargs(
        self, tools: Sequence[Any], *, must_call: bool = False, must_answer: bool = False
    ) -> dict[str, Any]:
        defs = as_tool_defs(tools)
        if self.strict:
            for d in defs:
                d["function"]["strict"] = True
        choice = "required" if must_call else "none" if must_answer else self.tool_choice
        return {"tools": defs, "tool_choice": choice}

    def parse(self, response: ChatResponse, tool_names: Collection[str]) -> Parsed:
        calls = response.tool_calls
        if len(calls) > 1:
            return ParseError(f"Found {len(calls)} tool calls. Make ONE call at a time.", calls[0].id)
        if calls:
            call = calls[0]
            if call.name not in tool_names:
                return ParseError(
                    f'Unknown tool "{call.name}". The only valid tools are: {_names(tool_names)}.', call.id
                )
            return _arguments(
                call.name, call.arguments, response.text.strip(), brace_span=False, call_id=call.id
            )
        text = response.text.strip()
        if "<tool_call>" in text:
            return ParseError("The tool call could not be read. Call the tool with valid JSON arguments.")
        if not text:
            return ParseError("The reply was empty. Call a tool or answer the user.")
        return FinalAnswer(text)

    def assistant_message(self, response: ChatResponse) -> Message:
        message: Message = {"role": "assistant", "content": response.text or None}
        if response.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in response.tool_calls
            ]
        return message

    def observation_message(self, call: Parsed | None, text: str) -> Message:
        call_id = getattr(call, "call_id", "")
        if call_id:
            return {"role": "tool", "tool_call_id": call_id, "content": text}
        return {"role": "user", "content": text}


def protocol_for(
    model_name: str, setting: str = "auto", *, constrained: bool = True
) -> ReActProtocol | NativeToolProtocol:
    """The protocol for a model. ``auto`` is ReAct for every model: it is the format STE explores and
    fine-tunes with, and (constrained on vLLM) it always parses; ``native`` is opt-in."""
    if setting in ("auto", "react"):
        return ReActProtocol(constrained=constrained)
    if setting == "native":
        return NativeToolProtocol()
    raise ValueError(f"unknown call protocol {setting!r} for model {model_name!r}: use react, native or auto")
