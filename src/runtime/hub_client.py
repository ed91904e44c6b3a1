"""A tracker shard's side of the dashboard hub: its log lines, relayed in batches.

`LogRelay` is an ActivityLog listener. Lines are buffered; one flush at a time
POSTs everything buffered to the hub (runtime/dashboard_hub.py) as one JSON
array, so the lines logged in one stretch of work travel together and a burst
costs one request, not one per line. A failed flush is logged (to the console
only: logging it through the ActivityLog would feed the relay itself) and its
lines go back in front of the buffer for the next flush; the buffer is bounded
and lines dropped beyond it are counted and reported with the next batch that
gets through.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from .log import emit

MAX_BUFFERED = 500
HUB_NAME = "hub"


def stub(env):
    """The one DashboardHub object of the deployment."""
    return env.HUB.getByName(HUB_NAME)


class LogRelay:
    def __init__(self, send, shard: int) -> None:
        """`send(text)` is an async callable that POSTs a JSON batch to the hub."""
        self._send = send
        self.shard = shard
        self.buffer: deque[dict] = deque()
        self.dropped = 0
        self.failures = 0
        self._flushing: asyncio.Task | None = None

    def __call__(self, entry: dict) -> None:
        self.buffer.append(entry)
        while len(self.buffer) > MAX_BUFFERED:
            self.buffer.popleft()
            self.dropped += 1
        if self._flushing is None or self._flushing.done():
            # Kept referenced, and the task ends in _flush's own error handling:
            # nothing is left for the event loop to swallow.
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        while self.buffer:
            batch = list(self.buffer)
            self.buffer.clear()
            if self.dropped:
                batch.insert(0, self._dropped_line())
            try:
                await self._send(json.dumps(batch))
            except Exception as exc:
                self.failures += 1
                for entry in reversed(batch):
                    if not entry.get("relayNote"):
                        self.buffer.appendleft(entry)
                while len(self.buffer) > MAX_BUFFERED:
                    self.buffer.popleft()
                    self.dropped += 1
                emit("warn", "Lighter", f"log relay to the dashboard hub failed ({len(batch)} lines kept "
                     f"for the next try): {type(exc).__name__}: {exc}", self.shard, "log_relay_failed")
                return  # the next line logged tries again
            self.dropped = 0

    def _dropped_line(self) -> dict:
        return {"ts": 0, "level": "warn", "component": "Lighter", "shard": self.shard, "relayNote": True,
                "message": f"{self.dropped} log lines were not relayed to the dashboards (hub unreachable)"}


def hub_sender(env):
    """An async send(text) that POSTs a batch to the hub object."""
    async def send(text: str) -> None:
        response = await stub(env).fetch("https://hub/logs", method="POST", body=text)
        if int(response.status) != 200:
            raise RuntimeError(f"hub answered HTTP {int(response.status)}")

    return send
