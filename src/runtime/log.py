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

`event` is a stable, machine-friendly name for what the line reports, derived from
the message by `EVENTS` below (the same messages DEPLOY.md quotes); lines that
match no pattern simply carry no `event`.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable

import js
from pyodide.ffi import to_js

Listener = Callable[[dict], None]

LEVELS = ("debug", "info", "warn", "error")

# (component, pattern searched in the message, event). First match wins.
EVENTS: tuple[tuple[str, str, str], ...] = (
    ("Lighter", r"^tracker object created", "object_created"),
    ("Lighter", r"^configuration error", "config_error"),
    ("Lighter", r"^loaded state:", "state_loaded"),
    ("Lighter", r"^stored state unreadable", "state_unreadable"),
    ("Lighter", r"^starting:", "tracking_started"),
    ("Lighter", r"^resuming tracking", "tracking_resumed"),
    ("Lighter", r"^tracking stopped", "tracking_stopped"),
    ("Lighter", r"^markets loaded:", "markets_loaded"),
    ("Lighter", r"^could not load markets", "markets_failed"),
    ("Lighter", r"^using .* markets saved in D1", "markets_from_d1"),
    ("Lighter", r"^could not (save|read saved) markets", "d1_error"),
    ("Lighter", r"markets exceed Lighter's", "too_many_markets"),
    ("Lighter", r"; retrying in ", "retry_scheduled"),
    ("Lighter", r"^connecting to ", "connecting"),
    ("Lighter", r"^socket open", "socket_open"),
    ("Lighter", r"^connected; subscribing", "connected"),
    ("Lighter", r"^subscribed: ", "subscribed"),
    ("Lighter", r"^connection lost: ", "connection_lost"),
    ("Lighter", r"^nonce gap ", "gap"),
    ("Lighter", r"^malformed frame", "malformed"),
    ("Lighter", r"^frame handling failed", "frame_failed"),
    ("Lighter", r"^market .* book: .*resubscribing", "frame_failed"),
    ("Lighter", r"^error ", "lighter_error"),
    ("Aggregator", r"^resumed after a restart", "windows_lost"),
    ("Aggregator", r"^D1 has failed for ", "windows_dropped"),
    ("Aggregator", r"^flush of .* failed", "flush_failed"),
    ("Aggregator", r"^flushing ", "flush"),
    ("Aggregator", r"^cleaned ", "pruned"),
    ("Aggregator", r"^minute rollup failed", "rollup_failed"),
    ("Aggregator", r"^minute averages:", "minutes"),
    ("Alert", r"feed down for ", "feed_down"),
    ("Alert", r"feed recovered ", "feed_recovered"),
    ("Alert", r"^webhook post failed", "alert_post_failed"),
    ("Alert", r"posted to the webhook$", "alert_posted"),
)
_EVENTS = tuple((component, re.compile(pattern), event) for component, pattern, event in EVENTS)


def event_of(component: str, message: str) -> str | None:
    """The stable event name of a log message, or None."""
    for owner, pattern, event in _EVENTS:
        if owner == component and pattern.search(message):
            return event
    return None


def prefix(component: str, shard: int | None) -> str:
    """`[Lighter]` for shard 0 (and lines from no shard), `[Lighter:2]` for shard 2."""
    return f"[{component}]" if not shard else f"[{component}:{shard}]"


def fields(component: str, shard: int | None, event: str | None) -> dict:
    """What Workers Logs indexes for a line (the object passed after the text)."""
    out: dict = {"component": component}
    if shard is not None:
        out["shard"] = shard
    if event:
        out["event"] = event
    return out


def emit(level: str, component: str, message: str, shard: int | None = None, event: str | None = None) -> None:
    """Write one line to the console: the readable text, then its indexed fields.

    Usable on its own (no ring buffer, no listeners), e.g. by the Worker's routes:
    `emit("error", "API", "GET /api/stats failed: ...")`.
    """
    if event is None:
        event = event_of(component, message)
    method = getattr(js.console, level, None) if level in LEVELS else None
    text = f"{prefix(component, shard)} {message}"
    data = to_js(fields(component, shard, event), dict_converter=js.Object.fromEntries)
    (method or js.console.log)(text, data)


class ActivityLog:
    def __init__(self, shard: int, keep: int = 200) -> None:
        self.shard = shard
        self.recent: deque[dict] = deque(maxlen=keep)
        self.listeners: list[Listener] = []

    def __call__(self, level: str, component: str, message: str) -> None:
        event = event_of(component, message)
        entry = {
            "ts": int(time.time() * 1000),
            "level": level,
            "component": component,
            "shard": self.shard,
            "message": message,
        }
        if event:
            entry["event"] = event
        self.recent.append(entry)
        emit(level, component, message, self.shard, event)
        for listener in self.listeners:
            listener(entry)

    def info(self, component: str, message: str) -> None:
        self("info", component, message)

    def warn(self, component: str, message: str) -> None:
        self("warn", component, message)

    def error(self, component: str, message: str) -> None:
        self("error", component, message)
