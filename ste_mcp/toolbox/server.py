"""The toolbox HTTP API: a starlette app with one GET endpoint per tool and its OpenAPI 3.1 document.

``start_toolbox()`` serves it with uvicorn in a background thread on a free local port::

    with start_toolbox() as toolbox:
        httpx.get(f"{toolbox.url}/openapi.json")
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ste_mcp import __version__
from ste_mcp.toolbox import cars, dates, mathfacts, passwords, places, timezones, wolfram, words
from ste_mcp.toolbox.api import Endpoint, ToolboxError, catalog, invalid

ENDPOINTS: list[Endpoint] = [
    *dates.ENDPOINTS,
    *words.ENDPOINTS,
    *passwords.ENDPOINTS,
    *places.ENDPOINTS,
    *timezones.ENDPOINTS,
    *mathfacts.ENDPOINTS,
    *wolfram.ENDPOINTS,
    *cars.ENDPOINTS,
]
START_TIMEOUT_S = 30.0
_INTEGER = re.compile(r"[+-]?\d+")


# ---------------------------------------------------------------- parameters


def _convert(name: str, schema: Mapping[str, Any], raw: str) -> Any:
    kind = schema.get("type", "string")
    if kind == "integer":
        if not _INTEGER.fullmatch(raw.strip()):
            raise invalid(name, f"must be an integer, got {raw!r}")
        return int(raw)
    if kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise invalid(name, f"must be a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise invalid(name, f"must be a finite number, got {raw!r}")
        return value
    return raw


def parse_arguments(endpoint: Endpoint, query: Mapping[str, str]) -> dict[str, Any]:
    """Query parameters -> handler keyword arguments, typed and defaulted as the catalog says."""
    schema = catalog()[endpoint.name]["parameters"]
    required = set(schema.get("required") or [])
    arguments: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name in query:
            arguments[name] = _convert(name, prop, query[name])
        elif name in required:
            raise invalid(name, "is required")
        elif "default" in prop and name not in endpoint.no_default:
            arguments[name] = prop["default"]
    return arguments


def _route(endpoint: Endpoint) -> Route:
    async def handle(request: Request) -> Response:
        try:
            arguments = parse_arguments(endpoint, request.query_params)
            result = await run_in_threadpool(endpoint.handler, **arguments)
        except ToolboxError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return result if isinstance(result, Response) else JSONResponse(result)

    return Route(endpoint.path, handle, methods=["GET"], name=endpoint.name)


# ---------------------------------------------------------------- OpenAPI


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    tool = catalog()[endpoint.name]
    schema = tool["parameters"]
    required = set(schema.get("required") or [])
    parameters = []
    for name, prop in (schema.get("properties") or {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
        }
        if "description" in prop:
            param["description"] = prop["description"]
        parameters.append(param)
    error = {"description": "Bad parameter (422) or nothing found (404)", "content": {"application/json": {}}}
    return {
        "operationId": endpoint.name,
        "description": tool["description"],
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {}}},
            "404": error,
            "422": error,
        },
    }


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """OpenAPI 3.1: one GET operation per tool, names/descriptions/parameters exactly as STE-50's."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "ste-mcp offline toolbox",
            "version": __version__,
            "description": "Offline implementations of 13 APIs of the STE-50 benchmark.",
        },
        "paths": {e.path: {"get": _operation(e)} for e in ENDPOINTS},
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(str(request.base_url).rstrip("/")))


def create_app() -> Starlette:
    """The toolbox as an ASGI app."""
    missing = [e.name for e in ENDPOINTS if e.name not in catalog()]
    if missing:
        raise RuntimeError(f"toolbox endpoints without a catalog entry: {missing}")
    routes = [Route("/openapi.json", _openapi, methods=["GET"]), *map(_route, ENDPOINTS)]
    return Starlette(routes=routes)


# ---------------------------------------------------------------- serving


class ToolboxHandle:
    """A running toolbox server: ``.url`` and ``.stop()``; also a context manager."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str):
        self._server = server
        self._thread = thread
        self.url = url

    def stop(self) -> None:
        """Stop serving and wait for the server thread to finish."""
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_S)

    def __enter__(self) -> ToolboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket on ``host:port`` (``port=0``: a free port), for uvicorn to serve on."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"toolbox: cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server(**config: Any) -> uvicorn.Server:
    """A quiet uvicorn server of the toolbox app."""
    options = {"log_level": "warning", "access_log": False, "lifespan": "off", **config}
    return uvicorn.Server(uvicorn.Config(create_app(), **options))


def warm_up() -> None:
    """Load the data sets (gazetteer, time-zone polygons, units, sympy: a few seconds, ~200 MB) now
    instead of on the first call of each tool."""
    places.gazetteer()
    timezones.finder()
    wolfram.preload()


def start_toolbox(host: str = "127.0.0.1", port: int = 0, *, warm: bool = False) -> ToolboxHandle:
    """Serve the toolbox in a background thread (``port=0``: a free port); returns once it answers.

    ``warm``: load the data sets in another background thread right away (see ``warm_up``).
    """
    sock = listen(host, port)
    uv = server()
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name="ste-mcp-toolbox", daemon=True)
    url = base_url(sock)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            uv.should_exit = True
            sock.close()
            raise RuntimeError(f"toolbox did not start on {url}")
        time.sleep(0.02)
    if warm:
        threading.Thread(target=warm_up, name="ste-mcp-toolbox-warm-up", daemon=True).start()
    return ToolboxHandle(uv, thread, url)
