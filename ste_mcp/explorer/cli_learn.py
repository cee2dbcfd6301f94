"""`ste-mcp learn`: the learning loop ``serve`` runs in the background, once, in the foreground.

explore (STE trials, resumable) -> judge (new trials of the selected tools) -> exemplars and
paraphrases -> description versions -> usage notes (when ``memory.description_render`` shows them:
the selected tools whose notes are due, ``Rewriter.due`` / ``memory.notes_rewrite_after``, rewritten
through the description gate) -> with ``--train`` one gated fine-tuning round; with progress on
stderr, then a summary table on stdout. Each role uses its configured model (``llm.explorer``,
``llm.judge``, ``llm.paraphrase``; default the app's; the notes' evaluators are the app's and
``llm.evaluators``). The models are closed before training, so the trainer has the machine to itself. Exit codes: 0 done, 1 a stage
failed (the message says which), 2 bad usage (unknown tool, invalid configuration).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from ste_mcp.app import App
    from ste_mcp.config import Settings
    from ste_mcp.explorer.learn import JudgeTotals
    from ste_mcp.explorer.scheduler import RunSummary
    from ste_mcp.finetune.rounds import RoundResult
    from ste_mcp.memory.extension import MemoryExtension
    from ste_mcp.memory.gate import RewriteOutcome

HELP = (
    "run the learning loop once in the foreground: explore, judge, exemplars, descriptions (--train: a round)"
)

MEMORY_FEATURE = "ste_mcp.memory.extension:create"
TRAIN_LOG = "learn-train.log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ste_mcp.explorer.cli_explore import add_tool_arguments

    add_tool_arguments(parser, "learn")
    parser.add_argument(
        "--train", action="store_true", help="then run one fine-tuning round on the approved exemplars"
    )
    parser.add_argument(
        "--exemplars",
        type=int,
        metavar="K",
        help="per-tool stopping: explore in passes of one episode per tool, judged after each, until every "
        "tool holds K approved exemplars or has --episodes (explorer.target_exemplars)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import run_async, settings_from_args

    settings = settings_from_args(
        args,
        explorer={
            "num_episodes": args.episodes,
            "tools": args.tools,
            "shard": args.shard,
            "target_exemplars": args.exemplars,
        },
    )
    if args.train and settings.explorer.shard != "0/1":
        print(
            f"ste-mcp learn: --train with shard {settings.explorer.shard}: train once, after every shard "
            "has learned (`ste-mcp train`, or `ste-mcp learn --train` without a shard)",
            file=sys.stderr,
        )
        return 2
    if args.allow:
        settings.explorer.explore_tools = sorted({*settings.explorer.explore_tools, *args.allow})
    return run_async(learn, settings, args.train, not args.no_progress)


@dataclass
class NotesTotals:
    """What rewriting usage notes did: tools per ``RewriteOutcome.result``."""

    promoted: int = 0
    refused: int = 0
    skipped: int = 0

    def add(self, outcome: RewriteOutcome) -> None:
        setattr(self, outcome.result, getattr(self, outcome.result) + 1)


@dataclass
class Outcome:
    """Everything ``learn`` did, for the summary."""

    tools: list[str] = field(default_factory=list)
    before: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-tool status before the run
    after: dict[str, dict[str, Any]] = field(default_factory=dict)
    explored: RunSummary | None = None
    judged: JudgeTotals | None = None
    descriptions: int = 0  # description versions written
    notes: NotesTotals | None = None  # None: the render mode shows no usage notes
    round: RoundResult | None = None


async def learn(settings: Settings, train: bool, show_progress: bool) -> int:
    """The whole command; returns its exit code."""
    import anyio
    from rich.console import Console

    from ste_mcp.app import App, ModelUnavailable
    from ste_mcp.explorer.cli_explore import explore_with_progress, unknown_tools
    from ste_mcp.explorer.learn import LearnError, memory_of
    from ste_mcp.explorer.scheduler import ExplorerError
    from ste_mcp.explorer.shard import in_shard

    err = Console(stderr=True)
    outcome = Outcome()
    async with App(settings, features=[MEMORY_FEATURE]) as app:
        unknown = unknown_tools(app)
        if unknown:
            err.print(f"ste-mcp learn: {unknown}")
            return 2
        toolset = app.toolset
        outcome.before = await anyio.to_thread.run_sync(_tool_status, settings)
        try:
            memory = memory_of(app)
            if settings.explorer.target_exemplars is None:
                explorer = await explore_with_progress(app, err, show_progress)
                outcome.explored = explorer.summary
                outcome.tools = sorted(t.name for t in explorer.selected())
                outcome.judged = await _judge(app, outcome.tools, err, show_progress)
            else:
                await _learn_in_passes(app, outcome, err, show_progress)
        except (ModelUnavailable, ExplorerError, LearnError) as exc:
            err.print(f"ste-mcp learn: {exc}")
            return 1
        shard = settings.explorer.shard  # each shard describes its own tools
        mine = [t for t in toolset.visible() if in_shard(t.name, shard)]
        written = await anyio.to_thread.run_sync(memory.exploiter.render, mine)
        outcome.descriptions = len(written)
        if settings.memory.description_render in ("notes", "both"):
            try:
                learned = set(outcome.tools)
                targets = [t for t in mine if t.name in learned]
                outcome.notes = await _rewrite_notes(memory, targets, err, show_progress)
            except LearnError as exc:
                err.print(f"ste-mcp learn: {exc}")
                return 1
    if train:
        try:
            outcome.round = await _train(settings, toolset, err)
        except LearnError as exc:
            err.print(f"ste-mcp learn: {exc}")
            return 1
    outcome.after = await anyio.to_thread.run_sync(_tool_status, settings)
    # piped: wide enough that no tool name wraps (a terminal's own width otherwise)
    print_summary(outcome, Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200))
    return 0


async def _learn_in_passes(app: App, outcome: Outcome, err: Console, show_progress: bool) -> None:
    """Per-tool stopping (``explorer.target_exemplars``): pass p explores each tool short of the target
    to p episodes, then judges, so the next pass knows which tools still yield too little; stops when
    every tool holds the target or has ``num_episodes``."""
    from ste_mcp.explorer.cli_explore import explore_with_progress
    from ste_mcp.explorer.learn import JudgeTotals
    from ste_mcp.explorer.scheduler import RunSummary

    s = app.settings.explorer
    outcome.explored, outcome.judged = RunSummary(reflect=s.reflect), JudgeTotals()
    for episodes in range(1, s.num_episodes + 1):
        label = f"exploring (pass {episodes} of at most {s.num_episodes})"
        explorer = await explore_with_progress(app, err, show_progress, episodes=episodes, label=label)
        outcome.explored.add(explorer.summary)
        outcome.tools = sorted(t.name for t in explorer.selected())
        judged = await _judge(app, outcome.tools, err, show_progress)
        outcome.judged.add(judged)
        await explorer.refresh_counts(force=True)
        short = [name for name in outcome.tools if explorer.enough(name) is None]
        if not short:
            err.print(f"every tool holds {s.target_exemplars} approved exemplars: exploration stops")
            return
        if explorer.summary.stopped.get("*"):
            return  # a global budget is spent


def _tool_status(settings: Settings) -> dict[str, dict[str, Any]]:
    from ste_mcp.explorer.status import collect_status

    return collect_status(settings)["tools"]


async def _judge(app: App, tools: list[str], err: Console, show_progress: bool) -> JudgeTotals:
    """Judge every unjudged trial of ``tools``, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ste_mcp.explorer.learn import judge_pending

    progress = Progress(
        TextColumn("[bold]judging[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials  {task.fields[accepted]} accepted"),
        TimeElapsedColumn(),
        console=err,
        disable=not show_progress,
    )
    task = progress.add_task("judge", total=None, accepted=0)
    with progress:
        totals = await judge_pending(
            app,
            tools,
            on_start=lambda n: progress.update(task, total=n),
            on_batch=lambda done, t: progress.update(task, advance=done, accepted=t.accepted),
        )
    for error in totals.errors[:3]:
        err.print(f"[yellow]judging failed: {error}[/yellow]")
    return totals


