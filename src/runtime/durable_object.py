"""LighterTracker: one Durable Object per tracker shard ("shard-0", "shard-1", ...).

The class is only its lifecycle hooks: `fetch` (control requests from the Worker)
and `alarm` (the window clock). All the work happens in `TrackingSession`. Its log
lines go to the dashboards through the DashboardHub object (runtime/hub_client.py).
"""

from __future__ import annotations

from urllib.parse import urlparse

from workers import DurableObject

from tracker.config import Config

from .http import json_response
from .hub_client import LogRelay, hub_sender
from .log import ActivityLog
from .session import TrackingSession


def shard_from_name(name: str | None) -> int:
    if name and name.startswith("shard-") and name[6:].isdigit():
        return int(name[6:])
    return 0


class LighterTracker(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.config = Config.from_env(lambda name: getattr(env, name, None))
        shard = shard_from_name(getattr(ctx.id, "name", None))
        self.log = ActivityLog(shard)
        self.session = TrackingSession(ctx.storage, env.DB, self.config, shard, self.log)
        self.log.listeners.append(LogRelay(hub_sender(env), shard))
        self.log.info("Lighter", f"tracker object created (shard {shard})")

    async def fetch(self, request):
        path = urlparse(request.url).path
        await self.session.ensure_running()
        if path == "/start":
            return json_response(await self.session.start())
        if path == "/stop":
            return json_response(await self.session.stop())
        if path == "/stats":
            return json_response(self.session.stats())
        return json_response({"error": f"unknown tracker route {path}"}, 404)

    async def alarm(self, *args):
        await self.session.on_alarm()
