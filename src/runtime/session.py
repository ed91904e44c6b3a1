"""A tracker shard at work: markets, the Lighter connection, windows into D1.

`TrackingSession` is what the Durable Object delegates to. It owns the I/O
(REST, WebSocket, D1, DO storage, the alarm) and leaves every decision about
frames, books and windows to the pure modules in `src/tracker`.

The alarm is the one scheduler: it fires a grace period after each window
boundary (flush), and earlier when a reconnect, a subscription retry or a
market-list retry is due. Every failure path ends in "log it, count it, and let
the next alarm try again", so an exception never escapes into the runtime's own
alarm retries.
"""

from __future__ import annotations

import asyncio
import json

import js
from workers import fetch

from tracker import protocol, sql
from tracker.aggregator import ClosedWindow, WindowAggregator
from tracker.alerts import IncidentWatch
from tracker.config import Config
from tracker.feed import LighterFeed
from tracker.memory import state_report
from tracker.pacing import MAX_SUBSCRIPTIONS_PER_CONNECTION
from tracker.markets import ORDER_BOOKS_PATH, Market, MarketListError, parse_order_books, shard_of
from tracker.reconnect import Backoff, FeedWatchdog
from tracker.rollup import MINUTE_MS, rollup_minutes
from tracker.state import TrackerState

from . import d1
from .lighter_socket import LighterSocket
from .log import ActivityLog

STATE_KEY = "tracker-state"
# Per-connection feed counters that add up into the run's totals (same names in both).
FEED_COUNTERS = ("messages", "gaps", "malformed", "errors", "crossed", "one_sided")
PING_EVERY_MS = 45_000  # Lighter wants a client message at least every 2 minutes
# Closed windows kept for retry while D1 fails: 10 minutes of them, then the
# oldest are dropped and counted lost (memory stays bounded).
MAX_PENDING_WINDOWS = 40
# A minute rollup never reaches further back than this after a long outage.
MAX_ROLLUP_MS = 24 * 3_600_000


def now_ms() -> int:
    return int(js.Date.now())


def wasm_heap_bytes() -> int | None:
    """Size of this isolate's Pyodide linear memory: what counts toward the 128 MB limit
    for the Python side (it grows as Python allocates, and never shrinks)."""
    try:
        import pyodide_js

        return int(pyodide_js._module.HEAPU8.length)
    except Exception:  # not exposed by this runtime: report nothing rather than guess
        return None


