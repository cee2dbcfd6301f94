"""`ste-mcp claude-config`: print a claude_desktop_config.json entry for this installation."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

HELP = "print a claude_desktop_config.json entry that starts this ste-mcp over stdio"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="ste-mcp", help="server name in Claude Desktop (default ste-mcp)")
    parser.add_argument(
        "--no-explore", action="store_true", help="add --no-explore to the server's arguments"
    )


def executable() -> str:
    """Absolute path of this installation's ``ste-mcp`` script (next to the running Python)."""
    beside = Path(sys.executable).parent / "ste-mcp"
    if beside.is_file():
        return str(beside.absolute())
    found = shutil.which("ste-mcp")
    return str(Path(found).absolute()) if found else str(beside.absolute())


def config_entry(args: argparse.Namespace) -> dict[str, Any]:
    from ste_mcp.cli import settings_from_args

    settings = settings_from_args(args)  # validates the options and resolves the data dir
    server_args = ["serve", "--transport", "stdio"]
    if args.config:
        server_args += ["--config", str(Path(args.config).expanduser().resolve())]
    for spec in args.spec or []:
        is_url = spec.startswith(("http://", "https://"))
        server_args += ["--spec", spec if is_url else str(Path(spec).expanduser().resolve())]
    if args.model:
        server_args += ["--model", args.model]
    if args.llm_url:
        server_args += ["--llm-url", args.llm_url]
    if args.no_explore:
        server_args.append("--no-explore")
    env = {"STE_MCP_DATA_DIR": str(settings.data_dir)}
    return {"mcpServers": {args.name: {"command": executable(), "args": server_args, "env": env}}}


def run(args: argparse.Namespace) -> int:
    print(json.dumps(config_entry(args), indent=2))
    return 0
