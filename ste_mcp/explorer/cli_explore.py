"""`ste-mcp explore`: run STE exploration in the foreground, with a progress bar; resumable."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "explore tools with STE (imagine -> trial -> reflect), resuming where the store left off"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tools",
        nargs="+",
        action="extend",
        metavar="TOOL",
        help="explore only these tools (default: all eligible)",
    )
    parser.add_argument("--episodes", type=int, metavar="N", help="target episodes per tool (default: 15)")
    parser.add_argument("--slots", type=int, metavar="N", help="trials per episode (default: 3)")
    parser.add_argument("--concurrency", type=int, metavar="N", help="episodes in flight (default: 8)")
    parser.add_argument(
        "--allow",
        nargs="+",
        action="extend",
        metavar="TOOL",
        help="opt in non-read-only tools (they get real calls)",
    )
    parser.add_argument("--max-calls", type=int, metavar="N", help="global budget of upstream calls")
    parser.add_argument("--max-tokens-total", type=int, metavar="N", help="global budget of model tokens")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--pause", action="store_true", help="pause running exploration (serve or explore) and exit"
    )
    group.add_argument("--resume", action="store_true", help="resume paused exploration and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.explorer.status import pause_marker

    overrides: dict[str, Any] = {
        "num_episodes": args.episodes,
        "num_stm_slots": args.slots,
        "concurrency": args.concurrency,
        "max_calls": args.max_calls,
        "max_tokens_total": args.max_tokens_total,
        "tools": args.tools,
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
    import anyio

    return anyio.run(_explore, settings, not args.no_progress)


async def _explore(settings: Any, show_progress: bool) -> int:
    import anyio
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ste_mcp.app import App, ModelUnavailable
    from ste_mcp.explorer.extension import context_chars, follow_pause_marker
    from ste_mcp.explorer.scheduler import Explorer, ExplorerError
    from ste_mcp.explorer.status import live_status_file, pause_marker
    from ste_mcp.llm.protocols import protocol_for
    from ste_mcp.memory.trials import TrialStore

    err = Console(stderr=True)
    async with App(settings, features=[]) as app:
        unknown = sorted(set(settings.explorer.tools) - {t.name for t in app.toolset})
        if unknown:
            known = ", ".join(sorted(t.name for t in app.toolset.visible()))
            err.print(f"ste-mcp explore: unknown tool(s) {', '.join(unknown)}; known tools: {known}")
            return 2
        try:
            model = await app.get_model()
        except ModelUnavailable as exc:
            err.print(f"ste-mcp explore: {exc}")
            return 1
        secrets = app.toolset.secret_values()
        store = await anyio.to_thread.run_sync(lambda: TrialStore.open(settings.db_dir, secrets=secrets))
        explorer = Explorer(
            app.toolset.visible(),
            model=model,
            upstream=app.upstream,
            store=store,
            settings=settings.explorer,
            protocol=protocol_for(model.model, settings.llm.protocol),
            secrets=secrets,
            context_chars=context_chars(settings),
            status_file=live_status_file(settings),
        )
        for name, reason in explorer.skipped().items():
            err.print(f"[dim]skipping {name}: {reason}[/dim]")
        jobs = await explorer.plan()
        total = sum(settings.explorer.num_stm_slots - job.start_slot for job in jobs)
        if not jobs:
            err.print(
                "nothing to explore: every selected tool has its episodes (raise --episodes to do more)"
            )
        progress = Progress(
            TextColumn("[bold]exploring[/bold]"),
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
        try:
            with progress:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(follow_pause_marker, explorer, pause_marker(settings))
                    summary = await explorer.run()
                    tg.cancel_scope.cancel()
        except ExplorerError as exc:
            err.print(f"ste-mcp explore: {exc}")
            return 1
    for scope, reason in summary.stopped.items():
        err.print(f"stopped {'all tools' if scope == '*' else scope}: {reason}")
    print(
        f"explored {summary.episodes} episode(s), {summary.trials} trial(s), "
        f"{summary.successful_trials} successful, {summary.errors} error(s)",
        file=sys.stdout,
    )
    return 0
