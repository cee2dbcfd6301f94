"""The transformers stack is imported under one lock wherever the server may import it from a thread
(``ste_mcp/imports.py``: two threads importing it at once left a half-initialised ``accelerate`` in
``sys.modules`` and the packaged model never opened on a fresh clone)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ste_mcp"
STACK = {"transformers", "sentence_transformers", "accelerate", "peft", "trl"}
# run only in the training process (one thread, nothing else imports there)
TRAINING_PROCESS = {"finetune/train.py", "finetune/gate.py"}


def _unlocked_imports(tree: ast.AST) -> list[int]:
    """Line numbers of imports of ``STACK`` that are not inside ``with ML_IMPORT_LOCK:``."""
    found: list[int] = []

    def visit(node: ast.AST, locked: bool) -> None:
        if isinstance(node, ast.With) and any(
            isinstance(item.context_expr, ast.Name) and item.context_expr.id == "ML_IMPORT_LOCK"
            for item in node.items
        ):
            locked = True
        if isinstance(node, ast.Import | ast.ImportFrom) and not locked:
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(name.split(".")[0] in STACK for name in names):
                found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, locked)

    visit(tree, False)
    return found


def test_the_transformers_stack_is_imported_under_the_lock() -> None:
    unlocked = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(PACKAGE)) not in TRAINING_PROCESS
        and (lines := _unlocked_imports(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert unlocked == {}


def test_the_check_sees_an_unlocked_import() -> None:
    code = "def f():\n    from transformers import AutoModel\n\ndef g():\n    with ML_IMPORT_LOCK:\n        import peft\n"
    assert _unlocked_imports(ast.parse(code)) == [2]
