"""The STE-50 scorer: the paper's three metrics on the first tool call of each answer.

A prediction is ``{"id", "output"}`` (raw ReAct text) or ``{"id", "tool_calls": [{"name",
"arguments"}, ...]}`` (native calls; ``arguments`` a JSON string or an object). An item is a line of
``test.jsonl`` (``id``, ``tool``, ``mcp_name``, ``arguments``) or anything with the same keys.

- **wellformed** (over all items): a call whose arguments are a JSON object. ReAct text needs exactly
  one ``Action:`` / ``Action Input:`` pair, the arguments being the text from the first ``{`` to the
  last ``}`` after ``Action Input:``; a final answer without a call is not well-formed.
- **api_match** (over the well-formed items, the paper's convention; ``api_match_all`` over all): the
  called tool, resolved against the tools shown (``<tool_NAME>`` accepted, an unknown name mapped to
  the closest shown name by string similarity), is the ground-truth tool.
- **correct** (over all items): the tool matches and every ground-truth argument is present with the
  same value (strings trimmed, case-folded, whitespace collapsed; numbers as numbers; booleans as
  true/false); an empty ground-truth value may be left out; extra arguments are allowed.

Beside them, stricter than the paper, what the product would do with the call (our proxy serves tools
by their exact MCP name and validates arguments before any upstream request):

- **exact_name** (over all items): well-formed, and the called name is the ground-truth tool's name
  exactly (no ``<tool_…>`` stripping, no closest-name mapping).
- **strict_correct** (over all items): exact name, arguments the proxy accepts (valid against the tool's
  input schema by ``ste_mcp.upstream.validation.validate_arguments``: declared keys only, types,
  required keys) and equal to the ground truth by the same comparison as **correct**. Judged only when
  the scorer is given the tools' input schemas (``schemas``); otherwise ``None``.

See ``../shared/bench/ste50/README.md`` for the protocol.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

ACTION = "Action:"
ACTION_INPUT = "Action Input:"
FINAL_ANSWER = "Final Answer:"
_MIN_SIMILARITY = 1e-6  # any shared character: a name sharing nothing with any tool stays unmatched


class Call(BaseModel):
    """The first tool call of an answer, or why there is none."""

    name: str | None = None
    arguments: dict[str, Any] | None = None
    error: str | None = None  # set when the call is not well-formed


class ItemScore(BaseModel):
    """How one prediction scored against its item."""

    id: str
    tool: str  # ground-truth tool (the item's mcp_name, else its tool)
    called: str | None = None  # the resolved tool name of the first call
    wellformed: bool = False
    api_match: bool = False
    correct: bool = False
    reason: str = ""  # why it is not correct ("" when correct)
    exact_name: bool = False  # well-formed and the called name is exactly the ground-truth tool's
    strict_correct: bool | None = None  # None: not judged (no input schemas given)
    strict_reason: str = ""  # why it is not strictly correct ("" when it is, or when not judged)


class Metrics(BaseModel):
    """Counts and the paper's percentages for a group of items."""

    n: int = 0
    n_wellformed: int = 0
    n_api_match: int = 0
    n_correct: int = 0
    wellformed: float = 0.0  # % of n
    api_match: float = 0.0  # % of the well-formed items (the paper's convention)
    api_match_all: float = 0.0  # % of n (stricter)
    correct: float = 0.0  # % of n
    n_exact_name: int = 0
    exact_name: float = 0.0  # % of n
    n_strict_correct: int | None = None  # None: some item was not judged strictly (no schemas)
    strict_correct: float | None = None  # % of n

    @classmethod
    def of(cls, scores: Sequence[ItemScore]) -> Metrics:
        n = len(scores)
        w = sum(s.wellformed for s in scores)
        a = sum(s.api_match for s in scores)
        c = sum(s.correct for s in scores)
        e = sum(s.exact_name for s in scores)
        judged = all(s.strict_correct is not None for s in scores)
        strict = sum(bool(s.strict_correct) for s in scores) if judged else None
        return cls(
            n=n,
            n_wellformed=w,
            n_api_match=a,
            n_correct=c,
            wellformed=_pct(w, n),
            api_match=_pct(a, w),
            api_match_all=_pct(a, n),
            correct=_pct(c, n),
            n_exact_name=e,
            exact_name=_pct(e, n),
            n_strict_correct=strict,
            strict_correct=None if strict is None else _pct(strict, n),
        )


