"""A tracker shard: its lifecycle as a few hooks over small parts.

    start()  stop()  alarm()  receive_markets(payload)  stats()

The parts, each with one job: `MarketDirectory` (which markets, kept current),
`FeedConnection` (the socket, its recovery and keepalive), `WindowAggregator`
(ticks into windows), `Outbox` (closed windows, durable until D1 has them),
`Rollup` (minutes from windows in D1, and retention), `Alerter` (webhook). The
shard owns the state they share (`TrackerState`, saved in Durable Object storage)
and the one alarm, which is the only scheduler.

Every source of time and I/O comes in through `Ports`, so the whole shard runs in
CPython against simulated ones (tests/sim): the Workers runtime only supplies
real ports (runtime/ports.py).

Failure handling lives in one place, `_step`: any step of an alarm that raises is
logged with its name, counted (`alarmErrors`), and the alarm carries on and always
sets the next alarm. Nothing escapes into the runtime's own alarm retries.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import sql
from .aggregator import WindowAggregator
from .alerter import Alerter
from .config import Config
from .connection import FeedConnection
from .directory import STORAGE_KEY as MARKETS_KEY
from .directory import MarketDirectory
from .exchange import LIGHTER, Exchange
from .feed import BookFeed
from .markets import MarketListError
from .memory import state_report
from .outbox import Outbox
from .ports import Clock, Database, Http, Log, Peers, SocketFactory, Storage
from .rollup import HOUR_MS, MINUTE_MS, hours_to_roll, rollup_hours, rollup_minutes
from .state import TrackerState
from .stats import ShardStats

STATE_KEY = "tracker-state"
# Per-connection counters that add up into the run's totals (same names in both).
FEED_COUNTERS = ("messages", "gaps", "malformed", "errors", "crossed", "one_sided")
# A rollup catches up at most this much history per alarm (after a long outage it
# advances hour by hour; nothing is skipped).
ROLLUP_CHUNK_MS = 60 * MINUTE_MS
# While the outbox holds a backlog and D1 answers, drain it this often.
DRAIN_EVERY_MS = 1_000
# After a failed D1 write, retry after 2 s, 4 s, ... at most 30 s.
RETRY_BASE_MS, RETRY_CAP_MS = 2_000, 30_000
# Flush batches per alarm while draining a backlog.
BATCHES_PER_ALARM = 5
# Stopped with the last minutes waiting for another shard: look again this often.
ROLLUP_RETRY_MS = 5_000


def _floor_hour(ms: int) -> int:
    return ms - ms % HOUR_MS


def _ceil_minute(ms: int) -> int:
    return -(-ms // MINUTE_MS) * MINUTE_MS


def _owe(debts: list[list[int]], shards: int, since: int, until: int) -> None:
    """Add minutes [since, until) owed under `shards`, merged with what is owed already."""
    for debt in debts:
        if debt[0] == shards and since <= debt[2] and debt[1] <= until:
            debt[1], debt[2] = min(debt[1], since), max(debt[2], until)
            return
    debts.append([shards, since, until])


@dataclass
class Ports:
    clock: Clock
    storage: Storage
    db: Database
    sockets: SocketFactory
    http: Http
    peers: Peers
    log: Log
    # Run a coroutine in the background (a socket handler asking for an earlier
    # alarm); the runtime logs its failure instead of losing it.
    spawn: Callable[[Awaitable, str], None]
    # The Pyodide heap, where the runtime can tell (None elsewhere).
    heap_bytes: Callable[[], int | None] = lambda: None


class ShardTracker:
    def __init__(self, config: Config, shard: int, ports: Ports, rng: random.Random | None = None,
                 exchange: Exchange = LIGHTER) -> None:
        # What differs per exchange (market list, wire protocol, limits, tables); the
        # config's api_url/ws_url/shards are this exchange's (Config.for_exchange).
        self.exchange = exchange
        self.sql = exchange.sql
        self.label = exchange.label  # the log component of everything about the feed
        self.config = config
        self.shard = shard  # replaced by the saved identity once state is loaded
        self.ports = ports
        self.log = ports.log
        self.rng = rng or random.Random()
        self.state: TrackerState | None = None
        self.outbox = Outbox(ports.storage, config.outbox_max_windows, self.sql.UPSERT_WINDOWS)
        self.aggregator: WindowAggregator | None = None  # None: not measuring (stopped, or not resumed yet)
        self.directory: MarketDirectory | None = None
        self.connection: FeedConnection | None = None
        self.alerter: Alerter | None = None
        self.markets_unsaved: list | None = None  # a listing whose D1 save failed: saved again
        self.last_flush: dict = {}
        self.last_error: str | None = None
        self.memory: dict = {}
        self._flush_lock = asyncio.Lock()
        self._known_symbols: dict[int, str] = {}
        self._not_listed_reported: dict[str, str | None] = {}

    # =====================================================================================
    # Hooks
    # =====================================================================================

    async def start(self) -> dict:
        state = await self._load()
        if state.tracking:
            if self.aggregator is None:
                await self._resume(self.ports.clock.now_ms())
                await self._schedule()
            return {"ok": True, "alreadyTracking": True, **self.stats().to_json()}
        now = self.ports.clock.now_ms()
        window_ms = self.config.window_ms
        if state.started_at is not None and state.minutes_rolled_until < _ceil_minute(state.flushed_until):
            # The previous run's last minutes are not rolled yet (its outbox may
            # still drain): they stay owed, rolled with that run's split of markets.
            _owe(state.rollup_debts, state.shards, state.minutes_rolled_until, _ceil_minute(state.flushed_until))
        state.shard = self.shard
        state.shards = self.config.shards
        state.tracking = True
        state.started_at = now
        state.totals = type(state.totals)()
        state.lost_ranges = []
        # Windows before now were never tracked: nothing is lost. A run started inside
        # the window a stop just closed starts after it, so no window is written twice.
        state.flushed_until = max(now - now % window_ms, state.flushed_until)
        state.minutes_rolled_until = state.flushed_until - state.flushed_until % MINUTE_MS
        # A new run starts with a fresh connection and backoff (but keeps the send history).
        if self.connection is not None:
            state.sent_at = self.connection.recent_sends(now)
        self.connection = None
        self._build_parts()
        self.aggregator = WindowAggregator(window_ms, state.flushed_until)
        await self._save()
        self.log("info", self.label, "tracking_started",
                 f"starting: shard {self.shard + 1}/{self.config.shards}, {self.config.ws_url}")
        # The new run's frontier in D1 at once, not at its first flush: other shards
        # read it before pruning windows of minutes this run may still add to.
        await self._step("stats", self._publish_stats, now)
        await self._step("markets", self._refresh_markets, now)
        self._open_feed()
        await self._schedule()
        return {"ok": True, **self.stats().to_json()}

    async def stop(self) -> dict:
        state = await self._load()
        was_tracking = state.tracking
        state.tracking = False
        if self.connection is not None:
            self.connection.close("tracking stopped")
        if self.aggregator is not None:
            # The partial window is closed too: tracking ended, no more ticks come.
            aggregator, self.aggregator = self.aggregator, None
            closed = aggregator.close_all(self.ports.clock.now_ms(), self._symbols())
            state.flushed_until = max(state.flushed_until, aggregator.flushed_until)
            state.totals.late_frames += aggregator.late_frames
            state.totals.windows_lost += aggregator.dropped_windows
            await self._stash(closed)
        else:
            if was_tracking:  # a fresh object stopped before it resumed
                self._record_unmeasured(self.ports.clock.now_ms())
            await self._save()
        if was_tracking:
            self.log("info", self.label, "tracking_stopped", "tracking stopped")
        await self._step("flush", self._flush, True)
        await self._schedule()
        return {"ok": True, "wasTracking": was_tracking, **self.stats().to_json()}

    async def alarm(self) -> None:
        state = await self._load()
        if state.tracking or self.outbox.windows:
            # A safety net first: should this invocation never finish (an eviction
            # mid-step), the next one still comes. `_schedule` below refines it.
            await self.ports.storage.set_alarm(self.ports.clock.now_ms() + self.config.window_ms)
        try:
            if not state.tracking:
                # Stopped: the outbox may still hold windows for D1, and the last
                # minutes may wait for another shard's windows.
                if self.outbox.windows or self._rollup_pending():
                    await self._step("flush", self._flush, True)
                return
            now = self.ports.clock.now_ms()
            if self.aggregator is None:
                await self._step("resume", self._resume, now)
            steps = (
                ("markets", self._refresh_markets_if_due),
                ("feed", self._check_feed),
                ("close windows", self._close_windows),
                ("flush", self._flush_tracking),
                ("alerts", self._alert),
            )
            for name, step in steps:
                if not state.tracking:  # a stop() arrived while a step awaited
                    break
                await self._step(name, step, now)
        finally:
            await self._step("schedule", self._schedule)

    async def receive_markets(self, payload: dict) -> dict:
        """Shard 0 hands over the listing it read (one REST read for the deployment)."""
        state = await self._load()
        listing, as_of = MarketDirectory.listing_from_payload(payload)
        if self.directory is None:
            self._build_parts()
        await self._adopt(listing, as_of, self.ports.clock.now_ms())
        if state.tracking and self.aggregator is not None:
            self._open_feed()
            await self._schedule()
        return {"ok": True, "markets": len(self.directory.markets)}

    async def ready(self) -> None:
        """Load the saved state (stats of a fresh object report what it stored)."""
        await self._load()

    async def ensure_running(self) -> None:
        """On any request: if tracking should be on but this object was just re-created
        (eviction, deploy, restart), make sure an alarm will resume it."""
        state = await self._load()
        if state.tracking and self.aggregator is None and await self.ports.storage.get_alarm() is None:
            await self.ports.storage.set_alarm(self.ports.clock.now_ms() + 100)

    # =====================================================================================
    # Steps
    # =====================================================================================

    async def _step(self, name: str, fn, *args) -> None:
        """Run one step; a failure is logged, counted and leaves the rest running."""
        try:
            await fn(*args)
        except Exception as exc:
            if self.state is not None:
                self.state.totals.alarm_errors += 1
            self.last_error = f"{name}: {type(exc).__name__}: {exc}"
            self.log("error", self.label, "step_failed", f"{name} failed: {type(exc).__name__}: {exc}")

    async def _resume(self, now: int) -> None:
        """A fresh object while tracking is on (eviction, deploy, restart): the windows
        from the last closed one up to the end of the window in progress were not
        (wholly) measured; record them lost, then measure from the next window on."""
        state = self.state
        self._record_unmeasured(now)
        self._build_parts()
        self.aggregator = WindowAggregator(self.config.window_ms, state.flushed_until)
        await self._save()
        self.log("info", self.label, "tracking_resumed", "resuming tracking")
        if not self.directory.markets:
            await self._refresh_markets(now)
        self._open_feed()

    def _record_unmeasured(self, now: int) -> None:
        state = self.state
        window_ms = self.config.window_ms
        resume_from = now - now % window_ms + window_ms
        lost = state.record_lost(state.flushed_until, resume_from, window_ms)
        if lost:
            self.log("warn", "Aggregator", "windows_lost",
                     f"resumed after a restart: {lost} window(s) were not measured")
        state.flushed_until = max(state.flushed_until, resume_from)

    async def _refresh_markets_if_due(self, now: int) -> None:
        if now >= self.directory.next_refresh_at():
            await self._refresh_markets(now)
        if self.markets_unsaved is not None and self.shard == 0:
            await self._save_markets(now)

    async def _refresh_markets(self, now: int) -> None:
        directory = self.directory
        try:
            if self.shard == 0:
                listing = await directory.from_exchange(self.ports.http, self.config, now)
                as_of = now
                self.markets_unsaved = directory.tracked(listing)  # only those reach D1
                await self._save_markets(now)
                await self._hand_over(listing, as_of)
            else:
                listing, as_of = await directory.from_d1(self.ports.db)
                if not listing:
                    raise MarketListError("no saved market list in D1 yet (shard 0 saves it)")
        except Exception as exc:
            directory.failures += 1
            directory.refreshed_at = now
            self.last_error = f"market list: {exc}"
            self.log("warn", self.label, "markets_failed", f"could not load markets: {exc}")
            if directory.markets or self.shard != 0:
                return
            # Shard 0 without any list: the one saved last time beats not tracking.
            listing, as_of = await directory.from_d1(self.ports.db)
            if not listing:
                return
            self.log("info", self.label, "markets_from_d1", f"using {len(listing)} markets saved in D1")
        await self._adopt(listing, as_of, now)

    async def _adopt(self, listing, as_of: int, now: int) -> None:
        directory = self.directory
        first = directory.refreshed_at is None or not directory.markets
        change = directory.apply(listing, as_of)
        directory.refreshed_at = now
        directory.failures = 0
        state = self.state
        if directory.duplicates:
            self.log("warn", self.label, "duplicate_symbols",
                     f"symbols shared by several markets (rows are kept apart by market id): {directory.duplicates}")
        if directory.collisions:
            self.log("error", self.label, "id_collision",
                     f"symbols sharing one market id (only the first is tracked): {directory.collisions}")
        self._report_not_listed()
        if first:
            where = f" ({len(directory.markets)} on shard {self.shard + 1}/{self.config.shards})" if self.config.shards > 1 else ""
            kept = f"; {self._allowlist_var()} keeps {directory.kept}" if directory.allowed is not None else ""
            self.log("info", self.label, "markets_loaded",
                     f"markets loaded: {directory.listed} active of {len(listing)} listed{kept}{where}")
        else:
            for market in change.added:
                state.totals.markets_added += 1
                self.log("info", self.label, "market_listed", f"new market {market.market_index} {market.symbol}: subscribing")
            for market in change.removed:
                state.totals.markets_removed += 1
                self.log("info", self.label, "market_delisted", f"market {market.market_index} {market.symbol} delisted: unsubscribing")
        if self.connection is not None and self.connection.feed is not None:
            self._symbols()  # the wire names new markets by symbol (Paradex)
            for market in change.added:
                self.connection.add_market(market.market_index)
            for market in change.removed:
                self.connection.remove_market(market.market_index)
        await self.ports.storage.put_many({MARKETS_KEY: directory.to_json(), STATE_KEY: state.to_json()})

    def _allowlist_var(self) -> str:
        return f"{self.exchange.name.upper()}_MARKETS"

    def _report_not_listed(self) -> None:
        """Symbols of the allowlist the exchange does not list: said once, by shard 0 (the one
        that reads the exchange), at the refresh that notices, and again when that changes."""
        missing = self.directory.not_listed
        if self.shard != 0 or missing == self._not_listed_reported:
            return
        self._not_listed_reported = dict(missing)
        var = self._allowlist_var()
        if not missing:
            self.log("info", self.label, "markets_not_listed", f"every symbol of {var} is listed now")
            return
        named = ", ".join(f"{s} (listed: {hint})" if hint else s for s, hint in missing.items())
        self.log("warn", self.label, "markets_not_listed",
                 f"{var} names {len(missing)} symbol(s) {self.exchange.label} does not list, skipped: {named}")

    async def _save_markets(self, now: int) -> None:
        listing = self.markets_unsaved
        try:
            await self.ports.db.batch(MarketDirectory.save_statements(listing, self.config.shards, now, self.sql))
        except Exception as exc:
            self.log("error", self.label, "d1_error", f"could not save markets to D1, will retry: {exc}")
            return
        self.markets_unsaved = None

    async def _hand_over(self, listing, as_of: int) -> None:
        payload = MarketDirectory.listing_payload(listing, as_of)
        for shard in range(1, self.config.shards):
            try:
                await self.ports.peers.send_markets(shard, payload)
            except Exception as exc:  # that shard reads D1 at its own refresh instead
                self.log("warn", self.label, "handover_failed", f"could not hand the market list to shard {shard}: {exc}")

    def _open_feed(self) -> None:
        if self.aggregator is None or not self.directory.markets or not self.connection.down:
            return
        if self.connection.reconnect_at is not None and self.ports.clock.now_ms() < self.connection.reconnect_at:
            return
        if self.connection.connections > 0:
            self.state.totals.reconnects += 1
        self.connection.open(self._subscription_order(), self.aggregator)

    def _subscription_order(self) -> list[int]:
        """Every market, starting at a point that moves with each connection, so after
        repeated drops no market is always the last to be subscribed again."""
        ids = sorted(self.directory.markets)
        if not ids:
            return ids
        offset = (self.connection.connections * 7919) % len(ids)
        return ids[offset:] + ids[:offset]

    async def _check_feed(self, now: int) -> None:
        connection = self.connection
        if not self.directory.markets:
            # Nothing to track on this shard (yet, or any more): no socket, no retries.
            if not connection.down or connection.reconnect_at is not None:
                connection.close("no markets to track")
            return
        if connection.down:
            if connection.reconnect_at is None or now >= connection.reconnect_at:
                connection.reconnect_at = None
                self._open_feed()
        else:
            # The clock now, not the alarm's start: earlier steps may have waited seconds
            # on D1 or REST, and a stale reading would make a live feed look silent.
            connection.check(self.ports.clock.now_ms())

    async def _close_windows(self, now: int) -> None:
        if self.aggregator is None:
            return
        closed = self.aggregator.close_until(now - self.config.flush_grace_ms, self._symbols())
        self.state.flushed_until = max(self.state.flushed_until, self.aggregator.flushed_until)
        await self._stash(closed)

    async def _stash(self, closed) -> None:
        """Closed windows into the outbox, in one transaction with the state that
        says they are closed; windows pushed out by the outbox's bound are lost."""
        state = self.state
        dropped = await self.outbox.add(closed, {STATE_KEY: state.to_json()})
        if dropped:
            for entry in dropped:
                state.record_lost(entry.start, entry.start + self.config.window_ms, self.config.window_ms)
            self.log("error", "Aggregator", "windows_dropped",
                     f"D1 has failed for {self.outbox.windows} windows: dropped the {len(dropped)} oldest "
                     f"(from {dropped[0].start})")
            await self._save()

    async def _flush_tracking(self, now: int) -> None:
        await self._flush(False)

    async def _flush(self, final: bool) -> None:
        """Drain the outbox into D1 (with the stats row), then roll up and prune. One
        at a time: an alarm and a stop() never interleave their writes."""
        async with self._flush_lock:
            await self._flush_locked(final)

    async def _flush_locked(self, final: bool) -> None:
        state = self.state
        failed = False
        for _ in range(BATCHES_PER_ALARM):
            started = self.ports.clock.now_ms()
            result = await self.outbox.flush(self.ports.db, extra=lambda remaining: [self._stats_statement(started, remaining)])
            if result.error:
                state.totals.flush_failures += 1
                self.last_error = f"D1 flush: {result.error}"
                self.log("error", "Aggregator", "flush_failed",
                         f"flush of {self.outbox.windows} window(s) failed, will retry: {result.error}")
                failed = True
                break
            state.totals.windows_flushed += result.windows
            state.totals.rows_written += result.rows_written
            elapsed = self.ports.clock.now_ms() - started
            if result.windows:
                self.last_flush = {"at": started, "rows": result.rows, "windows": result.windows, "ms": elapsed}
                self.log("info", "Aggregator", "flush",
                         f"flushing {result.markets} symbols: {result.rows} rows in {result.windows} window(s), {elapsed} ms")
            if not self.outbox.windows:
                break
        await self._save()
        if failed:
            return  # D1 is failing: the rollup waits for the next flush that succeeds
        try:
            await self._roll_up(final)
        except Exception as exc:
            state.totals.flush_failures += 1
            self.last_error = f"D1 rollup: {exc}"
            self.log("error", "Aggregator", "rollup_failed", f"minute rollup failed, will retry: {exc}")

    async def _roll_up(self, final: bool) -> None:
        """Minutes from windows that are in D1, then retention.

        A minute is rolled up only once every window of it is in D1: below this
        shard's outbox AND below every other shard's (after a SHARDS change one
        market's minute can hold windows written by two shards; `tracking_stats`
        says how far each shard's windows are in D1). A window is pruned only below
        the minutes every shard has rolled. A previous run's minutes still owed
        (its outbox drained after a new start) are rolled with that run's split."""
        state = self.state
        db = self.ports.db
        # A start() can begin the next run while this rollup awaits D1 (a stopped run's
        # last flush, its `final` included): what it worked out from the old run is then
        # stale, and written into the new run's state it would mark the new run's first
        # minute rolled before that run's windows of it exist (seed 5200). Overtaken so,
        # it stops at once and records nothing: start() made the old run's unrolled
        # minutes a debt, rolled later (a minute's upsert only ever gains windows).
        run = state.started_at
        others = (await db.query(self.sql.SELECT_OTHERS_FRONTIERS, self.shard) or [{}])[0]
        if state.started_at != run:
            return
        # Every window before `limit` is in D1, all shards'. Stopped with an empty
        # outbox, this shard writes no more windows: it sets no limit of its own.
        producing = state.tracking or self.outbox.windows
        limit = self._written_until() if producing else 2**62
        if others.get("written") is not None:
            limit = min(limit, others["written"])
        frontier = min(limit - limit % MINUTE_MS, _ceil_minute(state.flushed_until))
        for debt in list(state.rollup_debts):  # [shards, since, until]
            debt_until = debt[2] if limit >= debt[2] else frontier
            rolled = await self._roll_minutes(debt[0], debt[1], debt_until)
            if state.started_at != run:
                return
            debt[1] = rolled
            if debt[1] >= debt[2]:
                state.rollup_debts.remove(debt)
        until = frontier
        # `final` as the caller saw it: a start() since (while the outbox drained) voids it.
        if final and not state.tracking and not self.outbox.windows and limit >= state.flushed_until:
            until = _ceil_minute(state.flushed_until)  # stopped: the partial minute is all there will be
        rolled = await self._roll_minutes(self._shards(), state.minutes_rolled_until, until)
        if state.started_at != run:
            return
        state.minutes_rolled_until = rolled
        await self._save()
        now = self.ports.clock.now_ms()
        windows_before = min(now - self.config.snapshot_retention_ms, self._sealed_until(),
                             # Never a window of this minute or the last: a run starting now
                             # measures from the last window on, and its minute's rollup
                             # reads every window of it from D1.
                             now - now % MINUTE_MS - MINUTE_MS)
        if others.get("sealed") is not None:
            windows_before = min(windows_before, others["sealed"])
        shards = self._shards()
        metas = await db.batch([
            (self.sql.PRUNE_WINDOWS, (windows_before, shards, self.shard)),
            # A minute is kept until its hour is rolled (the hour holding the frontier).
            (self.sql.PRUNE_MINUTES, (min(now - self.config.minute_retention_ms, _floor_hour(self._sealed_until())),
                                 shards, self.shard)),
            (self.sql.PRUNE_HOURS, (now - self.config.hour_retention_ms, shards, self.shard)),
            # The stats row again, now that minutes moved: other shards read it.
            self._stats_statement(now, self.outbox.entries),
        ])
        pruned = [int(m.get("changes") or 0) for m in metas[:3]]
        if any(pruned):
            self.log("info", "Aggregator", "pruned",
                     f"cleaned {pruned[0]} window, {pruned[1]} minute and {pruned[2]} hour rows past retention")

    async def _roll_minutes(self, shards: int, since: int, until: int) -> int:
        """Roll [since, until) of this shard's markets (by `shards`), at most
        ROLLUP_CHUNK_MS per call; returns how far it got."""
        until = min(until, since + ROLLUP_CHUNK_MS)
        if until <= since:
            return since
        db = self.ports.db
        windows = await db.query(self.sql.SELECT_WINDOWS_FOR_ROLLUP, since, until, shards, self.shard)
        minutes = rollup_minutes(windows)
        if minutes:
            await db.batch(sql.bulk(self.sql.UPSERT_MINUTES, [m.values() for m in minutes]))
            self.log("info", "Aggregator", "minutes",
                     f"minute averages: {len(minutes)} rows for {len({m.timestamp for m in minutes})} minute(s)")
        # Hours whose minutes just completed (stopped: the partial hour too), rewritten
        # from lighter_minutes. A failure raises: these minutes and hours are retried.
        hours = []
        starts = hours_to_roll(since, until, final=not self.state.tracking)
        for start in starts:
            rows = await db.query(self.sql.SELECT_MINUTES_FOR_ROLLUP, start, start + HOUR_MS, shards, self.shard)
            hours += rollup_hours(rows)
        if hours:
            await db.batch(sql.bulk(self.sql.UPSERT_HOURS, [h.values() for h in hours]))
            self.log("info", "Aggregator", "hours", f"hour averages: {len(hours)} rows for {len(starts)} hour(s)")
        return until

    async def _publish_stats(self, now: int) -> None:
        await self.ports.db.batch([self._stats_statement(now, self.outbox.entries)])

    async def _alert(self, now: int) -> None:
        # Healthy: connected, and at least one book is live (a connection whose every
        # subscription is refused carries no data either).
        connection = self.connection
        if not self.directory.markets:  # nothing to track on this shard: nothing can be down
            healthy = True
        else:
            healthy = connection.connected and connection.feed.valid_books() > 0
        await self.alerter.observe(healthy, now, connection.last_error or "disconnected")

    # =====================================================================================
    # The one alarm
    # =====================================================================================

    async def _schedule(self) -> None:
        now = self.ports.clock.now_ms()
        due = []
        if self.state is not None and self.state.tracking:
            due.append(self._next_window_alarm(now))
            if self.connection is not None:
                due.append(self.connection.next_due(now))
            if self.directory is not None:
                due.append(self.directory.next_refresh_at())
        if self.outbox.windows:
            failures = self.outbox.failures_in_a_row
            retry = DRAIN_EVERY_MS if not failures else min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** min(failures - 1, 10))
            due.append(now + retry)
        elif self._rollup_pending():
            due.append(now + ROLLUP_RETRY_MS)
        due = [d for d in due if d is not None]
        if due:
            await self.ports.storage.set_alarm(max(min(due), now + 50))
        else:
            await self.ports.storage.delete_alarm()

    def _wake(self, at: int) -> None:
        """A socket event wants the alarm by `at` (a reconnect)."""
        self.ports.spawn(self._schedule(), "reschedule")

    def _next_window_alarm(self, now: int) -> int:
        """The next `window boundary + grace` after now: when the window just ended closes."""
        window_ms, grace = self.config.window_ms, self.config.flush_grace_ms
        since = now - grace
        return since - since % window_ms + window_ms + grace

    # =====================================================================================
    # State
    # =====================================================================================

    async def _load(self) -> TrackerState:
        if self.state is not None:
            return self.state
        storage = self.ports.storage
        try:
            state = TrackerState.from_json(await storage.get(STATE_KEY))
        except ValueError as exc:  # unreadable: start clean rather than never start
            self.log("error", self.label, "state_unreadable", f"stored state unreadable, starting clean: {exc}")
            state = TrackerState()
        if state.shard is not None:
            self.shard = state.shard  # the saved identity wins over the object's name
        await self.outbox.load()
        self.state = state
        self._build_parts()
        self.directory.restore(await storage.get(MARKETS_KEY))
        self.log("info", self.label, "state_loaded", f"loaded state: tracking={'on' if state.tracking else 'off'}")
        return state

    def _build_parts(self) -> None:
        """The parts that depend on the run's settings (SHARDS, URLs), built afresh."""
        config, ports = self.config, self.ports
        if self.directory is None or self.directory.shards != self._shards():
            old = self.directory
            self.directory = MarketDirectory(self.shard, self._shards(), config.market_refresh_ms, self.exchange,
                                             config.market_symbols)
            if old is not None and old.shards == self.directory.shards:
                self.directory.markets = old.markets
        if self.connection is None:
            self.connection = FeedConnection(
                config.ws_url, ports.sockets, ports.clock, ports.log,
                self.exchange.budget(self._shards()), config.stale_feed_ms,
                wake=self._wake, on_drop=self._fold_counters, rng=self.rng,
                exchange=self.exchange, new_wire=lambda: self.exchange.new_wire(self.config, self._symbols()),
            )
            if self.state is not None:  # what a previous instance sent still counts
                self.connection.sent_at.extend(sorted(self.state.sent_at))
        if self.alerter is None:
            self.alerter = Alerter(config.alert_after_ms, config.alert_webhook_url, ports.http, ports.log,
                                   self.shard, config.alert_service_name, self.label)

    def _symbols(self) -> dict[int, str]:
        """Every symbol this object has known: a delisted market's last windows still
        close after it left the directory, and keep its symbol."""
        self._known_symbols.update(self.directory.symbols)
        return self._known_symbols

    def _shards(self) -> int:
        """SHARDS as it was when this run started (the split of markets follows it
        until the next start, retries after a stop included)."""
        state = self.state
        return state.shards if state is not None and state.started_at is not None else self.config.shards

    def _fold_counters(self, feed: BookFeed) -> None:
        totals = self.state.totals
        for name in FEED_COUNTERS:
            setattr(totals, name, getattr(totals, name) + getattr(feed.counters, name))

    async def _save(self) -> None:
        if self.connection is not None:
            self.state.sent_at = self.connection.recent_sends(self.ports.clock.now_ms())
        await self.ports.storage.put_many({STATE_KEY: self.state.to_json()})

    def _rollup_pending(self) -> bool:
        """Stopped, and the last (partial) minute is not rolled up yet: another shard's
        windows of it are not all in D1."""
        state = self.state
        if state is None or state.tracking or state.started_at is None:
            return False
        return bool(state.rollup_debts) or state.minutes_rolled_until < _ceil_minute(state.flushed_until)

    def _sealed_until(self) -> int:
        """History ending at or before this is final in D1: windows written, and their
        minutes rolled (this run's and any still owed by a previous run)."""
        state = self.state
        return min([self._written_until(), state.minutes_rolled_until] + [d[1] for d in state.rollup_debts])

    def _written_until(self, entries=None) -> int:
        """Every window before this is in D1 (or was never measured)."""
        flushed = self.state.flushed_until
        if entries is None:
            oldest = self.outbox.oldest
        else:  # the outbox as it will be after a flush: those entries, and any being added
            starts = ([entries[0].start] if entries else []) + self.outbox.staging
            oldest = min(starts) if starts else None
        return flushed if oldest is None else min(oldest, flushed)

    def _stats_statement(self, now: int, remaining) -> tuple:
        """The tracking_stats row as it will be once the batch carrying it is in D1
        (`remaining`: the outbox after it), so other shards read a true frontier."""
        stats = self.stats()
        stats.pending_windows = len(remaining)
        stats.written_until = self._written_until(remaining)
        stats.sealed_until = min(stats.written_until, self._sealed_until())
        return (self.sql.UPSERT_STATS, stats.row(now))

    # =====================================================================================
    # Reporting
    # =====================================================================================

    def _count(self, name: str) -> int:
        totals = self.state.totals if self.state else None
        feed = self.connection.feed if self.connection else None
        return (getattr(totals, name) if totals else 0) + (getattr(feed.counters, name) if feed else 0)

    def stats(self) -> ShardStats:
        state = self.state or TrackerState()
        totals = state.totals
        connection, aggregator, directory = self.connection, self.aggregator, self.directory
        feed = connection.feed if connection else None
        now = self.ports.clock.now_ms()
        window_start = aggregator.current_window_start if aggregator else None
        if aggregator is not None:
            self.memory = {**state_report(feed.books if feed else {}, aggregator), "wasmHeap": self.ports.heap_bytes()}
        return ShardStats(
            shard=self.shard,
            is_tracking=state.tracking,
            markets=len(directory.markets) if directory else 0,
            markets_listed=directory.listed if directory else 0,
            duplicate_symbols=dict(directory.duplicates) if directory else {},
            markets_not_listed=sorted(directory.not_listed) if directory else [],
            markets_added=totals.markets_added,
            markets_removed=totals.markets_removed,
            markets_refreshed_at=directory.refreshed_at if directory else None,
            connected=bool(connection and connection.connected),
            subscribed=len(feed.pacer.subscribed) if feed else 0,
            valid_books=feed.valid_books() if feed else 0,
            waiting_subscriptions=feed.pacer.waiting if feed else 0,
            eta_all_live_seconds=round(feed.pacer.eta_ms() / 1000, 1) if feed else 0.0,
            messages_received=self._count("messages"),
            last_message_at=feed.last_timestamp if feed else None,
            reconnects=totals.reconnects,
            gaps=self._count("gaps"),
            malformed=self._count("malformed"),
            errors=self._count("errors") + (connection.frame_errors if connection else 0),
            crossed=self._count("crossed"),
            one_sided=self._count("one_sided"),
            late_frames=totals.late_frames + (aggregator.late_frames if aggregator else 0),
            flush_failures=totals.flush_failures,
            windows_flushed=totals.windows_flushed,
            windows_lost=totals.windows_lost + (aggregator.dropped_windows if aggregator else 0),
            lost_ranges=list(state.lost_ranges),
            rows_written=totals.rows_written,
            pending_windows=self.outbox.windows,
            alarm_errors=totals.alarm_errors,
            started_at=state.started_at,
            flushed_until=state.flushed_until,
            sealed_until=self._sealed_until() if self.state else None,
            written_until=self._written_until() if self.state else None,
            last_flush=self.last_flush,
            reconnect_at=connection.reconnect_at if connection else None,
            last_error=self.last_error or (connection.last_error if connection else None),
            memory_bytes=self.memory,
            aggregator={
                "currentSymbols": aggregator.current_markets() if aggregator else 0,
                "windowElapsed": (now - window_start) / 1000 if window_start is not None else 0,
                "windowStart": window_start,
                "openWindows": aggregator.open_windows() if aggregator else 0,
            },
        )
