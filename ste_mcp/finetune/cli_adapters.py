"""`ste-mcp adapters list|export|promote|rollback`: the LoRA adapters fine-tuning produced."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "list, export, promote or roll back fine-tuned LoRA adapters"
HAS_SUBCOMMANDS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ste_mcp.cli import add_common_arguments

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="every adapter with its base model, metrics and status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_common_arguments(p)
    p = sub.add_parser(
        "export",
        help="copy an adapter to DIR (PEFT folder + manifest) and write DIR.tar.gz; "
        "--merged DIR2: the base model with the adapter merged in",
    )
    p.add_argument("id", help="adapter id (see `ste-mcp adapters list`)")
    p.add_argument("dir", nargs="?", help="destination of the PEFT adapter (created; must be empty)")
    p.add_argument(
        "--merged",
        metavar="DIR",
        help="also (or only) write the base model with the adapter merged into its weights: a model "
        "folder served at base-model speed (`vllm serve DIR`); created, must be empty",
    )
    add_common_arguments(p)
    p = sub.add_parser("promote", help="make an adapter the one in use")
    p.add_argument("id", help="adapter id")
    add_common_arguments(p)
    p = sub.add_parser("rollback", help="go back to the previously promoted adapter (or the base model)")
    add_common_arguments(p)


def _row(manifest, registry) -> dict:
    return {
        "id": manifest.id,
        "base_model": manifest.base_model,
        "status": manifest.status,
        "status_reason": manifest.status_reason,
        "parent": manifest.parent,
        "round": manifest.round,
        "data_hash": manifest.data_hash,
        "created_at": manifest.created_at.isoformat(),
        "metrics": manifest.metrics,
        "counts": manifest.counts,
        "path": str(registry.path(manifest.id)),
    }


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "id",
        "status",
        "base model",
        "correct",
        "api match",
        "well-formed",
        "left-out tools",
        "parent",
        "path",
    )
    for r in rows:
        ev = r["metrics"].get("eval") or {}
        pct = [f"{ev[m]:.1f}" if m in ev else "-" for m in ("correct", "api_match", "wellformed")]
        table.add_row(
            r["id"], r["status"], r["base_model"], *pct, _unexplored(r), r["parent"] or "-", r["path"]
        )
    Console().print(table)


def _unexplored(row: dict) -> str:
    """The left-out tools' correct %, candidate vs the model it was gated against, asked as unexplored
    and (with examples) as served ("-": none left out)."""
    parts = [
        f"{label}{part['candidate']['correct']:.1f} vs {part['baseline']['correct']:.1f}"
        for key, label in (("unexplored", ""), ("served", "served "))
        if (part := row["metrics"].get(key))
    ]
    return "; ".join(parts) or "-"


def _export(args: argparse.Namespace, registry) -> int:
    from ste_mcp.cli import run_async
    from ste_mcp.finetune.merge import MergeError, base_folder, export_merged

    if not args.dir and not args.merged:
        print("ste-mcp adapters export: give DIR (the PEFT adapter), --merged DIR, or both", file=sys.stderr)
        return 2
    if args.dir:
        folder, tarball = registry.export(args.id, args.dir)
        print(f"exported {args.id} to {folder} and {tarball}")
        print(f"serve it with: vllm serve BASE --enable-lora --lora-modules {args.id}={folder}")
    if args.merged:
        try:
            manifest = registry.get(args.id)
            try:
                base = base_folder(manifest)
            except MergeError:  # the folder it was trained on is gone: the configured model, if the same
                base = base_folder(manifest, _configured_base(args, manifest.base_model))
            print(f"merging {args.id} into {base} (a child process; about a minute for a 0.5B model)")
            folder = run_async(export_merged, registry, args.id, args.merged, base)
        except MergeError as exc:
            print(f"ste-mcp adapters export: {exc}", file=sys.stderr)
            return 1
        print(f"exported {args.id} merged into its base model to {folder}")
        print(f"serve it with: vllm serve {folder}")
    return 0


def _configured_base(args: argparse.Namespace, base_id: str):
    """The configured model's folder (prepared if needed) when it is the model ``base_id``, else None."""
    from ste_mcp.cli import settings_from_args
    from ste_mcp.llm.sources import ModelSourceError, prepare_model

    settings = settings_from_args(args)
    try:
        prepared = prepare_model(settings.llm.model, settings.models_dir)
    except ModelSourceError:
        return None
    return prepared.path if prepared.base_id == base_id else None


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.finetune.registry import AdapterRegistry, RegistryError

    registry = AdapterRegistry(settings_from_args(args).adapters_dir)
    try:
        if args.action == "list":
            rows = [_row(m, registry) for m in registry.list()]
            if args.json:
                print(json.dumps(rows, indent=2))
            elif rows:
                _print_table(rows)
            else:
                print(f"no adapters yet in {registry.root} (run `ste-mcp train`)")
        elif args.action == "export":
            return _export(args, registry)
        elif args.action == "promote":
            registry.promote(args.id)
            print(f"{args.id} is now the promoted adapter")
        elif args.action == "rollback":
            now = registry.rollback()
            print(f"rolled back; in use now: {now.id if now else 'the base model'}")
    except RegistryError as exc:
        print(f"ste-mcp adapters: {exc}", file=sys.stderr)
        return 1
    return 0