class Summary(Metrics):
    """Overall metrics, metrics per ground-truth tool, and every item's score."""

    per_tool: dict[str, Metrics] = Field(default_factory=dict)
    items: list[ItemScore] = Field(default_factory=list)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


# ---------------------------------------------------------------- parsing


def parse_react(text: str) -> Call:
    """The paper's ReAct parsing: exactly one Action / Action Input pair, JSON from first '{' to last '}'."""
    head = text
    if FINAL_ANSWER in text:
        head = text.split(FINAL_ANSWER, 1)[0]
        if ACTION_INPUT not in head:
            return Call(error="final answer without a tool call")
    n_input = head.count(ACTION_INPUT)
    if n_input == 0:
        return Call(error='no "Action Input:"')
    if n_input > 1:
        return Call(error=f'{n_input} "Action Input:" (exactly one call expected)')
    before, after = head.split(ACTION_INPUT)
    n_action = before.count(ACTION)
    if n_action != 1:
        return Call(error=f'{n_action} "Action:" before "Action Input:" (exactly one expected)')
    name = before.split(ACTION, 1)[1].strip()
    if not name:
        return Call(error='empty "Action:"')
    start, end = after.find("{"), after.rfind("}")
    if start == -1 or end < start:
        return Call(name=name, error="Action Input has no {...} JSON object")
    return _with_arguments(name, after[start : end + 1])


def parse_native(tool_calls: Sequence[Mapping[str, Any]]) -> Call:
    """The first native tool call (``arguments`` a JSON string or an object)."""
    if not tool_calls:
        return Call(error="no tool call")
    first = tool_calls[0]
    function = first.get("function")  # OpenAI wire form {"function": {"name", "arguments"}}
    if isinstance(function, Mapping):
        first = function
    name = str(first.get("name") or "").strip()
    if not name:
        return Call(error="tool call without a name")
    args = first.get("arguments", {})
    if isinstance(args, str):
        return _with_arguments(name, args)
    if not isinstance(args, Mapping):
        return Call(name=name, error=f"arguments are a {type(args).__name__}, not a JSON object")
    return Call(name=name, arguments=dict(args))


def _with_arguments(name: str, text: str) -> Call:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return Call(name=name, error=f"arguments are not valid JSON: {exc}")
    if not isinstance(value, dict):
        return Call(name=name, error=f"arguments are a JSON {type(value).__name__}, not an object")
    return Call(name=name, arguments=value)


def first_call(prediction: Mapping[str, Any]) -> Call:
    """The first call of a prediction: its native ``tool_calls`` if any, else its ReAct ``output``."""
    tool_calls = prediction.get("tool_calls")
    if tool_calls:
        return parse_native(tool_calls)
    output = prediction.get("output")
    if isinstance(output, str):
        return parse_react(output)
    return Call(error="prediction has neither tool_calls nor output text")


def resolve_name(name: str, tool_names: Sequence[str]) -> str:
    """Map a called name onto the tools shown: exact, ``<tool_NAME>``, else the most similar name."""
    if not tool_names or name in tool_names:
        return name
    bare = name.replace("<tool_", "").strip("<>").strip()
    if bare in tool_names:
        return bare
    close = difflib.get_close_matches(bare, tool_names, n=1, cutoff=_MIN_SIMILARITY)
    return close[0] if close else bare


# ---------------------------------------------------------------- values


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format(value, "g") if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return " ".join(value.casefold().split())


def same_value(expected: Any, got: Any) -> bool:
    """Whether a predicted argument value equals the ground truth under the README's rules."""
    exp_is_number = isinstance(expected, int | float) and not isinstance(expected, bool)
    got_is_number = isinstance(got, int | float) and not isinstance(got, bool)
    if exp_is_number or got_is_number:
        a, b = _number(expected), _number(got)
        if a is not None and b is not None:
            return a == b
    return _text(expected) == _text(got)


def argument_mismatch(expected: Mapping[str, Any], got: Mapping[str, Any]) -> str:
    """Why the arguments are not correct ("" when every ground-truth argument is matched)."""
    for key, value in expected.items():
        if key not in got:
            if value == "":
                continue
            return f"missing argument {key!r}"
        if not same_value(value, got[key]):
            return f"argument {key!r} is {got[key]!r}, expected {value!r}"
    return ""


# ---------------------------------------------------------------- scoring


