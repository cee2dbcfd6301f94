"""The STE-50 scorer on hand-made predictions with known answers: every metric can fail."""

from __future__ import annotations

import json

import pytest

from ste_mcp.evaluate.score import (
    parse_react,
    resolve_name,
    same_value,
    score,
    score_outputs,
    score_prediction,
)

TOOLS = ["add_date", "get_weather_today", "Numbers__Get_math_fact", "search_general"]
ADD_DATE = {
    "id": "add_date-0",
    "tool": "add_date",
    "mcp_name": "add_date",
    "arguments": {"date": "2022-10-14", "days": 90},
}
FACT = {
    "id": "Numbers__Get_math_fact-14",
    "tool": "Numbers%%Get math fact",
    "mcp_name": "Numbers__Get_math_fact",
    "arguments": {"number": "1729", "fragment": "True", "json": True, "notfound": ""},
}


def react(name: str, args: str, before: str = "Thought: I should call a tool.\n") -> dict:
    return {"id": "x", "output": f"{before}Action: {name}\nAction Input: {args}"}


def test_exact_react_call_is_correct():
    s = score_prediction(react("add_date", '{"date": "2022-10-14", "days": 90}'), ADD_DATE, TOOLS)
    assert (s.wellformed, s.api_match, s.correct) == (True, True, True)
    assert s.called == "add_date" and s.reason == ""


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("Final Answer: 2023-01-12", "final answer"),
        ("I think the answer is 2023-01-12.", 'no "Action Input:"'),
        ('Action Input: {"date": "2022-10-14", "days": 90}', '0 "Action:"'),
        ("Action: add_date\nAction: add_date\nAction Input: {}", '2 "Action:"'),
        (
            'Action: add_date\nAction Input: {"date": "2022-10-14"}\nAction Input: {"days": 90}',
            '2 "Action Input:"',
        ),
        ("Action: add_date\nAction Input: date=2022-10-14, days=90", "no {...}"),
        ('Action: add_date\nAction Input: {"date": 2022-10-14, "days": 90}', "not valid JSON"),
        ("Action: \nAction Input: {}", "empty"),
        # an invented Observation with JSON after the call: first '{' to last '}' is not one object
        (
            'Action: add_date\nAction Input: {"date": "2022-10-14", "days": 90}\n'
            'Observation: {"date": "2023-01-12"}',
            "not valid JSON",
        ),
    ],
)
def test_malformed_react_fails_every_metric(output, why):
    s = score_prediction({"id": "add_date-0", "output": output}, ADD_DATE, TOOLS)
    assert not s.wellformed and not s.api_match and not s.correct
    assert why in s.reason


def test_call_before_final_answer_is_judged():
    out = 'Action: add_date\nAction Input: {"date": "2022-10-14", "days": 90}\nFinal Answer: 2023-01-12'
    assert score_prediction({"output": out}, ADD_DATE, TOOLS).correct


def test_non_object_arguments_are_not_well_formed():
    assert "no {...}" in parse_react("Action: add_date\nAction Input: [1, 2]").error
    native = {"tool_calls": [{"name": "add_date", "arguments": "[1, 2]"}]}
    s = score_prediction(native, ADD_DATE, TOOLS)
    assert not s.wellformed and "not an object" in s.reason


def test_wrong_tool_is_well_formed_but_no_match():
    s = score_prediction(react("get_weather_today", '{"date": "2022-10-14", "days": 90}'), ADD_DATE, TOOLS)
    assert s.wellformed and not s.api_match and not s.correct
    assert s.called == "get_weather_today"


def test_unknown_name_maps_to_closest_shown_tool():
    assert resolve_name("add_dates", TOOLS) == "add_date"
    assert resolve_name("<tool_add_date>", TOOLS) == "add_date"
    s = score_prediction(react("AddDate", '{"date": "2022-10-14", "days": 90}'), ADD_DATE, TOOLS)
    assert s.called == "add_date" and s.correct


