"""The import direction between the package's layers (DEVELOPERS.md, "Layers").

Every runtime import inside ``ste_mcp`` must point to a lower layer or stay in its own group.
Imports under ``if TYPE_CHECKING:`` only name types and are not checked (``Explorer.from_app(app: App)``
names the runtime it is built from). The few runtime imports that run back up are listed in
``EXCEPTIONS`` with the reason; DEVELOPERS.md repeats them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ste_mcp"

# bottom to top; a module's group is the first entry whose test matches it
LAYERS: list[tuple[str, str]] = [
    (
        "floor",
        "safety, hardware, config, imports (the import lock), extensions (the feature declarations) "
        "and every settings.py: no behaviour, importable from anywhere",
    ),
    ("base", "upstream, llm, toolbox: the contracts (Tool, ChatModel) and their clients"),
    (
        "leaf",
        "evaluate.score: the STE-50 scorer (the training process scores the adapter gate with it); "
        "evaluate.prompts: the prompt variants (training rows are written in them)",
    ),
    ("memory", "stores, judge, paraphrase, exploitation"),
    ("finetune", "dataset, training, gate, adapters"),
    ("explorer", "the STE loop, the scheduler, learn"),
    ("evaluate", "the eval runner and the learning loop of the benchmarks"),
    (
        "runtime",
        "app.py, what it holds (server/extensions.py, server/notifications.py) and the features (*/extension.py)",
    ),
    ("entry", "cli.py, every cli*.py, server/ (the MCP server, transports), ui/"),
]
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}
FOLDER_GROUPS = {"upstream": "base", "llm": "base", "toolbox": "base"}
RUNTIME = {"ste_mcp.app", "ste_mcp.server.extensions", "ste_mcp.server.notifications"}

# (importer, imported) -> why this runtime import may run back up
EXCEPTIONS: dict[tuple[str, str], str] = {
    (
        "ste_mcp.finetune.rounds",
        "ste_mcp.app",
    ): "round_inputs builds the runtime for a standalone round (round_from_settings)",
    ("ste_mcp.evaluate.loop", "ste_mcp.app"): "LearningLoop.open builds the runtime for a benchmark run",
    (
        "ste_mcp.explorer.learn",
        "ste_mcp.memory.extension",
    ): "learn (and the benchmark loop, through memory_of) drives the memory feature's judge pipeline "
    "in a running App, found by type (isinstance), not by name",
}


def group(module: str) -> str:
    """The layer of ``module`` (a dotted name inside ``ste_mcp``)."""
    parts = module.split(".")
    last = parts[-1]
    if (
        module == "ste_mcp"
        or module == "ste_mcp.config"
        or module == "ste_mcp.hardware"
        or module == "ste_mcp.extensions"
        or module == "ste_mcp.imports"
        or last == "settings"
    ):
        return "floor"
    if len(parts) > 1 and parts[1] == "safety":
        return "floor"
    if module in RUNTIME or last == "extension":
        return "runtime"
    if last in {"cli", "__main__"} or last.startswith("cli_"):
        return "entry"
    if len(parts) > 1 and parts[1] in {"server", "ui"}:
        return "entry"
    if module in {"ste_mcp.evaluate.score", "ste_mcp.evaluate.prompts"}:
        return "leaf"
    folder = parts[1]
    return FOLDER_GROUPS.get(folder, folder)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> list[tuple[str, int]]:
    """The ``ste_mcp`` modules ``path`` imports at runtime (module or function level), with line numbers."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ste_mcp" or node.module.startswith("ste_mcp."):
                for alias in node.names:  # `from ste_mcp.memory import judge` may name a module
                    sub = f"{node.module}.{alias.name}"
                    target = (
                        sub
                        if (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                        else node.module
                    )
                    found.append((target, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((a.name, node.lineno) for a in node.names if a.name.startswith("ste_mcp."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return list(dict.fromkeys(found))


def upward_imports() -> list[str]:
    """Every runtime import that points to a higher layer, or sideways into another folder of the same layer."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        mine = group(importer)
        if mine not in RANK:
            problems.append(
                f"{path.relative_to(PACKAGE.parent)}: {importer} is in no layer (add it to LAYERS)"
            )
            continue
        for imported, line in runtime_imports(path):
            theirs = group(imported)
            if theirs not in RANK or RANK[theirs] < RANK[mine] or (importer, imported) in EXCEPTIONS:
                continue  # a module in no layer is reported as the importer
            if mine == "floor" and _folder(importer) == _folder(imported) and _is_leaf(imported):
                continue  # a settings.py validating with a leaf of its own package
            if theirs == mine and (
                mine in {"floor", "runtime", "entry", "base"} or _folder(importer) == _folder(imported)
            ):
                continue
            problems.append(
                f"{path.relative_to(PACKAGE.parent)}:{line}: {importer} ({mine}) -> {imported} ({theirs})"
            )
    return problems


def _is_leaf(module: str) -> bool:
    """Whether ``module`` imports nothing of the project at runtime but the floor."""
    path = (PACKAGE.parent / Path(*module.split("."))).with_suffix(".py")
    return path.is_file() and all(group(m) == "floor" for m, _ in runtime_imports(path))


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_runs_back_up() -> None:
    assert upward_imports() == []


def test_the_floor_imports_nothing_above_it() -> None:
    """Safety code is used by every layer: it may import nothing of the project but the floor."""
    for path in (PACKAGE / "safety").rglob("*.py"):
        assert [m for m, _ in runtime_imports(path) if group(m) != "floor"] == [], path


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a memory module importing the explorer, at function level, is caught."""
    source = "def f():\n    from ste_mcp.explorer.scheduler import Explorer\n    return Explorer\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert runtime_imports(path) == [("ste_mcp.explorer.scheduler", 2)]
    assert RANK[group("ste_mcp.explorer.scheduler")] > RANK[group("ste_mcp.memory.exploit")]
    typed = tmp_path / "typed.py"
    typed.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ste_mcp.app import App\n")
    assert runtime_imports(typed) == []


def test_exceptions_are_still_needed() -> None:
    """An exception whose import is gone must be removed from the list (and from DEVELOPERS.md)."""
    seen = {(_module_name(p), m) for p in PACKAGE.rglob("*.py") for m, _ in runtime_imports(p)}
    assert [pair for pair in EXCEPTIONS if pair not in seen] == []
