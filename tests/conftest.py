"""Shared pytest setup. Fixture plugins live in tests/fixtures/ (one file per area).

Most tests were written to see learned knowledge in a tool's description at once, which the
``examples`` render mode does (a verified call appears as soon as an exemplar is approved); the
default, ``notes``, only shows text after the description gate measured it, with a model. So the
suite runs with ``memory.description_render = "examples"`` unless a test sets the mode itself
(tests/test_notes_loop.py, tests/test_description_gate*.py and tests/test_notes.py do: they test notes).
"""

import faulthandler
import os
import signal
import sys
import threading
import time

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


@pytest.fixture(autouse=True)
def _sigterm_handler_restored():
    """Tests that run ``ste_mcp.cli.main`` in-process install its SIGTERM handler; the next test (and
    pytest itself, when CI stops it) gets the one it had."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    if signal.getsignal(signal.SIGTERM) is not before:
        signal.signal(signal.SIGTERM, before)


LEFTOVER_GRACE_S = 30.0
_HARD_EXIT = pytest.StashKey[bool]()  # set when leftover threads would keep the interpreter alive


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test that leaves a non-daemon thread running would keep the interpreter from exiting after
    the summary (CI then runs out of time instead of failing): wait briefly, then print where the
    leftovers are stuck and fail the run (``pytest_unconfigure`` exits without waiting for them)."""
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while _leftover_threads() and time.monotonic() < deadline:
        time.sleep(0.5)
    leftovers = _leftover_threads()
    if leftovers:
        names = ", ".join(t.name for t in leftovers)
        print(f"\nthreads still running after the tests: {names}", file=sys.stderr)
        faulthandler.dump_traceback(file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        session.config.stash[_HARD_EXIT] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_HARD_EXIT, False):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(pytest.ExitCode.TESTS_FAILED))


def _leftover_threads() -> list[threading.Thread]:
    return [
        t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
