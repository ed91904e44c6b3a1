"""The feed connection: one WebSocket to the exchange, its recovery and its keepalive.

It owns the socket, the per-connection `BookFeed` (books, pacing, the exchange's
`Wire`), the
reconnect backoff, the stale-feed watchdog and the pings. The shard tells it
which markets to carry and checks it from the alarm; socket events arrive on
their own (`_on_text`, `_on_down`) and never await anything: what they need
later (a reconnect) they ask for through `wake(at_ms)`, which moves the alarm.

What it sends is written down first. The exchange counts every client message per
IP over a rolling minute, and a new instance of the shard (after an eviction) must
count what this one sent. So with a `persist` callback, messages are held until the
shard has saved the send history that counts them (`saved(upto)`), then sent: an
eviction before the save loses messages never sent, never a count (issue 18, defect 5:
an eviction inside a subscribe burst made the next instance send a whole share again).
The shard coalesces the saves: one write covers every message held by then.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .aggregator import WindowAggregator
from .exchange import LIGHTER, Exchange, Wire
from .feed import BookFeed
from .feedtime import FeedLag
from .pacing import Budget, SendHistory, SubscriptionPacer
from .protocol import LighterWire
from .ports import Clock, Log, Socket, SocketFactory
from .reconnect import Backoff, FeedWatchdog



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
        on_drop: Callable[[BookFeed], None],
        rng: random.Random | None = None,
        exchange: Exchange = LIGHTER,
        new_wire: Callable[[], Wire] = LighterWire,
        lag: FeedLag | None = None,
        sent_at: SendHistory | None = None,
        persist: Callable[[], None] | None = None,
        breathe_every: int = 0,
    ) -> None:
        self.url = url
        self.exchange = exchange
        self.label = exchange.label
        self.new_wire = new_wire  # a fresh Wire per connection (the shard binds its config and symbols)
        self.sockets = sockets
        self.clock = clock
        self.log = log
        self.budget = budget
        self.wake = wake  # "run the alarm by then"
        self.on_drop = on_drop  # a connection ends: fold its counters
        self.lag = lag if lag is not None else FeedLag()  # sampled by every connection's feed
        self.socket: Socket | None = None
        self.feed: BookFeed | None = None
        self.backoff = Backoff(rng=rng)
        self.watchdog = FeedWatchdog(stale_ms)
        self.reconnect_at: int | None = None
        self.connections = 0
        self.last_ping_at = 0
        self.last_sent_at = 0  # when this connection last sent the exchange anything
        self.last_error: str | None = None
        self.frame_errors = 0
        self._should_run = False
        # The shard's sends in the rate window, across its connections (and, restored
        # from storage, across restarts): see SubscriptionPacer.
        self.sent_at: SendHistory = sent_at if sent_at is not None else SendHistory()
        # "Save the send history, then call saved()": None sends at once (unit tests, benches).
        self.persist = persist
        self._held: list[tuple[int, Socket, str]] = []  # (number, socket, message) awaiting the save
        self.held_seq = 0  # the number of the newest message held
        # Every `breathe_every` frames (0: never) the socket lets the rest of the object in
        # (Socket.breathe, runtime/breath.py); `breathed` says one was asked for since the
        # shard last closed windows: frames may be queued behind it (feedtime.close_boundary).
        self.breathe_every = breathe_every
        self._until_breath = breathe_every
        self.breathed = False

    # -- what the shard asks ---------------------------------------------------------------

    def open(self, market_ids: list[int], aggregator: WindowAggregator) -> None:
        """Connect and subscribe `market_ids` (in that order, paced)."""
        self._should_run = True
        self.reconnect_at = None
        self.connections += 1
        now = self.clock.now_ms()
        cap = self.exchange.max_subscriptions
        if len(market_ids) > cap:
            self.last_error = (
                f"{len(market_ids)} markets exceed {self.label}'s {cap} subscriptions "
                f"per connection: only the first {cap} are tracked; raise SHARDS"
            )
            self.log("error", self.label, "too_many_markets", self.last_error)
        wire = self.new_wire()
        pacer = SubscriptionPacer(self.budget.per_minute, self.budget.in_flight, sent_at=self.sent_at,
                                  wire=wire, max_subscriptions=cap)
        self.feed = BookFeed(market_ids, aggregator, pacer=pacer, log=self.log, wire=wire, label=self.label,
                             clock=self.clock, lag=self.lag)
        self.watchdog.reset(0, now)
        self.last_ping_at = self.last_sent_at = now
        self.log("info", self.label, "connecting", f"connecting to {self.url} (connection #{self.connections})")
        try:
            self.socket = self.sockets(self.url, self._on_frame, self._on_open, self._on_down)
        except Exception as exc:  # a bad URL throws synchronously
            self.socket = None
            self._on_down(f"could not connect: {exc}")

    def saved(self, upto: int) -> None:
        """The send history counting every message held up to number `upto` is in
        storage: send them (those of a socket since closed are dropped with it)."""
        held, self._held = self._held, []
        for number, socket, message in held:
            if number > upto:
                self._held.append((number, socket, message))
            elif socket is self.socket:
                socket.send(message)
                self.last_sent_at = self.clock.now_ms()

    def ahead(self, now: int) -> int:
        """How far ahead of our clock the kept stamps ran lately (FeedLag.ahead), the
        live feed's current second included."""
        if self.feed is not None:
            self.feed.end_reading()
        return self.lag.ahead(now)

    @property
    def holding(self) -> bool:
        """Messages wait for the send history's save."""
        return bool(self._held)

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
        # A ping only when the connection sent nothing for a ping period (a pong or a
        # subscribe is as good a sign of life): keepalive stays within the reserve.
        ping_every = self.exchange.ping_every_ms
        if ping_every is not None and now - max(self.last_ping_at, self.last_sent_at) >= ping_every:
            feed.pacer.send_now(feed.wire.ping)
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
            if self.exchange.ping_every_ms is not None:
                due.append(max(self.last_ping_at, self.last_sent_at) + self.exchange.ping_every_ms)
        return min(due) if due else None

    # -- socket events -----------------------------------------------------------------------

    def _on_open(self) -> None:
        feed = self.feed
        if feed is not None and feed.on_open():
            self.log("info", self.label, "socket_open", "socket open")
            self._send(feed.drain(self.clock.now_ms()))
        else:
            self.log("info", self.label, "socket_open", "socket open, waiting for connected")

    def _on_frame(self, data: str | bytes) -> None:
        # The hot path: one call into the pure feed; the clock is read only when
        # the feed has something to send (an ack freed a slot, a pong, a resubscribe).
        try:
            if self.feed.on_frame(data):
                self._send(self.feed.drain(self.clock.now_ms()))
        except Exception as exc:  # a bug must cost one frame, never the connection
            self._frame_failed(exc, data)
        self._until_breath -= 1
        if not self._until_breath:  # never when breathe_every is 0: the count runs negative
            self._breathe()

    def _breathe(self) -> None:
        """Let requests and the alarm in between two frames of a burst; note that frames
        may be queued behind them (the alarm that gets in must not close their windows)."""
        self._until_breath = self.breathe_every
        self.breathed = True
        if self.socket is not None:
            self.socket.breathe()

    def take_breathed(self) -> bool:
        """Whether a breath was asked for since the last call (the shard's last close)."""
        breathed, self.breathed = self.breathed, False
        return breathed

    def _frame_failed(self, exc: Exception, data: str | bytes) -> None:
        self.frame_errors += 1
        self.last_error = f"frame handling failed: {exc!r}"
        shown = data[:300] if type(data) is str else bytes(data[:120]).hex()
        self.log("error", self.label, "frame_failed", f"frame handling failed ({exc!r}); frame: {shown}")
        market_id = self.feed.wire.market_of(data) if self.feed else None
        book = self.feed.books.get(market_id) if market_id is not None and self.feed else None
        if book is not None:
            self.log("error", self.label, "frame_failed", f"market {market_id} book dropped; resubscribing")
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
        self.log("warn", self.label, "connection_lost", f"connection lost: {why}; reconnecting in {delay / 1000:.1f}s")
        self.wake(self.reconnect_at)

    def _send(self, messages: list[str]) -> None:
        socket = self.socket
        if not messages or socket is None:
            return
        if self.persist is None:
            for message in messages:
                socket.send(message)
            self.last_sent_at = self.clock.now_ms()
            return
        for message in messages:  # sent once the history counting them is saved
            self.held_seq += 1
            self._held.append((self.held_seq, socket, message))
        self.persist()

    def _drop(self, reason: str | None) -> None:
        """Forget the connection: end every top of book at the newest frame, fold the
        counters, close the socket (with `reason`, if we are the ones closing)."""
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.end_reading()  # how far ahead its last second's stamps ran counts too
            if feed.last_timestamp is not None:
                for market_id in feed.books:
                    feed.aggregator.invalidate(market_id, feed.last_timestamp)
            self.on_drop(feed)
        socket, self.socket = self.socket, None
        if socket is not None and reason:
            socket.close(1000, reason)

