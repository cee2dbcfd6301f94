"""`ste-mcp serve`: run the MCP server over stdio (Claude Desktop) or Streamable HTTP."""

from __future__ import annotations

import argparse
import sys

HELP = "run the MCP server (stdio or Streamable HTTP)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=["stdio", "http"], help="default: stdio (or server.transport)")
    parser.add_argument("--host", help="HTTP bind address (default 127.0.0.1); beyond loopback needs a token")
    parser.add_argument("--port", type=int, help="HTTP port (default 8765)")
    parser.add_argument(
        "--no-explore", action="store_true", help="do not explore tools in the background (proxy only)"
    )
    parser.add_argument(
        "--tool-listing",
        choices=["all", "search", "auto"],
        help="tools/list: every tool, or only search_tools + call_tool; auto (default): search above "
        "server.search_listing_above tools",
    )


def run(args: argparse.Namespace) -> int:
    from ste_mcp.app import App
    from ste_mcp.cli import run_async, settings_from_args
    from ste_mcp.server.logs import setup_logging
    from ste_mcp.server.transports import http_app, serve_asgi, serve_stdio
    from ste_mcp.upstream.specs import SpecError

    server: dict[str, object] = {
        "transport": args.transport,
        "host": args.host,
        "port": args.port,
        "tool_listing": args.tool_listing,
    }
    if args.no_explore:
        server["explore_in_background"] = False
    settings = settings_from_args(args, server=server)
    app = App(settings)
    setup_logging(settings.logs_dir, secrets=lambda: app.toolset.secret_values())
    s = settings.server
    # built before anything starts, so a missing token fails fast (ConfigError)
    asgi = http_app(app, host=s.host, port=s.port) if s.transport == "http" else None

    async def main() -> None:
        if asgi is None:
            await serve_stdio(app)
        else:
            async with app:
                await serve_asgi(asgi, host=s.host, port=s.port)

    failed = False
    try:
        run_async(main)
    except* SpecError as group:  # a bad spec: say where, without a traceback
        for exc in _leaves(group):
            print(f"ste-mcp: {exc}", file=sys.stderr)
        failed = True
    return 2 if failed else 0


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for sub in error.exceptions for leaf in _leaves(sub)]
    return [error]
