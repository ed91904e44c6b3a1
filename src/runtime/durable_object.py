"""LighterTracker: one Durable Object per tracker shard ("shard-0", "shard-1", ...).

The class is only its lifecycle hooks: `fetch` (control requests from the Worker
and dashboard WebSocket upgrades), `alarm` (the window clock), and the dashboard
socket events. All the work happens in `TrackingSession`; all the talking to
dashboards in `DashboardHub` (on shard 0, which the other shards relay to).
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlparse

from workers import DurableObject

from tracker.config import Config, ConfigError

from . import shards
from .dashboard_hub import DashboardHub
from .http import json_response
from .log import ActivityLog
from .session import TrackingSession, now_ms

# With a bad var the alarm only re-arms itself, this often, and logs why: once the var is
# fixed and deployed, the next alarm finds a working object and resumes tracking.
CONFIG_ERROR_RETRY_MS = 60_000


def shard_from_name(name: str | None) -> int:
    if name and name.startswith("shard-") and name[6:].isdigit():
        return int(name[6:])
    return 0


class LighterTracker(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        shard = shard_from_name(getattr(ctx.id, "name", None))
        self.log = ActivityLog(shard)
        self.config_error: str | None = None
        try:
            self.config = Config.from_env(lambda name: getattr(env, name, None))
        except ConfigError as exc:
            # Without this, a bad var shows only as failing requests, never in the tracker's log.
            self.config_error = str(exc)
            self.log.error("Lighter", f"configuration error, tracking paused until it is fixed: {exc}")
            return
        self.session = TrackingSession(ctx.storage, env.DB, self.config, shard, self.log)
        self.hub = DashboardHub(ctx, self.log, self._all_stats)
        if shard != 0:
            self.log.listeners.append(self._relay_to_hub)
        self.log.info("Lighter", f"tracker object created (shard {shard})")

    async def fetch(self, request):
        path = urlparse(request.url).path
        if self.config_error:
            return json_response({"error": f"configuration error: {self.config_error}"}, 503)
        await self.session.ensure_running()
        if path == "/ws":
            return await self.hub.accept()
        if path == "/start":
            return json_response(await self.session.start())
        if path == "/stop":
            return json_response(await self.session.stop())
        if path == "/stats":
            return json_response(self.session.stats())
        if path == "/relay":  # a log line from another shard, for the dashboards here
            self.hub.push_log(json.loads(await request.text()))
            return json_response({"ok": True})
        return json_response({"error": f"unknown tracker route {path}"}, 404)

    async def alarm(self, *args):
        if self.config_error:
            self.log.error("Lighter", f"configuration error, tracking paused until it is fixed: {self.config_error}")
            await self.ctx.storage.setAlarm(now_ms() + CONFIG_ERROR_RETRY_MS)
            return
        await self.session.on_alarm()
        await self.hub.push_stats()

    async def webSocketMessage(self, ws, message):
        await self.hub.on_message(ws, message)

    async def webSocketClose(self, ws, code, reason, was_clean):
        self.hub.on_close(ws, code)

    async def webSocketError(self, ws, error):
        self.hub.on_close(ws, 1011)

    async def _all_stats(self) -> dict:
        """Stats for dashboards: the same combined shape as /api/stats, however many shards."""
        mine = self.session.stats()
        others = []
        if self.config.shards > 1:
            others = await shards.call_all(self.env, self.config, "/stats", skip=self.session.shard)
        return shards.combine(sorted([mine, *others], key=lambda s: s["shard"]))

    def _relay_to_hub(self, entry: dict) -> None:
        asyncio.ensure_future(
            shards.stub(self.env, 0).fetch("https://tracker/relay", method="POST", body=json.dumps(entry))
        )
