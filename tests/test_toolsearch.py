"""Learned tool search: the hybrid index on real LanceDB, ``search_tools`` and the search listing mode
through the real server and the SDK's client (in memory and over stdio), with the offline toolbox as
the real upstream on 127.0.0.1."""

from __future__ import annotations

import json
import threading

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from ste_mcp.app import App
from ste_mcp.config import load_settings
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
from ste_mcp.memory.toolsearch import ToolIndex, name_words, tool_docs
from ste_mcp.server.server import build_server, list_tools
from ste_mcp.upstream.specs import Toolset
from ste_mcp.upstream.tools import Tool
from tests.fixtures.common import REPO, STE_MCP, child_env

pytestmark = pytest.mark.anyio

TOOLS = {
    "unit_op": "Legacy endpoint v2 of the ops service.",  # says nothing a user would search for
    "weather_now": "Current weather conditions for a city.",
    "hash_text": "Compute a hash digest of a text.",
    "calendar_add": "Add days to a date.",
}


def make_tool(name: str, description: str) -> Tool:
    return Tool(
        name=name,
        description=description,
        input_schema={"type": "object"},
        method="GET",
        path=f"/{name}",
        base_url="http://127.0.0.1:9",
    )


def test_name_words_split_separators_and_camel_case():
    assert name_words("Numbers__Get_math_fact") == "Numbers Get math fact"
    assert name_words("getWolframAlphaResults") == "get Wolfram Alpha Results"
    assert name_words("Numbers%%Get math fact") == "Numbers Get math fact"


def test_requests_find_a_tool_its_description_hides(data_dir):
    index = ToolIndex(open_db(data_dir / "db"))
    docs = [d for name, text in TOOLS.items() for d in tool_docs(name, text)]
    index.sync(docs)
    query = "How many kilometres are 26 miles?"
    assert "unit_op" not in [h.tool for h in index.search(query, 1)]
    requests = ["Convert 10 miles into kilometres", "What is 5 pounds in kilograms?"]
    report = index.sync([*docs, *tool_docs("unit_op", TOOLS["unit_op"], requests)[1:]])
    assert (report.added, report.removed) == (2, 0)
    best = index.search(query, 1)[0]
    assert best.tool == "unit_op"
    assert best.kind == "request" and "miles" in best.matched


def test_sync_is_incremental_persistent_and_exact(data_dir):
    db_dir = data_dir / "db"
    index = ToolIndex(open_db(db_dir))
    docs = [d for name, text in TOOLS.items() for d in tool_docs(name, text, [f"use {name} please"])]
    first = index.sync(docs)
    assert (first.added, first.removed, first.total) == (8, 0, 8)
    assert index.sync(docs).added == 0  # nothing re-embedded
    reopened = ToolIndex(open_db(db_dir))
    assert len(reopened) == 8
    assert reopened.search("current weather in Lima", 1)[0].tool == "weather_now"
    kept = [d for d in docs if d.tool != "hash_text"]  # a tool left the toolset
    report = reopened.sync(kept)
    assert (report.added, report.removed) == (0, 2)
    assert reopened.tools() == {"unit_op", "weather_now", "calendar_add"}
    assert "hash_text" not in [h.tool for h in reopened.search("hash digest of a text", 5)]


