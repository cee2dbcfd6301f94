"""`ste-mcp descriptions history|diff|rollback|approve TOOL`, `ste-mcp descriptions pending`: the
versions of a tool's live description; `ste-mcp descriptions rewrite [TOOL...]`: usage notes written
from each tool's trials, promoted only through the description gate (``memory/gate.py``);
`ste-mcp descriptions regate [TOOL...]`: stored candidates measured again with today's evaluators and
gate settings; `ste-mcp descriptions render`: re-render every tool now as ``memory.description_render`` says.

A rollback stores the earlier text as a new version; with ``memory.description_approval = "manual"``
a rendered version waits (pending) until ``approve``. Either way a running server serves the change
and notifies its clients within ``memory.poll_s`` (it polls the descriptions table).
"""

from __future__ import annotations

import argparse
import difflib
import sys

HELP = (
    "show the history of a tool's live description, diff two versions, roll back, approve, rewrite "
    "(usage notes, gated) or re-render"
)
RENDER_CHOICES = ["notes", "examples", "both", "requests", "none"]  # descriptions.RENDER_MODES (lazy imports)
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
    p = sub.add_parser(
        "rewrite",
        help="write usage notes from each tool's trials (explorer's model) and promote the new description "
        "only if the evaluator (the app's model, and llm.evaluators) answers held-out exemplars better with it",
    )
    p.add_argument("tools", nargs="*", metavar="TOOL", help="default: every served tool with exemplars")
    p.add_argument("--render", choices=RENDER_CHOICES, help="memory.description_render for this run")
    p.add_argument(
        "--no-gate", action="store_true", help="promote unmeasured (memory.description_gate = off)"
    )
    add_common_arguments(p)
    p = sub.add_parser(
        "regate",
        help="measure stored candidates again (default: each tool's newest refused version) with today's "
        "evaluators and gate settings; one that passes is served as a new version",
    )
    p.add_argument(
        "tools", nargs="*", metavar="TOOL", help="default: every served tool with a refused version"
    )
    p.add_argument("--version", type=int, metavar="N", help="the version to measure (one TOOL only)")
    add_common_arguments(p)
    p = sub.add_parser(
        "render", help="re-render every served tool's description now (memory.description_render)"
    )
    p.add_argument("--render", choices=RENDER_CHOICES, help="memory.description_render for this run")
    add_common_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.memory.db import Memory

    memory: dict[str, str] = {}
    if getattr(args, "render", None):
        memory["description_render"] = args.render
    if getattr(args, "no_gate", False):
        memory["description_gate"] = "off"
    settings = settings_from_args(args, **({"memory": memory} if memory else {}))
    if args.action in ("rewrite", "regate", "render"):
        from ste_mcp.cli import run_async

        if args.action == "regate" and args.version is not None and len(args.tools) != 1:
            print("ste-mcp descriptions regate: --version needs exactly one TOOL", file=sys.stderr)
            return 2
        action = {"rewrite": _rewrite, "regate": _regate, "render": _render}[args.action]
        return run_async(action, settings, args)
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
                f"a running server serves it within {settings.memory.poll_s:g} s"
            )
            return 0
        version = store.rollback(args.tool, args.to_version)
    except LookupError as exc:
        print(f"ste-mcp descriptions: {exc.args[0]}", file=sys.stderr)
        return 1
    print(
        f"{args.tool}: v{version.version} now serves the text of {version.reason.removeprefix('rollback to ')}; "
        f"a running server picks it up within {settings.memory.poll_s:g} s"
    )
    return 0


async def _render(settings, args: argparse.Namespace) -> int:
    from ste_mcp.app import App
    from ste_mcp.memory.db import Memory
    from ste_mcp.memory.exploit import Exploiter

    async with App(settings) as app:
        m = Memory.open(settings)
        exploiter = Exploiter(m.trials, m.exemplars, m.descriptions, settings.memory)
        written = exploiter.render(app.toolset.visible())
    for v in written:
        print(f"{v.tool}: v{v.version} {v.status} ({v.reason})")
    print(f"{len(written)} new version(s) (render {settings.memory.description_render})")
    return 0


def _rewriter(settings):
    """The description gate's ``Rewriter`` over the data dir's database."""
    from ste_mcp.memory.db import Memory
    from ste_mcp.memory.gate import Rewriter

    m = Memory.open(settings)
    return Rewriter(m.trials, m.exemplars, m.descriptions, settings.memory)


