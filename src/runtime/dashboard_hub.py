"""The dashboard's live WebSockets, served by the tracker object itself.

Sockets are accepted with the WebSocket accept API (`ctx.acceptWebSocket`), so
the runtime tracks them; every log line is pushed as it happens, and stats are
pushed after each alarm and whenever a dashboard asks (`{"type":"stats"}`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from js import WebSocketPair
from workers import Response

from .log import ActivityLog


class DashboardHub:
    def __init__(self, ctx, log: ActivityLog) -> None:
        self.ctx = ctx
        log.listeners.append(lambda entry: self.broadcast({"type": "log", "entry": entry}))
        self._log = log

    def accept(self, stats: dict):
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        server.send(json.dumps({"type": "hello", "log": list(self._log.recent), "stats": stats}))
        return Response(None, status=101, web_socket=client)

    def broadcast(self, message: dict) -> None:
        sockets = self.ctx.getWebSockets()
        if not sockets:
            return
        text = json.dumps(message)
        for ws in sockets:
            try:
                ws.send(text)
            except Exception:  # a socket closing under us; its close event cleans up
                pass

    def on_message(self, ws, message, stats: Callable[[], dict]) -> None:
        try:
            request = json.loads(message) if isinstance(message, str) else {}
        except ValueError:
            request = {}
        if request.get("type") == "stats":
            ws.send(json.dumps({"type": "stats", "stats": stats()}))
        elif request.get("type") == "ping":
            ws.send('{"type":"pong"}')

    def on_close(self, ws, code) -> None:
        try:
            ws.close(1000 if code in (1005, 1006, 1015) else code, "bye")
        except Exception:  # already closed
            pass
