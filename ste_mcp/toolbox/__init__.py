"""The offline toolbox: real local implementations of 13 STE-50 APIs, the default upstream.

``create_app()`` is the ASGI app (``GET /openapi.json`` plus one GET endpoint per tool);
``start_toolbox()`` serves it on a free local port in a background thread.
"""

from ste_mcp.toolbox.server import ENDPOINTS, ToolboxHandle, create_app, openapi_document, start_toolbox

__all__ = ["ENDPOINTS", "ToolboxHandle", "create_app", "openapi_document", "start_toolbox"]
