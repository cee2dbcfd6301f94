"""The review dashboard: see and steer what ste-mcp learns, in a browser.

Server-rendered Jinja2 pages on Starlette (``routes.py``), enhanced by a vendored htmx
(``static/htmx.min.js``, 0BSD), mounted at ``/ui`` of ``ste-mcp serve --transport http`` and served
alone by ``ste-mcp ui``. Every page reads the LanceDB tables and the adapter registry of the data
dir afresh, through the same stores the CLI uses, so it works next to a ``serve`` in another process.
"""
