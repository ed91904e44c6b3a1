"""The window outbox: closed windows wait in Durable Object storage until D1 has them.

A window leaves the aggregator into the outbox, and the outbox is written to the
object's own transactional storage in the same transaction as the tracker state
that says the window is closed. It is removed only after D1 acknowledged the batch
holding it. So an eviction, a deploy, a restart of `wrangler dev` or a D1 outage of
hours loses nothing: the next instance reads the index and carries on writing.

- Writes to D1 are idempotent upserts keyed on (market_index, timestamp): a batch
  whose acknowledgement was lost is simply written again.
- One flush at a time (a lock): an alarm and a `stop()` never write the same
  windows concurrently, and never clear each other's.
- Bounded: beyond `max_windows` the oldest windows are dropped, counted lost and
  their range recorded in the same storage transaction as the drop (memory and
  storage stay bounded through any outage; an eviction cannot separate the two).

Storage layout: `outbox-index` holds `[[start, chunks, rows], ...]` oldest first;
each window's rows are stored as `outbox/<start>/<chunk>` JSON texts of at most
`CHUNK_ROWS` rows in `sql.SNAPSHOT_COLUMNS` order, the exact text a bulk upsert binds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

from . import sql
from .aggregator import ClosedWindow
from .ports import Database, Storage

INDEX_KEY = "outbox-index"
PREFIX = "outbox/"
# Rows per stored value and per bulk statement: ~120 KB of JSON at most, below the
# Durable Object storage value limit and far below D1's statement limits.
CHUNK_ROWS = 250
# Windows written per D1 batch while draining a backlog.
FLUSH_WINDOWS = 40


def chunk_key(start: int, chunk: int) -> str:
    return f"{PREFIX}{start:015d}/{chunk:03d}"


@dataclass(slots=True)
class Entry:
    start: int  # window start, ms
    chunks: int
    rows: int


@dataclass(slots=True)
class FlushResult:
    windows: int = 0
    rows: int = 0
    markets: int = 0  # markets in the largest window written
    rows_written: int = 0
    error: str | None = None


class Outbox:
    def __init__(self, storage: Storage, max_windows: int, upsert: str = sql.LIGHTER.UPSERT_WINDOWS) -> None:
        self.storage = storage
        self.upsert = upsert  # the exchange's bulk upsert of window rows
        self.max_windows = max_windows
        self.entries: list[Entry] = []
        # Two locks: the index changes under a short one (storage writes only), a
        # flush holds the other across its D1 call. A window can be added while a
        # flush waits on D1; the flush then removes only what it wrote.
        self._index_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._writing: set[int] = set()  # window starts of the batch in flight
        self._staging: list[int] = []  # window starts being added (awaiting storage)
        self.failures_in_a_row = 0

    # -- persistence ---------------------------------------------------------------

    async def load(self) -> None:
        raw = await self.storage.get(INDEX_KEY)
        self.entries = [Entry(*e) for e in json.loads(raw)] if raw else []

    async def add(self, windows: list[ClosedWindow], also: Callable[[list[Entry]], dict[str, str]]) -> list[Entry]:
        """Store newly closed windows in ONE transaction with `also(dropped)`: the
        caller's writes (the tracker state saying the windows are closed) given the
        entries dropped (oldest first) to stay within `max_windows`, which the caller
        records lost there. Returns the dropped entries."""
        # Count the new windows as waiting from this moment on, before any await: the
        # caller has already moved its state past them, and a rollup running meanwhile
        # must not take their minutes for complete.
        staging = [w.start for w in windows if w.rows]
        self._staging.extend(staging)
        try:
            return await self._add(windows, also)
        finally:
            for start in staging:
                self._staging.remove(start)

    async def _add(self, windows: list[ClosedWindow], also: Callable[[list[Entry]], dict[str, str]]) -> list[Entry]:
        async with self._index_lock:
            writes = {}
            added = []
            for window in windows:
                if not window.rows:
                    continue
                rows = [row.values() for row in window.rows]
                chunks = [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)]
                for i, chunk in enumerate(chunks):
                    writes[chunk_key(window.start, i)] = json.dumps(chunk)
                added.append(Entry(window.start, len(chunks), len(rows)))
            entries = sorted(self.entries + added, key=lambda e: e.start)
            overflow = max(0, len(entries) - self.max_windows)
            # The oldest go first, except those a flush is writing right now (they may
            # well be in D1 in a moment: dropping them would report them lost wrongly).
            droppable = [e for e in entries if e.start not in self._writing][:overflow]
            gone = {e.start for e in droppable}
            dropped, kept = droppable, [e for e in entries if e.start not in gone]
            # The chunks first, the keys that make them count last: more than a storage
            # call takes are not one transaction, but the last keys always commit
            # together (ports.Storage.put_many). Cut short, the write leaves chunks
            # no index names, never a state saying windows are closed that are not.
            writes.update(also(dropped))
            if added or dropped:
                writes[INDEX_KEY] = _index_text(kept)
            await self.storage.put_many(writes)
            self.entries = kept
            if dropped:
                await self.storage.delete_many(_keys(dropped))
            return dropped

    # -- into D1 ---------------------------------------------------------------------

    @property
    def windows(self) -> int:
        return len(self.entries) + len(self._staging)

    @property
    def staging(self) -> list[int]:
        return list(self._staging)

    @property
    def oldest(self) -> int | None:
        starts = ([self.entries[0].start] if self.entries else []) + self._staging
        return min(starts) if starts else None

    async def flush(self, db: Database, extra=lambda remaining: []) -> FlushResult:
        """Write the oldest FLUSH_WINDOWS windows in one D1 batch, with the statements
        `extra(remaining)` gives for the outbox as it will be once the batch is in
        (the stats row); remove them only once D1 acknowledged it. Never raises."""
        async with self._flush_lock:
            batch = self.entries[:FLUSH_WINDOWS]
            done = {e.start for e in batch}
            self._writing = done
            keys = _keys(batch)
            try:
                texts = [await self.storage.get(key) for key in keys]
                missing = [k for k, t in zip(keys, texts) if t is None]
                if missing:  # only if storage lost data: say so loudly
                    raise RuntimeError(f"outbox chunks missing from storage: {missing[:3]}")
                remaining = [e for e in self.entries if e.start not in done]
                statements = [(self.upsert, (text,)) for text in texts] + list(extra(remaining))
                metas = await db.batch(statements) if statements else []  # nothing to write: no D1 call
            except Exception as exc:
                self.failures_in_a_row += 1
                return FlushResult(error=f"{type(exc).__name__}: {exc}")
            finally:
                self._writing = set()
            self.failures_in_a_row = 0
            if batch:
                async with self._index_lock:
                    self.entries = [e for e in self.entries if e.start not in done]
                    await self.storage.put_many({INDEX_KEY: _index_text(self.entries)})
                    await self.storage.delete_many(keys)
            return FlushResult(
                windows=len(batch),
                rows=sum(e.rows for e in batch),
                markets=max((e.rows for e in batch), default=0),
                rows_written=sum(int(m.get("rows_written") or 0) for m in metas[: len(texts)]),
            )


def _keys(entries: list[Entry]) -> list[str]:
    return [chunk_key(e.start, i) for e in entries for i in range(e.chunks)]


def _index_text(entries: list[Entry]) -> str:
    return json.dumps([[e.start, e.chunks, e.rows] for e in entries])
