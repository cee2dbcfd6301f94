"""Shared pytest setup. Fixture plugins live in tests/fixtures/ (one file per area)."""

import pytest

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.upstream",
    "tests.fixtures.llm",
    "tests.fixtures.toolbox",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
