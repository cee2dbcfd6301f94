"""`ste-mcp status`: per tool, what exploration (and the other features) have produced so far."""

from __future__ import annotations

import argparse
import json

HELP = "per-tool status: trials, successful trials, episodes (and exemplars, descriptions, adapters)"

_COLUMNS = ("trials", "successful_trials", "episodes", "calls", "success_rate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the full status document as JSON")
    parser.add_argument("--tool", action="append", metavar="TOOL", help="only these tools (repeatable)")


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.explorer.status import collect_status

    settings = settings_from_args(args)
    status = collect_status(settings)
    if args.tool:
        status["tools"] = {name: s for name, s in status["tools"].items() if name in set(args.tool)}
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    extra = sorted({k for s in status["tools"].values() for k in s} - {*_COLUMNS, "last_trial_at"})
    extra = [k for k in extra if k not in ("successful_calls", "parse_errors", "tokens")]
    table = Table(title=f"ste-mcp status ({settings.data_dir})")
    table.add_column("tool")
    for column in (*_COLUMNS, *extra):
        table.add_column(column.replace("_", " "), justify="right")
    for name, s in status["tools"].items():
        table.add_row(name, *(_cell(s.get(c)) for c in (*_COLUMNS, *extra)))
    console = Console()
    console.print(table)
    t = status["totals"]
    state = "paused" if status["paused"] else "not paused"
    console.print(
        f"{t['trials']} trials, {t['successful_trials']} successful ({t['success_rate']:.0%}), "
        f"{t['episodes']} episodes; exploration {state}"
    )
    live = status.get("explorer")
    if live and live.get("running"):
        doing = ", ".join(
            f"{f['tool']} #{f['episode']}.{f['slot']} ({f['phase']})" for f in live["in_flight"]
        )
        console.print(f"explorer running (pid {live.get('pid', '?')}): {doing or 'starting'}")
    for name, error in status["errors"].items():
        console.print(f"[yellow]{name}: {error}[/yellow]")
    return 0


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0%}" if value <= 1 else f"{value:.1f}"
    return str(value)
