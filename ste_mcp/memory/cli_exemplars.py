"""`ste-mcp exemplars list|approve|reject`: review what exploration learned.

Approving or rejecting an exemplar also applies to its paraphrases; a running server re-renders the
affected descriptions and notifies its clients within ``memory.poll_s``.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "list exemplars, or approve / reject them (with their paraphrases)"
HAS_SUBCOMMANDS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ste_mcp.cli import add_common_arguments

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="exemplars, oldest first")
    p.add_argument("--tool", help="only this tool")
    p.add_argument("--status", choices=["candidate", "approved", "rejected"], help="only this status")
    p.add_argument("--variants", action="store_true", help="include paraphrases")
    p.add_argument("--json", action="store_true", help="machine-readable output (JSON lines)")
    add_common_arguments(p)
    for action, help_text in (("approve", "approve exemplars"), ("reject", "reject exemplars")):
        p = sub.add_parser(action, help=f"{help_text} (and their paraphrases)")
        p.add_argument("ids", nargs="*", metavar="ID", help="exemplar ids (see `ste-mcp exemplars list`)")
        p.add_argument("--all-candidates", action="store_true", help="every candidate (of --tool, if given)")
        p.add_argument("--tool", help="with --all-candidates: only this tool")
        p.add_argument("--reason", default="", help="why (stored with the status)")
        add_common_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.memory.db import Memory

    settings = settings_from_args(args)
    store = Memory.open(settings).exemplars
    if args.action == "list":
        rows = store.find(args.tool, args.status, originals_only=not args.variants)
        for ex in rows:
            if args.json:
                print(ex.model_dump_json(exclude={"score"}))
            else:
                kind = "  paraphrase of " + ex.variant_of if ex.variant_of else ""
                print(f"{ex.id}  {ex.status:<9}  {ex.tool:<24}  {ex.query}{kind}")
                print(f"    arguments {json.dumps(ex.arguments, ensure_ascii=False)}")
        if not args.json:
            print(f"{len(rows)} exemplar(s)", file=sys.stderr)
        return 0

    ids = list(args.ids)
    if args.all_candidates:
        ids += [ex.id for ex in store.find(args.tool, "candidate", originals_only=True)]
    if not ids:
        print(f"ste-mcp exemplars {args.action}: give exemplar ids or --all-candidates", file=sys.stderr)
        return 2
    missing = [i for i in ids if store.get(i) is None]
    if missing:
        print(f"ste-mcp exemplars {args.action}: no exemplar with id {', '.join(missing)}", file=sys.stderr)
        return 1
    status = "approved" if args.action == "approve" else "rejected"
    changed = store.set_status(ids, status, args.reason or f"{args.action}d by operator")
    print(f"{changed} exemplar(s) (with paraphrases) now {status}")
    return 0
