"""DashboardHub: the Durable Object that serves every dashboard's live WebSocket.

One object (bound as HUB, named "hub") for the whole deployment, with one job:
- accepts /ws upgrades that the Worker has already checked (Upgrade, Origin),
  with the hibernation API (`ctx.acceptWebSocket`), up to MAX_LIVE_SOCKETS; one
  more is accepted and closed at once with code 1013 "try again later" and a
  reason that says so (a browser cannot read an HTTP error body on a WebSocket,
  but it does see a close code and reason);
- pushes the shards' combined stats to all its sockets every LIVE_PUSH_SECONDS
  (default 10) from its own alarm, with ONE stats fetch from the shards of each
  enabled exchange per push whatever the number of sockets; the alarm runs only while
  sockets are connected. What that costs: each push is one alarm invocation plus one
  request per shard, all billed as Durable Object requests, and one setAlarm (a row
  written in the object's SQLite storage); the pushes are outgoing WebSocket messages,
  which are free (config.estimate_live_requests_per_day, DEPLOY.md "Plans and cost");
  The stats are shaped as /api/stats answers without ?exchange=: the default
  exchange's fields at the top, every enabled exchange's under `exchanges`
  (tracker.shardstats.combine_exchanges), each with `enabled`;
- receives log lines from the tracker shards in batches (runtime/hub_client.py)
  and relays each batch to every socket as one message; the last lines are kept
  in memory for the hello of a dashboard that connects.

Messages to the page: {"type":"hello","log":[...],"stats":{...},"hub":{...}},
{"type":"stats","stats":{...},"hub":{...}} every push, {"type":"logs","entries":[...]}.
`hub` carries the counters below and `pushEveryMs`, so the page knows when the next
push is due.
From the page: {"type":"stats"} (answered from the last push, no fetch) and
{"type":"ping"} -> {"type":"pong"}.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections import deque

from js import WebSocketPair
from workers import DurableObject, Response

from tracker.config import Config
from tracker.shardstats import combine_exchanges
from tracker.validation import LIVE_PROTOCOL, offers_live_protocol

from . import shards
from .http import json_response
from .log import emit

KEEP_LOG_LINES = 200
# RFC 6455 1013 "Try Again Later": the server is overloaded for now.
CLOSE_TOO_MANY = 1013


class DashboardHub(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.config = Config.from_env(lambda name: getattr(env, name, None))
        self.recent: deque[dict] = deque(maxlen=KEEP_LOG_LINES)
        self.stats: dict | None = None
        self.stats_at = 0
        # Counters the pushes carry (`hub`), so a test or an operator can see the fan-out.
        self.fetches = 0
        self.pushes = 0
        self.refused = 0
        self.alarms = 0
        self.log_batches = 0  # POSTs of log lines from the shards: each one a request too

    # -- requests from the Worker and the shards ---------------------------------------

    async def fetch(self, request):
        path = str(request.url).split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        if path == "ws":
            return await self._accept(request.headers.get("sec-websocket-protocol"))
        if path == "logs":
            self.log_batches += 1
            entries = json.loads(await request.text())
            self._relay(entries)
            return json_response({"ok": True, "relayed": len(entries)})
        return json_response({"error": f"unknown hub route /{path}"}, 404)

    async def _accept(self, offered: str | None = None):
        """The handshake names LIVE_PROTOCOL back when the page offered it (the page does
        when it carries its read token as a subprotocol): a browser fails a handshake
        that names none of what it offered."""
        headers = {"sec-websocket-protocol": LIVE_PROTOCOL} if offers_live_protocol(offered) else None
        client, server = WebSocketPair.new().object_values()
        sockets = len(self.ctx.getWebSockets())
        if sockets >= self.config.max_live_sockets:
            # Not hibernatable, not counted: accepted only to be closed with a reason.
            self.refused += 1
            server.accept()
            server.close(CLOSE_TOO_MANY, f"too many live dashboards ({sockets}): try again later")
            emit("warn", "API", f"live socket refused: {sockets} connected (MAX_LIVE_SOCKETS)", event="ws_refused")
            return Response(None, status=101, web_socket=client, headers=headers)
        self.ctx.acceptWebSocket(server)
        stats = await self._latest_stats()
        server.send(json.dumps({"type": "hello", "log": list(self.recent), "stats": stats, "hub": self._counters()}))
        await self._ensure_alarm()
        return Response(None, status=101, web_socket=client, headers=headers)

    def _relay(self, entries: list[dict]) -> None:
        self.recent.extend(entries)
        if entries:
            self._broadcast(json.dumps({"type": "logs", "entries": entries}))

    # -- the push, every LIVE_PUSH_SECONDS ---------------------------------------------------

    async def alarm(self, *args):
        self.alarms += 1
        if not self.ctx.getWebSockets():
            return  # nobody listening: no alarm until the next socket
        try:
            await self._refresh()
            self._broadcast(json.dumps({"type": "stats", "stats": self.stats, "hub": self._counters()}))
            self.pushes += 1
        except Exception as exc:  # the next push tries again; the sockets stay
            emit("error", "API", f"hub stats push failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                 event="hub_push_failed")
        finally:
            # Always the next push, never the runtime's retry backoff of a failed alarm.
            await self.ctx.storage.setAlarm(_now_ms() + self.config.live_push_ms)

    async def _ensure_alarm(self) -> None:
        """An alarm within the next push period. One further away (a failed alarm's
        retry backoff, a clock jump) is brought forward."""
        due = await self.ctx.storage.getAlarm()
        now = _now_ms()
        if due is None or int(due) > now + self.config.live_push_ms:
            await self.ctx.storage.setAlarm(now + self.config.live_push_ms)

    async def _refresh(self) -> None:
        """ONE stats fetch from the shards of each enabled exchange (together), whatever
        the number of sockets. `statsFetches` counts these refreshes."""
        self.fetches += 1
        names = list(self.config.enabled_exchanges)
        answers = await asyncio.gather(
            *(shards.call_all(self.env, self.config, "/stats", exchange=name) for name in names))
        self.stats = combine_exchanges(dict(zip(names, answers)))
        self.stats_at = _now_ms()

    async def _latest_stats(self) -> dict:
        """What a new socket is greeted with: the last push when it is recent, else a fetch."""
        if self.stats is None or _now_ms() - self.stats_at > self.config.live_push_ms:
            await self._refresh()
        return self.stats

    def _counters(self) -> dict:
        return {"sockets": len(self.ctx.getWebSockets()), "statsFetches": self.fetches, "pushes": self.pushes,
                "alarms": self.alarms, "refused": self.refused, "logBatches": self.log_batches,
                "pushEveryMs": self.config.live_push_ms}

    # -- socket events -----------------------------------------------------------------

    async def webSocketMessage(self, ws, message):
        try:
            request = json.loads(message) if isinstance(message, str) else {}
        except ValueError:
            request = {}
        kind = request.get("type") if isinstance(request, dict) else None
        if kind == "stats":  # answered from the last push: a page asking costs no fetch
            ws.send(json.dumps({"type": "stats", "stats": await self._latest_stats(), "hub": self._counters()}))
        elif kind == "ping":
            ws.send('{"type":"pong"}')

    async def webSocketClose(self, ws, code, reason, was_clean):
        try:
            # 1005/1006/1015 are reserved: they may be received but never sent.
            ws.close(1000 if code in (1005, 1006, 1015) else code, "bye")
        except Exception:  # already closed
            pass

    async def webSocketError(self, ws, error):
        await self.webSocketClose(ws, 1011, "error", False)

    def _broadcast(self, text: str) -> None:
        for ws in self.ctx.getWebSockets():
            try:
                ws.send(text)
            except Exception:  # a socket closing under us; its close event cleans up
                pass


def _now_ms() -> int:
    return int(time.time() * 1000)
