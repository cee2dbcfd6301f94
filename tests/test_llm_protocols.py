"""Call protocols: every parse path of ReAct and native tool calls, messages, the ReAct grammar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xgrammar

from ste_mcp.llm.base import ChatResponse, Choice, ToolCall
from ste_mcp.llm.protocols import (
    ANY_ORDER_MAX_KEYS,
    FinalAnswer,
    NativeToolProtocol,
    ParsedCall,
    ParseError,
    ReActProtocol,
    format_react_call,
    parse_react,
    protocol_for,
    react_grammar,
    tool_def,
)
from ste_mcp.upstream.tools import Tool

NAMES = ["get_weather", "add_days"]
WEATHER = tool_def(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def reply(text: str = "", calls: list[ToolCall] | None = None) -> ChatResponse:
    return ChatResponse(model="m", choices=[Choice(text=text, tool_calls=calls or [])])


def test_react_call_with_thought_and_hallucinated_observation() -> None:
    text = 'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}\nObservation: {"t": 1}'
    assert parse_react(text, NAMES) == ParsedCall("get_weather", {"city": "Paris"}, "I need the weather.")


def test_react_json_spans_first_to_last_brace() -> None:
    text = 'Action: get_weather\nAction Input: here you go: {"city": {"name": "Paris"}} thanks'
    assert parse_react(text, NAMES) == ParsedCall("get_weather", {"city": {"name": "Paris"}})


def test_react_final_answer() -> None:
    parsed = parse_react("Thought: I now know the final answer\nFinal Answer: It is 21 °C\nin Paris.", NAMES)
    assert parsed == FinalAnswer("It is 21 °C\nin Paris.", "I now know the final answer")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I think it is sunny.", 'No "Action:" or "Final Answer:" found'),
        ("Final Answer:   ", '"Final Answer:" is empty'),
        ('Action: get_weather\nAction Input: {"city": "Rome"}\nFinal Answer: sunny', "not both"),
        (
            'Action: get_weather\nAction Input: {"city": "A"}\nAction: get_weather\nAction Input: {"city": "B"}',
            "Found 2 actions",
        ),
        ('Action Input: {"city": "Rome"}', '"Action Input:" without an "Action:"'),
        ("Action: get_weather", '"Action:" without an "Action Input:"'),
        ('Action: get_wether\nAction Input: {"city": "Rome"}', 'Unknown tool "get_wether"'),
        ("Action: get_weather\nAction Input: city=Rome", "must be one JSON object in braces"),
        ('Action: get_weather\nAction Input: {"city": Rome}', "not valid JSON"),
        ("Action: get_weather\nAction Input: [1, 2]", "must be one JSON object"),
    ],
)
def test_react_parse_errors_are_specific(text: str, expected: str) -> None:
    parsed = parse_react(text, NAMES)
    assert isinstance(parsed, ParseError)
    assert expected in parsed.message


def test_unknown_tool_error_lists_the_valid_names() -> None:
    parsed = parse_react("Action: search\nAction Input: {}", NAMES)
    assert isinstance(parsed, ParseError)
    assert "add_days, get_weather" in parsed.message


def test_react_system_prompt_lists_tools_and_format() -> None:
    tool = Tool(
        name="add_days",
        description="Add days to a date.",
        input_schema={"type": "object", "properties": {"days": {"type": "integer"}}},
        method="GET",
        path="/add",
        base_url="http://127.0.0.1:1",
    )
    prompt = ReActProtocol().system_prompt([WEATHER, tool], "Be brief.")
    assert prompt.startswith("Be brief.")
    assert "get_weather: Current weather for a city." in prompt
    assert 'Parameters: {"type": "object", "properties": {"days"' in prompt
    for line in ("Thought:", "Action:", "Action Input:", "Observation", "Final Answer:"):
        assert line in prompt


def test_react_request_kwargs_stop_and_grammar() -> None:
    kwargs = ReActProtocol().request_kwargs([WEATHER])
    assert kwargs["stop"] == ["Observation:"]
    assert '"get_weather"' in kwargs["structured"]["grammar"]
    assert "structured" not in ReActProtocol(constrained=False).request_kwargs([WEATHER])


def grammar_acceptor(ebnf: str):
    """Whether a whole text is a complete sentence of the grammar (xgrammar, as vLLM uses it)."""
    tokenizer_info = xgrammar.TokenizerInfo([chr(c) for c in range(32, 127)] + ["\n"])
    compiled = xgrammar.GrammarCompiler(tokenizer_info).compile_grammar(xgrammar.Grammar.from_ebnf(ebnf))

    def accepts(text: str) -> bool:
        matcher = xgrammar.GrammarMatcher(compiled, terminate_without_stop_token=True)
        return matcher.accept_string(text) and matcher.is_terminated()

    return accepts


def test_react_grammar_compiles_and_accepts_only_the_format() -> None:
    accepts = grammar_acceptor(react_grammar(NAMES))

    assert accepts('Thought: go\nAction: get_weather\nAction Input: {"city": "Paris", "n": [1, 2.5e3]}')
    assert accepts("Final Answer: 42")
    assert not accepts('Action: get_wether\nAction Input: {"city": "Paris"}')
    assert not accepts("Action: get_weather\nAction Input: [1]")
    assert not accepts("It is sunny.")


def test_grammar_holds_arguments_to_the_tool_parameters() -> None:
    """Small models copy the schema into the call ({"type": "object", ...}), invent keys or repeat one:
    the grammar admits only declared names, each once, each with its type or enum, in any order (an
    adapter keeps its exemplars' order), every required one present."""
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "units": {"enum": ["C", "F"]},
            "days": {"type": "integer"},
            "rain": {"type": "boolean"},
            "café": {"type": ["number", "null"]},
        },
        "required": ["city"],
    }
    tools = [tool_def("get_weather", "w", schema), tool_def("now", "t"), "add_days"]
    accepts = grammar_acceptor(react_grammar(tools))
    call = "Action: get_weather\nAction Input: "

    assert accepts(call + '{"city": "Paris"}')
    assert accepts(call + '{"city": "Paris", "units": "F", "days": 3, "rain": false, "café": 1.5}')
    assert accepts(call + '{"city": "Paris", "café": null}')
    assert accepts(call + '{"units": "C", "city": "Paris"}')  # any order
    assert accepts(call + '{"rain": true, "days": 1, "city": "Paris", "units": "C"}')
    assert not accepts(call + '{"city": "Paris", "days": 1, "days": 2}')  # each key once
    assert not accepts(call + '{"days": 1, "city": "Paris", "days": 2}')
    assert not accepts(call + '{"units": "C"}')  # required missing
    assert not accepts(call + '{"units": "C", "days": 1}')
    assert not accepts(call + '{"city": "Paris", "units": "K"}')  # not in the enum
    assert not accepts(call + '{"city": "Paris", "days": 2.5}')  # not an integer
    assert not accepts(call + '{"city": 3}')
    assert not accepts(call + '{"city": "Paris", "country": "FR"}')  # undeclared
    assert not accepts(call + '{"type": "object", "properties": {}}')  # the schema copied
    assert accepts("Action: now\nAction Input: {}")
    assert not accepts('Action: now\nAction Input: {"type": "object"}')
    assert accepts('Action: add_days\nAction Input: {"anything": [1]}')  # a bare name: any object
    only_optional = tool_def("t", "", {"type": "object", "properties": {"a": {"type": "integer"}, "b": {}}})
    accepts = grammar_acceptor(react_grammar([only_optional]))
    for args in ("{}", '{"a": 1}', '{"b": "x"}', '{"a": 1, "b": [2]}', '{"b": 1, "a": 1}'):
        assert accepts(f"Action: t\nAction Input: {args}"), args
    for args in (
        '{"a": 1, "a": 2}',
        '{"b": 1, "a": 1, "b": 2}',
        '{, "a": 1}',
        '{"a": 1,}',
        '{"a": 1 "b": 2}',
    ):
        assert not accepts(f"Action: t\nAction Input: {args}"), args


