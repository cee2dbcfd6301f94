"""``--shown search``: each query sees the top-k tools of the learned tool-search index.

The index is the one ``search_tools`` serves (``ste_mcp.memory.toolsearch``), built here over the
bench's tools (name + bench description) and the requests of the approved exemplars in the data
dir — never a test query (leak guard: an exemplar whose request equals a bench query is left out).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ste_mcp.evaluate.bench import Bench
    from ste_mcp.memory.toolsearch import ToolIndex

SearchTools = Callable[[str, int, Collection[str] | None], list[str]]
"""(query, k, among) -> the names of the k tools shown, best first (only tools in ``among`` if given)."""


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def bench_tool_index(
    bench: Bench, requests: Iterable[tuple[str, str]] = (), db_dir: Path | str | None = None
) -> ToolIndex:
    """A tool-search index over ``bench``'s tools and ``(tool, request)`` pairs of its tools.

    ``db_dir``: where the index's LanceDB lives (a fresh temporary folder by default).
    """
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.toolsearch import ToolIndex, tool_docs

    test_queries = {_normal(it.query) for it in bench.items}
    by_tool: dict[str, list[str]] = {}
    known = set(bench.tool_names)
    for tool, request in requests:
        if tool in known and _normal(request) not in test_queries:
            by_tool.setdefault(tool, []).append(request)
    folder = Path(db_dir) if db_dir is not None else Path(tempfile.mkdtemp(prefix="ste-mcp-eval-search-"))
    index = ToolIndex(open_db(folder))
    docs = [d for t in bench.tools for d in tool_docs(t.mcp_name, t.description, by_tool.get(t.mcp_name, []))]
    index.sync(docs)
    return index


def approved_requests(db_dir: Path | str) -> list[tuple[str, str]]:
    """``(tool, request)`` of every approved exemplar (originals and paraphrases) in the store at ``db_dir``
    (a folder or an object-storage URI, ``memory.db.db_location``)."""
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.exemplars import ExemplarStore
    from ste_mcp.memory.exploit import unsafe_reason

    store = ExemplarStore(open_db(db_dir))
    return [(ex.tool, ex.query) for ex in store.approved() if unsafe_reason(ex) is None]


def searcher(index: Any, mode: str = "vector") -> SearchTools:
    """``SearchTools`` over an index (anything with ``search(query, k, mode=, among=) -> hits with .tool``)."""
    return lambda query, k, among=None: [hit.tool for hit in index.search(query, k, mode=mode, among=among)]


def recall_at(shown: Iterable[tuple[str, list[str]]], ks: Iterable[int] = (1, 3, 5, 10)) -> dict[str, float]:
    """Recall@k in percent from ``(right tool, ranked tools)`` pairs: how often the right tool is in the top k."""
    pairs = list(shown)
    if not pairs:
        return {}
    return {
        f"recall@{k}": round(100.0 * sum(right in ranked[:k] for right, ranked in pairs) / len(pairs), 1)
        for k in ks
    }
