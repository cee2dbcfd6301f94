"""Shared pytest setup. Fixture plugins live in tests/fixtures/ (one file per area)."""

import pytest

pytest_plugins = [
    "tests.fixtures.common",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
