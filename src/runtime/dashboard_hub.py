"""The dashboard's live WebSockets, served by shard 0's tracker object.

Sockets are accepted with the WebSocket accept API (`ctx.acceptWebSocket`), so
the runtime tracks them. Every log line is pushed as it happens (other shards
relay theirs to shard 0), and stats, summed over all shards, are pushed after
each alarm and whenever a dashboard asks (`{"type":"stats"}`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from js import WebSocketPair
from workers import Response

from .log import ActivityLog

StatsSource = Callable[[], Awaitable[dict]]


class DashboardHub:
    def __init__(self, ctx, log: ActivityLog, stats: StatsSource) -> None:
        self.ctx = ctx
        self._log = log
        self._stats = stats
        log.listeners.append(self.push_log)

    async def accept(self):
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        hello = {"type": "hello", "log": list(self._log.recent), "stats": await self._stats()}
        server.send(json.dumps(hello))
        return Response(None, status=101, web_socket=client)

    def push_log(self, entry: dict) -> None:
        self._broadcast(json.dumps({"type": "log", "entry": entry}))

    async def push_stats(self) -> None:
        if self.ctx.getWebSockets():
            self._broadcast(json.dumps({"type": "stats", "stats": await self._stats()}))

    async def on_message(self, ws, message) -> None:
        try:
            request = json.loads(message) if isinstance(message, str) else {}
        except ValueError:
            request = {}
        kind = request.get("type") if isinstance(request, dict) else None
        if kind == "stats":
            ws.send(json.dumps({"type": "stats", "stats": await self._stats()}))
        elif kind == "ping":
            ws.send('{"type":"pong"}')

    def on_close(self, ws, code) -> None:
        try:
            # 1005/1006/1015 are reserved: they may be received but never sent.
            ws.close(1000 if code in (1005, 1006, 1015) else code, "bye")
        except Exception:  # already closed
            pass

    def _broadcast(self, text: str) -> None:
        for ws in self.ctx.getWebSockets():
            try:
                ws.send(text)
            except Exception:  # a socket closing under us; its close event cleans up
                pass
