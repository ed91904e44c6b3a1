"""The simulated Cloudflare side: D1 (real SQLite running the real statements and
schema.sql, with latency and failures on a schedule) and Durable Object storage
(survives evictions; an evicted instance's pending calls never return).

The D1 is D1's own SQLite (tools/d1sqlite: workerd's version, with the row counters
D1 bills by), so every statement the tracker runs reports `rows_read` and
`rows_written` as D1 would, and the totals are kept per statement and per table
(`SimD1.usage`): the simulation counts what a deployment is billed.

The platform as it is (issue 18): a D1 call made during a hang answers when the hang
ends, however long, and its write commits either when it was sent or when the hang
ends; a call runs on whether its caller gives up (a deadline) or dies (an eviction);
during a spell of lost answers a D1 batch commits and then fails; a batch of more
statements than the runtime sends at once (ports.D1_BATCH_STATEMENTS) runs as several
transactions, one after the other (D1 documents one batch() call as one transaction;
a bulk statement of sql.bulk, many rows bound as one JSON text, is one statement and
atomic like any); a storage write of more keys than one call
takes (ports.STORAGE_KEYS_PER_CALL) is several calls, not one transaction; and an
instance can be evicted at any await (`Incarnation.tripwire`).
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from pathlib import Path

from d1sqlite import D1Sqlite
from tracker import sql
from tracker.ports import D1_BATCH_STATEMENTS, storage_calls
from tracker.feedtime import MAX_CLOCK_AHEAD_MS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schema.sql").read_text()
# Each exchange's window table and the minute table its windows roll up into.
WINDOW_TABLES = {"lighter_snapshots": "lighter_minutes", "paradex_snapshots": "paradex_minutes"}


# What the bookkeeping trigger adds to a statement's counters per window row it notes
# (measured: tests/sim/test_d1_usage.py checks the correction against D1's SQLite
# without triggers, tests/integration/test_d1_counts.py against D1 itself): a row
# written into `touched` for every row changed, and a row read as well when the
# statement inserts or updates the row (not when it deletes it).
TOUCH_COST = 1
TOUCH_READ_COST = 1


class Evicted(BaseException):
    """Raised into an evicted instance's code at its next await: it never resumes.
    A BaseException, so the tracker's `except Exception` cannot swallow it."""


