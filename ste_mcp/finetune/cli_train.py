"""`ste-mcp train`: run one fine-tuning round by hand (data -> LoRA training -> gate -> registry)."""

from __future__ import annotations

import argparse
import sys

HELP = "fine-tune a LoRA adapter on the approved exemplars (gated promotion)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimiser steps")
    parser.add_argument("--epochs", type=float, metavar="E", help="training epochs (default from settings)")
    parser.add_argument(
        "--replay",
        type=float,
        metavar="F",
        help="replay this share of every earlier round (0-1) instead of all of them (finetune.replay)",
    )
    parser.add_argument(
        "--from-scratch", action="store_true", help="start from the base model, not the current adapter"
    )
    parser.add_argument(
        "--no-gate", action="store_true", help="register the adapter as a candidate without gating"
    )


def run(args: argparse.Namespace) -> int:
    from functools import partial

    from ste_mcp.cli import run_async, settings_from_args
    from ste_mcp.finetune.rounds import RoundError, round_from_settings

    finetune = {"max_steps": args.max_steps, "epochs": args.epochs, "replay_fraction": args.replay}
    if args.replay is not None:
        finetune["replay"] = "fraction"
    settings = settings_from_args(args, finetune=finetune)
    try:
        result = run_async(
            partial(round_from_settings, settings, gate=not args.no_gate, from_scratch=args.from_scratch)
        )
    except RoundError as exc:
        print(f"ste-mcp train: {exc}", file=sys.stderr)
        return 1
    print(f"{result.status}: {result.reason}")
    if result.adapter is not None:
        print(f"adapter {result.adapter.id} ({result.adapter.status})")
    return 0