def test_name_outside_the_subset_is_not_corrected_onto_it():
    # shown all tools: a call to another real tool stays a mismatch even when scoring one tool's items
    s = score_prediction(react("get_weather_today", "{}"), ADD_DATE, TOOLS)
    assert s.called == "get_weather_today" and not s.api_match


def test_original_name_of_the_tool_also_matches():
    s = score_prediction(
        react("Numbers%%Get math fact", '{"number": "1729", "fragment": "true", "json": true}'),
        FACT,
        ["Numbers%%Get math fact", "add_date"],
    )
    assert s.api_match and s.correct, s.reason


@pytest.mark.parametrize(
    ("args", "correct"),
    [
        ('{"date": "2022-10-14", "days": 90}', True),
        ('{"date": "  2022-10-14 ", "days": "90"}', True),  # trimmed; number as string
        ('{"date": "2022-10-14", "days": 90.0, "extra": 1}', True),  # extra args allowed
        ('{"date": "2022-10-14"}', False),  # missing
        ('{"date": "2022-10-15", "days": 90}', False),  # wrong value
        ('{"date": "2022-10-14", "days": 9}', False),
        ('{"date": "2022-10-14", "days": "ninety"}', False),
        ('{"Date": "2022-10-14", "days": 90}', False),  # keys are exact
    ],
)
def test_argument_matching(args, correct):
    s = score_prediction(react("add_date", args), ADD_DATE, TOOLS)
    assert s.wellformed and s.api_match
    assert s.correct is correct, s.reason


def test_value_rules():
    assert same_value("New  York\tCity ", "new york city")
    assert not same_value("New York", "NewYork")
    assert same_value(3000, "3000") and same_value("3000", 3000.0) and same_value(-20, "-20")
    assert not same_value(3000, "3000 m")
    assert same_value(True, "true") and same_value("True", True) and same_value(False, "FALSE")
    assert not same_value(True, 1) and not same_value(True, "false")
    assert not same_value("02134", "2134")  # two strings compare as strings


def test_empty_ground_truth_value_may_be_omitted_but_not_contradicted():
    ok = react("Numbers__Get_math_fact", '{"number": 1729, "fragment": true, "json": "TRUE"}')
    assert score_prediction(ok, FACT, TOOLS).correct
    bad = react(
        "Numbers__Get_math_fact", '{"number": 1729, "fragment": true, "json": true, "notfound": "floor"}'
    )
    assert not score_prediction(bad, FACT, TOOLS).correct


def test_native_tool_calls():
    good = {"tool_calls": [{"name": "add_date", "arguments": json.dumps({"date": "2022-10-14", "days": 90})}]}
    assert score_prediction(good, ADD_DATE, TOOLS).correct
    as_dict = {
        "tool_calls": [{"function": {"name": "add_date", "arguments": {"date": "2022-10-14", "days": 90}}}]
    }
    assert score_prediction(as_dict, ADD_DATE, TOOLS).correct
    # only the first call is judged
    second = {"tool_calls": [{"name": "get_weather_today", "arguments": "{}"}, good["tool_calls"][0]]}
    s = score_prediction(second, ADD_DATE, TOOLS)
    assert s.wellformed and not s.api_match
    broken = {"tool_calls": [{"name": "add_date", "arguments": "{date: 2022-10-14}"}]}
    assert not score_prediction(broken, ADD_DATE, TOOLS).wellformed
    assert not score_prediction({"tool_calls": [], "output": "Sure!"}, ADD_DATE, TOOLS).wellformed