async def _rewrite_notes(
    memory: MemoryExtension, targets: list[Any], err: Console, show_progress: bool
) -> NotesTotals:
    """Rewrite the usage notes of those of ``targets`` that are due, with a progress bar; a model
    failure is a ``LearnError`` naming the stage."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ste_mcp.app import ModelUnavailable
    from ste_mcp.evaluate.description_gate import EvaluatorError
    from ste_mcp.explorer.learn import LearnError
    from ste_mcp.llm.base import ModelError

    progress = Progress(
        TextColumn("[bold]usage notes[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tools  {task.fields[promoted]} promoted"),
        TimeElapsedColumn(),
        console=err,
        disable=not show_progress,
    )
    task = progress.add_task("notes", total=None, promoted=0)
    totals = NotesTotals()

    def done(outcome: RewriteOutcome) -> None:
        totals.add(outcome)
        progress.update(task, advance=1, promoted=totals.promoted)

    with progress:
        try:
            await memory.rewrite_notes(
                targets, on_start=lambda n: progress.update(task, total=n), on_done=done
            )
        except (ModelUnavailable, ModelError, EvaluatorError) as exc:
            raise LearnError(f"usage notes failed: {exc}") from exc
    return totals


async def _train(settings: Settings, toolset: Any, err: Console) -> RoundResult:
    """One gated fine-tuning round; the trainer's output goes to ``logs/learn-train.log``."""
    from ste_mcp.explorer.learn import LearnError
    from ste_mcp.finetune.rounds import RoundError, round_from_settings

    path = settings.logs_dir / TRAIN_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with err.status(f"training one round (log: {path})"), path.open("a") as log:
        try:
            return await round_from_settings(settings, toolset=toolset, log=log)
        except RoundError as exc:
            raise LearnError(f"training failed: {exc} (log: {path})") from exc


