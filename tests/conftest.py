"""Shared pytest setup. Fixture plugins live in tests/fixtures/ (one file per area).

Most tests were written to see learned knowledge in a tool's description at once, which the
``examples`` render mode does (a verified call appears as soon as an exemplar is approved); the
default, ``notes``, only shows text after the description gate measured it, with a model. So the
suite runs with ``memory.description_render = "examples"`` unless a test sets the mode itself
(tests/test_notes_loop.py, tests/test_description_gate*.py and tests/test_notes.py do: they test notes).
"""

import os

import pytest

os.environ.setdefault("STE_MCP_MEMORY__DESCRIPTION_RENDER", "examples")

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.upstream",
    "tests.fixtures.llm",
    "tests.fixtures.toolbox",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
