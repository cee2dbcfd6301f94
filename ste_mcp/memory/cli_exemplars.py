"""`ste-mcp exemplars list|approve|reject`: review what exploration learned;
`ste-mcp exemplars export|import`: move exemplars to another data directory;
`ste-mcp exemplars recheck`: hold stored exemplars to today's checks (``memory/recheck.py``).

Approving or rejecting an exemplar also applies to its paraphrases; a running server re-renders the
affected descriptions and notifies its clients within ``memory.poll_s``.

``export FILE [--tool T]... [--status approved|candidate|rejected|all]`` writes JSON Lines (``-``:
stdout): a header line with ``format``/``version``, then one exemplar per line, originals with their
paraphrases; default: the approved ones. ``import FILE [--status candidate|approved] [--dry-run]
[--any-tool]`` (``-``: stdin) validates every line first (a bad line: an error naming it and its
field, nothing written), then checks each exemplar as the exploiter checks a live trial (served tool,
argument schema, injected instructions, user-like request, the checks of ``memory.judge_checks`` that read
only the request and the call, repeats), cleans and redacts it,
re-embeds its query and stores it; exemplars already stored (same id, or same tool, words and
arguments) are skipped, so importing twice adds nothing. Exit status 0 after an import (refusals are
reported), 1 when the file is invalid. The format and the checks are in ``memory/transfer.py``.

``recheck [--tool T] [--dry-run] [--call]`` checks every approved and candidate exemplar again as an import
would (no model asked) and rejects those that fail, with the reason; with ``--call`` it also calls again
the originals whose request asks for a language or a day relative to today (tools exploration may call
only) and moves them to the sibling tool that answers in that language, or rejects them
(``result_language``, ``result_date``); exit status 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ste_mcp.config import Settings
    from ste_mcp.memory.exemplars import ExemplarStore
    from ste_mcp.upstream.specs import Toolset

HELP = "list exemplars, approve / reject them (with their paraphrases), export, import or recheck them"
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
    p = sub.add_parser("export", help="write exemplars (with their paraphrases) to a JSON Lines file")
    p.add_argument("file", metavar="FILE", help="where to write (- for stdout)")
    p.add_argument("--tool", action="append", default=[], metavar="T", help="only this tool (repeatable)")
    p.add_argument(
        "--status",
        choices=["approved", "candidate", "rejected", "all"],
        default="approved",
        help="which exemplars (default: approved)",
    )
    add_common_arguments(p)
    p = sub.add_parser(
        "import",
        help="add the exemplars of an exported file, checked and cleaned like live trials",
        description="Add the exemplars of a file written by `ste-mcp exemplars export`. Every line is "
        "validated before anything is written; each exemplar is checked like a live trial (served tool, "
        "argument schema, injected instructions, repeats), cleaned, redacted and re-embedded; exemplars "
        "already stored are skipped.",
    )
    p.add_argument("file", metavar="FILE", help="the exported file (- for stdin)")
    p.add_argument(
        "--status",
        choices=["candidate", "approved"],
        help="store every exemplar with this status (default: the file's); use candidate for a file "
        "from a source you do not trust, then review and approve",
    )
    p.add_argument("--dry-run", action="store_true", help="check and report only; write nothing")
    p.add_argument(
        "--any-tool", action="store_true", help="also import exemplars of tools the toolset does not serve"
    )
    add_common_arguments(p)
    p = sub.add_parser(
        "paraphrase",
        help="add paraphrases to the approved exemplars, checked like a live exemplar's",
        description="Ask the paraphrase model (`llm.paraphrase`, else the main model) for N more paraphrases "
        "of every approved original exemplar (of --tool), in a style: `reword` says the request in other "
        "words, `situation` has a user in an everyday situation ask for the same call. Each is checked as "
        "a live exemplar's paraphrases are (no tool named, no repeat of its group, the call's values still "
        "stated) and stored approved with its original.",
    )
    p.add_argument("--tool", help="only this tool")
    p.add_argument(
        "--style",
        choices=["reword", "situation"],
        default="reword",
        help="default: reword (situations cost the 1.5B client 4 points: docs/BENCHMARKS.md, session 28)",
    )
    p.add_argument(
        "-n", type=int, default=2, choices=range(1, 7), metavar="N", help="per exemplar, 1-6 (default 2)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common_arguments(p)
    p = sub.add_parser(
        "recheck",
        help="reject stored exemplars that today's checks refuse",
        description="Check every approved and candidate exemplar again as an import would (argument "
        "schema, instructions in any field, a request that names or talks about a tool, the judge checks "
        "that read only the request and the call); those that fail are rejected with the reason (an "
        "original with its paraphrases). No model is asked; `ste-mcp exemplars approve ID` undoes it.",
    )
    p.add_argument("--tool", help="only this tool")
    p.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    p.add_argument(
        "--call",
        action="store_true",
        help="also apply the checks that read the result (result_language, result_date): call again the "
        "originals whose request asks for a language or a day relative to today, as exploration may "
        "(read-only or opted-in tools only)",
    )
    add_common_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.memory.db import Memory

    settings = settings_from_args(args)
    if args.action == "import":
        return _import(settings, args)
    if args.action == "recheck":
        return _recheck(settings, args)
    if args.action == "paraphrase":
        from ste_mcp.cli import run_async

        return run_async(_paraphrase, settings, args)
    store = Memory.open(settings).exemplars
    if args.action == "export":
        return _export(store, args)
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


def _export(store: ExemplarStore, args: argparse.Namespace) -> int:
    from ste_mcp.memory.transfer import export_exemplars

    if args.file == "-":
        count = export_exemplars(store, sys.stdout, tools=args.tool, status=args.status)
    else:
        with open(args.file, "w", encoding="utf-8") as out:
            count = export_exemplars(store, out, tools=args.tool, status=args.status)
    print(f"{count} exemplar(s) exported ({args.status})", file=sys.stderr)
    return 0


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from ste_mcp.memory.db import Memory
    from ste_mcp.memory.transfer import Importer, TransferError, read_export

    try:
        if args.file == "-":
            records = read_export(sys.stdin)
        else:
            with open(args.file, encoding="utf-8") as lines:
                records = read_export(lines)
    except (OSError, UnicodeDecodeError, TransferError) as exc:
        print(f"ste-mcp exemplars import: {args.file}: {exc}; nothing imported", file=sys.stderr)
        return 1
    toolset = served_toolset(settings)
    tools = {tool.name: tool for tool in toolset.visible()}
    store = Memory.open(settings).exemplars if not args.dry_run or _has_exemplars(settings) else None
    importer = Importer(
        store,
        tools,
        settings.memory,
        secrets=toolset.secret_values(),
        any_tool=args.any_tool,
        status=args.status,
    )
    report = importer.run(records, dry_run=args.dry_run)
    for refusal in report.refused:
        print(f"line {refusal.line}: {refusal.id} ({refusal.tool}) refused: {refusal.reason}")
    verb = "would be added" if report.dry_run else "added"
    print(
        f"{report.added} exemplar(s) {verb} ({report.paraphrases} paraphrases), "
        f"{report.duplicates} skipped as duplicates, {len(report.refused)} refused"
    )
    return 0


def _recheck(settings: Settings, args: argparse.Namespace) -> int:
    from ste_mcp.memory.db import Memory
    from ste_mcp.memory.recheck import recheck

    if not _has_exemplars(settings):
        print("no exemplars stored: nothing to recheck")
        return 0
    tools = {tool.name: tool for tool in served_toolset(settings).visible()}
    store = Memory.open(settings).exemplars
    report = recheck(store, tools, settings.memory, tool=args.tool, dry_run=args.dry_run)
    for ex, why in report.failed:
        kind = f" (paraphrase of {ex.variant_of})" if ex.variant_of else ""
        print(f"{ex.id} ({ex.tool}){kind}: {why}")
    verb = "would be rejected" if args.dry_run else "rejected"
    rows = "" if args.dry_run else f" ({report.rejected} rows with their paraphrases)"
    unserved = f"; {report.unserved} of tools no longer served left as they are" if report.unserved else ""
    print(f"{report.checked} exemplar(s) checked, {len(report.failed)} {verb}{rows}{unserved}")
    if args.call:
        from ste_mcp.cli import run_async

        run_async(_recheck_results, settings, args)
    return 0


async def _recheck_results(settings: Settings, args: argparse.Namespace) -> None:
    from ste_mcp.app import App
    from ste_mcp.memory.db import Memory
    from ste_mcp.memory.extension import exploration_calls
    from ste_mcp.memory.recheck import recheck_results

    async with App(settings, features=[]) as app:
        report = await recheck_results(
            Memory.open(settings).exemplars,
            {tool.name: tool for tool in app.toolset.visible()},
            settings.memory,
            *exploration_calls(app),
            secrets=app.toolset.secret_values(),
            tool=args.tool,
            dry_run=args.dry_run,
        )
    verb = "would move" if args.dry_run else "moved"
    for ex, to in report.moved:
        print(f"{ex.id} ({ex.tool}): {verb} to {to} (result_language)")
    for ex, why in report.failed:
        print(f"{ex.id} ({ex.tool}): {why}")
    rows = "" if args.dry_run else f" ({report.rows} rows with their paraphrases)"
    errors = f"; {report.failed_calls} call(s) failed, left as they are" if report.failed_calls else ""
    print(
        f"{report.called} original(s) called again: {len(report.moved)} {verb} to a sibling, "
        f"{len(report.failed)} {'would be rejected' if args.dry_run else 'rejected'}{rows}{errors}"
    )


async def _paraphrase(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ste_mcp.app import App, ModelUnavailable
    from ste_mcp.llm import ModelError
    from ste_mcp.memory.db import Memory
    from ste_mcp.memory.exploit import Exploiter

    if not _has_exemplars(settings):
        print("no exemplars stored: nothing to paraphrase")
        return 0
    async with App(settings, features=[]) as app:
        tools = {tool.name: tool for tool in app.toolset.visible()}
        if args.tool and args.tool not in tools:
            print(f"ste-mcp exemplars paraphrase: no served tool named {args.tool}", file=sys.stderr)
            return 1
        m = Memory.open(settings)
        exploiter = Exploiter(
            m.trials, m.exemplars, m.descriptions, settings.memory, secrets=app.toolset.secret_values()
        )
        progress = Progress(
            TextColumn(f"[bold]{args.style} paraphrases[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("exemplars  {task.fields[added]} added"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=args.no_progress,
        )
        task = progress.add_task("paraphrase", total=None, added=0)
        added = 0

        def done(k: int) -> None:
            nonlocal added
            added += k
            progress.update(task, advance=1, added=added)

        try:
            model = await app.model_for("paraphrase")
            with progress:
                asked, added = await exploiter.paraphrase_stored(
                    model,
                    tools,
                    {args.style: args.n},
                    tool=args.tool,
                    on_start=lambda n: progress.update(task, total=n),
                    on_done=done,
                )
        except (ModelUnavailable, ModelError) as exc:
            print(f"ste-mcp exemplars paraphrase: {exc}; {added} paraphrase(s) added before", file=sys.stderr)
            return 1
    print(f"{asked} exemplar(s) paraphrased: {added} {args.style} paraphrase(s) added")
    return 0


def served_toolset(settings: Settings) -> Toolset:
    """The configured toolset (the offline toolbox's, started for the moment, when no spec is set)."""
    from ste_mcp.upstream.specs import load_toolset

    if settings.specs:
        return load_toolset(settings)
    from ste_mcp.toolbox.server import start_toolbox

    with start_toolbox() as toolbox:
        return load_toolset(settings, variables={"TOOLBOX_URL": toolbox.url})


def _has_exemplars(settings: Settings) -> bool:
    """Whether the exemplars table exists (checked without creating the database)."""
    from pathlib import Path

    from ste_mcp.memory.db import db_location, open_db, table_names
    from ste_mcp.memory.exemplars import TABLE

    location = db_location(settings)
    if isinstance(location, Path) and not location.exists():
        return False
    return TABLE in table_names(open_db(location))