def test_a_tool_with_many_keys_keeps_the_declared_order() -> None:
    """Past ANY_ORDER_MAX_KEYS keys the any-order rules (2**n) would be too many: required keys first,
    then optional ones in declared order, each still at most once."""
    n = ANY_ORDER_MAX_KEYS + 1
    schema = {
        "type": "object",
        "properties": {f"p{i}": {"type": "integer"} for i in range(n)},
        "required": ["p3"],
    }
    accepts = grammar_acceptor(react_grammar([tool_def("wide", "", schema)]))
    call = "Action: wide\nAction Input: "

    assert accepts(call + '{"p3": 1}')
    assert accepts(call + '{"p3": 1, "p0": 2, "p6": 3}')
    assert not accepts(call + '{"p0": 2, "p3": 1}')  # required first
    assert not accepts(call + '{"p3": 1, "p6": 3, "p0": 2}')  # optional in declared order
    assert not accepts(call + '{"p3": 1, "p0": 2, "p0": 2}')
    assert not accepts(call + '{"p0": 2}')


def test_grammar_for_every_ste50_tool_compiles() -> None:
    tools = json.loads((Path(__file__).parents[1] / "bench" / "ste50" / "tools.json").read_text())
    accepts = grammar_acceptor(
        react_grammar([tool_def(t["name"], t["description"], t["parameters"]) for t in tools])
    )
    assert accepts('Action: add_date\nAction Input: {"date": "2024-01-31", "days": 30}')
    assert not accepts('Action: add_date\nAction Input: {"date": "2024-01-31", "days": "30"}')