def test_summary_percentages_and_per_tool():
    items = [ADD_DATE, {**ADD_DATE, "id": "add_date-1"}, {**ADD_DATE, "id": "add_date-2"}, FACT]
    preds = [
        react("add_date", '{"date": "2022-10-14", "days": 90}') | {"id": "add_date-0"},
        {"id": "add_date-1", "output": "Final Answer: no idea"},
        {"id": "add_date-2", "output": "Action: search_general\nAction Input: {}"},
        {
            "id": "Numbers__Get_math_fact-14",
            "output": 'Action: Numbers__Get_math_fact\nAction Input: {"number": 1}',
        },
        {"id": "other-0", "output": "ignored"},
    ]
    s = score(preds, items, TOOLS)
    assert (s.n, s.n_wellformed, s.n_api_match, s.n_correct) == (4, 3, 2, 1)
    assert s.wellformed == 75.0
    assert s.api_match == pytest.approx(66.67)  # over the well-formed items
    assert s.api_match_all == 50.0
    assert s.correct == 25.0
    assert set(s.per_tool) == {"add_date", "Numbers__Get_math_fact"}
    assert (s.per_tool["add_date"].n, s.per_tool["add_date"].correct) == (3, pytest.approx(33.33))
    assert s.per_tool["Numbers__Get_math_fact"].api_match == 100.0
    assert s.per_tool["Numbers__Get_math_fact"].correct == 0.0


def test_missing_prediction_counts_as_not_well_formed_and_bad_input_is_rejected():
    s = score([], [ADD_DATE], TOOLS)
    assert s.n == 1 and s.wellformed == 0.0 and s.items[0].reason == "no prediction"
    with pytest.raises(ValueError, match="two predictions"):
        score([{"id": "a", "output": ""}, {"id": "a", "output": ""}], [ADD_DATE], TOOLS)
    with pytest.raises(ValueError, match="without an 'id'"):
        score([{"output": ""}], [ADD_DATE], TOOLS)
    with pytest.raises(ValueError, match="2 outputs for 1 items"):
        score_outputs([ADD_DATE], ["a", "b"], TOOLS)


def test_score_outputs_is_a_plain_dict_for_the_gate():
    d = score_outputs(
        [ADD_DATE], ['Action: add_date\nAction Input: {"date": "2022-10-14", "days": 90}'], TOOLS
    )
    assert d["n"] == 1 and d["correct"] == 100.0 and "items" not in d
    assert d["per_tool"]["add_date"]["wellformed"] == 100.0


def test_gold_calls_on_all_of_ste50_score_100_and_swapped_tools_score_0(ste50_dir):
    items = [json.loads(line) for line in (ste50_dir / "test.jsonl").read_text().splitlines()]
    names = [t["mcp_name"] for t in json.loads((ste50_dir / "tools.json").read_text())]
    gold = [
        {"id": it["id"], "tool_calls": [{"name": it["mcp_name"], "arguments": it["arguments"]}]}
        for it in items
    ]
    s = score(gold, items, names)
    assert (s.n, s.wellformed, s.api_match, s.correct) == (750, 100.0, 100.0, 100.0)
    shifted = names[1:] + names[:1]
    swap = dict(zip(names, shifted, strict=True))
    wrong = [
        {
            "id": it["id"],
            "output": f"Action: {swap[it['mcp_name']]}\nAction Input: {json.dumps(it['arguments'])}",
        }
        for it in items
    ]
    s = score(wrong, items, names)
    assert (s.wellformed, s.api_match, s.correct) == (100.0, 0.0, 0.0)


