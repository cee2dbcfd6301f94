"""Tell every connected client that the tool list changed, in both protocol generations.

New clients (2026-07-28) listen through ``subscriptions/listen``, fed from our subscription bus.
Older clients (handshake protocol, e.g. the MCP Inspector) need ``notifications/tools/list_changed``
sent on each connection's standalone channel; the SDK has no broadcast, so a server middleware
records those connections as they talk to us and forgets them when they close.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger(__name__)


class ToolsChangedNotifier:
    """Fans ``tools/list_changed`` out to new-protocol listeners and tracked old-protocol sessions."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self._sessions: dict[int, ServerSession] = {}

    @property
    def legacy_sessions(self) -> int:
        """How many old-protocol connections are tracked."""
        return len(self._sessions)

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        """Server middleware: remember each old-protocol connection with a back-channel."""
        result = await call_next(ctx)
        self.track(ctx.session)
        return result

    def track(self, session: ServerSession) -> None:
        # ServerSession is per request; the connection behind it is what lasts (SDK-private attribute).
        connection = getattr(session, "_connection", None)
        if connection is None or connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        if not connection.has_standalone_channel or not connection.initialized.is_set():
            return
        key = id(connection)
        if key not in self._sessions:
            self._sessions[key] = session
            connection.exit_stack.callback(self._sessions.pop, key, None)

    async def notify(self) -> None:
        """Publish to listeners (new protocol) and send to every tracked session (old protocol)."""
        await self.bus.publish(ToolsListChanged())
        for key, session in list(self._sessions.items()):
            try:
                await session.send_tool_list_changed()
            except Exception as exc:  # a closed or broken connection must not stop the others
                log.debug("dropping session after failed list_changed: %s", exc)
                self._sessions.pop(key, None)
