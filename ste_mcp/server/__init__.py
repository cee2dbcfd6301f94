"""The MCP server: tools/list computed per request, tools/call, extensions, transports.

Import from the module that defines a name (``server.server``, ``server.transports``, ...), so that
reading the settings (``ste_mcp.server.settings``) stays cheap.
"""
