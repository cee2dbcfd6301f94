"""``ste-mcp toolbox``: serve the offline toolbox HTTP API in the foreground."""

from __future__ import annotations

import argparse
import sys

HELP = "serve the offline toolbox (13 STE-50 APIs) over HTTP; its spec is at /openapi.json"


def port_number(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=8766, help="port to listen on (default: 8766; 0: any free)"
    )


def run(args: argparse.Namespace) -> int:
    import threading

    from ste_mcp.toolbox.server import base_url, listen, server, warm_up

    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(f"ste-mcp: {exc}", file=sys.stderr)
        return 2
    print(f"ste-mcp toolbox: OpenAPI document at {base_url(sock)}/openapi.json", flush=True)
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    server().run(sockets=[sock])
    return 0
