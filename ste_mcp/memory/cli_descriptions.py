"""`ste-mcp descriptions history|diff|rollback|approve TOOL`, `ste-mcp descriptions pending`: the
versions of a tool's live description.

A rollback stores the earlier text as a new version; with ``memory.description_approval = "manual"``
a rendered version waits (pending) until ``approve``. Either way a running server serves the change
and notifies its clients within ``memory.poll_interval_s`` (it polls the descriptions table).
"""

from __future__ import annotations

import argparse
import difflib
import sys

HELP = "show the history of a tool's live description, diff two versions, roll back, or approve"
HAS_SUBCOMMANDS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ste_mcp.cli import add_common_arguments

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("history", help="every stored version of TOOL's description")
    p.add_argument("tool")
    p.add_argument("--show", action="store_true", help="print each version's full text")
    add_common_arguments(p)
    p = sub.add_parser("diff", help="unified diff between two versions (default: previous -> current)")
    p.add_argument("tool")
    p.add_argument("--from", dest="from_version", type=int, metavar="N", help="older version")
    p.add_argument("--to", dest="to_version", type=int, metavar="M", help="newer version (default: current)")
    add_common_arguments(p)
    p = sub.add_parser("rollback", help="serve an earlier text again, as a new version")
    p.add_argument("tool")
    p.add_argument(
        "--to", dest="to_version", type=int, metavar="N", help="version to restore (default: previous)"
    )
    add_common_arguments(p)
    p = sub.add_parser("approve", help="serve a pending version (memory.description_approval = manual)")
    p.add_argument("tool")
    p.add_argument("version", nargs="?", type=int, metavar="VERSION", help="default: the newest pending")
    add_common_arguments(p)
    p = sub.add_parser("pending", help="versions waiting for approval, all tools")
    add_common_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.memory.db import Memory

    settings = settings_from_args(args)
    store = Memory.open(settings).descriptions
    try:
        if args.action == "history":
            return _history(store, args.tool, args.show)
        if args.action == "diff":
            return _diff(store, args.tool, args.from_version, args.to_version)
        if args.action == "pending":
            return _pending(store)
        if args.action == "approve":
            version = store.approve(args.tool, args.version)
            print(
                f"{args.tool}: v{version.version} approved ({version.reason}); "
                f"a running server serves it within {settings.memory.poll_interval_s:g} s"
            )
            return 0
        version = store.rollback(args.tool, args.to_version)
    except LookupError as exc:
        print(f"ste-mcp descriptions: {exc.args[0]}", file=sys.stderr)
        return 1
    print(
        f"{args.tool}: v{version.version} now serves the text of {version.reason.removeprefix('rollback to ')}; "
        f"a running server picks it up within {settings.memory.poll_interval_s:g} s"
    )
    return 0


def _pending(store) -> int:
    waiting = store.pending()
    if not waiting:
        print("no description versions wait for approval")
    for v in waiting:
        print(f"{v.tool}  v{v.version}  {len(v.text):>5} chars  {v.reason}")
    return 0


def _history(store, tool: str, show: bool) -> int:
    from ste_mcp.memory.descriptions import PENDING

    history = store.history(tool)
    if not history:
        raise LookupError(f"tool {tool!r} has no stored descriptions")
    served = store.served(tool)
    for v in history:
        marker = "*" if served is not None and v.version == served.version else " "
        when = v.created_at.strftime("%Y-%m-%d %H:%M:%S")
        status = "  [pending]" if v.status == PENDING else ""
        print(f"{marker} v{v.version}  {when}  {v.hash[:12]}  {len(v.text):>5} chars  {v.reason}{status}")
        if show:
            print("    " + v.text.replace("\n", "\n    "))
    return 0


def _diff(store, tool: str, from_version: int | None, to_version: int | None) -> int:
    from ste_mcp.memory.descriptions import PENDING

    history = store.history(tool)
    if not history:
        raise LookupError(f"tool {tool!r} has no stored descriptions")
    by_number = {v.version: v for v in history}
    new = by_number.get(to_version) if to_version is not None else history[-1]
    if new is None:
        raise LookupError(f"tool {tool!r} has no version {to_version}")
    served = store.served(tool)
    if from_version is None and new.status == PENDING and served is not None and served.version < new.version:
        old = served  # what approving it would change for clients
    elif from_version is None:
        older = [v for v in history if v.version < new.version]
        if not older:
            raise LookupError(f"tool {tool!r} has no version before v{new.version}")
        old = older[-1]
    else:
        old = by_number.get(from_version)
        if old is None:
            raise LookupError(f"tool {tool!r} has no version {from_version}")
    lines = difflib.unified_diff(
        old.text.splitlines(),
        new.text.splitlines(),
        f"{tool} v{old.version}",
        f"{tool} v{new.version}",
        lineterm="",
    )
    print("\n".join(lines) or f"v{old.version} and v{new.version} have the same text")
    return 0
