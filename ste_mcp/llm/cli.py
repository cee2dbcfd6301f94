"""`ste-mcp model prepare|serve|chat`: see that the model side works, step by step."""

from __future__ import annotations

import argparse
import sys

HELP = "prepare the model, serve it with a managed vLLM, or chat with it once"
HAS_SUBCOMMANDS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ste_mcp.cli import add_common_arguments

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("prepare", help="locate / verify / convert the model into the data dir (done once)")
    add_common_arguments(p)
    p = sub.add_parser("serve", help="run the managed vLLM server in the foreground and print its URL")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    add_common_arguments(p)
    p = sub.add_parser("chat", help="send one prompt and print the reply")
    p.add_argument("prompt", help="the user message")
    p.add_argument("--system", help="a system message")
    p.add_argument("--max-tokens", type=int, default=256, help="reply length limit (default 256)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    p.add_argument("--adapter", help="a LoRA adapter the server has loaded, by name")
    add_common_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ste_mcp.cli import settings_from_args
    from ste_mcp.llm.base import ModelError
    from ste_mcp.llm.sources import ModelSourceError

    settings = settings_from_args(args)
    try:
        return {"prepare": _prepare, "serve": _serve, "chat": _chat}[args.action](args, settings)
    except (ModelError, ModelSourceError) as exc:
        print(f"ste-mcp: {exc}", file=sys.stderr)
        return 1


def _prepare(args: argparse.Namespace, settings) -> int:
    from ste_mcp.llm.sources import prepare_model

    prepared = prepare_model(settings.llm.model, settings.models_dir)
    print(f"{prepared.name} ({prepared.base_id}) ready at {prepared.path}")
    return 0


def _serve(args: argparse.Namespace, settings) -> int:
    """Serve until Ctrl-C or SIGTERM (``cli.Terminated``), which also stops a server still starting."""
    import time

    from ste_mcp.llm import managed_server
    from ste_mcp.llm.base import ModelError
    from ste_mcp.llm.sources import prepare_model

    if settings.llm.base_url:
        print(
            f"ste-mcp: a server is configured ({settings.llm.base_url}); `model serve` runs a managed one",
            file=sys.stderr,
        )
        return 2
    server = managed_server(settings, prepare_model(settings.llm.model, settings.models_dir))
    if args.port:
        server.port = args.port
    try:
        server.start()
        print(
            f"serving {server.served_name} at {server.base_url} (Ctrl-C stops it; log: {server.log_path})",
            flush=True,
        )
        while not server.failure:
            time.sleep(1.0)
        print(f"ste-mcp: {server.failure}", file=sys.stderr)
        return 1
    except ModelError as exc:
        print(f"ste-mcp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


def _chat(args: argparse.Namespace, settings) -> int:
    from ste_mcp.cli import run_async
    from ste_mcp.llm import open_model

    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.prompt})

    async def once() -> str:
        async with open_model(settings) as model:
            response = await model.chat(
                messages, model=args.adapter, max_tokens=args.max_tokens, temperature=args.temperature
            )
            return response.text

    print(run_async(once))
    return 0
