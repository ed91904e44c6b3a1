"""The feed connection: one WebSocket to Lighter, its recovery and its keepalive.

It owns the socket, the per-connection `LighterFeed` (books, pacing), the
reconnect backoff, the stale-feed watchdog and the pings. The shard tells it
which markets to carry and checks it from the alarm; socket events arrive on
their own (`_on_text`, `_on_down`) and never await anything: what they need
later (a reconnect) they ask for through `wake(at_ms)`, which moves the alarm.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable

from . import protocol
from .aggregator import WindowAggregator
from .feed import LighterFeed
from .pacing import MAX_SUBSCRIPTIONS_PER_CONNECTION, RATE_WINDOW_MS, Budget, SubscriptionPacer
from .ports import Clock, Log, Socket, SocketFactory
from .reconnect import Backoff, FeedWatchdog

PING_EVERY_MS = 45_000  # Lighter wants a client message at least every 2 minutes


class FeedConnection:
    def __init__(
        self,
        url: str,
        sockets: SocketFactory,
        clock: Clock,
        log: Log,
        budget: Budget,
        stale_ms: int,
        wake: Callable[[int], None],
        on_drop: Callable[[LighterFeed], None],
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.sockets = sockets
        self.clock = clock
        self.log = log
        self.budget = budget
        self.wake = wake  # "run the alarm by then"
        self.on_drop = on_drop  # a connection ends: fold its counters
        self.socket: Socket | None = None
        self.feed: LighterFeed | None = None
        self.backoff = Backoff(rng=rng)
        self.watchdog = FeedWatchdog(stale_ms)
        self.reconnect_at: int | None = None
        self.connections = 0
        self.last_ping_at = 0
        self.last_error: str | None = None
        self.frame_errors = 0
        self._should_run = False
        # The shard's sends in the rate window, across its connections (and, restored
        # from storage, across restarts): see SubscriptionPacer.
        self.sent_at: deque[int] = deque()

    # -- what the shard asks ---------------------------------------------------------------

    def open(self, market_ids: list[int], aggregator: WindowAggregator) -> None:
        """Connect and subscribe `market_ids` (in that order, paced)."""
        self._should_run = True
        self.reconnect_at = None
        self.connections += 1
        now = self.clock.now_ms()
        if len(market_ids) > MAX_SUBSCRIPTIONS_PER_CONNECTION:
            self.last_error = (
                f"{len(market_ids)} markets exceed Lighter's {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions "
                f"per connection: only the first {MAX_SUBSCRIPTIONS_PER_CONNECTION} are tracked; raise SHARDS"
            )
            self.log("error", "Lighter", "too_many_markets", self.last_error)
        pacer = SubscriptionPacer(self.budget.per_minute, self.budget.in_flight, sent_at=self.sent_at)
        self.feed = LighterFeed(market_ids, aggregator, pacer=pacer, log=self.log)
        self.watchdog.reset(0, now)
        self.last_ping_at = now
        self.log("info", "Lighter", "connecting", f"connecting to {self.url} (connection #{self.connections})")
        try:
            self.socket = self.sockets(self.url, self._on_text, self._on_open, self._on_down)
        except Exception as exc:  # a bad URL throws synchronously
            self.socket = None
            self._on_down(f"could not connect: {exc}")

    def recent_sends(self, now: int) -> list[int]:
        return [at for at in self.sent_at if at > now - RATE_WINDOW_MS]

    def close(self, reason: str) -> None:
        """Close from our side for good (tracking stopped)."""
        self._should_run = False
        self.reconnect_at = None
        self._drop(reason)

    def add_market(self, market_id: int) -> None:
        if self.feed is not None:
            self.feed.add_market(market_id)

    def remove_market(self, market_id: int) -> None:
        if self.feed is not None:
            self.feed.remove_market(market_id)

    @property
    def connected(self) -> bool:
        return bool(self.socket is not None and self.socket.open and self.feed is not None and self.feed.connected)

    @property
    def down(self) -> bool:
        return self.socket is None

    def check(self, now: int) -> None:
        """From the alarm: declare a silent feed stale, ping, send what the pacer allows."""
        feed = self.feed
        if self.socket is None or feed is None:
            return
        if self.watchdog.is_stale(feed.counters.messages, now):
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

    def next_due(self, now: int) -> int | None:
        """When the alarm must run next for this connection's sake."""
        due = []
        if self._should_run and self.socket is None and self.reconnect_at is not None:
            due.append(self.reconnect_at)
        if self.socket is not None:
            # Check a silent feed when it turns stale, not at the next window's alarm.
            due.append(self.watchdog.deadline())
        if self.feed is not None and self.feed.connected:
            send_at = self.feed.pacer.next_send_at(now)
            if send_at is not None:
                due.append(send_at)
            due.append(self.last_ping_at + PING_EVERY_MS)
        return min(due) if due else None

    # -- socket events -----------------------------------------------------------------------

    def _on_open(self) -> None:
        self.log("info", "Lighter", "socket_open", "socket open, waiting for connected")

    def _on_text(self, text: str) -> None:
        # The hot path: one call into the pure feed; the clock is read only when
        # the feed has something to send (an ack freed a slot, a pong, a resubscribe).
        try:
            if self.feed.on_text(text):
                self._send(self.feed.drain(self.clock.now_ms()))
        except Exception as exc:  # a bug must cost one frame, never the connection
            self._frame_failed(exc, text)

    def _frame_failed(self, exc: Exception, text: str) -> None:
        self.frame_errors += 1
        self.last_error = f"frame handling failed: {exc!r}"
        self.log("error", "Lighter", "frame_failed", f"frame handling failed ({exc!r}); frame: {str(text)[:300]}")
        market_id = protocol.channel_market_id(_channel_of(text))
        book = self.feed.books.get(market_id) if market_id is not None and self.feed else None
        if book is not None:
            self.log("error", "Lighter", "frame_failed", f"market {market_id} book dropped; resubscribing")
            book.invalidate()
            self.feed.aggregator.invalidate(market_id, self.feed.last_timestamp or 0)
            self.feed.pacer.resubscribe(market_id)

    def _on_down(self, why: str) -> None:
        self._drop(None)
        self.last_error = why
        if not self._should_run:
            return
        delay = self.backoff.next_delay_ms()
        self.reconnect_at = self.clock.now_ms() + delay
        self.log("warn", "Lighter", "connection_lost", f"connection lost: {why}; reconnecting in {delay / 1000:.1f}s")
        self.wake(self.reconnect_at)

    def _send(self, messages: list[str]) -> None:
        if messages and self.socket is not None:
            for message in messages:
                self.socket.send(message)

    def _drop(self, reason: str | None) -> None:
        """Forget the connection: end every top of book at the newest frame, fold the
        counters, close the socket (with `reason`, if we are the ones closing)."""
        feed, self.feed = self.feed, None
        if feed is not None:
            if feed.last_timestamp is not None:
                for market_id in feed.books:
                    feed.aggregator.invalidate(market_id, feed.last_timestamp)
            self.on_drop(feed)
        socket, self.socket = self.socket, None
        if socket is not None and reason:
            socket.close(1000, reason)


def _channel_of(text: str) -> str | None:
    try:
        return json.loads(text).get("channel")
    except Exception:
        return None
