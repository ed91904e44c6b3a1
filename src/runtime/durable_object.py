"""LighterTracker: one Durable Object per tracker shard ("shard-0", "shard-1", ...).

The class is only its lifecycle hooks: `fetch` (control requests from the Worker
and dashboard WebSocket upgrades), `alarm` (the window clock), and the dashboard
socket events. All the work happens in `TrackingSession`; all the talking to
dashboards in `DashboardHub`.
"""

from __future__ import annotations

from urllib.parse import urlparse

from workers import DurableObject

from tracker.config import Config

from .dashboard_hub import DashboardHub
from .http import json_response
from .log import ActivityLog
from .session import TrackingSession


def shard_from_name(name: str | None) -> int:
    if name and name.startswith("shard-") and name[6:].isdigit():
        return int(name[6:])
    return 0


class LighterTracker(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        config = Config.from_env(lambda name: getattr(env, name, None))
        shard = shard_from_name(getattr(ctx.id, "name", None))
        self.log = ActivityLog(shard)
        self.hub = DashboardHub(ctx, self.log)
        self.session = TrackingSession(ctx.storage, env.DB, config, shard, self.log)
        self.log.info("Lighter", f"tracker object created (shard {shard})")

    async def fetch(self, request):
        path = urlparse(request.url).path
        await self.session.ensure_running()
        if path == "/ws":
            return self.hub.accept(self.session.stats())
        if path == "/start":
            return json_response(await self.session.start())
        if path == "/stop":
            return json_response(await self.session.stop())
        if path == "/stats":
            return json_response(self.session.stats())
        if path == "/log":
            return json_response({"log": list(self.log.recent)})
        return json_response({"error": f"unknown tracker route {path}"}, 404)

    async def alarm(self, *args):
        await self.session.on_alarm()
        self.hub.broadcast({"type": "stats", "stats": self.session.stats()})

    async def webSocketMessage(self, ws, message):
        self.hub.on_message(ws, message, self.session.stats)

    async def webSocketClose(self, ws, code, reason, was_clean):
        self.hub.on_close(ws, code)

    async def webSocketError(self, ws, error):
        self.hub.on_close(ws, 1011)
