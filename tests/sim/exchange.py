"""Simulated exchanges for the deterministic simulation, as callbacks on the virtual
loop: what every venue shares in `SimVenue`, Lighter's specifics in `SimLighter`
(Paradex's are in paradex.py, `SimParadex`).

`SimVenue`: connections (opened after a little latency, each delivering in order,
acting on the client's messages in order), the trace, drops of every connection
or one shard's, stalls (a silenced connection is sent no book frames), the books'
generators, markets listed and delisted, REST latency, failure windows and hangs
(a call made during a hang answers when it ends, however long), and a
watch on the tracker's stale-feed closes (a connection closed as stale must have
been sent nothing for the stale period).

`SimLighter`: Lighter's REST list, its JSON WebSocket protocol (frames in the exact
shape of Lighter's, built by the reference model's `book_frame`, so the tracker's
real parser handles them), its per-IP limits and its malformed frames. Its books
(prices ~100-250, 0.5 apart) are of three depths by market (`LOTS`), so that every
slippage size is seen filled and not: every level holds more than 1,000 USD, a side
of the thinnest holds well under 1M, of the deepest a level alone often holds 1M.
Now and then an update crosses the book, or takes a whole side (a sweep: the book
is one-sided until that side gets a level again).

The exchange's clock (`clock_ms`) can run ahead of or behind the world's
(`clock_offset_ms`), every frame can take a while to arrive (`delay_ms`, drawn per
frame; a connection still delivers in order), and a market's next book frame can be
stamped far off (`shift_next`: a clock fault of one frame).

Trace: every frame handed to a tracker's socket handler is appended to `trace`, in
delivery order, with the connection it arrived on; the reference model recomputes
the expected windows from the trace alone:

    ("frame", shard, conn, payload, at)   Lighter: the frame's JSON text; Paradex: what
                                      the frame says (paradex.py), None if not a book;
                                      `at`: the world's clock when it was handed over
    ("end", shard, conn, ms)          the connection ended (either side)
    ("from", shard, ms)               the shard measures from this window on (world.py)
    ("flush", shard, ms, at)          the shard closes every window ending at or before ms
                                      (the boundary its aggregator was given: world.py), at `at`
    ("delisted", None, market, ms)    the exchange stops the market's book (frames already
                                      on their way still arrive, the tracker may drop them)
    ("listed", None, market, ms)      Lighter lists a new market under a delisted one's id
    ("unlisted", shard, market, ms)   the shard let the market go, its refresh saw it delisted
                                      (world.py, from the tracker's market_delisted log)

Keepalive, as Lighter does it (lighter-reference README, "Keepalive"): a connection
that has sent no client message for IDLE_MS is closed by the server, and a server
whose `ping_every_ms` is set sends `{"type":"ping"}` that often on every connection and
closes it with 1008 "no pong" when no pong came within PONG_WITHIN_MS of the ping's
arrival. Either close, while the tracker's instance was alive and its alarms were due
(not held by an overloaded host), is a violation: a keepalive the tracker did not keep.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter, deque
from dataclasses import dataclass, field

import reference_model as ref
from tracker.pacing import ACK_TIMEOUT_MS, RATE_WINDOW_MS, RESERVED_FOR_KEEPALIVE

# Lighter's per-IP limits (every shard of the deployment shares one IP).
MESSAGES_PER_MINUTE = 200
IN_FLIGHT = 50
SUBSCRIPTIONS_PER_CONNECTION = 500
# Size units per drawn size step (randint(1, 40) / 4), by market id % 3: the thin, the
# middling and the deep books. A level holds at least 0.25 x 60 x ~80 USD = 1,200 USD.
LOTS = (60, 600, 6_000)
# Of the updates (roll < 0.3 deletes a level), those with roll below this take the
# whole side instead.
SWEEP = 0.004
# Keepalive (lighter-reference README): the server drops a connection after 2 minutes
# without a client message; a server ping unanswered for this long closes it with 1008.
# The reference gives no pong deadline: this is Paradex's 5 s, doubled.
IDLE_MS = 120_000
PONG_WITHIN_MS = 10_000
# A subscribe this exchange never answers is counted in flight (the shard's and the
# IP's) this long after it arrived: well within the tracker's ack timeout.
UNANSWERED_COUNTED_MS = ACK_TIMEOUT_MS - 5_000
# ... and is sent again (unsubscribe, subscribe) by this long after it arrived: the ack
# timeout, then a rate window's wait for room in the shard's share, and some slack.
RESENT_WITHIN_MS = ACK_TIMEOUT_MS + RATE_WINDOW_MS + 15_000


@dataclass
class Book:
    market: int
    bids: dict = field(default_factory=dict)
    asks: dict = field(default_factory=dict)
    nonce: int = 1  # Lighter's nonce; Paradex's seq
    changed_ms: int = 0  # when the book last changed (Paradex stamps its snapshots with it)


@dataclass
class Conn:
    id: int
    shard: int
    on_text: object
    on_open: object
    on_down: object
    open: bool = False
    closed: bool = False
    subscribed: set = field(default_factory=set)
    in_flight: dict = field(default_factory=dict)  # market -> sent at (ms)
    deliver_at: int = 0  # FIFO: nothing is delivered before the previous delivery
    act_at: int = 0  # FIFO the other way: client messages are acted on in order
    silenced: bool = False  # a stall: book frames are not sent to it
    client_closed: bool = False  # the tracker closed it: no on_down follows (runtime/feed_socket.py)
    created_ms: int = 0
    sent_ms: int = 0  # when the exchange last sent it something
    # A backlog: frames arrived but not yet handled, in order: (data, payload, snapshot_of, arrived)
    queue: deque = field(default_factory=deque)
    draining: bool = False  # a drain of the queue is scheduled
    breath_asked: bool = False  # the tracker asked for a breath while handling the current frame
    delivered_ms: int = 0  # when its handler last got a frame
    delivered_data_ms: int = 0  # ... a frame other than a heartbeat
    alive: object = None
    # Subscribes in flight the exchange will not answer (left unanswered on purpose, or
    # its book gone): the tracker stops counting one after its ack timeout.
    unanswered: set = field(default_factory=set)
    client_ms: int = 0  # when the exchange last acted on a client message (Lighter's idle clock)
    ping_delivered_ms: int | None = None  # a server ping delivered and not yet answered


class SimSocket:
    """What the tracker holds: send and close; its handlers are called by the exchange."""

    def __init__(self, exchange: SimVenue, conn: Conn, alive) -> None:
        self.exchange = exchange
        self.conn = conn
        self.alive = alive

    @property
    def open(self) -> bool:
        return self.conn.open and not self.conn.closed

    def send(self, text: str) -> None:
        if self.open:
            self.exchange.receive(self.conn, text)

    def close(self, code: int, reason: str) -> None:
        self.exchange.closed_by_client(self.conn, code, reason)

    def breathe(self) -> None:
        self.conn.breath_asked = True


class SimVenue:
    """What every simulated exchange shares. Subclasses say how a connection opens
    (`_opened`), what a client message does (`_act`), how books start and change
    (`_start_market`, `_update`) and what REST answers (`get_text`)."""

    name = "venue"
    ws_host = ""  # every connection's URL must name this host (a shard of another exchange must not come here)

    def __init__(self, loop, rng: random.Random, frame_ms: tuple[int, int]) -> None:
        self.loop = loop
        self.rng = rng
        self.frame_ms = frame_ms
        self.books: dict[int, Book] = {}
        self.conns: dict[int, Conn] = {}
        self.next_conn = 1
        self.errors_sent: Counter = Counter()
        self.refusals: Counter = Counter()  # the exchange's limits or protocol, broken by the tracker
        self.violations: list[str] = []  # what those were, and other misbehaviour seen from here
        self.trace: list[tuple] = []
        self.rest_failing_until = 0
        self.rest_hanging_until = 0  # a REST call made before then answers only then
        self.rest_calls = 0
        self.generating = True  # False: the books stop changing (after the final stop)
        self.skip_next: set[int] = set()  # markets whose next delta is not delivered (a gap)
        self.first_snapshot: dict[int, int] = {}  # market -> when first delivered
        self.connections_made = 0
        self.stale_ms: int | None = None  # the trackers' STALE_FEED_SECONDS (the world sets it)
        self.allowed: frozenset[str] | None = None  # LIGHTER_MARKETS / PARADEX_MARKETS (the world sets it)
        self.early_stale_closes: list[str] = []  # connections closed as stale that were not
        self.clock_offset_ms = 0  # the exchange's clock minus the world's (its stamps)
        self.delay_ms = (5, 400)  # how long a frame takes to arrive (drawn per frame)
        self.shift_next: dict[int, int] = {}  # market -> ms added to the stamp of its next book frame
        # The deployment's own budget per IP (tracker/exchange.py's budget_per_minute and
        # budget_in_flight, the world sets them), below the exchange's limits: what the
        # tracker promises, every shard together, pongs included, over every 60 s.
        self.budget_per_minute: int | None = None
        self.budget_in_flight: int | None = None
        self.client_messages: deque[int] = deque()  # arrival times of the IP's client messages, the last 60 s
        self.most_per_minute = 0  # the most client messages of the IP in any 60 s
        self.most_in_flight = 0  # the most subscriptions of the IP awaiting their snapshot at once
        # When each market last stopped being subscribed on any connection (absent: it is);
        # `unheld_since` says since when a market has been held by none.
        self.unheld: dict[int, int] = {}
        # A backlog (issue 18, defect 8): shard -> until when its object handles nothing
        # (a burst ahead of it, a busy host). Frames queue in its socket meanwhile and are
        # then handled back to back; nothing else gets into the object (its alarm, its
        # requests: world.py) but at a breath the tracker asks for (Socket.breathe), which
        # lasts the runtime's 1 ms timer (runtime/breath.py).
        self.busy_until: dict[int, int] = {}
        # shard -> how long its breath lasts (1 ms; longer on a busy host, where the 1 ms
        # timer waits for a CPU): the queue drains slower, and may lag for a while.
        self.breath_ms: dict[int, int] = {}
        self.arrived: dict[int, int] = {}  # trace index of a frame that waited in a queue -> when it arrived
        # The split each shard runs (its run's SHARDS; None: not known), the world sets
        # it: a shard subscribes only markets of its own share of the split (market id
        # mod SHARDS: tracker/markets.py), and stays within its share of the deployment's
        # budget (`share_of`): every connection's subscriptions in flight, every shard's
        # client messages over any 60 s, its subscribes and unsubscribes leaving
        # RESERVED_FOR_KEEPALIVE of it for pings and pongs (tracker/pacing.py).
        self.split_of = lambda shard: None
        self.shard_messages: dict[int, deque[tuple[int, bool]]] = {}  # shard -> (arrival, keepalive?)
        # Some seeds' exchange leaves a subscribe unanswered now and then (never the
        # same market's twice in a row): the tracker must time it out and send it again.
        self.unanswered_p = 0.0
        self.rng_unanswered = random.Random(0)
        self._left_unanswered: set[int] = set()
        self.subscribes_unanswered = 0

    def clock_ms(self) -> int:
        """The exchange's own clock: what it stamps its frames with."""
        return self.loop.now_ms() + self.clock_offset_ms

    def stamp(self, m: int) -> int:
        """The stamp of market m's next book frame (a one-off shift, if one is set)."""
        return self.clock_ms() + self.shift_next.pop(m, 0)

    # -- the IP's budget, and one connection per market -------------------------------

    def _count_client_message(self) -> None:
        """A client message arrived (any kind: subscribes, unsubscribes, pings, pongs)."""
        now = self.loop.now_ms()
        window = self.client_messages
        while window and window[0] <= now - 60_000:
            window.popleft()
        window.append(now)
        if len(window) > self.most_per_minute:
            self.most_per_minute = len(window)
            if self.budget_per_minute is not None and len(window) > self.budget_per_minute:
                self._violation("over the deployment's message budget",
                                f"{len(window)} client messages in the 60 s to {now}, above "
                                f"{self.budget_per_minute} a minute (every shard, pongs included)")

    def share_of(self, shard: int) -> tuple[int, int] | None:
        """(messages a minute, subscriptions in flight): `shard`'s share of the
        deployment's budget under the split it runs."""
        split = self.split_of(shard)
        if split is None or self.budget_per_minute is None or self.budget_in_flight is None:
            return None
        return self.budget_per_minute // split, self.budget_in_flight // split

    def _counted_in_flight(self, conn: Conn) -> int:
        """The subscriptions in flight on `conn` that its tracker must still count: all
        but those this exchange never answers once they are old enough for the
        tracker's ack timeout to have let them go (a client message arrives within
        about 100 ms: UNANSWERED_COUNTED_MS leaves seconds of margin)."""
        now = self.loop.now_ms()
        return sum(1 for m, at in conn.in_flight.items()
                   if m not in conn.unanswered or now - at < UNANSWERED_COUNTED_MS)

    def _subscribing(self, conn: Conn, m: int) -> None:
        """A subscribe of market m was accepted on `conn` (now in flight there): it must be
        on no other connection, the IP's subscriptions in flight within the budget, and
        the connection's within its shard's share."""
        others = [c.id for c in self.conns.values()
                  if c is not conn and not c.closed and (m in c.subscribed or m in c.in_flight)]
        if others:
            self._violation("market on two connections",
                            f"market {m} subscribed on connection {conn.id} (shard {conn.shard}) while "
                            f"connection(s) {others} hold it")
        split = self.split_of(conn.shard)
        if split is not None and m % split != conn.shard:
            self._violation("market outside its shard's share",
                            f"market {m} subscribed by shard {conn.shard} of {split} (it is shard {m % split}'s)")
        share = self.share_of(conn.shard)
        mine = self._counted_in_flight(conn)
        if share is not None and mine > share[1]:
            self._violation("over a shard's in-flight share",
                            f"{mine} subscriptions in flight on connection {conn.id} (shard {conn.shard}) at "
                            f"{self.loop.now_ms()}, above its share of {share[1]}")
        in_flight = sum(self._counted_in_flight(c) for c in self.conns.values() if not c.closed)
        if in_flight > self.most_in_flight:
            self.most_in_flight = in_flight
            if self.budget_in_flight is not None and in_flight > self.budget_in_flight:
                self._violation("over the deployment's in-flight budget",
                                f"{in_flight} subscriptions in flight at {self.loop.now_ms()}, above "
                                f"{self.budget_in_flight}")

    def _held(self, m: int) -> None:
        """Market m is subscribed (its snapshot sent) on a connection."""
        self.unheld.pop(m, None)

    def _released(self, conn: Conn, markets) -> None:
        """`markets` are no longer subscribed on `conn` (unsubscribed, or it ended)."""
        now = self.loop.now_ms()
        for m in markets:
            if m not in self.unheld and not any(m in c.subscribed for c in self.conns.values()
                                                 if c is not conn and not c.closed):
                self.unheld[m] = now

    def unheld_since(self, m: int, start: int) -> int | None:
        """Since when market m has been subscribed on no connection (None: it is now);
        `start`: when the world began (never subscribed yet)."""
        if any(m in c.subscribed for c in self.conns.values() if not c.closed):
            return None
        return self.unheld.get(m, start)

    def _violation(self, kind: str, detail: str) -> None:
        self.refusals[kind] += 1
        if len(self.violations) < 10:
            self.violations.append(f"{self.name}: {kind}: {detail}")

    def _check_allowed(self, symbol: str | None, channel: str) -> None:
        """A subscription to a market the deployment's allowlist leaves out (never sent)."""
        if self.allowed is not None and symbol not in self.allowed:
            self._violation("market outside the allowlist subscribed", f"{channel} ({symbol})")

    # -- books -----------------------------------------------------------------------

    def _frame_ms(self, m: int) -> tuple[int, int]:
        return self.frame_ms

    def _schedule_update(self, m: int) -> None:
        delay = self.rng.randint(*self._frame_ms(m))
        self.loop.call_later(delay / 1000, self._update, m)

    def _targets(self, m: int) -> list[Conn]:
        return [c for c in self.conns.values() if m in c.subscribed and not c.silenced]

    def stop_generating(self) -> None:
        """After the final stop: no socket should be open; the books stop changing
        (their timers cost most of the drain period otherwise)."""
        self.generating = False

    # -- connections ------------------------------------------------------------------

    def connect(self, shard: int, on_text, on_open, on_down, alive, url: str | None = None) -> SimSocket:
        conn = Conn(self.next_conn, shard, on_text, on_open, on_down)
        self.next_conn += 1
        self.connections_made += 1
        self.conns[conn.id] = conn
        socket = SimSocket(self, conn, alive)
        conn.alive = alive
        conn.created_ms = conn.sent_ms = self.loop.now_ms()
        if url is not None and self.ws_host not in url:
            self._violation("wrong url", f"shard {shard} connected to {url}")
        if not self._admit(conn):
            return socket

        def opened() -> None:
            if conn.closed:
                return
            conn.open = True
            on_open()
            self._opened(conn)

        self.loop.call_later(self.rng.randint(5, 80) / 1000, opened)
        return socket

    def _admit(self, conn: Conn) -> bool:
        """False: the exchange refuses the connection (it ends instead of opening)."""
        return True

    def _opened(self, conn: Conn) -> None:
        """The socket is open (the tracker's on_open has run)."""

    def _deliver(self, conn: Conn, data, payload, snapshot_of: int | None = None) -> None:
        """Send `data` (what the tracker's handler gets) on `conn`; `payload` is what the
        trace records of it; `snapshot_of`: the market whose snapshot this is."""
        now = self.loop.now_ms()
        at = max(conn.deliver_at + 1, now + self.rng.randint(*self.delay_ms))
        conn.deliver_at = at
        conn.sent_ms = now

        def deliver() -> None:
            if conn.closed or not conn.alive():
                return
            if conn.queue or self.loop.now_ms() < self.busy_until.get(conn.shard, 0):
                conn.queue.append((data, payload, snapshot_of, self.loop.now_ms()))
                self._drain_later(conn)
                return
            self._hand(conn, data, payload, snapshot_of)

        self.loop.at_ms(at, deliver)

    def _hand(self, conn: Conn, data, payload, snapshot_of: int | None, arrived: int | None = None) -> None:
        """The tracker's socket handler gets a frame (that arrived at `arrived`, if it waited)."""
        now = self.loop.now_ms()
        self.trace.append(("frame", conn.shard, conn.id, payload, now))
        if arrived is not None and arrived < now:
            self.arrived[len(self.trace) - 1] = arrived
        conn.delivered_ms = now
        if payload != "heartbeat":
            conn.delivered_data_ms = conn.delivered_ms
        if snapshot_of is not None:
            self.first_snapshot.setdefault(snapshot_of, conn.delivered_ms)
        conn.on_text(data)

    def _drain_later(self, conn: Conn) -> None:
        if not conn.draining:
            conn.draining = True
            self.loop.at_ms(max(self.loop.now_ms(), self.busy_until.get(conn.shard, 0)), self._drain, conn)

    def _drain(self, conn: Conn) -> None:
        """Handle the queued frames back to back, until the tracker asks for a breath:
        then what is due (its alarm, a request) gets in during the breath's timer (1 ms,
        or `breath_ms`), and the rest of the queue after it."""
        conn.draining = False
        while conn.queue:
            if conn.closed or not conn.alive():
                conn.queue.clear()
                return
            if self.loop.now_ms() < self.busy_until.get(conn.shard, 0):  # busy again
                self._drain_later(conn)
                return
            data, payload, snapshot_of, arrived = conn.queue.popleft()
            conn.breath_asked = False
            self._hand(conn, data, payload, snapshot_of, arrived)
            if conn.breath_asked and conn.queue:
                conn.draining = True
                self.loop.at_ms(self.loop.now_ms() + self.breath_ms.get(conn.shard, 1), self._drain, conn)
                return

    def receive(self, conn: Conn, text: str) -> None:
        """A client message, acted on after a little latency (in order: one TCP stream)."""
        at = max(conn.act_at + 1, self.loop.now_ms() + self.rng.randint(5, 100))
        conn.act_at = at
        self.loop.at_ms(at, self._arrive, conn, text)

    def _arrive(self, conn: Conn, text: str) -> None:
        if conn.closed:
            return
        conn.client_ms = self.loop.now_ms()
        self._count_client_message()
        self._count_shard_message(conn, text)
        self._act(conn, text)

    def _count_shard_message(self, conn: Conn, text: str) -> None:
        """A client message of `conn`'s shard: its messages over the last 60 s within its
        share, its subscribes and unsubscribes within the share less the keepalive
        reserve. (The tracker counts a send over RATE_WINDOW_MS, 62 s, when it sends it;
        it arrives here within about 100 ms, in order.)"""
        share = self.share_of(conn.shard)
        if share is None:
            return
        now = self.loop.now_ms()
        keepalive = '"ping"' in text or '"pong"' in text
        window = self.shard_messages.setdefault(conn.shard, deque())
        while window and window[0][0] <= now - 60_000:
            window.popleft()
        window.append((now, keepalive))
        every = len(window)
        paced = sum(1 for _, k in window if not k)
        if every > share[0]:
            self._violation("over a shard's message share",
                            f"shard {conn.shard}: {every} client messages in the 60 s to {now}, above its share "
                            f"of {share[0]} a minute")
        elif not keepalive and paced > share[0] - RESERVED_FOR_KEEPALIVE:
            self._violation("over a shard's subscribe share",
                            f"shard {conn.shard}: {paced} subscribes and unsubscribes in the 60 s to {now}, above "
                            f"its share of {share[0]} a minute less {RESERVED_FOR_KEEPALIVE} kept for keepalive")

    def _act(self, conn: Conn, text: str) -> None:
        raise NotImplementedError

    def closed_by_client(self, conn: Conn, code: int, reason: str) -> None:
        conn.client_closed = True
        if code == 4000 and not conn.closed and self.stale_ms is not None:
            # The tracker's watchdog: stale only after stale_ms without any frame.
            now = self.loop.now_ms()
            quiet_since = max(conn.created_ms, conn.delivered_ms)
            if now - quiet_since < self.stale_ms:
                data_since = max(conn.created_ms, conn.delivered_data_ms)
                self.early_stale_closes.append(
                    f"{self.name}: connection {conn.id} (shard {conn.shard}) closed as stale at {now}, "
                    f"{now - quiet_since} ms after its last frame ({now - data_since} ms after its last "
                    f"frame but heartbeats; STALE_FEED_SECONDS {self.stale_ms // 1000})")
        self.end(conn, notify=False)

    def end(self, conn: Conn, notify: bool, why: str = "closed by server (code 1006)") -> None:
        """A connection ends: the tracker closed it (notify=False), or we drop it."""
        if conn.closed:
            return
        conn.closed = True
        conn.open = False
        self.conns.pop(conn.id, None)
        self._released(conn, conn.subscribed)
        self.trace.append(("end", conn.shard, conn.id, self.loop.now_ms()))
        if notify:
            at = max(conn.deliver_at, self.loop.now_ms() + 1)

            def down() -> None:
                # Not after the tracker closed it itself (its stale watchdog, say, while
                # this notice waited behind a delivery delay): the runtime's socket
                # unhooks its handlers on close.
                if conn.alive() and not conn.client_closed:
                    conn.on_down(why)

            self.loop.at_ms(at, down)

    # -- faults -----------------------------------------------------------------------------

    def drop_all(self) -> None:
        for conn in list(self.conns.values()):
            self.end(conn, notify=True)

    def drop_shard(self, shard: int) -> None:
        for conn in list(self.conns.values()):
            if conn.shard == shard:
                self.end(conn, notify=True)

    def gap(self, m: int) -> None:
        self.skip_next.add(m)

    def _stop_book(self, m: int) -> None:
        """A delisted market: no frames for it any more (but those already sent)."""
        self.books.pop(m, None)
        self.trace.append(("delisted", None, m, self.loop.now_ms()))

    def silence(self, seconds: float) -> None:
        for conn in self.conns.values():
            conn.silenced = True

        def unsilence(conns=list(self.conns.values())) -> None:
            for c in conns:
                c.silenced = False

        self.loop.call_later(seconds, unsilence)

    def live_subscriptions(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for conn in self.conns.values():
            for m in conn.subscribed:
                out.setdefault(m, set()).add(conn.id)
        return out

    async def _rest_latency(self) -> None:
        self.rest_calls += 1
        delay = self.rng.randint(10, 200)
        now = self.loop.now_ms()
        if now < self.rest_hanging_until:  # a hang: the answer comes, but only then
            delay += self.rest_hanging_until - now
        await asyncio.sleep(delay / 1000)


class SimLighter(SimVenue):
    name = "lighter"
    ws_host = "lighter.sim"

    def __init__(self, loop, rng: random.Random, markets: dict[int, str], frame_ms: tuple[int, int]) -> None:
        super().__init__(loop, rng, frame_ms)
        self.listing: dict[int, dict] = {
            m: {"symbol": s, "market_id": m, "market_type": "perp", "status": "active",
                "supported_size_decimals": 4, "supported_price_decimals": 2}
            for m, s in markets.items()
        }
        self.sent_at: deque[int] = deque()  # client messages in the rolling minute (the IP's)
        self.symbols_of: dict[int, set[str]] = {m: {s} for m, s in markets.items()}  # every symbol an id had
        self.listing_changed_ms: dict[int, int] = {}  # market -> when it was last listed, delisted or renamed
        # (shard, market) -> when that shard's refresh let the market go (world.py, from
        # its "market_delisted" log line): a subscribe it had in flight is forgotten, not
        # sent again (tracker/pacing.py `unsubscribe`).
        self.let_go_ms: dict[tuple[int, int], int] = {}
        self.ping_every_ms: int | None = None  # server pings (the world sets it for some seeds)
        self.rng_keepalive = random.Random(0)  # the pings' own draws (the world seeds it)
        self.pings_sent = 0
        self.keepalive_closes: Counter = Counter()  # "idle" / "no pong"
        # True while the tracker may be forgiven a missed keepalive (its alarms held back
        # by an overloaded host): the world sets it.
        self.keepalive_excused = lambda conn: False
        # True when the host held the tracker's alarms back at some moment since then (the world sets it).
        self.alarms_held_since = lambda ms: False
        for m in markets:
            self._start_market(m)

    # -- markets ---------------------------------------------------------------------

    def _size(self, m: int) -> str:
        return f"{self.rng.randint(1, 40) / 4 * LOTS[m % 3]:.4f}"

    def _start_market(self, m: int) -> None:
        mid = 100 + 10 * (m % 7) + self.rng.randint(0, 50)
        book = Book(m)
        for i in range(1, 5):
            book.bids[f"{mid - i * 0.5:.2f}"] = self._size(m)
            book.asks[f"{mid + i * 0.5:.2f}"] = self._size(m)
        self.books[m] = book
        self._schedule_update(m)

    def list_market(self, m: int, symbol: str) -> None:
        self.listing_changed_ms[m] = self.loop.now_ms()
        self.symbols_of.setdefault(m, set()).add(symbol)
        if m in self.listing:  # an id reused: a new market, whose first snapshot is its own
            self.first_snapshot.pop(m, None)
            self.trace.append(("listed", None, m, self.loop.now_ms()))
        self.listing[m] = {"symbol": symbol, "market_id": m, "market_type": "perp", "status": "active",
                           "supported_size_decimals": 4, "supported_price_decimals": 2}
        self._start_market(m)

    def delist_market(self, m: int) -> None:
        self.listing_changed_ms[m] = self.loop.now_ms()
        self.listing[m]["status"] = "inactive"
        self._stop_book(m)

    def rename_market(self, m: int, symbol: str) -> None:
        """The market keeps its id and book; its listing says `symbol` from now on."""
        self.listing_changed_ms[m] = self.loop.now_ms()
        self.listing[m]["symbol"] = symbol
        self.symbols_of.setdefault(m, set()).add(symbol)

    def active(self) -> set[int]:
        return {m for m, e in self.listing.items() if e["status"] == "active"}

    def _update(self, m: int) -> None:
        book = self.books.get(m)
        if book is None or not self.generating:
            return
        self._schedule_update(m)
        side = self.rng.choice(("bids", "asks"))
        levels = getattr(book, side)
        changes = []
        roll = self.rng.random()
        prices = sorted(levels, key=float)
        if roll < SWEEP and levels:  # the whole side taken: one-sided until it gets a level
            self.rng.choice(prices)  # (drawn as a delete draws it: the seed's draws stay in step)
            changes += [(price, "0.0000") for price in prices]
            levels.clear()
        elif roll < 0.3 and len(levels) > 1:
            price = self.rng.choice(prices)
            del levels[price]
            changes.append((price, "0.0000"))
        else:
            # A swept side starts again next to the other one.
            best_ask = min(map(float, book.asks)) if book.asks else None
            best_bid = max(map(float, book.bids)) if book.bids else best_ask - 1 if best_ask else 100.0
            best_ask = best_ask or best_bid + 1
            if side == "bids":
                price = f"{best_bid + self.rng.choice((-1.0, -0.5, 0.0, 0.5)):.2f}"
                if float(price) >= best_ask and self.rng.random() < 0.9:
                    price = f"{best_ask - 0.5:.2f}"
            else:
                price = f"{best_ask + self.rng.choice((-0.5, 0.0, 0.5, 1.0)):.2f}"
                if float(price) <= best_bid and self.rng.random() < 0.9:
                    price = f"{best_bid + 0.5:.2f}"
            if float(price) <= 0:
                return
            size = self._size(m)
            levels[price] = size
            changes.append((price, size))
        begin = book.nonce
        book.nonce += self.rng.randint(1, 4)
        skip = m in self.skip_next
        self.skip_next.discard(m)
        targets = self._targets(m)
        if skip or not targets:
            return
        kw = {"bids": changes} if side == "bids" else {"asks": changes}
        text = ref.book_frame(m, ts_ms=self.stamp(m), nonce=book.nonce, begin_nonce=begin, **kw)
        for conn in targets:
            self._deliver(conn, text, text)

    def _snapshot(self, conn: Conn, m: int) -> None:
        book = self.books.get(m)
        if book is None and m in conn.in_flight:
            conn.unanswered.add(m)  # delisted meanwhile: never answered
        if book is None or conn.closed or m not in conn.in_flight:
            return
        del conn.in_flight[m]
        conn.subscribed.add(m)
        self._held(m)
        text = ref.book_frame(m, ts_ms=self.clock_ms(), nonce=book.nonce, snapshot=True,
                              bids=list(book.bids.items()), asks=list(book.asks.items()))
        self._deliver(conn, text, text, snapshot_of=m)

    # -- the protocol ---------------------------------------------------------------------

    def _opened(self, conn: Conn) -> None:
        text = '{"type":"connected","session_id":"sim-%d"}' % conn.id
        self._deliver(conn, text, text)
        conn.client_ms = self.loop.now_ms()
        self.loop.at_ms(conn.client_ms + IDLE_MS, self._idle_check, conn)
        if self.ping_every_ms is not None:
            self.loop.call_later(self.ping_every_ms / 1000, self._server_ping, conn)

    # -- keepalive -----------------------------------------------------------------------

    def _idle_check(self, conn: Conn) -> None:
        if conn.closed:
            return
        due = conn.client_ms + IDLE_MS
        if self.loop.now_ms() < due:
            self.loop.at_ms(due, self._idle_check, conn)
            return
        self._keepalive_close(conn, "idle", f"no client message for {IDLE_MS // 1000} s")

    def _server_ping(self, conn: Conn) -> None:
        if conn.closed or not self.generating:
            return
        self.pings_sent += 1
        text = '{"type":"ping"}'
        now = self.loop.now_ms()
        at = max(conn.deliver_at + 1, now + self.rng_keepalive.randint(*self.delay_ms))
        conn.deliver_at = at

        def deliver() -> None:
            if conn.closed or not conn.alive():
                return
            self.trace.append(("frame", conn.shard, conn.id, text, self.loop.now_ms()))
            conn.delivered_ms = self.loop.now_ms()
            if conn.ping_delivered_ms is None:
                conn.ping_delivered_ms = conn.delivered_ms
                self.loop.at_ms(conn.delivered_ms + PONG_WITHIN_MS, self._pong_check, conn, conn.delivered_ms)
            conn.on_text(text)

        self.loop.at_ms(at, deliver)
        self.loop.call_later(self.ping_every_ms / 1000, self._server_ping, conn)

    def _pong_check(self, conn: Conn, pinged_ms: int) -> None:
        if not conn.closed and conn.ping_delivered_ms == pinged_ms:
            self._keepalive_close(conn, "no pong", f"no pong within {PONG_WITHIN_MS // 1000} s of a ping")

    def _keepalive_close(self, conn: Conn, kind: str, detail: str) -> None:
        self.keepalive_closes[kind] += 1
        if conn.alive() and not self.keepalive_excused(conn):
            self._violation(f"connection closed: {kind}",
                            f"connection {conn.id} (shard {conn.shard}) at {self.loop.now_ms()}: {detail}")
        self.end(conn, notify=True, why=f"closed by server (code 1008 {kind})")

    def _act(self, conn: Conn, text: str) -> None:
        now = self.loop.now_ms()
        while self.sent_at and self.sent_at[0] <= now - 60_000:
            self.sent_at.popleft()
        self.sent_at.append(now)
        conn.client_ms = now
        msg = json.loads(text)
        kind = msg.get("type")
        if len(self.sent_at) > MESSAGES_PER_MINUTE:
            return self._error(conn, 30009, "Too Many Websocket Messages")
        if kind == "ping":
            return self._deliver(conn, '{"type":"pong"}', '{"type":"pong"}')
        if kind == "pong":
            conn.ping_delivered_ms = None
            return None
        channel = msg.get("channel", "")
        m = int(channel.split("/")[1])
        if kind == "subscribe":
            in_flight = sum(len(c.in_flight) for c in self.conns.values() if not c.closed)
            if in_flight >= IN_FLIGHT:
                return self._error(conn, 30010, "Too Many Inflight Messages", m)
            if len(conn.subscribed) + len(conn.in_flight) >= SUBSCRIPTIONS_PER_CONNECTION:
                return self._error(conn, 23001, "Too Many Subscriptions", m)
            if m in conn.subscribed or m in conn.in_flight:
                return self._error(conn, 30003, "Already Subscribed", m)
            if m not in self.books:
                return self._error(conn, 30012, "Failed To Subscribe", m)
            self._check_allowed(self.listing.get(m, {}).get("symbol"), channel)
            conn.in_flight[m] = now
            conn.unanswered.discard(m)
            self._subscribing(conn, m)
            if self._leave_unanswered(m):
                conn.unanswered.add(m)
                self.loop.call_later(self._resent_within_ms(conn) / 1000, self._resent_check, conn, m, now)
                return None
            self.loop.call_later(self.rng.randint(20, 300) / 1000, self._snapshot, conn, m)
        elif kind == "unsubscribe":
            if m not in conn.subscribed and m not in conn.in_flight:
                return self._error(conn, 30002, "Not Subscribed", m)
            conn.subscribed.discard(m)
            conn.in_flight.pop(m, None)
            conn.unanswered.discard(m)
            self._released(conn, [m])
            text = json.dumps({"type": "unsubscribed/order_book", "channel": f"order_book:{m}"})
            self._deliver(conn, text, text)
        return None

    def _resent_within_ms(self, conn: Conn) -> int:
        """How long a subscribe left unanswered on `conn` may take to be sent again: the
        ack timeout, then its turn behind the resubscribes queued before it (an
        unsubscribe and a subscribe each, at most one per market of the shard) at the
        shard's subscribe share, and some slack. One rate window on a large share; on a
        16-shard split (7 subscribes a minute) after a burst of gaps, minutes (seed
        14995: seven gaps in 16 s on a shard of 10 markets)."""
        share = self.share_of(conn.shard)
        split = self.split_of(conn.shard)
        if share is None or not split:
            return RESENT_WITHIN_MS
        markets = sum(1 for m in self.listing if m % split == conn.shard % split)
        windows = -(-(2 * markets) // max(1, share[0] - RESERVED_FOR_KEEPALIVE))
        return max(RESENT_WITHIN_MS, ACK_TIMEOUT_MS + windows * RATE_WINDOW_MS + 15_000)

    def _resent_check(self, conn: Conn, m: int, at: int) -> None:
        """A subscribe left unanswered at `at` must have been given up by now (an
        unsubscribe, then a subscribe again: tracker/pacing.py's ack timeout), unless the
        connection ended, the market's listing changed meanwhile (delisted, listed again,
        renamed: the tracker may forget it without a word), or the host held the
        tracker's alarms back."""
        if conn.closed or not conn.alive() or conn.in_flight.get(m) != at or m not in conn.unanswered:
            return
        if self.listing_changed_ms.get(m, -1) >= at or self.alarms_held_since(at):
            return
        # Let go by the shard meanwhile (seed 5331: a stale market list, D1 and the peers
        # hung, dropped an id Lighter had just reused): forgotten, as it should be.
        if self.let_go_ms.get((conn.shard, m), -1) >= at:
            return
        self._violation("subscribe never sent again",
                        f"market {m}'s subscribe on connection {conn.id} (shard {conn.shard}), left unanswered at "
                        f"{at}, still in flight at {self.loop.now_ms()}")

    def _leave_unanswered(self, m: int) -> bool:
        """Whether this subscribe goes unanswered (drawn apart: the rest of the seed's
        draws stay as they were); never the same market's twice in a row."""
        if not self.unanswered_p:
            return False
        if m in self._left_unanswered or self.rng_unanswered.random() >= self.unanswered_p:
            self._left_unanswered.discard(m)
            return False
        self._left_unanswered.add(m)
        self.subscribes_unanswered += 1
        return True

    def _error(self, conn: Conn, code: int, message: str, m: int | None = None) -> None:
        self.errors_sent[code] += 1
        frame = {"type": "error", "code": code, "message": message}
        if m is not None:
            frame["channel"] = f"order_book:{m}"
        text = json.dumps(frame)
        self._deliver(conn, text, text)

    # -- faults -----------------------------------------------------------------------------

    def malformed(self) -> None:
        for conn in list(self.conns.values()):
            text = self.rng.choice(('{"type":"update/order_book"', "not json", '{"type":"update/order_book","channel":"order_book:1","order_book":{"bids":[{"price":"x","size":"1"}]}}'))
            self._deliver(conn, text, text)

    # -- REST --------------------------------------------------------------------------------

    async def get_text(self, url: str) -> tuple[int, str]:
        await self._rest_latency()
        if self.loop.now_ms() < self.rest_failing_until:
            return self.rng.choice((429, 500)), '{"code":23000,"message":"Too Many Requests!"}'
        books = [dict(e) for _, e in sorted(self.listing.items())]
        return 200, json.dumps({"code": 200, "order_books": books})
