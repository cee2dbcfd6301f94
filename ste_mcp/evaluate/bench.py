"""Load the STE-50 bench folder (tools.json, test.jsonl, candidates.json) and select items from it.

The queries are a TEST SET: they are only ever shown to the model under evaluation, never used as
exemplars, training data or prompt material.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

ALL_SEED = 0  # the one fixed shuffle of the all-tools listing (the paper shuffled once with a seed)


class BenchError(Exception):
    """The bench folder cannot be used; the message names the file and what is wrong."""


class BenchTool(BaseModel):
    name: str  # the paper's name, e.g. "Numbers%%Get math fact"
    mcp_name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class BenchItem(BaseModel):
    id: str
    query: str
    tool: str
    mcp_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Bench(BaseModel):
    """The tools, the test items and each tool's 15 candidates, all by ``mcp_name``."""

    root: Path
    tools: list[BenchTool]
    items: list[BenchItem]
    candidates: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def tool_names(self) -> list[str]:
        return [t.mcp_name for t in self.tools]

    def tool(self, name: str) -> BenchTool:
        for t in self.tools:
            if name in (t.mcp_name, t.name):
                return t
        raise BenchError(f"no tool {name!r} in {self.root / 'tools.json'}")

    def select(self, tools: Sequence[str] | None = None, limit: int | None = None) -> list[BenchItem]:
        """Items of ``tools`` (all when empty), in file order; ``limit`` keeps an even spread over tools."""
        items = self.items
        if tools:
            wanted = {self.tool(name).mcp_name for name in tools}
            items = [it for it in items if it.mcp_name in wanted]
        if limit is not None and limit < len(items):
            items = _spread(items, limit)
        return items

    def shown_names(self, item: BenchItem, shown: str) -> list[str]:
        """The tools the model sees for an item: its 15 candidates, or all tools (one fixed shuffle)."""
        if shown == "candidates":
            names = self.candidates.get(item.mcp_name)
            if not names:
                raise BenchError(f"no candidates for {item.mcp_name!r} in {self.root / 'candidates.json'}")
            return list(names)
        if shown == "all":
            names = list(self.tool_names)
            random.Random(ALL_SEED).shuffle(names)
            return names
        if shown == "search":
            raise BenchError("--shown search lists what a tool-search index returns: the eval runner asks it")
        raise BenchError(f"unknown --shown {shown!r}: use 'all', 'candidates' or 'search'")


def _spread(items: Sequence[BenchItem], limit: int) -> list[BenchItem]:
    """``limit`` items taking the k-th item of every tool in turn, so small runs cover many tools."""
    by_tool: dict[str, list[BenchItem]] = {}
    for it in items:
        by_tool.setdefault(it.mcp_name, []).append(it)
    picked: list[BenchItem] = []
    rank = 0
    while len(picked) < limit:
        for group in by_tool.values():
            if rank < len(group) and len(picked) < limit:
                picked.append(group[rank])
        rank += 1
    order = {it.id: i for i, it in enumerate(items)}
    return sorted(picked, key=lambda it: order[it.id])


def load_bench(root: Path | str) -> Bench:
    """Read and check an STE-50 folder; errors name the file (and line) that is wrong."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BenchError(f"bench folder {root} does not exist")
    tools_raw = _read_json(root / "tools.json")
    if not isinstance(tools_raw, list):
        raise BenchError(f"{root / 'tools.json'}: expected a list of tools")
    try:
        tools = [BenchTool.model_validate(t) for t in tools_raw]
    except ValidationError as exc:
        raise BenchError(f"{root / 'tools.json'}: {exc}") from exc
    known = {t.mcp_name for t in tools}
    items: list[BenchItem] = []
    path = root / "test.jsonl"
    if not path.is_file():
        raise BenchError(f"{path} does not exist")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = BenchItem.model_validate_json(line)
        except ValidationError as exc:
            raise BenchError(f"{path}:{number}: {exc}") from exc
        if item.mcp_name not in known:
            raise BenchError(f"{path}:{number}: tool {item.mcp_name!r} is not in tools.json")
        items.append(item)
    candidates: dict[str, list[str]] = {}
    if (root / "candidates.json").is_file():
        candidates = _read_json(root / "candidates.json")
        if not isinstance(candidates, dict) or not all(isinstance(v, list) for v in candidates.values()):
            raise BenchError(f"{root / 'candidates.json'}: expected {{tool: [15 tool names]}}")
        unknown = {str(n) for names in candidates.values() for n in names} - known
        if unknown:
            raise BenchError(f"{root / 'candidates.json'}: unknown tools {sorted(unknown)[:5]}")
    return Bench(root=root, tools=tools, items=items, candidates=candidates)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise BenchError(f"{path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BenchError(f"{path} is not valid JSON: {exc}") from exc