def test_replicas_syncing_at_once_store_each_document_once(data_dir):
    """Replicas start together and each syncs the same documents into the shared index: every
    document is stored once (the id is the table's key), whichever replica's insert lands first."""
    db_dir = data_dir / "db"
    first = ToolIndex(open_db(db_dir))
    docs = [d for name, text in TOOLS.items() for d in tool_docs(name, text, [f"use {name} please"])]
    indexes = [first] + [ToolIndex(open_db(db_dir), embedder=first.embedder) for _ in range(2)]
    first.embedder.embed(["warm up"])  # the model loads before the race, not inside it
    start = threading.Barrier(len(indexes), timeout=60)
    failed: list[Exception] = []

    def sync(index: ToolIndex) -> None:
        try:
            start.wait()
            index.sync(docs)
        except Exception as exc:
            failed.append(exc)

    threads = [threading.Thread(target=sync, args=(ix,), daemon=True) for ix in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failed
    ids = ToolIndex(open_db(db_dir), embedder=first.embedder).table.to_arrow()["id"].to_pylist()
    assert sorted(ids) == sorted(d.id for d in docs)


def test_tools_with_many_requests_do_not_crowd_the_others_out(data_dir):
    """Two tools with 60 requests each fill the first 100 documents of a password query: the search reads
    on until it has k tools (vector and hybrid), ranks only the tools ``among`` names, and full text names
    only the tools whose words match."""
    index = ToolIndex(open_db(data_dir / "db"))
    crowd = {
        "password_base": [f"Generate a strong password for account number {i}" for i in range(60)],
        "password_long": [f"Create a secure password of {i + 8} characters" for i in range(60)],
    }
    docs = [d for name, text in TOOLS.items() for d in tool_docs(name, text)]
    docs += [d for name, asks in crowd.items() for d in tool_docs(name, "Gives a password.", asks)]
    index.sync(docs)
    query = "Suggest a strong password for my email"
    for mode in ("vector", "hybrid"):
        tools = [h.tool for h in index.search(query, 5, depth=100, mode=mode)]
        assert tools[:2] in (["password_base", "password_long"], ["password_long", "password_base"])
        assert len(tools) == 5 == len(set(tools)), (mode, tools)
    among = {"password_base", "password_long", "hash_text"}
    assert {h.tool for h in index.search(query, 5, among=among)} == among  # fewer exist: all of them
    assert {h.tool for h in index.search("password", 6, mode="text")} == set(crowd)


def test_duplicate_requests_are_indexed_once_and_capped():
    docs = tool_docs(
        "t", "A tool.", ["Same  request", "same request", "other"] + [f"r{i}" for i in range(99)]
    )
    texts = [d.text for d in docs if d.kind == "request"]
    assert texts[:2] == ["Same request", "other"]
    assert len(texts) == 64


def test_query_syntax_from_a_client_is_plain_text(data_dir):
    index = ToolIndex(open_db(data_dir / "db"))
    index.sync([d for name, text in TOOLS.items() for d in tool_docs(name, text)])
    for query in ['weather "Lima" AND (x:y', "calendar* -add ~2 ^3", "'; DROP TABLE tool_search; --", "日付"]:
        for mode in ("vector", "hybrid", "text"):
            hits = index.search(query, 2, mode=mode)
            assert len(hits) <= 2
    for mode in ("vector", "hybrid", "text"):  # each list alone finds a plainly worded tool
        assert index.search("add days to a date", 1, mode=mode)[0].tool == "calendar_add"
    assert index.search("   ", 3) == []
    assert ToolIndex(open_db(data_dir / "empty")).search("weather", 3) == []


def settings_for(data_dir, **server):
    return load_settings(
        data_dir=str(data_dir), memory={"poll_s": 60}, server={"tool_listing": "search", **server}
    )


async def test_search_listing_over_the_toolbox(data_dir):
    """Search mode over the real offline toolbox: two tools listed, search finds, call_tool calls."""
    settings = settings_for(data_dir)
    async with (
        App(settings, features=["ste_mcp.memory.extension:create"]) as app,
        Client(build_server(app)) as client,
    ):
        listed = [t.name for t in (await client.list_tools()).tools]
        assert listed == ["search_tools", "call_tool"]
        found = await client.call_tool("search_tools", {"query": "what is the date today?", "k": 3})
        assert not found.is_error, found.content[0].text
        tools = json.loads(found.content[0].text)["tools"]
        assert tools[0]["name"] == "get_today_date"
        assert all("input_schema" in t and t["description"] for t in tools) and len(tools) == 3
        called = await client.call_tool("call_tool", {"name": "get_today_date", "arguments": {}})
        assert not called.is_error, called.content[0].text
        from datetime import date

        assert json.loads(called.content[0].text) == date.today().isoformat()
        direct = await client.call_tool("Numbers__Get_math_fact", {"number": "7"})  # by name: still served
        assert not direct.is_error, direct.content[0].text
        unknown = await client.call_tool("call_tool", {"name": "x" * 5000})
        assert unknown.is_error and "search_tools" in unknown.content[0].text
        assert len(unknown.content[0].text) < 300  # a huge name is not echoed back
        bad = await client.call_tool("call_tool", {"name": "get_today_date", "arguments": [1]})
        assert bad.is_error and "must be an object" in bad.content[0].text
        wrong = await client.call_tool("search_tools", {"query": "dates", "k": 0})
        assert wrong.is_error and "'k'" in wrong.content[0].text


def test_search_among_ranks_only_the_given_tools(data_dir):
    index = ToolIndex(open_db(data_dir / "db"))
    odd = "it's_op"  # a quote in a name is data, not SQL
    docs = [d for name, text in {**TOOLS, odd: "Weather forecasts."}.items() for d in tool_docs(name, text)]
    index.sync(docs)
    query = "current weather in Lima"
    assert index.search(query, 1)[0].tool == "weather_now"
    for mode in ("vector", "hybrid", "text"):
        among = {"hash_text", "calendar_add", odd}
        hits = index.search(query, 5, mode=mode, among=among)
        assert {h.tool for h in hits} <= among and "weather_now" not in [h.tool for h in hits]
    assert index.search(query, 3, among={odd, "unit_op"})[0].tool == odd
    assert index.search(query, 3, among=set()) == []


async def test_search_learns_from_approved_exemplars(data_dir):
    """An approved exemplar's request makes its tool findable and comes back as a worked example;
    candidates and hidden tools never show."""
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    store.add(
        [
            Exemplar(
                tool="unit_op",
                query="Convert 10 miles into kilometres",
                arguments={"value": 10, "from": "mi", "to": "km"},
                status="approved",
            ),
            Exemplar(tool="hash_text", query="How many kilometres are in a mile?", status="candidate"),
            Exemplar(tool="secret_op", query="How far is 26 miles in kilometres?", status="approved"),
        ]
    )
    toolset = Toolset([make_tool(n, d) for n, d in TOOLS.items()] + [make_tool("secret_op", "Miles.")])
    toolset.get("secret_op").hidden = True
    settings = settings_for(data_dir)
    async with (
        App(settings, toolset=toolset, features=["ste_mcp.memory.extension:create"]) as app,
        Client(build_server(app)) as client,
    ):
        result = await client.call_tool("search_tools", {"query": "how far is 26 miles in km", "k": 5})
        tools = json.loads(result.content[0].text)["tools"]
        assert tools[0]["name"] == "unit_op"
        assert tools[0]["similar_request"] == "Convert 10 miles into kilometres"
        assert "secret_op" not in [t["name"] for t in tools] and len(tools) == 4
        examples = json.loads(result.content[0].text)["examples"]
        assert examples == [
            {
                "tool": "unit_op",
                "query": "Convert 10 miles into kilometres",
                "arguments": {"value": 10, "from": "mi", "to": "km"},
                "score": examples[0]["score"],
            }
        ]  # neither the candidate's nor the hidden tool's exemplar
        one = await client.call_tool("search_tools", {"query": "how far is 26 miles in km", "k": 1})
        assert [e["tool"] for e in json.loads(one.content[0].text)["examples"]] == ["unit_op"]
        app.settings.memory.search_examples = 0
        plain = await client.call_tool("search_tools", {"query": "how far is 26 miles in km", "k": 5})
        assert "examples" not in json.loads(plain.content[0].text)
        app.toolset.get("unit_op").hidden = True  # hidden after the index was built: never found
        later = await client.call_tool("search_tools", {"query": "how far is 26 miles in km", "k": 5})
        assert [t["name"] for t in json.loads(later.content[0].text)["tools"]] == sorted(
            ["weather_now", "hash_text", "calendar_add"], key=lambda n: [t["name"] for t in tools].index(n)
        )
        with pytest.raises(MCPError):  # outside search mode a wrapped call is not a tool at all
            app.settings.server.tool_listing = "all"
            await client.call_tool("call_tool", {"name": "unit_op"})


def test_auto_listing_switches_on_the_number_of_tools(data_dir):
    many = Toolset([make_tool(f"op_{i:04d}", f"Operation number {i}.") for i in range(1000)])
    settings = load_settings(
        data_dir=str(data_dir), server={"tool_listing": "auto", "search_listing_above": 40}
    )
    app = App(settings, toolset=many)
    from ste_mcp.memory.extension import MemoryExtension

    app.add_extension(MemoryExtension(app))
    listed = list_tools(app)
    assert [t.name for t in listed] == ["search_tools", "call_tool"]
    size = sum(len(t.model_dump_json(by_alias=True)) for t in listed)
    assert size < 3000  # the same two tools at any size of API
    app.toolset = Toolset(list(many)[:40])
    assert len(list_tools(app)) == 42  # 40 tools + find_tool_examples + search_tools
    app.extensions.clear()  # no search tool served: search listing falls back to all tools
    app.settings.server.tool_listing = "search"
    assert len(list_tools(app)) == 40


async def test_search_listing_over_stdio(data_dir):
    """``ste-mcp serve`` as a subprocess in search mode, on its embedded toolbox."""
    params = StdioServerParameters(
        command=STE_MCP,
        args=["serve", "--no-explore", "--tool-listing", "search"],
        env=child_env(data_dir),
        cwd=str(REPO),
    )
    async with Client(params) as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["search_tools", "call_tool"]
        found = await client.call_tool("search_tools", {"query": "generate a random password"})
        names = [t["name"] for t in json.loads(found.content[0].text)["tools"]]
        assert names[0].startswith("Password_Generator_API"), names
        made = await client.call_tool("call_tool", {"name": names[0], "arguments": {}})
        assert not made.is_error, made.content[0].text


async def test_eval_shown_search_lists_the_index_top_k_and_reports_recall(data_dir):
    """``--shown search``: each prompt lists the index's top k; a right tool outside it cannot be called."""
    from ste_mcp.evaluate.bench import load_bench
    from ste_mcp.evaluate.run import EvalConfig, run_eval
    from ste_mcp.evaluate.search import bench_tool_index, searcher
    from tests.fixtures.models import ScriptedModel

    bench = load_bench(REPO / "bench" / "dev")
    items = bench.items[:6]
    truth = {it.query: it for it in items}
    shown: list[list[str]] = []

    def reply(messages, kwargs):
        item = truth[messages[-1]["content"]]
        listed = [n for n in bench.tool_names if f"{n}:" in messages[0]["content"]]
        shown.append(listed)
        name = item.mcp_name if item.mcp_name in listed else listed[0]
        return f"Thought: call it\nAction: {name}\nAction Input: {json.dumps(item.arguments)}"

    # a request that names nothing in its tool's description is what makes the index find it
    leak = [(items[0].mcp_name, items[0].query), ("get_today_date", "what day is it for me now")]
    index = bench_tool_index(bench, leak, db_dir=data_dir / "index")
    assert items[0].query not in [h.matched for h in index.search(items[0].query, 50)]  # leak guard
    config = EvalConfig(shown="search", search_k=3, concurrency=1)
    model = ScriptedModel([reply], repeat_last=True)
    result = await run_eval(model, bench, items, config, search=searcher(index))
    assert all(len(names) == 3 for names in shown)
    assert set(result.recall) == {"recall@1", "recall@3", "recall@5", "recall@10"}
    in_top3 = sum(it.mcp_name in [h.tool for h in index.search(it.query, 3)] for it in items)
    assert result.recall["recall@3"] == round(100 * in_top3 / len(items), 1)
    assert result.summary.api_match == pytest.approx(100 * in_top3 / len(items), abs=0.1)
    assert result.summary_json()["search_k"] == 3
    shown.clear()  # a server in search mode that serves only the item's 15 candidates
    among = EvalConfig(shown="search", search_k=3, search_among="candidates", concurrency=1)
    result = await run_eval(model, bench, items, among, search=searcher(index))
    for item, names in zip(items, shown, strict=True):
        candidates = bench.shown_names(item, "candidates")
        assert len(names) == 3 and set(names) <= set(candidates)
        assert set(names) == {h.tool for h in index.search(item.query, 3, among=candidates)}
    assert result.summary_json()["search_among"] == "candidates"
    with pytest.raises(ValueError, match="tool-search index"):
        await run_eval(model, bench, items, config)