def item_tool(item: Mapping[str, Any]) -> str:
    """The ground-truth tool of an item (its MCP name when it has one)."""
    name = item.get("mcp_name") or item.get("tool")
    if not name:
        raise ValueError(f"item {item.get('id')!r} has no 'tool' or 'mcp_name'")
    return str(name)


def score_prediction(
    pred: Mapping[str, Any],
    item: Mapping[str, Any],
    tool_names: Sequence[str],
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
) -> ItemScore:
    """Score one prediction; ``tool_names`` are ALL the tools the model was shown (for name resolution),
    ``schemas`` the tools' input schemas by name (for the strict metric; ``None``: not judged)."""
    gt = item_tool(item)
    result = ItemScore(id=str(item.get("id", "")), tool=gt)
    call = first_call(pred)
    if call.error is not None or call.name is None or call.arguments is None:
        result.reason = f"not well-formed: {call.error}"
        return _strict(result, schemas, result.reason)
    result.wellformed = True
    result.exact_name = call.name == gt
    result.called = resolve_name(call.name, tool_names)
    if result.called not in {gt, item.get("tool"), item.get("mcp_name")}:
        result.reason = f"called {result.called!r}, expected {gt!r}"
        return _strict(result, schemas, f"called {call.name!r}, expected {gt!r}")
    result.api_match = True
    result.reason = argument_mismatch(item.get("arguments") or {}, call.arguments)
    result.correct = not result.reason
    if not result.exact_name:
        return _strict(result, schemas, f"called {call.name!r}, not exactly {gt!r}")
    invalid = proxy_rejects(gt, schemas.get(gt), call.arguments) if schemas is not None else ""
    return _strict(result, schemas, invalid or result.reason)


def _strict(result: ItemScore, schemas: Mapping[str, Any] | None, reason: str) -> ItemScore:
    if schemas is not None:
        result.strict_correct = not reason
        result.strict_reason = reason
    return result


def proxy_rejects(tool: str, schema: Mapping[str, Any] | None, arguments: Mapping[str, Any]) -> str:
    """Why our proxy would refuse these arguments for ``tool`` ("" when it accepts them): the same
    validation it runs before any upstream request (unknown keys, types, required keys)."""
    if schema is None:
        return f"no input schema for tool {tool!r}"
    from ste_mcp.upstream.tools import Tool
    from ste_mcp.upstream.validation import validate_arguments

    spec = Tool(name=tool, description="", input_schema=dict(schema), method="GET", path="/", base_url="")
    problem = validate_arguments(spec, dict(arguments))
    return f"the proxy rejects the arguments: {problem}" if problem else ""


def score(
    predictions: Iterable[Mapping[str, Any]],
    items: Sequence[Mapping[str, Any]],
    tool_names: Sequence[str],
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
) -> Summary:
    """Score predictions (joined to items by ``id``) over exactly ``items``; ``schemas`` (the tools'
    input schemas by name) turn on the strict metric.

    An item without a prediction counts as not well-formed; predictions for other ids are ignored.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for pred in predictions:
        if "id" not in pred:
            raise ValueError(f"prediction without an 'id': {str(dict(pred))[:200]}")
        key = str(pred["id"])
        if key in by_id:
            raise ValueError(f"two predictions for item {key!r}")
        by_id[key] = pred
    scores = [
        score_prediction(by_id.get(str(item.get("id")), {}), item, tool_names, schemas) for item in items
    ]
    for s in scores:
        if str(s.id) not in by_id:
            s.reason = "no prediction"
            if s.strict_correct is not None:
                s.strict_reason = s.reason
    return summarize(scores)


def summarize(scores: Sequence[ItemScore]) -> Summary:
    """Overall and per-tool metrics of item scores."""
    groups: dict[str, list[ItemScore]] = {}
    for s in scores:
        groups.setdefault(s.tool, []).append(s)
    overall = Metrics.of(scores)
    return Summary(
        **overall.model_dump(),
        per_tool={tool: Metrics.of(group) for tool, group in sorted(groups.items())},
        items=list(scores),
    )


def score_outputs(
    items: Sequence[Mapping[str, Any]], outputs: Sequence[str], tool_names: Sequence[str]
) -> dict[str, Any]:
    """Metrics (a plain dict, without per-item scores) of raw ReAct outputs, one per item, in order."""
    if len(items) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs for {len(items)} items")
    scores = [
        score_prediction({"output": out}, item, tool_names) for item, out in zip(items, outputs, strict=True)
    ]
    return summarize(scores).model_dump(exclude={"items"})