SCHEMAS = {
    "add_date": {
        "type": "object",
        "properties": {"date": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["date", "days"],
    },
    "Numbers__Get_math_fact": {
        "type": "object",
        "properties": {
            "number": {"type": "string"},
            "fragment": {"type": "string"},
            "json": {"type": "string"},
        },
        "required": ["number"],
    },
}


@pytest.mark.parametrize(
    ("name", "args", "lenient", "strict", "why"),
    [
        ("add_date", '{"date": "2022-10-14", "days": 90}', True, True, ""),
        ("AddDate", '{"date": "2022-10-14", "days": 90}', True, False, "not exactly 'add_date'"),
        ("<tool_add_date>", '{"date": "2022-10-14", "days": 90}', True, False, "not exactly"),
        ("add_date", '{"date": "2022-10-14", "days": 90, "tz": "UTC"}', True, False, "unknown argument"),
        ("add_date", '{"date": "2022-10-14", "days": "90"}', True, False, "'90' is not of type 'integer'"),
        ("add_date", '{"date": "2022-10-15", "days": 90}', False, False, "argument 'date' is"),
        (
            "get_weather_today",
            '{"date": "2022-10-14", "days": 90}',
            False,
            False,
            "called 'get_weather_today'",
        ),
    ],
)
def test_strict_needs_the_exact_name_and_arguments_the_proxy_accepts(name, args, lenient, strict, why):
    s = score_prediction(react(name, args), ADD_DATE, TOOLS, SCHEMAS)
    assert s.wellformed and s.correct is lenient and s.strict_correct is strict
    assert why in s.strict_reason
    assert s.exact_name is (name == "add_date")


def test_strict_compares_values_as_the_paper_does_and_needs_a_schema():
    # the ground truth's boolean json=True is matched by the string the schema asks for
    ok = react("Numbers__Get_math_fact", '{"number": "1729", "fragment": "true", "json": "TRUE"}')
    assert score_prediction(ok, FACT, TOOLS, SCHEMAS).strict_correct
    # the ground truth's empty "notfound" may be left out, but sending it is an unknown argument
    extra = react(
        "Numbers__Get_math_fact", '{"number": "1729", "fragment": "true", "json": "true", "notfound": ""}'
    )
    s = score_prediction(extra, FACT, TOOLS, SCHEMAS)
    assert s.correct and not s.strict_correct and "unknown argument" in s.strict_reason
    s = score_prediction(react("add_date", '{"date": "2022-10-14", "days": 90}'), ADD_DATE, TOOLS, {})
    assert s.correct and s.strict_correct is False and "no input schema" in s.strict_reason
    broken = score_prediction({"output": "Final Answer: 3"}, ADD_DATE, TOOLS, SCHEMAS)
    assert broken.strict_correct is False and "not well-formed" in broken.strict_reason


def test_strict_metrics_in_the_summary_and_absent_without_schemas():
    items = [ADD_DATE, {**ADD_DATE, "id": "add_date-1"}, FACT]
    preds = [
        react("add_date", '{"date": "2022-10-14", "days": 90}') | {"id": "add_date-0"},
        react("add_dates", '{"date": "2022-10-14", "days": 90}') | {"id": "add_date-1"},
    ]
    s = score(preds, items, TOOLS, SCHEMAS)
    assert (s.n_correct, s.n_exact_name, s.n_strict_correct) == (2, 1, 1)
    assert s.strict_correct == pytest.approx(33.33) and s.exact_name == pytest.approx(33.33)
    assert (
        s.per_tool["add_date"].strict_correct == 50.0
        and s.per_tool["Numbers__Get_math_fact"].strict_correct == 0.0
    )
    assert s.items[2].strict_reason == "no prediction"
    lenient = score(preds, items, TOOLS)
    assert lenient.strict_correct is None and lenient.n_strict_correct is None
    assert lenient.items[0].strict_correct is None and lenient.correct == s.correct
    assert score_outputs([ADD_DATE], ["x"], TOOLS)["strict_correct"] is None  # the gate's dict: not judged


def test_strict_on_the_toolbox_tools_gold_calls_through_the_toolbox_schemas(ste50_dir):
    # the toolbox serves its 13 tools with the bench's schemas (tests/test_toolbox_proxy.py), so the
    # gold calls of their items are accepted, but for one ground truth the schema types differently
    from ste_mcp.toolbox.api import catalog

    tools = json.loads((ste50_dir / "tools.json").read_text())
    toolbox = {name: tool["parameters"] for name, tool in catalog().items()}
    items = [json.loads(line) for line in (ste50_dir / "test.jsonl").read_text().splitlines()]
    items = [it for it in items if it["mcp_name"] in toolbox]
    gold = [
        {"id": it["id"], "tool_calls": [{"name": it["mcp_name"], "arguments": it["arguments"]}]}
        for it in items
    ]
    s = score(gold, items, [t["mcp_name"] for t in tools], toolbox)
    assert (s.n, s.correct, s.exact_name, s.n_strict_correct) == (195, 100.0, 100.0, 194)
    (typed,) = [x for x in s.items if not x.strict_correct]
    assert typed.tool == "Numbers__Get_math_fact" and "'json'" in typed.strict_reason
