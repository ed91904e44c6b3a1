"""A shard's state (`TrackerState`) in Durable Object storage, written only when it changed.

Object storage bills a row written per key put (Free plan: 100,000 a day), and an
alarm's flush and its rollup both save while most alarms' rollup changes nothing:
a save of the state as this instance's last write left it (the last one issued:
storage applies them in order) is skipped. A failed write, or a write of the state
elsewhere (with the outbox's windows, with the market list), leaves it unknown, so
the next save writes.
"""

from __future__ import annotations

from .ports import Log, Storage
from .state import TrackerState

STATE_KEY = "tracker-state"


class StateStore:
    def __init__(self, storage: Storage, log: Log, label: str) -> None:
        self.storage, self.log, self.label = storage, log, label
        self._saved: str | None = None  # the state as last written (None: unknown)

    async def load(self) -> TrackerState:
        """The stored state; unreadable, a clean one (rather than never starting)."""
        try:
            return TrackerState.from_json(await self.storage.get(STATE_KEY))
        except ValueError as exc:
            self.log("error", self.label, "state_unreadable", f"stored state unreadable, starting clean: {exc}")
            return TrackerState()

    async def save(self, state: TrackerState) -> None:
        """The state into storage, unless it is there as it is."""
        text = state.to_json()
        if text == self._saved:
            return
        self._saved = text
        try:
            await self.storage.put_many({STATE_KEY: text})
        except BaseException:
            self._saved = None
            raise

    def written_elsewhere(self) -> None:
        """Another write of the state is issued: what `save` last wrote no longer says
        what storage holds."""
        self._saved = None