def _targets(tools: list, names: list[str], default) -> list | None:
    """The served ``tools`` named in ``names``, or those ``default(tool)`` picks when none is named;
    ``None`` (after saying which) when a name is not served."""
    unknown = set(names) - {t.name for t in tools}
    if unknown:
        print(f"ste-mcp descriptions: no served tool named {', '.join(sorted(unknown))}", file=sys.stderr)
        return None
    return [t for t in tools if (t.name in names if names else default(t))]


async def _rewrite(settings, args: argparse.Namespace) -> int:
    from ste_mcp.app import App, ModelUnavailable
    from ste_mcp.evaluate.description_gate import EvaluatorError, gate_evaluators
    from ste_mcp.llm import ModelError
    from ste_mcp.memory.gate import rewrite_all

    async with App(settings) as app:
        tools = app.toolset.visible()
        rewriter = _rewriter(settings)
        with_exemplars = set(rewriter.exemplars.counts())
        targets = _targets(tools, args.tools, lambda t: t.name in with_exemplars)
        if targets is None:
            return 1
        try:
            writer = await app.model_for("explorer")
            evaluators = await gate_evaluators(app)
            outcomes = await rewrite_all(rewriter, tools, targets, writer=writer, evaluator=evaluators)
        except (ModelError, ModelUnavailable, EvaluatorError) as exc:
            print(f"ste-mcp descriptions rewrite: {exc}", file=sys.stderr)
            return 1
    for outcome in outcomes:
        print(f"{outcome.tool}: {outcome.message}")
        for reason in outcome.notes.dropped if outcome.notes else ():
            print(f"  line left out: {reason}")
        if outcome.notes is not None and outcome.notes.text:
            print("    " + outcome.notes.text.replace("\n", "\n    "))
    return 0


async def _regate(settings, args: argparse.Namespace) -> int:
    from ste_mcp.app import App, ModelUnavailable
    from ste_mcp.evaluate.description_gate import EvaluatorError, gate_evaluators
    from ste_mcp.llm import ModelError
    from ste_mcp.memory.descriptions import REFUSED

    async with App(settings) as app:
        tools = app.toolset.visible()
        rewriter = _rewriter(settings)
        history = rewriter.descriptions.history
        targets = _targets(tools, args.tools, lambda t: any(v.status == REFUSED for v in history(t.name)))
        if targets is None:
            return 1
        if not targets:
            print("no tool has a refused description version")
            return 0
        try:
            evaluators = await gate_evaluators(app)
            for tool in targets:
                outcome = await rewriter.regate(tool, tools, evaluator=evaluators, version=args.version)
                print(f"{outcome.tool}: {outcome.message}")
        except (ModelError, ModelUnavailable, EvaluatorError) as exc:
            print(f"ste-mcp descriptions regate: {exc}", file=sys.stderr)
            return 1
    return 0


def _pending(store) -> int:
    waiting = store.pending()
    if not waiting:
        print("no description versions wait for approval")
    for v in waiting:
        print(f"{v.tool}  v{v.version}  {len(v.text):>5} chars  {v.reason}")
    return 0


def _history(store, tool: str, show: bool) -> int:
    from ste_mcp.memory.descriptions import APPROVED

    history = store.history(tool)
    if not history:
        raise LookupError(f"tool {tool!r} has no stored descriptions")
    served = store.served(tool)
    for v in history:
        marker = "*" if served is not None and v.version == served.version else " "
        when = v.created_at.strftime("%Y-%m-%d %H:%M:%S")
        status = f"  [{v.status}]" if v.status != APPROVED else ""
        print(f"{marker} v{v.version}  {when}  {v.hash[:12]}  {len(v.text):>5} chars  {v.reason}{status}")
        gate = v.gate_result or {}
        for score in gate.get("scores") or ([gate] if gate.get("candidate") else []):
            numbers = "  ".join(
                f"{m} {score['candidate'].get(m, 0.0):.1f} vs {score['baseline'].get(m, 0.0):.1f}"
                for m in ("correct", "api_match", "wellformed")
            )
            verdict = f": {score['verdict']}" if score.get("verdict") else ""
            print(
                f"      gate: {numbers} % on {gate.get('n', 0)} held-out queries "
                f"({score.get('evaluator', '')}{verdict})"
            )
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
