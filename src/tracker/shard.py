"""A tracker shard: its lifecycle as a few hooks over small parts.

    start()  stop()  alarm()  receive_markets(payload)  stats()

The parts, each with one job: `MarketDirectory` (which markets, kept current) and
`MarketList` (reading, saving and handing over the listing), `FeedConnection` (the
socket, its recovery and keepalive), `WindowAggregator` (ticks into windows),
`Outbox` (closed windows, durable until D1 has them), `Flusher` (the outbox into D1,
then the rollup), `Rollup` (minutes and hours from windows in D1, and retention),
`Alerter` (webhook); `losses` (what could not be measured, recorded with its range),
`StatsFrontier` (the stats row, only when it moved), `shard_stats` (the stats read off
the parts), `StateStore` and `SendStore` (the state and the send history in storage),
`Lanes` (the steps and side tasks) and `AlarmPlan` (when the alarm fires next). The
shard owns the state they share (`TrackerState`) and the one alarm, which is the only
scheduler.

Every source of time and I/O comes in through `Ports`, so the whole shard runs in
CPython against simulated ones (tests/sim): the Workers runtime only supplies
real ports (runtime/ports.py).

Failure handling lives in one place, `Lanes.step` (tracker/lanes.py): any step of an
alarm that raises is logged with its name, counted (`alarmErrors`), and the alarm
carries on and always sets the next alarm.

A slow call never holds the windows hostage. Every call that leaves the object has
a deadline (`tracker.ports.Deadlines`, applied to the ports here), and the alarm
itself awaits nothing but the object's own storage: it resumes a fresh object,
checks the feed (pings, a stale or dropped socket, paced subscribes), closes the
windows that ended into the outbox, and sets the next alarm, always on time. The
steps that wait on the outside world run beside it, each in a lane of its own
(`Lanes`): "markets" (REST, the market list's D1 save, the hand-over to the other
shards), "d1" (the outbox into D1, then rollup and retention) and "alerts" (the
webhook). So a REST call hanging for minutes only delays the market list, and a
hanging D1 only delays D1: the outbox keeps every closed window durable meanwhile.
An eviction ends a lane as it ends everything else (what it had not written is
written again by the next instance). start() and stop() wait for their lanes
ANSWER_WITHIN_MS at most.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

from .aggregator import WindowAggregator
from .alarmplan import AlarmPlan, AlarmWriter, next_window_close
from .alerter import Alerter
from .config import Config
from .connection import FeedConnection
from .directory import STORAGE_KEY as MARKETS_KEY
from .directory import MarketDirectory
from .exchange import LIGHTER, Exchange
from .feed import BookFeed
from .feedtime import BACKLOG_RECHECK_MS, READING_AGE_MS, FeedLag, close_boundary, queue_start
from .flush import Flusher
from .frontier import StatsFrontier
from .lanes import Lanes, within
from .losses import LateFrames, record_given_up, record_unmeasured
from .marketlist import MarketList
from .memory import state_report
from .outbox import Outbox
from .pacing import SendHistory
from .ports import Deadlines, Ports  # Ports: also imported from here (runtime, tests/sim)
from .rollup import Rollup
from .sendstore import SendStore
from .shardview import counted, shard_stats
from .state import TrackerState
from .statestore import STATE_KEY, StateStore
from .stats import ShardStats

# start() and stop() answer within this, whatever D1 or REST do (what is not done by
# then goes on in its lane): the Worker's request that fans them out to every shard
# must itself answer within 30 s ("Wall time limits by invocation type",
# developers.cloudflare.com/workers/platform/limits/).
ANSWER_WITHIN_MS = 20_000


class ShardTracker:
    def __init__(self, config: Config, shard: int, ports: Ports, rng: random.Random | None = None,
                 exchange: Exchange = LIGHTER, deadlines: Deadlines = Deadlines()) -> None:
        self.deadlines = deadlines
        ports = ports.bounded(deadlines)
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
        self.rollup: Rollup | None = None  # built once the state is loaded
        self.market_list = MarketList(shard, exchange, config, ports.http, ports.db, ports.peers, ports.storage,
                                      ports.log, self._shards, self._set_last_error)
        self.last_error: str | None = None
        self.memory: dict = {}
        self._flush_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()
        self._known_symbols: dict[int, str] = {}
        self.frontier = StatsFrontier()  # what the last stats row sent to D1 reported
        self.flusher = Flusher(self.outbox, ports.db, ports.clock, ports.log, self.frontier, self._stats_rows,
                               self._save, self._set_last_error)
        # The state and the alarm, each written only when it changed.
        self.store = StateStore(ports.storage, ports.log, self.label)
        self._alarm = AlarmWriter(ports.storage)
        self.lanes = Lanes(ports.spawn, self._step_failed, self._schedule)  # see the module doc
        # arrival - stamp of the feed's frames, across connections; and how far ahead of
        # our clock the kept stamps ran, saved at once when further than the state says.
        self.lag = FeedLag(on_ahead=self._ran_ahead)
        self._recheck_at = 0  # a close held back for a backlog is tried again then (feedtime.BACKLOG_RECHECK_MS)
        self.late = LateFrames(ports.log)  # frames dropped as late, said at most once a minute
        # Every message this object's connections send, and what the previous instance
        # and (after a re-split) the other shards sent: counted against the share.
        self.send_store = SendStore(ports.storage, ports.clock, ports.spawn, lambda: self.connection)

    # =====================================================================================
    # Hooks
    # =====================================================================================

    async def start(self, handover: dict | None = None) -> dict:
        """Start a run under the configured SHARDS. `handover` (tracker/control.py, when
        the split changed): `after`, the end of the newest window the shards of the old
        split closed (a market that moves here starts after it: no window key written by
        two shards), and `sent`, their sends in the rate window (counted against this
        shard's share: the deployment's budget holds across the change)."""
        state = await self._load()
        if state.tracking:
            if state.shards != self.config.shards:
                # Running under another split: control.py releases it first; a start that
                # comes without that (an older Worker) must not mix two splits.
                return {"ok": False, "failed": self._split_changed_message(), **self.stats().to_json()}
            if self.aggregator is None:
                await self._resume(self.ports.clock.now_ms())
                await self._schedule()
            return {"ok": True, "alreadyTracking": True, **self.stats().to_json()}
        now = self.ports.clock.now_ms()
        window_ms = self.config.window_ms
        handover = handover or {}
        if handover.get("sent"):
            self.sends.count_others([int(at) for at in handover["sent"]], now)
            await self.send_store.write(now)
        # Windows before now were never tracked: nothing is lost. A run started inside
        # the window a stop just closed starts after it, so no window is written twice.
        measured_from = max(now - now % window_ms, state.flushed_until, int(handover.get("after") or 0))
        self.rollup.start_run(measured_from)
        state.shard = self.shard
        state.shards = self.config.shards
        state.tracking = True
        state.stats_unpublished = False  # the run's own rows (is_tracking=1) replace a stop's unpublished one
        # The start's own row (below) is not one `_stats_rows` knows of: the next batch
        # carries the row again, even if it looks like the last one sent (seed 1133: a
        # release's stop, this start, and a stop within one window).
        self.frontier.forget()
        state.started_at = now
        state.totals = type(state.totals)()
        state.lost_ranges = []
        state.flushed_until = measured_from
        # A new run starts with a fresh connection and backoff (but keeps the send history).
        self.connection = None
        self._build_parts()
        self.aggregator = WindowAggregator(window_ms, state.flushed_until)
        await self._save()
        self.log("info", self.label, "tracking_started",
                 f"starting: shard {self.shard + 1}/{self.config.shards}, {self.config.ws_url}")
        # The new run's frontier in D1 at once, not at its first flush: other shards
        # read it before pruning windows of minutes this run may still add to (a flush
        # still under way in the d1 lane writes it too). And the market list; the answer
        # waits for both, ANSWER_WITHIN_MS at most, and says how many markets it tracks.
        await within(ANSWER_WITHIN_MS, self.lanes.start("d1", self._publish_stats, now),
                     self.lanes.start("markets", self._refresh_markets_if_due, now, True))
        self._open_feed()
        await self._schedule()
        return {"ok": True, **self.stats().to_json()}

    async def release(self, shards: int) -> dict:
        """The first step of a start (tracker/control.py): a shard tracking under
        another split than `shards` (SHARDS changed while tracking), or beyond it, stops.
        Every shard then says what a start of the new split must know of it: whether it
        is (still) tracking, the split of its last run, the end of its newest closed
        window and its sends in the rate window."""
        state = await self._load()
        answer = {}
        if state.tracking and (state.shards != shards or self.shard >= shards):
            self.log("info", self.label, "resharding",
                     f"{self._shards_var()} changed from {state.shards} to {shards} while tracking: stopping shard "
                     f"{self.shard + 1}/{state.shards} to start the new split")
            answer = await self.stop()
        now = self.ports.clock.now_ms()
        return {**(answer or self.stats().to_json()), "tracking": state.tracking,
                "shards": state.shards if state.started_at is not None else None,
                "flushedUntil": state.flushed_until, "sent": self.sends.recent_own(now), "shard": self.shard}

    def _split_changed_message(self) -> str:
        var = self._shards_var()
        return (f"tracking under {var}={self.state.shards}, but {var} is {self.config.shards} now: "
                f"POST /api/start again to re-split (or /api/stop, then /api/start)")

    def _shards_var(self) -> str:
        return "SHARDS" if self.exchange.name == "lighter" else f"{self.exchange.name.upper()}_SHARDS"

    async def stop(self) -> dict:
        state = await self._load()
        was_tracking = state.tracking
        state.tracking = False
        if was_tracking:
            # Other shards read is_tracking from the stats row before rolling up: it must
            # reach D1, retried on the alarm until it does (`Flusher` clears this).
            state.stats_unpublished = True
        if self.connection is not None:
            self.connection.close("tracking stopped")
        if self.aggregator is not None:
            # The partial window is closed too: tracking ended, no more ticks come.
            aggregator, self.aggregator = self.aggregator, None
            closed = aggregator.close_all(self.ports.clock.now_ms(), self._symbols())
            state.flushed_until = max(state.flushed_until, aggregator.flushed_until)
            state.totals.late_frames += aggregator.late_frames
            record_given_up(state, aggregator, self.config.window_ms, self.log)
            await self._stash(closed)
        else:
            if was_tracking:  # a fresh object stopped before it resumed
                record_unmeasured(state, self.ports.clock.now_ms(), self.config.window_ms, self.log)
            await self._save()
        if was_tracking:
            self.log("info", self.label, "tracking_stopped", "tracking stopped")
        # The last flush (the partial minute and hour too), after the D1 work under way;
        # the answer waits for it ANSWER_WITHIN_MS at most, then it goes on in its lane
        # (or the stopped alarm starts it).
        answer_by = self.ports.clock.now_ms() + ANSWER_WITHIN_MS
        await within(ANSWER_WITHIN_MS, self.lanes.task("d1"))
        if not self.lanes.busy("d1"):
            await within(answer_by - self.ports.clock.now_ms(), self.lanes.start("d1", self._flush, True))
        await self._schedule()
        # `split`: the SHARDS this shard last ran under, so a stop reaches that split's
        # other shards even when D1 cannot list them (tracker/control.py).
        return {"ok": True, "wasTracking": was_tracking, "split": state.shards if state.started_at is not None else None,
                **self.stats().to_json()}

    async def alarm(self) -> None:
        state = await self._load()
        self._alarm.forget()  # the runtime consumed the alarm that brought us here
        if state.tracking or self.outbox.windows:
            # A safety net first: should this invocation never finish (an eviction
            # mid-step), the next one still comes. `_schedule` below refines it.
            await self._alarm.write(self.ports.clock.now_ms() + self.config.window_ms)
        try:
            if not state.tracking:
                # Stopped: the outbox may still hold windows for D1, the last minutes
                # may wait for another shard's windows, the stats row for D1.
                if self._d1_owed():
                    self.lanes.start("d1", self._flush, True)
                return
            if self.exchange.name not in self.config.enabled_exchanges:
                # A deploy took this exchange out of ENABLED_EXCHANGES while it tracked:
                # nobody calls /api/stop, /api/start and /api/health no longer see it.
                # Stop as /api/stop would (what was measured is kept: the outbox drains
                # into D1 at the next alarms), beside the alarm: its last flush waits on D1.
                self.log("warn", self.label, "exchange_disabled",
                         f"{self.exchange.name} is not in ENABLED_EXCHANGES "
                         f"({','.join(self.config.enabled_exchanges)}): stopping")
                self.lanes.start("control", self.stop)
                return
            now = self.ports.clock.now_ms()
            if self.aggregator is None:
                await self.lanes.step("resume", self._resume, now)
            # On time, whatever REST, D1 or the webhook do: these await only storage.
            for name, step in (("feed", self._check_feed), ("close windows", self._close_windows)):
                if not state.tracking:  # a stop() arrived while a step awaited
                    return
                await self.lanes.step(name, step, now)
            if not state.tracking:
                return
            # Beside the alarm, each in its lane: they wait on the outside world.
            if self.market_list.due(self.directory, now):
                self.lanes.start("markets", self._refresh_markets_if_due, now)
            self.lanes.start("d1", self._flush_tracking, now)
            self.lanes.start("alerts", self._alert, now)
        finally:
            await self.lanes.step("schedule", self._schedule)

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
            await self._alarm.write(self.ports.clock.now_ms() + 100)

    # =====================================================================================
    # Steps
    # =====================================================================================

    def _d1_owed(self) -> bool:
        """D1 work still owed: windows in the outbox, minutes or hours to roll, or a
        stopped shard's stats row (other shards read is_tracking from it) or market list."""
        state = self.state
        return bool(self.outbox.windows or (self.rollup is not None and self.rollup.pending)
                    or (state is not None and not state.tracking
                        and (state.stats_unpublished or self.market_list.owed)))

    def _set_last_error(self, error: str) -> None:
        self.last_error = error

    def _step_failed(self, name: str, exc: Exception) -> None:
        """A step failed (`Lanes.step`): logged, counted, the rest runs on."""
        if self.state is not None:
            self.state.totals.alarm_errors += 1
        self.last_error = f"{name}: {type(exc).__name__}: {exc}"
        self.log("error", self.label, "step_failed", f"{name} failed: {type(exc).__name__}: {exc}")

    async def _resume(self, now: int) -> None:
        """A fresh object while tracking is on (eviction, deploy, restart): the windows
        from the last closed one up to the end of the window in progress were not
        (wholly) measured; record them lost, then measure from the next window on."""
        state = self.state
        record_unmeasured(self.state, now, self.config.window_ms, self.log)
        self._build_parts()
        self.aggregator = WindowAggregator(self.config.window_ms, state.flushed_until)
        await self._save()
        self.log("info", self.label, "tracking_resumed", "resuming tracking")
        # Without a saved market list the markets lane reads one (it is due) and opens
        # the feed once it has it.
        self._open_feed()

    async def _refresh_markets_if_due(self, now: int, force: bool = False) -> None:
        if force or now >= self.directory.next_refresh_at():
            got = await self.market_list.read(self.directory, now)
            if got is not None:
                await self._adopt(*got, now)
        if self.market_list.owed:
            await self.market_list.save(now)
        if self.state.tracking:  # a resumed object without a list opens its feed now
            self._open_feed()

    async def _adopt(self, listing, as_of: int, now: int) -> None:
        """A listing (read here, or handed over by shard 0) into the directory, the feed
        and storage."""
        directory = self.directory
        first = directory.refreshed_at is None or not directory.markets
        change = directory.apply(listing, as_of)
        directory.refreshed_at = now
        directory.failures = 0
        state = self.state
        self.market_list.report(directory, change, first, len(listing))
        if not first:
            state.totals.markets_added += len(change.added)
            state.totals.markets_removed += len(change.removed)
        if self.connection is not None and self.connection.feed is not None:
            self._symbols()  # the wire names new markets by symbol (Paradex)
            for market in change.added:
                self.connection.add_market(market.market_index)
            for market in change.removed:
                self.connection.remove_market(market.market_index)
        self.store.written_elsewhere()
        await self.ports.storage.put_many({MARKETS_KEY: directory.to_json(), STATE_KEY: state.to_json()})

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
        if connection.holding:  # a save of the send history failed: again
            self.send_store.persist()

    async def _close_windows(self, now: int) -> None:
        if self.aggregator is None:
            return
        connection, wait = self.connection, self._close_wait(now)
        grace, feed = self.config.flush_grace_ms, connection.feed
        newest = (queue_start(feed.last_unclamped_stamp, feed.last_timestamp, self.aggregator.flushed_until)
                  if feed is not None else None)
        boundary = close_boundary(now, wait, grace, connection.take_breathed(), newest)
        # Held back for frames queued behind a breath: not again before BACKLOG_RECHECK_MS.
        self._recheck_at = now + BACKLOG_RECHECK_MS if boundary < now - wait else 0
        closed = self.aggregator.close_until(boundary, self._symbols())
        self.state.flushed_until = max(self.state.flushed_until, self.aggregator.flushed_until)
        # Saved with the windows just closed: how far ahead the kept stamps ran lately.
        self.state.clock_ahead_ms = connection.ahead(now)
        record_given_up(self.state, self.aggregator, self.config.window_ms, self.log)
        self.late.report(now, self._count("dropped_late"), self.lag)
        await self._stash(closed)

    def _close_wait(self, now: int) -> int:
        """How long after its end a window closes: FLUSH_GRACE_MS, plus the feed's lag
        (a delivery delay or an exchange clock behind ours) up to MAX_FEED_LAG_MS."""
        return self.config.flush_grace_ms + self.lag.close_delay(now)

    async def _stash(self, closed) -> None:
        """Closed windows into the outbox, in one transaction with the state that
        says they are closed and records lost the windows the outbox's bound pushed
        out (an eviction cannot come between the drop and its record). Nothing
        closed (an alarm between windows): only the state, if it changed."""
        if not closed:
            await self._save()
            return
        state, window_ms = self.state, self.config.window_ms
        recorded: list[dict] = []

        def state_after(dropped) -> dict[str, str]:
            # Recorded on the live state before the write, not after it returns: a save
            # made meanwhile (a flush given up at its deadline) must not store the state
            # without the range while the outbox's index no longer holds the window.
            for entry in dropped:
                if state.record_lost(entry.start, entry.start + window_ms, window_ms):
                    recorded.append(state.lost_ranges[-1])
            return {STATE_KEY: state.to_json()}

        self.store.written_elsewhere()  # the state goes with the windows (`state_after`)
        try:
            dropped = await self.outbox.add(closed, state_after)
        except BaseException:
            # The write failed: the outbox still holds those windows (it will drop them
            # again, and record them then). A save that ran meanwhile errs on loss.
            state.unrecord_lost(recorded, window_ms)
            raise
        if dropped:
            self.log("error", "Aggregator", "windows_dropped",
                     f"D1 has failed for {self.outbox.windows} windows: dropped the {len(dropped)} oldest "
                     f"(from {dropped[0].start})")

    async def _flush_tracking(self, now: int) -> None:
        await self._flush(False)

    async def _flush(self, final: bool) -> None:
        """Drain the outbox into D1 (with the stats row), then roll up and prune. One
        at a time: an alarm and a stop() never interleave their writes."""
        async with self._flush_lock:
            if self.state is not None and not self.state.tracking and self.market_list.owed:
                # Stopped: no market refresh comes to save it again, and the windows of
                # its markets still reach D1; the API answers their symbols through the
                # saved list (seed 178: D1 down from the refresh to after the stop).
                await self.market_list.save(self.ports.clock.now_ms())
            await self.flusher.run(self.state, self.rollup, final)

    async def _publish_stats(self, now: int) -> None:
        statement = self._stats_statement(now, self.outbox.entries)
        # What D1 holds is unknown until it answers (a flush meanwhile sends its row);
        # then it is this row: a stop that moves nothing else must still send its own.
        self.frontier.forget()
        await self.ports.db.batch([statement])
        self.frontier.landed(statement)

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
        """Set the one alarm for the earliest thing due (tracker/alarmplan.py)."""
        now = self.ports.clock.now_ms()
        plan = AlarmPlan(now)
        if self.state is not None and self.state.tracking:
            plan = replace(
                plan, window_close_at=self._next_window_close(now), save_ahead=self._ahead_unsaved(),
                feed_due=self.connection.next_due(now) if self.connection is not None else None,
                markets_due=(self.directory.next_refresh_at()
                             if self.directory is not None and not self.lanes.busy("markets") else None))
        plan = replace(plan, d1_owed=self._d1_owed(), d1_busy=self.lanes.busy("d1"),
                       d1_deadline_ms=self.deadlines.d1_ms, d1_failures=self.outbox.failures_in_a_row,
                       outbox_windows=self.outbox.windows,
                       rollup_pending=self.rollup is not None and self.rollup.pending)
        await self._alarm.write(plan.at())

    def _ahead_unsaved(self) -> bool:
        """The feed's stamps ran further ahead of our clock than the saved state says, by
        more than a reading of the clock can be old (READING_AGE_MS: below that, the
        next alarm saves it): should this instance go now, its successor would measure
        from a window this one has measured part of (`losses.record_unmeasured`)."""
        return (self.state is not None and self.state.tracking
                and self.lag.known_ahead > self.state.clock_ahead_ms + READING_AGE_MS)

    def _ran_ahead(self) -> None:
        """The feed's stamps ran further ahead than before: the alarm saves it now."""
        if self._ahead_unsaved():
            self._wake(self.ports.clock.now_ms())

    def _wake(self, at: int) -> None:
        """A socket event wants the alarm by `at` (a reconnect)."""
        self.ports.spawn(self._schedule(), "reschedule")

    def _next_window_close(self, now: int) -> int:
        closed = self.aggregator.flushed_until if self.aggregator is not None else self.state.flushed_until
        return next_window_close(closed, self.config.window_ms, self._close_wait(now), self._recheck_at)

    # =====================================================================================
    # State
    # =====================================================================================

    async def _load(self) -> TrackerState:
        # One load per object: a request and an alarm arriving together on a fresh
        # object share it (each loading its own copy left the parts holding one state
        # and the shard another: seed 3696's rollup stalled on a stale copy).
        async with self._load_lock:
            if self.state is None:
                await self._load_once()
        return self.state

    async def _load_once(self) -> None:
        storage = self.ports.storage
        state = await self.store.load()
        if state.shard is not None:
            self.shard = self.market_list.shard = state.shard  # the saved identity wins over the object's name
        await self.outbox.load()
        # What the previous instance sent still counts (before the key of its own, the
        # history was part of the state).
        await self.send_store.load(state.sent_at)
        state.sent_at = []
        self.state = state
        self._build_parts()
        self.directory.restore(await storage.get(MARKETS_KEY))
        await self.market_list.restore()
        self.log("info", self.label, "state_loaded", f"loaded state: tracking={'on' if state.tracking else 'off'}")

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
                self._budget(), config.stale_feed_ms,
                wake=self._wake, on_drop=self._fold_counters, rng=self.rng,
                exchange=self.exchange, new_wire=lambda: self.exchange.new_wire(self.config, self._symbols()),
                lag=self.lag, sent_at=self.sends, persist=self.send_store.persist,
                breathe_every=config.breathe_every_frames,
            )
        if self.alerter is None:
            self.alerter = Alerter(config.alert_after_ms, config.alert_webhook_url, ports.http, ports.log,
                                   self.shard, config.alert_service_name, self.label)
        if self.rollup is None and self.state is not None:
            self.rollup = Rollup(self.state, self.outbox, ports.db, ports.clock, ports.log, self.sql, config,
                                 self.shard, self._shards, self._save, self._stats_rows)

    def _budget(self):
        """This shard's share of the per-IP budget under the running split. A run started
        before SHARDS was bounded (more shards than the budget splits among) gets the
        share of the configured split instead of failing to load: it runs until the
        /api/start that re-splits it (health says so meanwhile)."""
        try:
            return self.exchange.budget(self._shards())
        except ValueError as exc:
            self.log("warn", self.label, "resharding", f"{exc}: using the share of {self._shards_var()}="
                                                       f"{self.config.shards} until /api/start re-splits")
            return self.exchange.budget(self.config.shards)

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
        self.state.totals.add(feed.counters)

    async def _save(self) -> None:
        await self.store.save(self.state)

    def _stats_statement(self, now: int, remaining) -> tuple:
        """The tracking_stats row as it will be once the batch carrying it is in D1
        (`remaining`: the outbox after it), so other shards read a true frontier."""
        stats = self.stats()
        stats.pending_windows = len(remaining)
        stats.written_until = self.rollup.written_until(remaining)
        stats.sealed_until = min(stats.written_until, self.rollup.sealed_until())
        return (self.sql.UPSERT_STATS, stats.row(now))

    def _stats_rows(self, now: int, remaining) -> list[tuple]:
        """The stats row for a batch (a flush's, the prune's), if its frontier moved
        (tracker/frontier.py)."""
        return self.frontier.rows(self._stats_statement(now, remaining), alone=self._shards() == 1)

    # =====================================================================================
    # Reporting
    # =====================================================================================

    def _count(self, name: str) -> int:
        return counted(self.state.totals if self.state else None, self.connection.feed if self.connection else None,
                       name)

    @property
    def sends(self) -> SendHistory:
        """What this shard sent lately (and the old split's other shards): its store's."""
        return self.send_store.history

    def stats(self) -> ShardStats:
        """What this shard reports now (tracker/shardview.py)."""
        state = self.state or TrackerState()
        aggregator = self.aggregator
        now = self.ports.clock.now_ms()
        if aggregator is not None:
            feed = self.connection.feed if self.connection else None
            self.memory = {**state_report(feed.books if feed else {}, aggregator), "wasmHeap": self.ports.heap_bytes()}
        split_changed = (self._split_changed_message()
                         if state.tracking and state.shards != self.config.shards else None)
        return shard_stats(shard=self.shard, now=now, state=state, directory=self.directory,
                           connection=self.connection, aggregator=aggregator, rollup=self.rollup,
                           outbox_windows=self.outbox.windows, lag=self.lag, recent_late=self.late.recent,
                           last_flush=self.flusher.last_flush, last_error=self.last_error, split_changed=split_changed,
                           memory=self.memory)
