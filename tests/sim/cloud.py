"""The simulated Cloudflare side: D1 (real SQLite running the real statements and
schema.sql, with latency and failures on a schedule) and Durable Object storage
(survives evictions; an evicted instance's pending calls never return).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

from tracker.feedtime import MAX_CLOCK_AHEAD_MS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schema.sql").read_text()
# Each exchange's window table and the minute table its windows roll up into.
WINDOW_TABLES = {"lighter_snapshots": "lighter_minutes", "paradex_snapshots": "paradex_minutes"}


class Evicted(BaseException):
    """Raised into an evicted instance's code at its next await: it never resumes.
    A BaseException, so the tracker's `except Exception` cannot swallow it."""


class Incarnation:
    """One life of a Durable Object instance; `alive` turns False at eviction."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.alive = True

    def check(self) -> None:
        if not self.alive:
            raise Evicted(f"incarnation {self.number} was evicted")


class SimD1:
    def __init__(self, loop, rng: random.Random) -> None:
        self.loop = loop
        self.rng = rng
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(SCHEMA)
        self.failing_until = 0  # every call fails until then
        self.hanging_until = 0  # calls started before then take until then (+ a bit)
        self.slow_ms = (1, 30)
        self.batches = 0
        self.writes: dict[tuple[str, int, int], tuple] = {}  # (table, market, ts) -> window row values written
        self.rewrites_differing: list[str] = []
        self.prune_violations: list[str] = []
        # Window rows written for a window starting after the clock + MAX_CLOCK_AHEAD_MS.
        self.future_rows: list[str] = []
        self.on_batch = None  # hook: called with the statements as a batch starts
        self.pruned: set[tuple[str, int, int]] = set()  # (table, market, ts) of windows pruned
        # Every window row a batch touches is noted by a trigger (SQLite's own account of
        # what changed, whatever the statement), so each batch costs what it wrote.
        self.conn.execute("CREATE TEMP TABLE touched (tbl TEXT, market_index INTEGER, timestamp INTEGER)")
        for table in WINDOW_TABLES:
            for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                self.conn.execute(
                    f"CREATE TEMP TRIGGER touched_{table}_{op.lower()} AFTER {op} ON main.{table} BEGIN "
                    f"INSERT INTO touched VALUES ('{table}', {row}.market_index, {row}.timestamp); END")

    def port(self, life: Incarnation) -> SimD1Port:
        return SimD1Port(self, life)

    async def _latency(self) -> None:
        now = self.loop.now_ms()
        delay = self.rng.randint(*self.slow_ms)
        if now < self.hanging_until:
            delay += self.hanging_until - now
        await asyncio.sleep(delay / 1000)

    def _fail_now(self) -> bool:
        return self.loop.now_ms() < self.failing_until

    def execute_batch(self, statements) -> list[dict]:
        cur = self.conn.cursor()
        metas = []
        cur.execute("BEGIN")
        try:
            for sql, params in statements:
                cur.execute(sql, tuple(params))
                changed = max(cur.rowcount, 0)  # the statement's own rows, not its triggers'
                metas.append({"changes": changed, "rows_written": changed})
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
        self._record(statements)
        return metas

    def _record(self, statements) -> None:
        """Keep every window value ever written; a rewrite must be identical (idempotent
        retries), and a pruned window must have its minute rolled."""
        touched = self.conn.execute("SELECT DISTINCT tbl, market_index, timestamp FROM touched").fetchall()
        self.conn.execute("DELETE FROM touched")
        for table, market, ts in touched:
            key = (table, market, ts)
            row = self.conn.execute(f"SELECT * FROM {table} WHERE market_index = ? AND timestamp = ?",
                                    (market, ts)).fetchone()
            if row is not None:
                now = self.loop.now_ms()
                if ts > now + MAX_CLOCK_AHEAD_MS:
                    self.future_rows.append(f"{table}: window {market}@{ts} written at {now}, "
                                            f"{(ts - now) / 1000:.0f}s ahead of the clock")
                values = tuple(row)
                old = self.writes.get(key)
                if old is not None and old != values:
                    self.rewrites_differing.append(f"{key}: {old} -> {values}")
                self.writes[key] = values
            elif key in self.writes and key not in self.pruned:
                self.pruned.add(key)
                minute = ts - ts % 60_000
                minutes = WINDOW_TABLES[table]
                if self.conn.execute(f"SELECT 1 FROM {minutes} WHERE market_index = ? AND timestamp = ?",
                                     (market, minute)).fetchone() is None:
                    self.prune_violations.append(f"{table}: window {market}@{ts} pruned before minute {minute} was rolled")

    def rows(self, sql: str, *params) -> list[dict]:
        return [dict(r) for r in self.conn.execute(sql, params)]


class SimD1Port:
    """What one instance holds as `db`."""

    def __init__(self, d1: SimD1, life: Incarnation) -> None:
        self.d1 = d1
        self.life = life

    async def query(self, sql: str, *params) -> list[dict]:
        self.life.check()
        await self.d1._latency()
        if self.d1._fail_now():
            self.life.check()
            raise RuntimeError("D1_ERROR: simulated outage")
        rows = self.d1.rows(sql, *params)
        self.life.check()
        return rows

    async def batch(self, statements) -> list[dict]:
        self.life.check()
        statements = list(statements)
        if self.d1.on_batch is not None:
            self.d1.on_batch(statements)
        await self.d1._latency()
        if self.d1._fail_now():
            self.life.check()
            raise RuntimeError("D1_ERROR: simulated outage")
        self.d1.batches += 1
        metas = self.d1.execute_batch(statements)  # applied even if the caller died meanwhile
        self.life.check()
        return metas


class SimStorage:
    """One Durable Object's storage: survives its instances."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.alarm: int | None = None
        self.on_alarm_change = None  # the world re-arms its timer
        self.on_put = None  # the world watches what is saved (lost ranges)

    def port(self, life: Incarnation) -> SimStoragePort:
        return SimStoragePort(self, life)


class SimStoragePort:
    def __init__(self, storage: SimStorage, life: Incarnation) -> None:
        self.s = storage
        self.life = life

    async def _yield(self) -> None:
        self.life.check()
        await asyncio.sleep(0)
        self.life.check()

    async def get(self, key: str) -> str | None:
        self.life.check()
        value = self.s.data.get(key)
        await self._yield()
        return value

    async def put_many(self, entries: dict[str, str]) -> None:
        self.life.check()
        self.s.data.update(entries)  # atomic: all at once
        if self.s.on_put is not None:
            self.s.on_put(entries)
        await self._yield()

    async def delete_many(self, keys) -> None:
        self.life.check()
        for key in keys:
            self.s.data.pop(key, None)
        await self._yield()

    async def set_alarm(self, at_ms: int) -> None:
        self.life.check()
        self.s.alarm = int(at_ms)
        self.s.on_alarm_change()
        await self._yield()

    async def get_alarm(self) -> int | None:
        self.life.check()
        value = self.s.alarm
        await self._yield()
        return value

    async def delete_alarm(self) -> None:
        self.life.check()
        self.s.alarm = None
        self.s.on_alarm_change()
        await self._yield()