class Incarnation:
    """One life of a Durable Object instance; `alive` turns False at eviction."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.alive = True
        # Evicted at the n-th check from now (every port call checks before and after
        # its await): the world's "evict_at_await" sets it and `on_trip` evicts.
        self.tripwire: int | None = None
        self.on_trip = None

    def check(self) -> None:
        if self.tripwire is not None:
            self.tripwire -= 1
            if self.tripwire <= 0:
                self.tripwire = None
                self.on_trip()
        if not self.alive:
            raise Evicted(f"incarnation {self.number} was evicted")


# Every statement of tracker/sql.py by its text: "LIGHTER.UPSERT_WINDOWS", ...
STATEMENT_NAMES = {
    text: f"{exchange}.{name}"
    for exchange, statements in (("LIGHTER", sql.LIGHTER), ("PARADEX", sql.PARADEX))
    for name, text in vars(statements).items() if isinstance(text, str)
}
_WRITE = re.compile(r"\b(?:INSERT INTO|DELETE FROM|UPDATE)\s+(\w+)")
_READ = re.compile(r"\bFROM\s+(\w+)")


def statement_name(text: str) -> str:
    """The sql.py name of a statement ("LIGHTER.PRUNE_WINDOWS"), or its first words."""
    return STATEMENT_NAMES.get(text) or " ".join(text.split()[:4])


def target_table(text: str) -> str:
    """The table a statement writes (or, for a read, the first it reads): what its rows
    are counted against (a loose scan in a WITH clause reads that same table)."""
    found = _WRITE.search(text) or _READ.search(text)
    return found.group(1) if found else "?"


@dataclass
class Usage:
    """What D1 (and Durable Object storage) bills for: statements (calls) run, rows
    read, rows written."""
    statements: int = 0
    rows_read: int = 0
    rows_written: int = 0

    def add(self, read: int, written: int) -> None:
        self.statements += 1
        self.rows_read += read
        self.rows_written += written


class SimD1:
    def __init__(self, loop, rng: random.Random) -> None:
        self.loop = loop
        self.rng = rng
        self.conn = D1Sqlite()
        self.conn.script(SCHEMA)
        # The tracker's statements only (never the tests' own look-ups): per sql.py name,
        # and per table. `counting` off: run statements without adding them (a bench's fill).
        self.usage: dict[str, Usage] = {}
        self.table_usage: dict[str, Usage] = {}
        self.counting = True
        self.failing_until = 0  # every call fails until then
        self.hanging_until = 0  # calls started before then take until then (+ a bit)
        self.losing_answers_until = 0  # batches commit, then answer an error, until then
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
        # Each firing writes one row into the temporary table, which D1's counter counts
        # like any other: `_run` takes those back out (TOUCH_COST per row noted).
        self.conn.run("CREATE TEMP TABLE touched (tbl TEXT, market_index INTEGER, timestamp INTEGER, kept INTEGER)")
        for table in WINDOW_TABLES:
            for op, row, kept in (("INSERT", "NEW", 1), ("UPDATE", "NEW", 1), ("DELETE", "OLD", 0)):
                self.conn.run(
                    f"CREATE TEMP TRIGGER touched_{table}_{op.lower()} AFTER {op} ON main.{table} BEGIN "
                    f"INSERT INTO touched VALUES ('{table}', {row}.market_index, {row}.timestamp, {kept}); END")
        self._kept = 0  # rows in `touched` now of window rows inserted or updated

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

    def _run(self, text: str, params) -> tuple[list[dict], dict]:
        """One of the tracker's statements, counted: its rows and its D1 `meta`."""
        result = self.conn.run(text, tuple(params))
        # The sim's own bookkeeping rows (one written per window row the statement
        # changed, one read per row it inserted or updated: a DELETE's plan with a
        # trigger reads as it would without) are not the tracker's: D1 never sees them.
        # Written rows come from SQLite's own change counter; the reads need the kind.
        written = result.rows_written - result.trigger_changes * TOUCH_COST
        kept = self._count_kept() if result.trigger_changes else self._kept
        read = result.rows_read - (kept - self._kept) * TOUCH_READ_COST
        self._kept = kept
        meta = {"changes": result.changes, "rows_written": written, "rows_read": read}
        if self.counting:
            self.usage.setdefault(statement_name(text), Usage()).add(read, written)
            self.table_usage.setdefault(target_table(text), Usage()).add(read, written)
        return result.rows, meta
    def _count_kept(self) -> int:
        return self.conn.run("SELECT COALESCE(SUM(kept), 0) AS kept FROM touched").rows[0]["kept"]

    def _hanging_now(self) -> bool:
        return self.loop.now_ms() < self.hanging_until

    def execute_batch(self, statements) -> list[dict]:
        metas = []
        self.conn.run("BEGIN")
        try:
            for text, params in statements:
                metas.append(self._run(text, params)[1])
            self.conn.run("COMMIT")
        except Exception:
            self.conn.run("ROLLBACK")
            self._kept = self._count_kept()
            raise
        self._record(statements)
        return metas

    def query(self, text: str, *params) -> list[dict]:
        """A read of the tracker's (counted)."""
        return self._run(text, params)[0]

    def _record(self, statements) -> None:
        """Keep every window value ever written; a rewrite must be identical (idempotent
        retries), and a pruned window must have its minute rolled."""
        touched = []
        for table in self._touched_tables():
            # Each window row the batch changed, as it is now (NULLs: deleted), in one query.
            touched += [(table, r) for r in self.rows(
                f"SELECT t.market_index AS touched_market, t.timestamp AS touched_ts, w.* FROM "
                f"(SELECT DISTINCT market_index, timestamp FROM touched WHERE tbl = ?) AS t "
                f"LEFT JOIN {table} AS w ON w.market_index = t.market_index AND w.timestamp = t.timestamp",
                table)]
        self.conn.run("DELETE FROM touched")
        self._kept = 0
        for table, found in touched:
            market, ts = found.pop("touched_market"), found.pop("touched_ts")
            key = (table, market, ts)
            if found["market_index"] is not None:
                now = self.loop.now_ms()
                if ts > now + MAX_CLOCK_AHEAD_MS:
                    self.future_rows.append(f"{table}: window {market}@{ts} written at {now}, "
                                            f"{(ts - now) / 1000:.0f}s ahead of the clock")
                values = tuple(found.values())
                old = self.writes.get(key)
                if old is not None and old != values:
                    self.rewrites_differing.append(f"{key}: {old} -> {values}")
                self.writes[key] = values
            elif key in self.writes and key not in self.pruned:
                self.pruned.add(key)
                minute = ts - ts % 60_000
                minutes = WINDOW_TABLES[table]
                if not self.rows(f"SELECT 1 FROM {minutes} WHERE market_index = ? AND timestamp = ?", market, minute):
                    self.prune_violations.append(f"{table}: window {market}@{ts} pruned before minute {minute} was rolled")

    def _touched_tables(self) -> list[str]:
        return [r["tbl"] for r in self.rows("SELECT DISTINCT tbl FROM touched")]

    def rows(self, text: str, *params) -> list[dict]:
        """A look-up of the test's own (not counted)."""
        return self.conn.run(text, params).rows