def test_must_call_grammar_refuses_a_final_answer() -> None:
    accepts = grammar_acceptor(react_grammar(NAMES, must_call=True))

    assert accepts('Thought: go\nAction: get_weather\nAction Input: {"city": "Paris"}')
    assert not accepts("Final Answer: 42")
    assert not accepts("Thought: I know it\nFinal Answer: 42")
    assert not accepts("Thought: " + "x" * 301 + "\nAction: get_weather\nAction Input: {}")  # one short line
    kwargs = ReActProtocol().request_kwargs([WEATHER], must_call=True)
    assert (
        "final ::=" in kwargs["structured"]["grammar"]
        and "(action | final)" not in kwargs["structured"]["grammar"]
    )
    assert NativeToolProtocol().request_kwargs([WEATHER], must_call=True)["tool_choice"] == "required"


def test_a_grammar_without_thought_starts_at_the_call() -> None:
    """must-call asks for no thought: unasked, the 0.5B rambled there for 300 characters on 8 of 65 dev
    items, then called what it rambled about (none right)."""
    accepts = grammar_acceptor(react_grammar([WEATHER], must_call=True, thought=False))

    assert accepts('Action: get_weather\nAction Input: {"city": "Paris"}')
    assert not accepts('Thought: go\nAction: get_weather\nAction Input: {"city": "Paris"}')
    assert not accepts("Final Answer: 42")


def test_must_answer_grammar_refuses_a_call() -> None:
    accepts = grammar_acceptor(react_grammar([WEATHER], must_answer=True))

    assert accepts("Thought: I have it\nFinal Answer: 21 °C")
    # one line: an answer that went on into a call would not parse ("not both")
    assert not accepts('Final Answer: 21 °C\nAction: get_weather\nAction Input: {"city": "Paris"}')
    assert accepts("Final Answer: 21 °C")
    assert not accepts('Action: get_weather\nAction Input: {"city": "Paris"}')
    with pytest.raises(ValueError, match="both"):
        react_grammar([WEATHER], must_call=True, must_answer=True)
    assert NativeToolProtocol().request_kwargs([WEATHER], must_answer=True)["tool_choice"] == "none"


def test_react_round_trip_of_the_training_format() -> None:
    text = format_react_call("add_days", {"date": "2024-01-01", "days": 3}, thought="add them")
    assert parse_react(text, NAMES) == ParsedCall("add_days", {"date": "2024-01-01", "days": 3}, "add them")