class TrackingSession:
    def __init__(self, storage, db, config: Config, shard: int, log: ActivityLog) -> None:
        self.storage = storage
        self.db = db
        self.config = config
        self.shard = shard
        self.log = log
        self.state: TrackerState | None = None  # loaded from storage on first use
        self.markets: dict[int, Market] = {}
        self.symbols: dict[int, str] = {}
        self.aggregator: WindowAggregator | None = None
        self.feed: LighterFeed | None = None
        self.socket: LighterSocket | None = None
        self.connections = 0
        self.backoff = Backoff()
        self.watchdog = FeedWatchdog(config.stale_feed_ms)
        self.reconnect_at: int | None = None  # a reconnect (or market reload) is due then
        self.pending: list[ClosedWindow] = []  # closed windows not yet in D1
        self.last_ping_at = 0
        self.last_flush: dict = {}
        self.last_error: str | None = None
        self.incidents = IncidentWatch(config.alert_after_ms)
        self.memory: dict = {}  # the in-memory state's weight, measured at each alarm

    # -- lifecycle -------------------------------------------------------------

    async def load(self) -> TrackerState:
        if self.state is None:
            stored = await self.storage.get(STATE_KEY)
            try:
                self.state = TrackerState.from_json(stored)
            except ValueError as exc:  # unreadable: start clean rather than never start
                self.log.error("Lighter", f"stored state unreadable, starting clean: {exc}")
                self.state = TrackerState()
            self.log.info("Lighter", f"loaded state: tracking={'on' if self.state.tracking else 'off'}")
        return self.state

    async def start(self) -> dict:
        state = await self.load()
        if state.tracking:
            if self.aggregator is None:  # a fresh object: pick the run up where it was
                self._resume(now_ms())
                await self._open_feed()
                await self._schedule()
            return {"ok": True, "alreadyTracking": True, **self.stats()}
        now = now_ms()
        state.tracking = True
        state.started_at = now
        state.totals = type(state.totals)()
        state.lost_ranges = []
        # Windows before now were never tracked: nothing is lost, nothing is late.
        state.flushed_until = now - now % self.config.window_ms
        state.minutes_rolled_until = now - now % MINUTE_MS
        self.aggregator = WindowAggregator(self.config.window_ms, state.flushed_until)
        self.markets = {}  # a new run reads Lighter's market list afresh
        self.connections = 0
        self.backoff.reset()
        await self._save()
        self.log.info("Lighter", f"starting: shard {self.shard + 1}/{self.config.shards}, {self.config.ws_url}")
        await self._open_feed()
        await self._schedule()
        return {"ok": True, **self.stats()}

    async def stop(self) -> dict:
        state = await self.load()
        was_tracking = state.tracking
        state.tracking = False
        self.reconnect_at = None
        self._drop_feed(reason="tracking stopped")
        if self.aggregator is not None:
            # The partial window is flushed too: tracking ended, no more ticks come.
            self.pending.extend(self.aggregator.close_all(now_ms(), self.symbols))
            state.flushed_until = max(state.flushed_until, self.aggregator.flushed_until)
            state.totals.late_frames += self.aggregator.late_frames
            state.totals.windows_lost += self.aggregator.dropped_windows
            self.aggregator = None
        await self._flush(final=True)
        await self._save()
        if self.pending:
            await self.storage.setAlarm(now_ms() + self.config.window_ms)  # retry the flush
        else:
            await self.storage.deleteAlarm()
        if was_tracking:
            self.log.info("Lighter", "tracking stopped")
        return {"ok": True, "wasTracking": was_tracking, **self.stats()}

    async def on_alarm(self) -> None:
        state = await self.load()
        if not state.tracking:
            if self.pending:
                await self._flush(final=True)
                await self._save()
            return
        now = now_ms()
        if self.aggregator is None:
            self._resume(now)
        if self.socket is None and (self.reconnect_at is None or now >= self.reconnect_at):
            await self._open_feed()
        elif self.socket is not None:
            self._check_feed(now)
        self._close_windows(now)
        self.memory = state_report(self.feed.books if self.feed else {}, self.aggregator)
        self.memory["wasmHeap"] = wasm_heap_bytes()
        await self._flush(final=False)
        await self._save()
        await self._alert_if_down(now)
        await self._schedule()

    async def ensure_running(self) -> None:
        """Called on any request: if tracking should be on but this object was just
        re-created (eviction, deploy, restart), make sure an alarm will resume it."""
        state = await self.load()
        if state.tracking and self.aggregator is None and await self.storage.getAlarm() is None:
            await self.storage.setAlarm(now_ms() + 100)

    # -- the feed ----------------------------------------------------------------

    def _resume(self, now: int) -> None:
        """First alarm of a fresh object while tracking is on: windows between the last
        flush and now were never measured; record them as lost, then carry on."""
        state = self.state
        current = now - now % self.config.window_ms
        lost = state.record_lost(state.flushed_until, current, self.config.window_ms)
        if lost:
            self.log.warn("Aggregator", f"resumed after a restart: {lost} window(s) were not measured")
        state.flushed_until = max(state.flushed_until, current)
        self.aggregator = WindowAggregator(self.config.window_ms, state.flushed_until)
        self.log.info("Lighter", "resuming tracking")

    async def _open_feed(self) -> None:
        """Load markets if needed, then connect. On failure, a retry is scheduled."""
        self.reconnect_at = None
        if not self.markets and not await self._load_markets():
            self._retry_later("market list unavailable")
            return
        self.connections += 1
        if self.connections > 1:
            self.state.totals.reconnects += 1
        market_ids = sorted(self.markets)
        if len(market_ids) > MAX_SUBSCRIPTIONS_PER_CONNECTION:
            needed = -(-len(market_ids) * self.config.shards // MAX_SUBSCRIPTIONS_PER_CONNECTION)
            self.last_error = (
                f"{len(market_ids)} markets exceed Lighter's {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions "
                f"per connection: only the first {MAX_SUBSCRIPTIONS_PER_CONNECTION} are tracked; "
                f"set SHARDS to {needed} or more"
            )
            self.log.error("Lighter", self.last_error)
        self.feed = LighterFeed(market_ids, self.aggregator, log=self.log)
        self.watchdog.reset(self._messages(), now_ms())
        self.last_ping_at = now_ms()
        self.log.info("Lighter", f"connecting to {self.config.ws_url} (connection #{self.connections})")
        try:
            self.socket = LighterSocket(
                self.config.ws_url, self.connections, self._on_text, self._on_open, self._on_down
            )
        except Exception as exc:  # a bad URL throws synchronously
            self.socket = None
            self._on_down(f"could not connect: {exc}")

    def _on_open(self) -> None:
        self.log.info("Lighter", "socket open, waiting for connected")

    def _on_text(self, text: str) -> None:
        # The hot path: one call into the pure feed; the clock is read only when
        # the feed has something to send (an ack freed a slot, a pong, a resubscribe).
        try:
            if self.feed.on_text(text):
                self._send(self.feed.drain(now_ms()))
        except Exception as exc:  # a bug must cost one frame, never the connection
            self._frame_failed(exc, text)

    def _frame_failed(self, exc: Exception, text: str) -> None:
        self.state.totals.errors += 1
        self.last_error = f"frame handling failed: {exc!r}"
        self.log.error("Lighter", f"frame handling failed ({exc!r}); frame: {str(text)[:300]}")
        market_id = protocol.channel_market_id(_channel_of(text))
        book = self.feed.books.get(market_id) if market_id is not None else None
        if book is not None:
            self.log.error(
                "Lighter",
                f"market {market_id} book: {len(book.bids)} bids/{len(book.bid_prices)} prices, "
                f"{len(book.asks)} asks/{len(book.ask_prices)} prices; resubscribing",
            )
            book.invalidate()
            self.aggregator.invalidate(market_id, self.feed.last_timestamp or 0)
            self.feed.pacer.resubscribe(market_id)

    def _on_down(self, why: str) -> None:
        self._drop_feed(reason=None)
        self.last_error = why
        if not self.state.tracking:
            return
        delay = self.backoff.next_delay_ms()
        self.log.warn("Lighter", f"connection lost: {why}; reconnecting in {delay / 1000:.1f}s")
        self._retry_later_ms(delay)

    def _check_feed(self, now: int) -> None:
        feed = self.feed
        if self.watchdog.is_stale(self._messages(), now):
            silent = self.watchdog.silent_for_ms(now) / 1000
            self.socket.close(4000, "stale feed")
            self._on_down(f"feed stale: no message for {silent:.0f}s")
            return
        if feed.pacer.subscribed:
            self.backoff.reset()  # the connection has proven itself
        if now - self.last_ping_at >= PING_EVERY_MS:
            feed.pacer.send_now(protocol.PING)
            self.last_ping_at = now
        self._send(feed.drain(now))

    def _send(self, messages: list[str]) -> None:
        if messages and self.socket is not None:
            for message in messages:
                self.socket.send(message)

    def _drop_feed(self, reason: str | None) -> None:
        """Forget the connection: fold its counters into the totals, close it."""
        if self.feed is not None:
            # Without the socket the books are unknown from the last frame on:
            # no top of book stands through a disconnect.
            if self.aggregator is not None and self.feed.last_timestamp is not None:
                for market_id in self.feed.books:
                    self.aggregator.invalidate(market_id, self.feed.last_timestamp)
            totals = self.state.totals
            for name in FEED_COUNTERS:
                setattr(totals, name, getattr(totals, name) + getattr(self.feed.counters, name))
            self.feed = None
        if self.socket is not None:
            if reason:
                self.socket.close(1000, reason)
            self.socket = None

    def _retry_later(self, why: str) -> None:
        delay = self.backoff.next_delay_ms()
        self.log.warn("Lighter", f"{why}; retrying in {delay / 1000:.1f}s")
        self._retry_later_ms(delay)

    def _retry_later_ms(self, delay: int) -> None:
        self.reconnect_at = now_ms() + delay
        # Called from socket event handlers, which are not coroutines: hand the
        # alarm update to the event loop.
        asyncio.ensure_future(self._schedule())

    async def _load_markets(self) -> bool:
        url = self.config.api_url + ORDER_BOOKS_PATH
        try:
            response = await js.fetch(url)
            status = int(response.status)
            text = await response.text()
            if status != 200:
                raise MarketListError(f"HTTP {status}: {str(text)[:120]}")
            markets = parse_order_books(json.loads(text))
        except Exception as exc:
            self.last_error = f"market list: {exc}"
            self.log.warn("Lighter", f"could not load markets from {url}: {exc}")
            return await self._markets_from_d1()
        now = now_ms()
        mine = [m for m in markets if m.active and shard_of(m.market_index, self.config.shards) == self.shard]
        self._set_markets(mine)
        statements = [
            (
                sql.UPSERT_MARKET,
                (m.market_index, m.symbol, m.market_type, m.status, 1 if m.active else 0,
                 m.price_decimals, m.size_decimals, shard_of(m.market_index, self.config.shards), now),
            )
            for m in markets
            if shard_of(m.market_index, self.config.shards) == self.shard
        ]
        statements.append((sql.DEACTIVATE_MISSING_MARKETS, (now, now, self.shard)))
        try:
            await d1.run_batch(self.db, statements)
        except Exception as exc:
            self.log.error("Lighter", f"could not save markets to D1: {exc}")
        active = sum(1 for m in markets if m.active)
        where = f" ({len(mine)} on shard {self.shard + 1}/{self.config.shards})" if self.config.shards > 1 else ""
        self.log.info("Lighter", f"markets loaded: {active} active of {len(markets)} listed{where}")
        return bool(mine)

    async def _markets_from_d1(self) -> bool:
        """Lighter's REST is down: track the markets saved last time, if any."""
        try:
            rows = await d1.query(self.db, sql.SELECT_SHARD_MARKETS, self.shard)
        except Exception as exc:
            self.log.error("Lighter", f"could not read saved markets from D1: {exc}")
            return False
        if rows:
            self._set_markets(
                [Market(r["market_index"], r["symbol"], r["market_type"], r["status"]) for r in rows]
            )
            self.log.info("Lighter", f"using {len(rows)} markets saved in D1")
        return bool(rows)

    def _set_markets(self, markets: list[Market]) -> None:
        self.markets = {m.market_index: m for m in markets}
        self.symbols = {m.market_index: m.symbol for m in markets}

    def _messages(self) -> int:
        return self._count("messages")

    # -- windows into D1 -----------------------------------------------------------

    def _close_windows(self, now: int) -> None:
        closed = self.aggregator.close_until(now - self.config.flush_grace_ms, self.symbols)
        self.pending.extend(closed)
        self.state.flushed_until = max(self.state.flushed_until, self.aggregator.flushed_until)
        overflow = len(self.pending) - MAX_PENDING_WINDOWS
        if overflow > 0:
            dropped, self.pending = self.pending[:overflow], self.pending[overflow:]
            self.state.totals.windows_lost += overflow
            self.log.error(
                "Aggregator",
                f"D1 has failed for {len(self.pending)} windows: dropped the {overflow} oldest "
                f"(from {dropped[0].start})",
            )

    async def _flush(self, final: bool) -> None:
        """Write pending windows, roll up complete minutes, prune, save stats. One D1
        batch for the windows; if it fails, the windows stay pending for the next alarm."""
        started = now_ms()
        state = self.state
        rows = [row for window in self.pending for row in window.rows]
        statements = sql.bulk(sql.UPSERT_SNAPSHOTS, [row.values() for row in rows])
        statements.append((sql.PRUNE_SNAPSHOTS, (started - self.config.snapshot_retention_ms,)))
        statements.append((sql.PRUNE_MINUTES, (started - self.config.minute_retention_ms,)))
        statements.append((sql.UPSERT_STATS, self._stats_row(started)))
        try:
            metas = await d1.run_batch(self.db, statements)
        except Exception as exc:
            state.totals.flush_failures += 1
            self.last_error = f"D1 flush: {exc}"
            self.log.error(
                "Aggregator",
                f"flush of {len(self.pending)} window(s) failed, will retry: {exc}",
            )
            return
        windows = len(self.pending)
        state.totals.windows_flushed += windows
        state.totals.rows_written += d1.rows_written(metas)
        self.pending = []
        pruned_snapshots, pruned_minutes = (int(m.get("changes") or 0) for m in metas[-3:-1])
        if pruned_snapshots or pruned_minutes:
            self.log.info(
                "Aggregator",
                f"cleaned {pruned_snapshots} window rows and {pruned_minutes} minute rows past retention",
            )
        if rows:
            self.log.info(
                "Aggregator",
                f"flushing {len({r.symbol for r in rows})} symbols: {len(rows)} rows in "
                f"{windows} window(s), {now_ms() - started} ms",
            )
        self.last_flush = {"at": started, "rows": len(rows), "windows": windows, "ms": now_ms() - started}
        await self._roll_minutes(final)

    async def _roll_minutes(self, final: bool) -> None:
        state = self.state
        until = state.flushed_until - state.flushed_until % MINUTE_MS
        if final and state.flushed_until > until:
            until += MINUTE_MS  # tracking stopped: the partial minute is all there will be
        since = max(state.minutes_rolled_until, until - MAX_ROLLUP_MS)
        if until <= since:
            return
        try:
            windows = await d1.query(self.db, sql.SELECT_WINDOWS_FOR_ROLLUP, since, until, self.shard)
            minutes = rollup_minutes(windows)
            await d1.run_batch(self.db, sql.bulk(sql.UPSERT_MINUTES, [m.values() for m in minutes]))
        except Exception as exc:
            state.totals.flush_failures += 1
            self.last_error = f"D1 minute rollup: {exc}"
            self.log.error("Aggregator", f"minute rollup failed, will retry: {exc}")
            return
        state.minutes_rolled_until = until
        if minutes:
            self.log.info(
                "Aggregator",
                f"minute averages: {len(minutes)} rows for {len({m.timestamp for m in minutes})} minute(s)",
            )

    async def _save(self) -> None:
        await self.storage.put(STATE_KEY, self.state.to_json())

    # -- alerts ----------------------------------------------------------------------

    async def _alert_if_down(self, now: int) -> None:
        """Post to ALERT_WEBHOOK_URL once when the feed has been down ALERT_AFTER_MINUTES,
        and once when it recovers; a failed post is retried at the next alarm."""
        # Healthy: connected, and at least one book is live (a connection whose every
        # subscription is refused carries no data either).
        healthy = self._connected() and self.feed.valid_books() > 0
        raised = self.incidents.observe(healthy, now, self.last_error or "disconnected")
        if raised is not None:
            level = self.log.warn if raised.event == "feed_down" else self.log.info
            level("Alert", raised.payload(self.shard, self.config.alert_service_name)["text"])
        url = self.config.alert_webhook_url
        if not url:
            self.incidents.unsent.clear()
            return
        for alert in list(self.incidents.unsent):
            try:
                response = await fetch(
                    url, method="POST", headers={"content-type": "application/json"},
                    body=json.dumps(alert.payload(self.shard, self.config.alert_service_name)),
                )
                if not 200 <= int(response.status) < 300:
                    raise RuntimeError(f"HTTP {response.status}")
            except Exception as exc:
                self.log.warn("Alert", f"webhook post failed, will retry: {exc}")
                return
            self.incidents.sent(alert)
            self.log.info("Alert", f"{alert.event} posted to the webhook")

    # -- scheduling ------------------------------------------------------------------

    def _next_boundary_alarm(self, now: int) -> int:
        """The next `window boundary + grace` after now: when the window just ended closes."""
        window_ms, grace = self.config.window_ms, self.config.flush_grace_ms
        since = now - grace
        return since - since % window_ms + window_ms + grace

    async def _schedule(self) -> None:
        now = now_ms()
        due = [self._next_boundary_alarm(now)]
        if self.reconnect_at is not None:
            due.append(self.reconnect_at)
        if self.feed is not None and self.feed.connected:
            send_at = self.feed.pacer.next_send_at(now)
            if send_at is not None:
                due.append(send_at)
        await self.storage.setAlarm(max(min(due), now + 50))

    # -- reporting -------------------------------------------------------------------

    def _stats_row(self, now: int) -> tuple:
        s = self.stats()
        return (
            self.shard, int(s["isTracking"]), s["markets"], int(s["connected"]), s["messagesReceived"],
            s["lastMessageAt"], s["reconnects"], s["gaps"], s["malformed"], s["lateFrames"],
            s["flushFailures"], s["windowsFlushed"], s["windowsLost"], self.state.flushed_until,
            self.state.started_at, now,
        )

    def _count(self, name: str) -> int:
        """A run total: earlier connections' (folded into the totals) plus this one's."""
        state = self.state or TrackerState()
        return getattr(state.totals, name) + (getattr(self.feed.counters, name) if self.feed else 0)

    def _connected(self) -> bool:
        return bool(self.socket is not None and self.socket.open and self.feed is not None and self.feed.connected)

    def stats(self) -> dict:
        state = self.state or TrackerState()
        totals = state.totals
        feed = self.feed
        aggregator = self.aggregator
        now = now_ms()
        window_start = aggregator.current_window_start if aggregator else None
        return {
            "shard": self.shard,
            "isTracking": state.tracking,
            "markets": len(self.markets),
            "connected": self._connected(),
            "subscribed": len(feed.pacer.subscribed) if feed else 0,
            "validBooks": feed.valid_books() if feed else 0,
            "messagesReceived": self._count("messages"),
            "lastMessageAt": feed.last_timestamp if feed else None,
            "reconnects": totals.reconnects,
            "gaps": self._count("gaps"),
            "malformed": self._count("malformed"),
            "errors": self._count("errors"),
            "crossed": self._count("crossed"),
            "oneSided": self._count("one_sided"),
            "lateFrames": totals.late_frames + (aggregator.late_frames if aggregator else 0),
            "flushFailures": totals.flush_failures,
            "windowsFlushed": totals.windows_flushed,
            "windowsLost": totals.windows_lost + (aggregator.dropped_windows if aggregator else 0),
            "lostRanges": state.lost_ranges,
            "pendingWindows": len(self.pending),
            "startedAt": state.started_at,
            "flushedUntil": state.flushed_until,
            "lastFlush": self.last_flush,
            "reconnectAt": self.reconnect_at,
            "lastError": self.last_error,
            "memoryBytes": self.memory,
            "aggregator": {
                "currentSymbols": aggregator.current_markets() if aggregator else 0,
                "windowElapsed": (now - window_start) / 1000 if window_start is not None else 0,
                "windowStart": window_start,
                "openWindows": aggregator.open_windows() if aggregator else 0,
            },
        }


def _channel_of(text: str) -> str | None:
    try:
        return json.loads(text).get("channel")
    except Exception:
        return None
