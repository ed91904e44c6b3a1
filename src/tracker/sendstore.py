"""A shard's send history (`pacing.SendHistory`) in Durable Object storage.

Every message a shard's connections send counts against its share of the per-IP
budget for a rolling minute, and so does what the previous instance sent (an
eviction, a deploy) and, after a re-split, what the other shards of the old split
sent. So the history is saved before a burst of messages goes out (issue 18, defect
5): the connection holds its messages until the history counting them is in storage
(tracker/connection.py, `persist`). It has a key of its own, apart from the state, so
that such a write never carries a state the alarm has half changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .connection import FeedConnection
from .pacing import SendHistory
from .ports import Clock, Storage

SENDS_KEY = "send-history"


class SendStore:
    def __init__(self, storage: Storage, clock: Clock, spawn: Callable[[Awaitable, str], asyncio.Future],
                 connection: Callable[[], FeedConnection | None]) -> None:
        self.storage, self.clock, self.spawn = storage, clock, spawn
        self.connection = connection  # the shard's current connection, if any
        self.history = SendHistory()
        self._saving: asyncio.Future | None = None

    async def load(self, legacy: list[int]) -> SendHistory:
        """What the previous instance sent (`legacy`: before the key of its own, the
        history was part of the state)."""
        stored = SendHistory.from_json(await self.storage.get(SENDS_KEY))
        self.history = stored if stored is not None else SendHistory(legacy)
        return self.history

    async def write(self, now: int) -> None:
        await self.storage.put_many({SENDS_KEY: self.history.to_json(now)})

    def persist(self) -> None:
        """The connection holds messages: save the history, one write at a time; a write
        covers every message held when it began, and the next one (if more were held
        meanwhile) the rest."""
        if self._saving is None or self._saving.done():
            self._saving = self.spawn(self._save_held(), "save sends")

    async def _save_held(self) -> None:
        while True:
            connection = self.connection()
            if connection is None or not connection.holding:
                return
            upto = connection.held_seq
            await self.write(self.clock.now_ms())
            connection.saved(upto)
