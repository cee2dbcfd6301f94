"""Exemplars counted from today, served as of the current day (``dates.as_of``): the reader on its own,
then the server — a real client session, the toolbox's real ``add_date`` on 127.0.0.1, real LanceDB —
and the eval's retrieval."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import anyio
import pytest
from mcp import Client

from ste_mcp.app import App
from ste_mcp.config import load_settings
from ste_mcp.evaluate.run import exemplar_retriever
from ste_mcp.memory.dates import about_present, as_of, goes_stale, made_on
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import SECTION_HEADER
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore, Provenance
from ste_mcp.server.server import build_server
from ste_mcp.upstream.specs import Toolset
from ste_mcp.upstream.specs.toolset import load_spec, toolbox_spec_path

MADE = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DAY = MADE.astimezone().date()  # the explorer's "today" is this machine's


def made(
    query: str, arguments: dict, *, observation: str = "", answer: str = "", tool: str = "add_date", at=MADE
):
    return Exemplar(
        tool=tool,
        query=query,
        arguments=arguments,
        observation=observation,
        final_answer=answer,
        status="approved",
        provenance=Provenance(trial_ids=[f"{tool}:0:0"], created_at=at),
    )


@pytest.mark.parametrize(
    ("request_text", "counted"),
    [
        ("What will the date be 10 days from today?", True),
        ("What is the current time in Tokyo?", True),
        ("I need the exact date of tomorrow's meeting.", True),
        ("Which date was it 3 days ago?", True),
        ("What date is it in two weeks?", True),
        ("Add 10 days to 2023-06-15", False),  # its own anchor
        ("Is today June 3rd?", False),  # a stated date
        ("Convert 12 dollars to words", False),
    ],
)
def test_a_request_counted_from_today(request_text: str, counted: bool) -> None:
    assert about_present(request_text) is counted


def test_only_a_request_counted_from_today_with_a_day_goes_stale() -> None:
    assert goes_stale(
        made("What will the date be 10 days from today?", {"date": DAY.isoformat(), "days": 10})
    )
    assert goes_stale(made("What is today's date?", {}, observation='"2026-12-05"', tool="get_today_date"))
    assert not goes_stale(made("What's the weather in Paris tomorrow?", {"city": "Paris"}, answer="Sunny"))
    assert not goes_stale(made("Add 10 days to 2023-06-15", {"date": "2023-06-15", "days": 10}))


def test_days_move_by_the_days_since_it_was_made() -> None:
    ex = made(
        "What will the date be 10 days from today?",
        {"date": DAY.isoformat(), "days": 10, "when": {"at": f"{DAY.isoformat()}T09:00:00Z"}},
        observation=f'"{(DAY + timedelta(days=10)).isoformat()}"',
        answer=f"In 10 days it will be {(DAY + timedelta(days=10)).isoformat()}.",
    )
    later = as_of(ex, DAY + timedelta(days=30))
    day = DAY + timedelta(days=30)
    assert later.arguments == {
        "date": day.isoformat(),
        "days": 10,
        "when": {"at": f"{day.isoformat()}T09:00:00Z"},
    }
    assert later.observation == f'"{(day + timedelta(days=10)).isoformat()}"'
    assert later.final_answer == f"In 10 days it will be {(day + timedelta(days=10)).isoformat()}."
    assert later.id == ex.id and later.query == ex.query
    assert ex.arguments["date"] == DAY.isoformat()  # the stored one is not touched
    assert as_of(ex, DAY) is ex  # on its own day: as it is


def test_timestamps_move_only_under_a_time_named_parameter() -> None:
    stamp = int(MADE.timestamp())
    ex = made(
        "What is the time zone here at the current time?",
        {"timestamp": stamp, "count": stamp, "ms_time": stamp * 1000},
    )
    later = as_of(ex, made_on(ex) + timedelta(days=2))
    assert later.arguments == {
        "timestamp": stamp + 2 * 86400,
        "count": stamp,
        "ms_time": (stamp + 2 * 86400) * 1000,
    }


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ("Today is Saturday 5 December 2026.", ""),  # a month name: not moved, left out
        ("It is Saturday.", ""),  # a weekday
        ("The year is 2026 and the date 2026-12-05.", ""),  # the bare year, no longer the year
        ("The date is 2026-12-05.", "The date is 2027-01-04."),
    ],
)
def test_a_text_that_cannot_be_moved_is_left_out(answer: str, shown: str) -> None:
    ex = made("What is today's date?", {}, observation='"2026-12-05"', answer=answer, tool="get_today_date")
    later = as_of(ex, made_on(ex) + timedelta(days=30))
    assert later.final_answer == shown.replace("2027-01-04", (made_on(ex) + timedelta(days=30)).isoformat())
    assert later.observation == json.dumps((date(2026, 12, 5) + timedelta(days=30)).isoformat())


def test_the_year_stays_when_it_is_still_the_year() -> None:
    ex = made(
        "What is today's date?", {}, observation='"2026-12-05"', answer="It is 2026.", tool="get_today_date"
    )
    assert as_of(ex, made_on(ex) + timedelta(days=3)).final_answer == "It is 2026."


# ---- served: a real client session, the toolbox's add_date on 127.0.0.1 -----------------------------
@pytest.fixture
async def session(data_dir, toolbox):
    month_ago = datetime.now(UTC) - timedelta(days=30)
    then = month_ago.astimezone().date()
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    store.add(
        [
            made(
                "What will the date be 10 days from today?",
                {"date": then.isoformat(), "days": 10},
                at=month_ago,
                observation=json.dumps((then + timedelta(days=10)).isoformat()),
            ),
            made(
                "What is the date 7 days after 2023-01-15?",
                {"date": "2023-01-15", "days": 7},
                at=month_ago,
                observation='"2023-01-22"',
            ),
        ]
    )
    tools = [
        t
        for t in load_spec(toolbox_spec_path(), variables={"TOOLBOX_URL": toolbox.url})
        if t.name == "add_date"
    ]
    settings = load_settings(data_dir=str(data_dir), memory={"poll_s": 60, "description_render": "examples"})
    async with (
        App(settings, toolset=Toolset(tools), features=["ste_mcp.memory.extension:create"]) as app,
        Client(build_server(app)) as client,
    ):
        yield client


@pytest.mark.anyio
async def test_a_served_example_copied_today_answers_today(session):
    found = await session.call_tool("find_tool_examples", {"task": "the date ten days from now", "k": 2})
    examples = {e["query"]: e for e in json.loads(found.content[0].text)["examples"]}
    today = date.today()
    moved = examples["What will the date be 10 days from today?"]
    assert moved["arguments"] == {"date": today.isoformat(), "days": 10}
    assert moved["result"] == json.dumps((today + timedelta(days=10)).isoformat())
    assert examples["What is the date 7 days after 2023-01-15?"]["arguments"] == {
        "date": "2023-01-15",
        "days": 7,
    }
    answer = await session.call_tool("add_date", moved["arguments"])  # what a client copying it gets
    assert not answer.is_error and (today + timedelta(days=10)).isoformat() in answer.content[0].text
    searched = json.loads(
        (await session.call_tool("search_tools", {"query": "10 days from today"})).content[0].text
    )
    assert {e["arguments"]["date"] for e in searched["examples"]} == {today.isoformat(), "2023-01-15"}
    resource = json.loads((await session.read_resource("ste-mcp://exemplars/add_date")).contents[0].text)
    assert today.isoformat() in {e["arguments"]["date"] for e in resource["exemplars"]}


@pytest.mark.anyio
async def test_a_stored_description_leaves_a_stale_example_out(session):
    with anyio.fail_after(15):  # the server's first background pass renders the descriptions
        while SECTION_HEADER not in (text := (await session.list_tools()).tools[0].description):
            await anyio.sleep(0.05)
    assert "2023-01-15" in text and "from today" not in text


def test_the_evals_retrieval_shows_them_as_the_server_does(data_dir):
    month_ago = datetime.now(UTC) - timedelta(days=30)
    ExemplarStore(open_db(data_dir / "lancedb")).add(
        [
            made(
                "What will the date be 10 days from today?",
                {"date": month_ago.astimezone().date().isoformat(), "days": 10},
                at=month_ago,
            )
        ]
    )
    [demo] = exemplar_retriever(ExemplarStore(open_db(data_dir / "lancedb")))("ten days from today", 1)
    assert demo.arguments == {"date": date.today().isoformat(), "days": 10}
