"""One connection's worth of feed: frames in, books and ticks out.

`BookFeed` is everything the tracker does per message, in pure Python: parse
(through the exchange's `Wire`, tracker/exchange.py),
apply to the market's book, check continuity, and hand the top of book to the
window aggregator, plus a sample (OrderBook.band_depths and OrderBook.slippages) on
the first tick of each exchange second per market. It never does I/O, and reads the
clock (when given one) only on the first book frame of each exchange second: that
reading bounds how far ahead a stamp may be, and is a sample of the feed's lag
(tracker/feedtime.py). What it wants to send (pongs, resubscriptions) is queued in its
`SubscriptionPacer`, and the glue sends `drain(now)` when `on_frame` returns True.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from . import protocol
from .aggregator import WindowAggregator
from .feedtime import MAX_CLOCK_AHEAD_MS, FeedLag
from .orderbook import OrderBook
from .pacing import SubscriptionPacer
from .ports import Clock, Log, no_log
from .protocol import BookFrame, MalformedFrame

if TYPE_CHECKING:
    from .exchange import Wire

# Malformed frames are logged one by one at first, then only every Nth.
MALFORMED_LOG_EVERY = 100
# Frames stamped too far ahead are logged at most once per this much of our clock.
CLOCK_AHEAD_LOG_EVERY_MS = 60_000


@dataclass
class FeedCounters:
    messages: int = 0
    snapshots: int = 0
    updates: int = 0
    malformed: int = 0
    gaps: int = 0
    crossed: int = 0  # frames after which best bid >= best ask
    one_sided: int = 0  # frames after which a side is empty
    depth_samples: int = 0  # depth samples taken (at most one per market and second)
    errors: int = 0  # error frames from the exchange
    unknown_market: int = 0
    skipped: int = 0  # binary messages of templates the tracker does not use (Paradex)
    future_frames: int = 0  # stamped more than MAX_CLOCK_AHEAD_MS ahead of our clock: placed at our clock
    # Updates whose tick came after their window was closed (its end lost to the feed's
    # lag). Not snapshots: a snapshot may carry its book's last change (Paradex), long past.
    dropped_late: int = 0
    gaps_by_market: dict[int, int] = field(default_factory=dict)


class BookFeed:
    def __init__(
        self,
        market_ids: Iterable[int],
        aggregator: WindowAggregator,
        pacer: SubscriptionPacer | None = None,
        log: Log = no_log,
        wire: Wire | None = None,
        label: str = "Lighter",
        clock: Clock | None = None,
        lag: FeedLag | None = None,
    ) -> None:
        self.books: dict[int, OrderBook] = {m: OrderBook(m) for m in market_ids}
        self.aggregator = aggregator
        self.wire = wire or protocol.LighterWire()
        self.pacer = pacer or SubscriptionPacer(wire=self.wire)
        self.counters = FeedCounters()
        self.label = label  # the log component: the exchange's name
        # Subscribing may start: Lighter's `connected` frame seen, or (Paradex) the socket is open.
        self.connected = False
        self.last_timestamp: int | None = None  # exchange ms of the newest book frame
        # The newest stamp of any book frame, as the exchange stamped it, a clamped one
        # left out: where the frames queued behind the newest begin (feedtime.queue_start).
        self.last_unclamped_stamp: int | None = None
        self._log = log
        # The clock, read on the first book frame of each exchange second (None: never,
        # and no stamp is bounded: the pure feed of the unit tests and benchmarks).
        self._clock = clock
        self.lag = lag if lag is not None else FeedLag()
        self._second = -1  # the exchange second of the latest book frame
        self._now = 0  # our clock when that second began
        self._ahead_limit: float = float("inf")  # stamps from here on are too far ahead
        # The newest stamp kept since that reading (from the reading on): how far ahead
        # of our clock the windows this feed opens ran (FeedLag.kept_ahead). Without a
        # clock, never moved: the hot path does no more than compare.
        self._kept_until: float = 0 if clock is not None else float("inf")
        self._ahead_logged_at: int | None = None
        # The aggregator's market -> second of the latest depth sample (it outlives this
        # connection). Every market has an entry (-1: none yet) so the hot path can
        # index it instead of calling .get().
        self._sample_seconds = aggregator.sample_seconds
        for market_id in self.books:
            self._sample_seconds.setdefault(market_id, -1)
            self.pacer.subscribe(market_id)

    def add_market(self, market_id: int) -> None:
        """A market listed while this connection runs: subscribe it (paced)."""
        if market_id not in self.books:
            self.books[market_id] = OrderBook(market_id)
            self._sample_seconds.setdefault(market_id, -1)
            self.pacer.subscribe(market_id)

    def remove_market(self, market_id: int) -> None:
        """A market delisted while this connection runs: its top of book ends at the
        newest frame's time, and it is unsubscribed if the exchange holds it."""
        if self.books.pop(market_id, None) is not None:
            if self.last_timestamp is not None:
                self.aggregator.invalidate(market_id, self.last_timestamp)
            self.pacer.unsubscribe(market_id)

    def on_open(self) -> bool:
        """The socket is open. True when subscribing may start now (no `connected` frame to wait for)."""
        if self.wire.ready_on_open:
            self._connected()
            return True
        return False

    def on_frame(self, data: str | bytes) -> bool:
        """Handle one frame (text or binary). True when the pacer has something to send now."""
        self.counters.messages += 1
        try:
            frame = self.wire.parse(data)
        except MalformedFrame as exc:
            self._malformed(str(exc))
            return False
        if type(frame) is BookFrame:
            return self._on_book(frame)
        return self._on_control(frame)

    def drain(self, now_ms: int) -> list[str]:
        return self.pacer.drain(now_ms) if self.connected else []

    def valid_books(self) -> int:
        return sum(1 for book in self.books.values() if book.valid)

    # -- book frames (the hot path) ------------------------------------------------

    def _on_book(self, frame: BookFrame) -> bool:
        market_id = frame.market_id
        ts = frame.timestamp
        second = ts // 1000
        if second != self._second:  # the first frame of an exchange second: read the clock
            self._second = second
            if self._clock is not None:
                self._read_clock(ts, frame.is_snapshot)
        if ts >= self._ahead_limit:
            ts = self._clamp(market_id, ts)
            second = ts // 1000
        else:
            self.last_unclamped_stamp = ts
            if ts > self._kept_until:
                self._kept_until = ts
        book = self.books.get(market_id)
        if book is None:
            if frame.is_snapshot and self.pacer.awaits_answer(market_id):
                return self.pacer.ack(market_id)  # removed while subscribing: unsubscribe now
            self.counters.unknown_market += 1
            return False
        self.last_timestamp = ts
        wake = False
        if frame.is_snapshot:
            self.counters.snapshots += 1
            book.apply_snapshot(frame.bids, frame.asks, frame.nonce)
            wake = self.pacer.ack(market_id)
            if wake and not self.pacer.in_flight and not self.pacer.pending:
                self._log("info", self.label, "subscribed", f"subscribed: {len(self.pacer.subscribed)} order books live")
        else:
            self.counters.updates += 1
            was_valid = book.valid
            if not book.apply_update(frame.bids, frame.asks, frame.begin_nonce, frame.nonce):
                if was_valid:  # a fresh gap; while invalid we just wait for the snapshot
                    self._gap(book, ts, frame.begin_nonce)
                    return True
                return False
        bid_prices = book.bid_prices
        ask_prices = book.ask_prices
        if bid_prices and ask_prices:
            bid = bid_prices[-1]
            ask = ask_prices[0]
            if bid < ask:
                late = self.aggregator.add_tick(market_id, ts, bid, book.bids[bid], ask, book.asks[ask])
                if late and not frame.is_snapshot:
                    self.counters.dropped_late += 1
                # Depth is sampled on the first tick of each exchange second: the
                # per-message cost is one dict lookup.
                if self._sample_seconds[market_id] != second:
                    self._sample_seconds[market_id] = second
                    self.counters.depth_samples += 1
                    self.aggregator.add_sample(market_id, ts, book.band_depths(), book.slippages())
                return wake
            self.counters.crossed += 1
        else:
            self.counters.one_sided += 1
        self.aggregator.invalidate(market_id, ts)
        return wake

    def _gap(self, book: OrderBook, ts: int, begin_nonce: int) -> None:
        counters = self.counters
        counters.gaps += 1
        counters.gaps_by_market[book.market_id] = counters.gaps_by_market.get(book.market_id, 0) + 1
        self.aggregator.invalidate(book.market_id, ts)
        self.pacer.resubscribe(book.market_id)
        self._log(
            "warn",
            self.label,
            "gap",
            f"{self.wire.describe_gap(book.market_id, book.nonce, begin_nonce)}; book dropped, resubscribing",
        )

    # -- the exchange's clock against ours ----------------------------------------------

    def _read_clock(self, ts: int, snapshot: bool) -> None:
        self.end_reading()
        now = self._clock.now_ms()
        self._now = now
        self._kept_until = now
        self._ahead_limit = now + MAX_CLOCK_AHEAD_MS
        if not snapshot:  # a snapshot may carry its book's last change (Paradex), not its send time
            self.lag.add(now, now - ts)

    def end_reading(self) -> None:
        """The clock reading ends (the next exchange second, or the connection): how far
        ahead of it the stamps kept since ran, if they did, to the lag."""
        if self._clock is not None and self._kept_until > self._now:
            self.lag.kept_ahead(self._now, int(self._kept_until - self._now))
            self._kept_until = self._now

    def _clamp(self, market_id: int, ts: int) -> int:
        """A frame stamped more than MAX_CLOCK_AHEAD_MS ahead of our clock: its stamp is
        wrong, not the frame (it was applied in nonce order like any other), so it is
        placed at our clock when its second began. It keeps its tick, its depth sample
        and its place in the book's time line, and a wild stamp can neither open a
        window in the future nor move `flushed_until` out of the clock's reach. An
        exchange whose clock runs that far ahead thus loses nothing: its windows are
        placed by our clock instead (and `futureFrames` says so)."""
        counters = self.counters
        counters.future_frames += 1
        now = self._now
        if self._ahead_logged_at is None or now - self._ahead_logged_at >= CLOCK_AHEAD_LOG_EVERY_MS:
            self._ahead_logged_at = now
            self._log("warn", self.label, "clock_ahead",
                      f"frame of market {market_id} stamped {(ts - now) / 1000:.1f}s ahead of the tracker's "
                      f"clock: placed at the tracker's time ({counters.future_frames} such frame(s) "
                      f"on this connection)")
        return now

    # -- everything else ---------------------------------------------------------------

    def _on_control(self, frame: protocol.ControlFrame) -> bool:
        kind = frame.type
        if kind == "connected":
            self._connected()
            return True
        if kind == "ping" and self.wire.pong is not None:
            self.pacer.send_now(self.wire.pong)
            return True
        if kind == "error":
            return self._on_error(frame)
        if kind == "skipped":
            self.counters.skipped += 1
        # pong, heartbeats, acks (a subscribe is answered by its snapshot): nothing to do.
        return False

    def _connected(self) -> None:
        self.connected = True
        self._log("info", self.label, "connected", f"connected; subscribing to {len(self.books)} order books")

    def _on_error(self, frame: protocol.ControlFrame) -> bool:
        self.counters.errors += 1
        market_id = frame.market_id
        where = f" on market {market_id}" if market_id is not None else ""
        self._log("warn", self.label, "exchange_error", f"error {frame.code}{where}: {frame.message}")
        if frame.refusal is None or market_id is None:
            return False
        held = frame.refusal == "held"
        if market_id not in self.books:
            if self.pacer.awaits_answer(market_id):
                self.pacer.failed(market_id, held=held)
                return True
            return False
        self.books[market_id].invalidate()
        if self.last_timestamp is not None:
            self.aggregator.invalidate(market_id, self.last_timestamp)
        self.pacer.failed(market_id, held=held)
        return True

    def _malformed(self, reason: str) -> None:
        self.counters.malformed += 1
        n = self.counters.malformed
        if n <= 10 or n % MALFORMED_LOG_EVERY == 0:
            self._log("warn", self.label, "malformed", f"malformed frame #{n} skipped: {reason}")
