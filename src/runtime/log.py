"""Component-prefixed logs (`[Lighter] connected`) that also feed the dashboard.

Levels go to the matching console method: under Workers, Python's stderr shows as
[ERROR] whatever the level, so `logging` would mark every line an error.
Each line is also kept in a small ring buffer (replayed to a dashboard that
connects) and handed to listeners (the dashboard's live WebSockets).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import js

_CONSOLE = {"debug": js.console.debug, "info": js.console.info, "warn": js.console.warn, "error": js.console.error}

Listener = Callable[[dict], None]


class ActivityLog:
    def __init__(self, shard: int, keep: int = 200) -> None:
        self.shard = shard
        self.recent: deque[dict] = deque(maxlen=keep)
        self.listeners: list[Listener] = []

    def __call__(self, level: str, component: str, message: str) -> None:
        entry = {
            "ts": int(time.time() * 1000),
            "level": level,
            "component": component,
            "shard": self.shard,
            "message": message,
        }
        self.recent.append(entry)
        prefix = f"[{component}]" if self.shard == 0 else f"[{component}:{self.shard}]"
        _CONSOLE.get(level, js.console.log)(f"{prefix} {message}")
        for listener in self.listeners:
            listener(entry)

    def info(self, component: str, message: str) -> None:
        self("info", component, message)

    def warn(self, component: str, message: str) -> None:
        self("warn", component, message)

    def error(self, component: str, message: str) -> None:
        self("error", component, message)