def test_react_messages() -> None:
    p = ReActProtocol()
    assert p.assistant_message(reply("Action: x\nAction Input: {}\nObservation: made up")) == {
        "role": "assistant",
        "content": "Action: x\nAction Input: {}",
    }
    assert p.observation_message(None, "22 degrees") == {"role": "user", "content": "Observation: 22 degrees"}


def test_native_call_answer_and_errors() -> None:
    p = NativeToolProtocol()
    ok = reply(calls=[ToolCall(id="c1", name="get_weather", arguments='{"city": "Oslo"}')])
    assert p.parse(ok, NAMES) == ParsedCall("get_weather", {"city": "Oslo"}, call_id="c1")
    assert p.parse(reply(calls=[ToolCall(id="c", name="get_weather", arguments="")]), NAMES) == ParsedCall(
        "get_weather", {}, call_id="c"
    )
    assert p.parse(reply("It is sunny."), NAMES) == FinalAnswer("It is sunny.")
    cases = {
        "Found 2 tool calls": reply(calls=[ToolCall(name="get_weather", arguments="{}")] * 2),
        'Unknown tool "nope"': reply(calls=[ToolCall(name="nope", arguments="{}")]),
        "not valid JSON": reply(calls=[ToolCall(name="get_weather", arguments="{city")]),
        "must be a JSON object": reply(calls=[ToolCall(name="get_weather", arguments="[1]")]),
        "could not be read": reply('<tool_call>{"name": "get_weather", "arguments": {</tool_call>'),
        "empty": reply(""),
    }
    for expected, response in cases.items():
        parsed = p.parse(response, NAMES)
        assert isinstance(parsed, ParseError) and expected in parsed.message, (expected, parsed)


def test_native_request_and_messages() -> None:
    p = NativeToolProtocol(tool_choice="required", strict=True)
    kwargs = p.request_kwargs([WEATHER])
    assert kwargs["tool_choice"] == "required"
    assert kwargs["tools"][0]["function"]["strict"] is True
    assert "strict" not in WEATHER["function"]  # the caller's definition is not modified
    assert p.system_prompt([WEATHER], "Help.") == "Help."
    response = reply(calls=[ToolCall(id="c1", name="get_weather", arguments='{"city": "Oslo"}')])
    message = p.assistant_message(response)
    assert message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    call = p.parse(response, NAMES)
    assert p.observation_message(call, "5 °C") == {"role": "tool", "tool_call_id": "c1", "content": "5 °C"}
    assert p.observation_message(ParseError("bad"), "bad") == {"role": "user", "content": "bad"}


def test_protocol_for() -> None:
    assert isinstance(protocol_for("smollm2-135m-instruct"), ReActProtocol)
    assert protocol_for("x", "react", constrained=False).constrained is False
    assert isinstance(protocol_for("x", "native"), NativeToolProtocol)
    with pytest.raises(ValueError, match="unknown call protocol 'xml'"):
        protocol_for("x", "xml")


def test_tool_def_shape() -> None:
    assert json.loads(json.dumps(WEATHER))["function"]["name"] == "get_weather"
    assert tool_def("t", "d")["function"]["parameters"] == {"type": "object", "properties": {}}


def test_unconstrained_react_starts_from_the_thought_prefix() -> None:
    assert ReActProtocol(constrained=False).request_kwargs([])["prefix"] == "Thought:"
    assert "prefix" not in ReActProtocol(constrained=False, prefill=False).request_kwargs([])
    assert "prefix" not in ReActProtocol(constrained=True).request_kwargs([])  # the grammar leads
    # demonstrations and training targets continue the prefix
    assert format_react_call("add_date", {"days": 1}).startswith("Thought: ")
    prompt = ReActProtocol().system_prompt([{"name": "add_date", "description": "Add days."}])
    assert prompt.rstrip().endswith("Make one call at a time.")  # the call format is the last example
