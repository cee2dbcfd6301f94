"""The `ste-mcp` command line.

Each subcommand lives in the package it belongs to and is declared by its feature in
``ste_mcp/extensions.py`` (``FEATURES``), in a module exposing::

    HELP: str
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int

A module with subcommands of its own sets ``HAS_SUBCOMMANDS = True`` and calls
``add_common_arguments`` on each of its subparsers. Those modules keep their top-level imports light (heavy imports inside ``run``) so that
``ste-mcp --help`` stays instant. Common options (``--config``, ``--data-dir``, ``--spec``,
``--model``, ``--llm-url``) are added here; ``settings_from_args`` turns them into ``Settings``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ste_mcp import __version__
from ste_mcp.extensions import commands, load

T = TypeVar("T")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("common options")
    g.add_argument("--config", metavar="TOML", help="settings file (also $STE_MCP_CONFIG)")
    g.add_argument("--data-dir", metavar="DIR", help="where ste-mcp keeps everything it writes")
    g.add_argument(
        "--spec",
        action="append",
        metavar="PATH_OR_URL",
        help="tool spec (OpenAPI or native YAML), repeatable",
    )
    g.add_argument("--model", metavar="MODEL", help="packaged:NAME, HF folder, .gguf, or hub id")
    g.add_argument(
        "--llm-url", metavar="URL", help="external OpenAI-compatible server (default: managed vLLM)"
    )


def settings_from_args(args: argparse.Namespace, **overrides: Any):
    """Settings from the common options plus section overrides given by a subcommand."""
    from ste_mcp.config import load_settings

    llm = dict(overrides.pop("llm", {}) or {})
    llm.setdefault("model", getattr(args, "model", None))
    llm.setdefault("base_url", getattr(args, "llm_url", None))
    return load_settings(
        getattr(args, "config", None),
        data_dir=getattr(args, "data_dir", None),
        specs=getattr(args, "spec", None),
        llm=llm,
        **overrides,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ste-mcp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ste-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (feature, module_name) in commands().items():
        module = load(module_name, feature=feature)
        if module is None:
            continue  # the feature is not installed (logged)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        if not getattr(module, "HAS_SUBCOMMANDS", False):
            add_common_arguments(p)  # else the module adds them to each of its subcommands
        p.set_defaults(_run=module.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``with``/``finally`` runs: a managed vLLM server or a
    trainer started by this process is stopped, not left running (``kill``, ``systemctl stop``)."""


_ROOTS: list[asyncio.Task[Any]] = []  # the root task of each event loop run_async runs, innermost last
_TERMINATED = threading.Event()  # SIGTERM cancelled a root task: the program exits 143


def run_async(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func(*args)`` in a new event loop (anyio's), as every command does: SIGTERM then cancels its
    root task, and the program unwinds at an ``await`` (``_on_sigterm``), then raises ``Terminated``."""
    import anyio

    async def root() -> T:
        task = asyncio.current_task()
        if task is None or threading.current_thread() is not threading.main_thread():
            return await func(*args)  # signals reach the main thread only
        _ROOTS.append(task)
        try:
            return await func(*args)
        finally:
            _ROOTS.remove(task)

    try:
        return anyio.run(root)
    except asyncio.CancelledError:
        if _TERMINATED.is_set():
            raise Terminated from None
        raise


def _on_sigterm(signum: int, frame: object) -> None:
    """While ``run_async`` runs a loop, SIGTERM cancels its root task, as asyncio does for Ctrl-C: the
    program unwinds at an ``await``, where every ``async with`` and ``finally`` runs and may await. An
    exception raised from here could land anywhere, inside a library's own bookkeeping too: seen raised
    inside anyio's start of a worker thread, which then never stopped, and `ste-mcp learn` hung at exit
    with its managed vLLM still running. Without a loop (or at a second SIGTERM) it is raised as
    ``Terminated``."""
    if _ROOTS and not _TERMINATED.is_set():
        task = _ROOTS[-1]
        _TERMINATED.set()
        task.cancel()
        task.get_loop().call_soon_threadsafe(lambda: None)  # wake a loop waiting in select()
        return
    raise Terminated


def install_signal_handlers() -> None:
    """Make SIGTERM unwind the program like Ctrl-C (only possible from the main thread; elsewhere, e.g.
    ``main()`` called in a worker thread, the process keeps its handler)."""
    if threading.current_thread() is threading.main_thread():
        _TERMINATED.clear()
        signal.signal(signal.SIGTERM, _on_sigterm)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ste_mcp.config import ConfigError

    install_signal_handlers()
    try:
        return int(args._run(args) or 0)
    except ConfigError as exc:
        print(f"ste-mcp: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
