"""Component-prefixed logs (`[Lighter] connected`) that also feed the dashboard and
Workers Logs' filters.

Every line goes out as ONE console call with two arguments:

    console.info("[Lighter] connected; subscribing to 6 order books",
                 {component: "Lighter", shard: 0, event: "connected"})

- The text comes first, so `wrangler dev` / `wrangler tail` read as a story and
  Workers Logs shows it as the entry's message.
- The object's fields are extracted and indexed by Workers Logs, so its query
  builder can filter on `component`, `shard` and `event` (e.g. `event =
  "flush_failed"`). The level is the console method itself (`console.warn` ->
  `$metadata.level = "warn"`), which Workers Logs indexes on its own.
- The object stays small on purpose: Node's inspector (what `wrangler dev` and
  `wrangler tail` print it with) keeps an object on the same line only while its
  entries total about 60 characters; a `level` key on top of the others would
  break every longer line into six. `test_log.py` holds every event to that budget.

Levels go to the matching console method: under Workers, Python's stderr shows as
[ERROR] whatever the level, so `logging` would mark every line an error.
Each line is also kept in a small ring buffer (replayed to a dashboard that
connects) and handed to listeners (the dashboard's live WebSockets).

`event` is a stable, machine-friendly name for what the line reports, named where
the line is logged (`log("info", "Lighter", "connected", "connected; ...")`), so a
Workers Logs query on `event` keeps working whatever the wording.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import js
from pyodide.ffi import to_js

Listener = Callable[[dict], None]

LEVELS = ("debug", "info", "warn", "error")

def prefix(component: str, shard: int | None, exchange: str | None = None) -> str:
    """`[Lighter]` for shard 0 (and lines from no shard), `[Lighter:2]` for shard 2; a
    Paradex tracker's lines from shared parts say so: `[Aggregator@paradex:2]`."""
    if exchange and exchange != "lighter" and component.lower() != exchange:
        component = f"{component}@{exchange}"
    return f"[{component}]" if not shard else f"[{component}:{shard}]"


def fields(component: str, shard: int | None, event: str | None) -> dict:
    """What Workers Logs indexes for a line (the object passed after the text). No
    `exchange` field: the object must stay on one line in wrangler tail (Node breaks it
    past 80 characters); a Paradex line says so in its component (`Paradex`) or its
    text's prefix (`[Aggregator@paradex]`), which Workers Logs searches too."""
    out: dict = {"component": component}
    if shard is not None:
        out["shard"] = shard
    if event:
        out["event"] = event
    return out


def emit(level: str, component: str, message: str, shard: int | None = None, event: str | None = None,
         exchange: str | None = None) -> None:
    """Write one line to the console: the readable text, then its indexed fields.

    Usable on its own (no ring buffer, no listeners), e.g. by the Worker's routes:
    `emit("error", "API", "GET /api/stats failed: ...", event="request_failed")`.
    """
    method = getattr(js.console, level, None) if level in LEVELS else None
    text = f"{prefix(component, shard, exchange)} {message}"
    data = to_js(fields(component, shard, event), dict_converter=js.Object.fromEntries)
    (method or js.console.log)(text, data)


class ActivityLog:
    def __init__(self, shard: int, keep: int = 200, exchange: str = "lighter") -> None:
        self.shard = shard
        self.exchange = exchange  # every line the dashboard gets says whose it is
        self.recent: deque[dict] = deque(maxlen=keep)
        self.listeners: list[Listener] = []

    def __call__(self, level: str, component: str, event: str, message: str) -> None:
        entry = {
            "ts": int(time.time() * 1000),
            "level": level,
            "component": component,
            "shard": self.shard,
            "exchange": self.exchange,
            "message": message,
        }
        if event:
            entry["event"] = event
        self.recent.append(entry)
        emit(level, component, message, self.shard, event, self.exchange)
        for listener in self.listeners:
            listener(entry)

    def info(self, component: str, event: str, message: str) -> None:
        self("info", component, event, message)

    def warn(self, component: str, event: str, message: str) -> None:
        self("warn", component, event, message)

    def error(self, component: str, event: str, message: str) -> None:
        self("error", component, event, message)
