"""LighterTracker and ParadexTracker: one Durable Object per exchange and tracker shard
("shard-0", "shard-1", ... under each class's binding, TRACKER and PARADEX_TRACKER).

One class per exchange, not one class with the exchange in the object's name: an
alarm can wake a fresh instance whose name is undefined, and the class still says
which exchange it tracks.

The class is only the runtime's hooks, each handing over to `tracker.shard.ShardTracker`
(pure Python, tested in CPython and in the deterministic simulation): `fetch`
(start, stop, stats and the market hand-over from shard 0) and `alarm`. The real
clock, storage, D1, sockets and HTTP are plugged in here (runtime/ports.py). Its log
lines also go to the dashboards through the DashboardHub object (runtime/hub_client.py).
"""

from __future__ import annotations

import json
from urllib.parse import urlparse

from workers import DurableObject

from tracker.config import Config, ConfigError
from tracker.exchange import by_name
from tracker.shard import Ports, ShardTracker

from . import ports
from .http import json_response
from .hub_client import LogRelay, hub_sender
from .log import ActivityLog

# With a bad var the alarm only re-arms itself, this often, and logs why: once the var is
# fixed and deployed, the next alarm finds a working object and resumes tracking.
CONFIG_ERROR_RETRY_MS = 60_000


def shard_from_name(name: str | None) -> int:
    """The shard number in the object's name. The name can be undefined when an alarm
    wakes a fresh instance: the tracker then uses the number it saved at start."""
    if name and name.startswith("shard-") and name[6:].isdigit():
        return int(name[6:])
    return 0


class TrackerObject(DurableObject):
    EXCHANGE = "lighter"

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        shard = shard_from_name(getattr(ctx.id, "name", None))
        exchange = by_name(self.EXCHANGE)
        self.label = exchange.label
        self.log = ActivityLog(shard, exchange=self.EXCHANGE)
        # Every line also goes to the dashboards, in batches, via the DashboardHub object.
        self.log.listeners.append(LogRelay(hub_sender(env), shard))
        self.config_error: str | None = None
        try:
            self.config = Config.from_env(lambda name: getattr(env, name, None)).for_exchange(self.EXCHANGE)
        except ConfigError as exc:
            # Without this, a bad var shows only as failing requests, never in the tracker's log.
            self.config_error = str(exc)
            self.log.error(self.label, "config_error", f"configuration error, tracking paused until it is fixed: {exc}")
            return
        self.tracker = ShardTracker(self.config, shard, Ports(
            clock=ports.JsClock(),
            storage=ports.DoStorage(ctx.storage),
            db=ports.D1Database(env.DB),
            sockets=ports.socket_opener(ctx),
            http=ports.JsHttp(),
            peers=ports.ShardPeers(env, self.EXCHANGE),
            log=self.log,
            spawn=ports.spawn(self.log),
            heap_bytes=ports.wasm_heap_bytes,
        ), exchange=exchange)
        self.log.info(self.label, "object_created", f"tracker object created (shard {shard})")

    async def fetch(self, request):
        if self.config_error:
            return json_response({"error": f"configuration error: {self.config_error}"}, 503)
        path = urlparse(request.url).path
        await self.tracker.ensure_running()
        if path == "/start":  # a body: the hand-over of a re-split (tracker/control.py)
            text = await request.text()
            return json_response(await self.tracker.start(json.loads(text) if text else None))
        if path == "/release":  # the first step of a start (tracker/control.py)
            return json_response(await self.tracker.release(int(json.loads(await request.text())["shards"])))
        if path == "/stop":
            return json_response(await self.tracker.stop())
        if path == "/stats":
            await self.tracker.ready()
            return json_response(self.tracker.stats().to_json())
        if path == "/markets":  # shard 0 hands over the market list it read
            return json_response(await self.tracker.receive_markets(json.loads(await request.text())))
        return json_response({"error": f"unknown tracker route {path}"}, 404)

    async def alarm(self, *args):
        if self.config_error:
            self.log.error(self.label, "config_error",
                           f"configuration error, tracking paused until it is fixed: {self.config_error}")
            await self.ctx.storage.setAlarm(ports.JsClock().now_ms() + CONFIG_ERROR_RETRY_MS)
            return
        # (Taken out of ENABLED_EXCHANGES while tracking, the tracker stops itself here:
        # ShardTracker.alarm, where the simulation runs it.)
        await self.tracker.alarm()


class LighterTracker(TrackerObject):
    EXCHANGE = "lighter"


class ParadexTracker(TrackerObject):
    EXCHANGE = "paradex"