def print_summary(outcome: Outcome, out: Console) -> None:
    """The table per tool (totals, with this run's additions) and one line per stage."""
    from rich.table import Table

    def cell(tool: str, key: str) -> str:
        now = outcome.after.get(tool, {}).get(key, 0) or 0
        new = now - (outcome.before.get(tool, {}).get(key, 0) or 0)
        return f"{now} (+{new})" if new else str(now)

    table = Table(title="ste-mcp learn", title_justify="left")
    table.add_column("tool", no_wrap=True)
    for header in ("trials", "successful", "approved exemplars", "description", "adapter"):
        table.add_column(header)
    for tool in outcome.tools:
        after = outcome.after.get(tool, {})
        version = after.get("description_version")
        table.add_row(
            tool,
            cell(tool, "trials"),
            cell(tool, "successful_trials"),
            cell(tool, "exemplars"),
            f"v{version}" if version is not None else "-",
            str(after.get("adapter") or "-"),
        )
    out.print(table)
    s, j = outcome.explored, outcome.judged
    if s is not None:
        out.print(f"explored: {s.episodes} episode(s), {s.trials_line()}, {s.errors} error(s)")
    if j is not None:
        out.print(
            f"judged: {j.judged} trial(s), {j.accepted} accepted, {j.refused} refused as unsafe, "
            f"{j.exemplars} exemplar(s) + {j.paraphrases} paraphrase(s), {len(j.errors)} error(s)"
            + (f", {j.repaired} of the exemplars kept after hindsight's repair" if j.repaired else "")
            + (f", {j.claimed_elsewhere} left to another process judging them" if j.claimed_elsewhere else "")
        )
    out.print(f"descriptions: {outcome.descriptions} new version(s)")
    if outcome.notes is not None:
        n = outcome.notes
        out.print(f"usage notes: {n.promoted} promoted, {n.refused} refused, {n.skipped} skipped")
    if outcome.round is not None:
        r = outcome.round
        adapter = f"adapter {r.adapter.id} " if r.adapter is not None else ""
        out.print(f"training: {adapter}{r.status}: {r.reason}")
