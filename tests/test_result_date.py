"""The day a request asks about, against the dates its result gives (judge check ``result_date``):
the reader on its own, then the Exploiter with the toolbox's real date endpoints on 127.0.0.1."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest

from ste_mcp.cli import main
from ste_mcp.memory.checks import check_trial
from ste_mcp.memory.dates import (
    argument_days,
    asked_day,
    asked_weekday,
    date_problem,
    days_of,
    present_problem,
    result_dates,
)
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import ExemplarStore, Provenance
from ste_mcp.memory.exploit import ExploitReport
from ste_mcp.memory.settings import MemorySettings
from ste_mcp.memory.trials import TrialRecord, Turn
from ste_mcp.upstream.client import UpstreamClient
from ste_mcp.upstream.specs.toolset import load_spec, toolbox_spec_path
from tests.fixtures.exemplars import record_trial, stores
from tests.fixtures.models import judging_model
from tests.test_exemplars_transfer import exemplar

TODAY = date(2026, 12, 5)


@pytest.mark.parametrize(
    ("request_text", "asked"),
    [
        ("I need the exact date of tomorrow's meeting.", ("tomorrow", 1, "day")),
        ("What's the date the day after tomorrow?", ("day after tomorrow", 2, "day")),
        ("Which date was it the day before yesterday?", ("day before yesterday", -2, "day")),
        ("What was the date 3 days ago?", ("3 days ago", -3, "day")),
        ("What date is it two weeks from now?", ("two weeks from now", 2, "week")),
        ("What date will it be in a year?", ("in a year", 1, "year")),
        ("Which day is 40 days from today?", ("40 days from today", 40, "day")),
        ("What is today's date?", None),  # today itself: nothing to compare
        ("What is the date 30 days from 2023-06-15?", None),  # a stated date is the anchor
        ("Tomorrow is June 3rd; what day of the week is that?", None),
        ("What is the date one year from today plus 5 days?", None),  # a sum: not read
        ("Compare tomorrow with 3 days ago", None),  # two days asked
        ("Add 7 days to my trip", None),  # no anchor named
    ],
)
def test_the_day_a_request_asks_about(request_text: str, asked: tuple | None) -> None:
    day = asked_day(request_text)
    assert (day and (day.phrase, day.amount, day.unit)) == asked


def test_days_count_on_the_calendar() -> None:
    assert asked_day("3 days ago").on(TODAY) == date(2026, 12, 2)
    assert asked_day("two weeks from now").on(TODAY) == date(2026, 12, 19)
    assert asked_day("in 3 months").on(date(2026, 11, 30)) == date(2027, 2, 28)  # clamped to the month
    assert asked_day("in a year").on(date(2028, 2, 29)) == date(2029, 2, 28)


def test_a_results_dates_are_read_alone_or_in_timestamps() -> None:
    observation = '{"now": "2026-12-05T10:00:00Z", "due": "2027-01-31", "bad": "2026-13-40", "id": 120261205}'
    assert result_dates(observation) == {date(2026, 12, 5), date(2027, 1, 31)}


@pytest.mark.parametrize(
    ("request_text", "observation", "problem"),
    [
        (
            "I need to know the exact date of tomorrow's meeting.",
            '"2026-12-05"',
            "the request asks about tomorrow (2026-12-06), the result gives 2026-12-05",
        ),
        ("I need to know the exact date of tomorrow's meeting.", '"2026-12-06"', None),
        # the explorer's own idea of today, sent to a date calculator
        (
            "What will the date be 10 days from today?",
            '"2023-04-11"',
            "the request asks about 10 days from today (2026-12-15), the result gives 2023-04-11",
        ),
        ("What will the date be 10 days from today?", '"2026-12-15"', None),
        ("What date is it in 3 months?", '"2027-03-07"', None),  # months: within 3 days
        ("What date is it in 3 months?", '"2027-03-12"', "the request asks about in 3 months"),
        # a forecast gives several days, tomorrow among them
        (
            "Will it rain tomorrow in Oslo?",
            '{"days": [{"date": "2026-12-05"}, {"date": "2026-12-06"}]}',
            None,
        ),
        ("Will it rain tomorrow in Oslo?", '{"rain": true}', None),  # no date given: nothing to read
        ("What is today's date?", '"2023-04-01"', None),  # today: not this check's question
    ],
)
def test_a_result_without_the_asked_day(request_text: str, observation: str, problem: str | None) -> None:
    found = date_problem(request_text, observation, {TODAY})
    assert found == problem if problem is None else found.startswith(problem)


@pytest.mark.parametrize(
    ("request_text", "asked"),
    [
        ("Find the date of the next Monday after today.", ("next Monday", 0)),
        ("What is the date this coming Friday?", ("this coming Friday", 4)),
        ("Which date was last Tuesday?", ("last Tuesday", 1)),
        ("When is the following Monday?", ("following Monday", 0)),
        ("Is Monday a good day for a meeting?", None),  # no counting word: any Monday
        ("next Monday or next Friday?", None),  # two weekdays
        ("What is the date 3 days after next Monday?", None),  # a span beside it: not read
        ("Is next Monday, June 15, free?", None),  # a stated date
        ("tomorrow, or next Monday?", None),  # a day relative to today: asked_day's question
    ],
)
def test_the_weekday_a_request_asks_about(request_text: str, asked: tuple | None) -> None:
    assert asked_weekday(request_text) == asked


@pytest.mark.parametrize(
    ("observation", "problem"),
    [
        ('"2026-12-06"', "the request asks about next Monday, the result gives 2026-12-06 (a Sunday)"),
        ('"2026-12-07"', None),  # a Monday
        ('{"days": ["2026-12-06", "2026-12-14"]}', None),  # one of them is a Monday
        ('{"ok": true}', None),  # no date given: nothing to read
    ],
)
def test_a_result_without_the_asked_weekday(observation: str, problem: str | None) -> None:
    request_text = "Find the date of the next Monday after today."
    assert date_problem(request_text, observation, {date(2026, 12, 6)}) == problem


def test_today_is_the_trials_own_day_in_utc_and_local_time() -> None:
    late = datetime(2026, 12, 5, 23, 59, tzinfo=UTC)
    assert date(2026, 12, 5) in days_of([late])
    # a trial across midnight asks "tomorrow" of either day: the next day's date passes for both
    both = days_of([late, late + timedelta(minutes=2)])
    assert {date(2026, 12, 5), date(2026, 12, 6)} <= both
    assert date_problem("tomorrow's date?", '"2026-12-07"', both) is None
    assert date_problem("tomorrow's date?", '"2026-12-05"', {date(2026, 12, 5)}) is not None


def test_check_trial_reads_the_trials_own_day() -> None:
    """A stored trial is checked against the day it ran, not the day the check runs."""
    ran = datetime(2025, 3, 1, 12, tzinfo=UTC)
    call = Turn(raw="...", kind="call", tool="get_today_date", arguments={}, observation='"2025-03-01"')
    trial = TrialRecord(
        tool="get_today_date",
        episode=0,
        slot=0,
        query="What is the date of tomorrow's meeting?",
        turns=[call, Turn(raw="Final Answer: 2025-03-01", kind="final")],
        final_answer="2025-03-01",
        started_at=ran,
        recorded_at=ran,
    )
    assert check_trial(trial, ["result_date"]).startswith(
        "result_date: the request asks about tomorrow (2025-03-02), the result gives 2025-03-01"
    )
    assert check_trial(trial, ["soft_failure", "grounded_answer"]) is None


@pytest.mark.parametrize(
    ("request_text", "arguments", "problem"),
    [
        # the explorer's model takes the day it was trained for today
        (
            "Calculate the date one year from today and add 5 days to it.",
            {"date": "2023-04-01", "days": 370},
            'the request speaks of the present (2026-12-05), the call sends date = "2023-04-01" (2023-04-01)',
        ),
        (
            "What is the time zone at 40.71, -74.0 at the current time?",
            {"lat": 40.71, "lng": -74.0, "timestamp": 1633072800},
            "the call sends timestamp = 1633072800 (2021-10-01)",
        ),
        (  # seen with the 1.5B teacher (session 27): a 2024 timestamp for "the present time"
            "Find the time zone and DST for the point at latitude 40.7128 and longitude -74.0060 at the present time.",
            {"lat": 40.7128, "lng": -74.006, "timestamp": 1718148800},
            "the call sends timestamp = 1718148800 (2024-06-11)",
        ),
        (  # seen in session 24's pool: "current" alone speaks of the present too
            "What are the current and future UTC and DST offsets for 'New York'?",
            {"lat": 40.7128, "lng": -74.006, "timestamp": 1589932800},
            "the call sends timestamp = 1589932800 (2020-05-20)",
        ),
        ("What was the current UTC offset of New York in 2020?", {"timestamp": 1589932800}, None),  # a year
        (
            "What time is it now in Tokyo?",
            {"tz": "Asia/Tokyo", "at_ms": 1589932800000},
            None,
        ),  # name: no time
        ("What time is it now in Tokyo?", {"tz": "Asia/Tokyo", "time_ms": 1589932800000}, "(2020-05-20)"),
        ("Calculate the date one year from today.", {"date": "2026-12-05", "days": 365}, None),
        ("Calculate the date one year from today.", {"date": "2026-12-04", "days": 365}, None),  # time zones
        ("What's the weather today and next Monday?", {"date": "2026-12-07"}, None),  # ahead: may be asked
        ("What was the weather last Monday? I'm asking today.", {"date": "2026-11-30"}, None),  # the past
        ("How many days from 2020-01-01 until today?", {"start": "2020-01-01"}, None),  # a stated date
        ("Show the exchange rate", {"date": "2023-04-01"}, None),  # no present named
        ("Convert 1633072800 seconds to days now", {"seconds": 1633072800}, None),  # not a time parameter
    ],
)
def test_a_request_about_the_present_sends_no_earlier_day(request_text, arguments, problem) -> None:
    found = present_problem(request_text, arguments, {TODAY})
    assert found == problem if problem is None else problem in found


def test_days_in_arguments() -> None:
    days = list(argument_days({"when": "2024-02-29T10:00", "ts": 1700000000, "n": 1700000000, "ok": True}))
    assert days == [("when", "2024-02-29T10:00", date(2024, 2, 29)), ("ts", 1700000000, date(2023, 11, 14))]


# ---- the Exploiter, with the toolbox's date endpoints ---------------------------------------------
@pytest.fixture
def date_tools(toolbox) -> dict:
    tools = load_spec(toolbox_spec_path(), variables={"TOOLBOX_URL": toolbox.url})
    return {t.name: t for t in tools if t.name in ("get_today_date", "add_date")}


async def _judge(data_dir, tools, tool: str, arguments: dict, query: str, **settings):
    trials, exemplars, exploiter = stores(data_dir, MemorySettings(paraphrases_per_exemplar=0, **settings))
    async with UpstreamClient() as client:
        trial = await record_trial(trials, client, tools[tool], arguments, query)
    report = ExploitReport()
    await exploiter.exploit_trial(judging_model(), trial, tools, report)
    return trials.get(trial.id), exemplars.find(), report


@pytest.mark.anyio
async def test_todays_date_does_not_answer_tomorrow(data_dir, date_tools):
    trial, kept, report = await _judge(
        data_dir, date_tools, "get_today_date", {}, "I need the exact date of tomorrow's meeting."
    )
    assert (report.accepted, report.exemplars, report.refused) == (1, 0, 1) and kept == []
    assert trial.verdict["refused"].startswith("result_date: the request asks about tomorrow")


@pytest.mark.anyio
async def test_a_date_counted_from_the_real_today_is_kept(data_dir, date_tools):
    today = date.today().isoformat()
    _, kept, report = await _judge(
        data_dir,
        date_tools,
        "add_date",
        {"date": today, "days": 10},
        "What will the date be 10 days from today?",
    )
    assert (report.exemplars, report.refused) == (1, 0) and [e.tool for e in kept] == ["add_date"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("checks", "reason"),
    [
        (None, "result_date: the request asks about 10 days from today"),  # the first to fail: the result
        (["present_arguments"], "present_arguments: the request speaks of the present"),
        (["result_date"], "the result gives 2023-04-11"),
    ],
)
async def test_a_date_counted_from_the_explorers_own_today_is_refused(data_dir, date_tools, checks, reason):
    trial, kept, report = await _judge(
        data_dir,
        date_tools,
        "add_date",
        {"date": "2023-04-01", "days": 10},
        "What will the date be 10 days from today?",
        **({} if checks is None else {"judge_checks": checks}),
    )
    assert report.refused == 1 and kept == []
    assert reason in trial.verdict["refused"]


@pytest.mark.anyio
async def test_the_check_turned_off_keeps_it(data_dir, date_tools):
    _, kept, report = await _judge(
        data_dir,
        date_tools,
        "get_today_date",
        {},
        "I need the exact date of tomorrow's meeting.",
        judge_checks=["soft_failure"],
    )
    assert report.exemplars == 1 and [e.tool for e in kept] == ["get_today_date"]


# ---- stored exemplars: `ste-mcp exemplars recheck --call` on the offline toolbox ----------------------
def test_recheck_with_calls_rejects_a_stored_exemplar_without_the_asked_day(tmp_path, capsys):
    data_dir = tmp_path / "data"
    tomorrow = exemplar("get_today_date", "I need the exact date of tomorrow's meeting.", {})
    in_ten_days = {"date": date.today().isoformat(), "days": 10}
    weekday = calendar.day_name[(date.today().weekday() + 3) % 7]  # not today's, in any time zone
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    store.add(
        [
            tomorrow,
            exemplar(
                "get_today_date", "What is the date of the meeting tomorrow?", {}, variant_of=tomorrow.id
            ),
            exemplar("get_today_date", "What is today's date?", {}),  # asks no other day: not called
            exemplar("add_date", "What will the date be 10 days from today?", in_ten_days),
            exemplar("get_today_date", f"What is the date of next {weekday}?", {}),
        ]
    )
    assert main(["exemplars", "recheck", "--call", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "result_date: the request asks about tomorrow" in out
    assert f"result_date: the request asks about next {weekday}" in out
    assert out.strip().endswith(
        "3 original(s) called again: 0 moved to a sibling, 2 rejected (3 rows with their paraphrases)"
    )
    status = {e.query: e.status for e in store.find()}
    assert status == {
        "I need the exact date of tomorrow's meeting.": "rejected",
        "What is the date of the meeting tomorrow?": "rejected",
        "What is today's date?": "approved",
        "What will the date be 10 days from today?": "approved",
        f"What is the date of next {weekday}?": "rejected",
    }


def test_an_exemplar_about_the_present_is_read_on_the_day_it_was_made(tmp_path, capsys):
    """present_arguments reads only the request and the call: a paraphrase is read against the day it is
    written, an import and a recheck against the day the exemplar was made — an explorer's earlier day is
    refused, an exemplar's age is not (it is served moved to the current day, test_redate.py)."""
    from ste_mcp.memory.checks import CALL_CHECKS, check_call

    request = "What will the date be 10 days from today?"
    assert "present_arguments" in CALL_CHECKS
    sent = {"date": "2026-12-05", "days": 10}
    assert check_call(request, sent, None, today={TODAY}) is None
    stale = check_call(request, sent, None, today={TODAY + timedelta(days=7)})
    assert stale.startswith("present_arguments: the request speaks of the present (2026-12-12)")
    made = datetime.now(UTC) - timedelta(days=30)
    data_dir = tmp_path / "data"
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    store.add(
        [
            exemplar("add_date", request, {"date": "2020-01-01", "days": 10}),
            exemplar(
                "add_date",
                "Which date is 3 weeks from today?",
                {"date": made.astimezone().date().isoformat(), "days": 21},
                provenance=Provenance(trial_ids=["add_date:0:2"], created_at=made),
            ),
        ]
    )
    assert main(["exemplars", "recheck", "--data-dir", str(data_dir)]) == 0
    assert "present_arguments: the request speaks of the present" in capsys.readouterr().out
    assert {e.query: e.status for e in store.find()} == {
        request: "rejected",
        "Which date is 3 weeks from today?": "approved",
    }


@pytest.mark.parametrize(
    ("text", "states"),
    [
        ("Add 7 days to January 15, 2023.", True),
        ("Add 7 days to Jan. 15th, 2023", True),
        ("the 15th of January", True),  # no year: any year
        ("15 Jan 2023", True),
        ("on 2023-01-15 at noon", True),
        ("15/01/2023", True),
        ("It starts 2023-01-15.", True),
        ("01/15/2023", True),  # m/d/y
        ("1/15/23", True),
        ("January 15, 2024", False),
        ("February 15, 2023", False),
        ("in 2023, 15 times", False),
        ("2023-01-150", False),
    ],
)
def test_states_day_reads_a_day_however_it_is_written(text: str, states: bool) -> None:
    from ste_mcp.memory.dates import states_day

    assert states_day(text, date(2023, 1, 15)) is states