class SimD1Port:
    """What one instance holds as `db`."""

    def __init__(self, d1: SimD1, life: Incarnation) -> None:
        self.d1 = d1
        self.life = life
        self.on_answered = None  # the world hears of every batch answered as committed

    async def query(self, sql: str, *params) -> list[dict]:
        self.life.check()
        return await answered(self.life, self._query(sql, *params))

    async def batch(self, statements) -> list[dict]:
        self.life.check()
        statements = list(statements)
        if self.d1.on_batch is not None:
            self.d1.on_batch(statements)
        metas = await answered(self.life, self._batch(statements))
        if self.on_answered is not None:
            self.on_answered(statements)
        return metas

    async def _query(self, sql: str, *params) -> list[dict]:
        await self.d1._latency()
        if self.d1._fail_now():
            raise RuntimeError("D1_ERROR: simulated outage")
        return self.d1.query(sql, *params)  # the tracker's: counted

    async def _batch(self, statements) -> list[dict]:
        metas = []
        # As the runtime's port sends them: a transaction per D1_BATCH_STATEMENTS, in order.
        for i in range(0, len(statements), D1_BATCH_STATEMENTS):
            metas += await self._transaction(statements[i : i + D1_BATCH_STATEMENTS])
        return metas

    async def _transaction(self, statements) -> list[dict]:
        d1 = self.d1
        metas = None
        if d1._hanging_now() and d1.rng.random() < 0.5 and not d1._fail_now():
            # A hung call whose write commits at once; only its answer is late.
            d1.batches += 1
            metas = d1.execute_batch(statements)
        await d1._latency()
        if metas is None:
            if d1._fail_now():
                raise RuntimeError("D1_ERROR: simulated outage")
            d1.batches += 1
            metas = d1.execute_batch(statements)  # applied whether anyone still listens or not
        if d1.loop.now_ms() < d1.losing_answers_until:
            raise RuntimeError("D1_ERROR: Network connection lost (simulated: after the write committed)")
        return metas


async def answered(life: Incarnation, work):
    """The answer of `work` (a call to D1, REST, another object), which runs on its own
    whatever the caller does: a caller that gives up (a deadline cancels it) or dies
    (evicted) only stops listening, and a D1 write still commits. A dead caller never
    resumes: whatever ends its wait raises Evicted into it instead."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody may listen any more
    try:
        result = await asyncio.shield(task)
    except BaseException:
        life.check()
        raise
    life.check()
    return result


class SimStorage:
    """One Durable Object's storage: survives its instances.

    `usage` counts what SQLite-backed Durable Object storage bills
    (developers.cloudflare.com/durable-objects/platform/pricing/, "SQLite storage
    backend": key-value methods are billed as rows read and written, "Each setAlarm()
    is billed as a single row written", "Deletes are counted as rows written"): a row
    written per key put or deleted and per setAlarm (deleteAlarm counted the same,
    which the page does not say); a row read per key got (getAlarm counted the same).
    `alarms_fired` counts the alarm invocations (Durable Object requests)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.alarm: int | None = None
        self.on_alarm_change = None  # the world re-arms its timer
        self.on_put = None  # the world watches what is saved (lost ranges)
        self.usage = Usage()
        self.alarms_fired = 0

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
        self.s.usage.add(1, 0)
        await self._yield()
        return value

    async def put_many(self, entries: dict[str, str]) -> None:
        # A call of at most STORAGE_KEYS_PER_CALL keys is atomic; more are several calls.
        for call in storage_calls(list(entries.items())) or [[]]:
            self.life.check()
            self.s.data.update(call)
            self.s.usage.add(0, len(call))
            if self.s.on_put is not None:
                self.s.on_put(dict(call))
            await self._yield()

    async def delete_many(self, keys) -> None:
        for call in storage_calls(list(keys)) or [[]]:
            self.life.check()
            for key in call:
                self.s.data.pop(key, None)
            self.s.usage.add(0, len(call))
            await self._yield()

    async def set_alarm(self, at_ms: int) -> None:
        self.life.check()
        self.s.alarm = int(at_ms)
        self.s.usage.add(0, 1)
        self.s.on_alarm_change()
        await self._yield()

    async def get_alarm(self) -> int | None:
        self.life.check()
        value = self.s.alarm
        self.s.usage.add(1, 0)
        await self._yield()
        return value

    async def delete_alarm(self) -> None:
        self.life.check()
        self.s.alarm = None
        self.s.usage.add(0, 1)
        self.s.on_alarm_change()
        await self._yield()
