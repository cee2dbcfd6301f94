"""`ste-mcp explore`: run STE exploration in the foreground, with a progress bar; resumable."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "explore tools with STE (imagine -> trial -> reflect), resuming where the store left off"


def add_tool_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--tools``, ``--episodes``, ``--allow`` and ``--shard``: which tools to explore, how far (explore
    and learn)."""
    parser.add_argument(
        "--tools",
        nargs="+",
        action="extend",
        metavar="TOOL",
        help=f"{verb} only these tools (default: all eligible)",
    )
    parser.add_argument("--episodes", type=int, metavar="N", help="target episodes per tool (default: 15)")
    parser.add_argument(
        "--allow",
        nargs="+",
        action="extend",
        metavar="TOOL",
        help="opt in non-read-only tools (they get real calls)",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help=f"{verb} only shard I of N of the tools (stable hash of the name): run N processes, "
        "0/N .. N-1/N, on one data dir to split the work",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_tool_arguments(parser, "explore")
    parser.add_argument("--slots", type=int, metavar="N", help="trials per episode (default: 3)")
    parser.add_argument("--concurrency", type=int, metavar="N", help="episodes in flight (default: 8)")
    parser.add_argument("--max-calls", type=int, metavar="N", help="global budget of upstream calls")
    parser.add_argument("--max-tokens-total", type=int, metavar="N", help="global budget of model tokens")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--pause", action="store_true", help="pause running exploration (serve or explore) and exit"
    )
    group.add_argument("--resume", action="store_true", help="resume paused exploration and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import run_async, settings_from_args
    from ste_mcp.explorer.status import pause_marker

    overrides: dict[str, Any] = {
        "num_episodes": args.episodes,
        "num_stm_slots": args.slots,
        "concurrency": args.concurrency,
        "max_calls": args.max_calls,
        "max_tokens_total": args.max_tokens_total,
        "tools": args.tools,
        "shard": args.shard,
    }
    settings = settings_from_args(args, explorer=overrides)
    if args.allow:
        settings.explorer.explore_tools = sorted({*settings.explorer.explore_tools, *args.allow})
    marker = pause_marker(settings)
    if args.pause or args.resume:
        if args.pause:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        else:
            marker.unlink(missing_ok=True)
        print(f"exploration {'paused' if args.pause else 'resumed'} ({marker})")
        return 0

    return run_async(_explore, settings, not args.no_progress)


async def _explore(settings: Any, show_progress: bool) -> int:
    from rich.console import Console

    from ste_mcp.app import App, ModelUnavailable
    from ste_mcp.explorer.scheduler import ExplorerError

    err = Console(stderr=True)
    async with App(settings, features=[]) as app:
        unknown = unknown_tools(app)
        if unknown:
            err.print(f"ste-mcp explore: {unknown}")
            return 2
        try:
            summary = (await explore_with_progress(app, err, show_progress)).summary
        except (ModelUnavailable, ExplorerError) as exc:
            err.print(f"ste-mcp explore: {exc}")
            return 1
    print(
        f"explored {summary.episodes} episode(s), {summary.trials_line()}, {summary.errors} error(s)",
        file=sys.stdout,
    )
    return 0


def unknown_tools(app: Any) -> str | None:
    """The error for ``explorer.tools`` naming tools the app does not serve, or None."""
    unknown = sorted(set(app.settings.explorer.tools) - {t.name for t in app.toolset})
    if not unknown:
        return None
    known = ", ".join(sorted(t.name for t in app.toolset.visible()))
    return f"unknown tool(s) {', '.join(unknown)}; known tools: {known}"


async def explore_with_progress(
    app: Any, err: Any, show_progress: bool, *, episodes: int | None = None, label: str = "exploring"
) -> Any:
    """Explore over the open ``app`` until the selected tools have ``episodes`` (default
    ``explorer.num_episodes``) episodes, with a progress bar on the console ``err``, following the pause
    marker; returns the explorer (``.summary``: what it did). ``label`` names the bar (a pass of ``learn``).

    Raises ``ModelUnavailable`` (no explorer model) or ``ExplorerError`` (the model keeps failing).
    """
    import anyio
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ste_mcp.explorer.extension import follow_pause_marker
    from ste_mcp.explorer.scheduler import Explorer
    from ste_mcp.explorer.status import pause_marker

    settings = app.settings
    explorer = await Explorer.from_app(app)
    if episodes is None or episodes <= 1:  # said once, not on every pass
        for name, reason in explorer.skipped().items():
            err.print(f"[dim]skipping {name}: {reason}[/dim]")
    jobs = await explorer.plan(episodes)
    total = sum(settings.explorer.num_stm_slots - job.start_slot for job in jobs)
    if not jobs and episodes is None:
        err.print("nothing to explore: every selected tool has its episodes (raise --episodes to do more)")
    progress = Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials  {task.fields[ok]} successful  {task.fields[last]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not show_progress,
    )
    task = progress.add_task("explore", total=total, ok=0, last="")

    def on_trial(record: Any) -> None:
        mark = "ok" if record.success else record.status
        progress.update(
            task,
            advance=1,
            ok=explorer.summary.successful_trials,
            last=f"{record.tool} #{record.episode}.{record.slot}: {mark}",
        )

    explorer.on_trial = on_trial
    with progress:
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow_pause_marker, explorer, pause_marker(settings))
            summary = await explorer.run(episodes)
            tg.cancel_scope.cancel()
    for scope, reason in summary.stopped.items():
        err.print(f"stopped {'all tools' if scope == '*' else scope}: {reason}")
    return explorer
