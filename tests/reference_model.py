"""A deliberately naive reference for the tracker's order books and window statistics.

Nothing here imports `src/tracker`: it restates, as plainly as possible, what the
tracker documents, so the unit tests (and the integration tests, from the
simulator's record of the frames it sent) can recompute the expected results and
compare. Speed is no concern here; obviousness is.

Order book
    `NaiveBook` keeps each side as a dict of Decimal price -> Decimal size and finds
    the best bid / ask with max() / min() over every level each time. A delta sets
    a level's absolute size, size 0 removes it. Every update's begin_nonce must
    equal the previous frame's nonce, otherwise the book is invalid until the next
    snapshot.

Paradex frames
    A Paradex book frame is one SBE BookEvent (binary). `decode_paradex_book` reads it
    the plain way (layout restated there); NaiveBook.apply_sbe applies it: a SNAPSHOT
    replaces the book, a DELTA must carry seq = previous seq + 1 (the same chain as a
    Lighter update whose begin_nonce is seq - 1), otherwise the book is invalid until
    the next SNAPSHOT.

Window statistics (`expected_windows`)
    Input: events in arrival order. An event is (market, ts_ms, kind, bid, bid_size,
    ask, ask_size) with kind:
      'tick'     the market's book is valid and two-sided with bid < ask after a frame
                 stamped ts_ms; bid/ask/sizes are its top of book;
      'invalid'  after a frame stamped ts_ms the market has no usable top of book
                 (gap, crossed, one-sided, before its first snapshot);
      'flush'    (market ignored) the tracker closed every window ending at or before
                 ts_ms (close_until); ts_ms is floored to a window boundary.
    Rules:
      * windows are [k*window_ms, (k+1)*window_ms) of the exchange timestamp;
      * a tick stamped before the newest flush boundary is LATE: it is counted and
        never enters a window's statistics; its top of book still becomes the
        market's standing top from the flush boundary on;
      * every other tick enters the statistics of the window holding its timestamp:
        avg_bid, avg_ask, avg_spread, avg_spread_bps (mean of spread/mid*1e4 per
        tick), min/max spread, avg bid/ask sizes, tick_count, last bid/ask (the
        last such tick in arrival order), avg_mid = (avg_bid + avg_ask) / 2;
      * time weighting: a tick's mid stands from its timestamp until the market's
        next tick or invalidation (each market keeps a clock that never runs
        backwards: a tick stamped before the clock replaces the standing mid without
        crediting any time), cut at window boundaries, at each flush boundary and at
        the final close (`close_at`; None: windows simply end at their ends).
        Time while a market has no standing top (after an invalidation, before its
        first tick) is not covered. After an invalidation that ended a standing mid,
        the market's time is credited up to it: a tick stamped earlier (a Paradex
        snapshot carries its book's last change) stands from there, never crediting
        the same time twice. twap_mid = sum(mid * ms) / covered_ms, None when
        covered_ms is 0;
      * rows exist only for (market, window) pairs with at least one tick.

Depth (issue 11), when the events carry it
    A 'tick' event may carry `depths`: the quote notional (sum of price * size, exact
    Decimal arithmetic) within 10, 50 and 100 bps of the mid on each side of the book
    after that frame, as (bid_10, ask_10, bid_50, ask_50, bid_100, ask_100). A bid
    level is inside band B when price >= mid * (1 - B/10000), an ask level when
    price <= mid * (1 + B/10000): a level exactly on the edge is inside.
      * sampling: a tick is sampled when its ts_ms // 1000 differs from that market's
        previous sample's (the first tick of each exchange second; a late tick is
        sampled too, but its sample goes nowhere, like the tick);
      * a window's depth columns are the means of its samples, imbalance_50 =
        (bid_50 - ask_50) / (bid_50 + ask_50) of those means (None when both are 0),
        depth_samples = how many; with no sample they are None and 0;
      * either every tick carries depths or none does (then rows have no depth keys);
        a reader that knows the sampling rule may give them only to the ticks it samples
        (SampleClock: the rule once, for both): a sampled tick without them is an error.

Slippage (issue 20), with the depths
    A tick that carries depths carries `slips` too: for each size of SLIPPAGE_SIZES (quote
    notional in USD, 1k 10k 100k 1m) what a market order of that size would cost on the
    book after that frame, in bps of the mid, buy then sell: (buy_1k, sell_1k, buy_10k,
    ..., sell_1m), None where that side's levels cannot fill the size. A buy takes the
    asks from the lowest up, a sell the bids from the highest down, whole levels until
    one completes the size, of which it takes the base quantity (size - notional taken so
    far) / price. VWAP = size / base quantity taken; buy (VWAP - mid) / mid * 1e4, sell
    (mid - VWAP) / mid * 1e4. Computed in Decimal with 60 digits: the book's sums and
    products are exact, the VWAP is one division (exact when it can be: a size the best
    level fills has exactly that level's price), so only the final float rounds.
      * a sample fills a size when both its buy and its sell are not None;
      * a window's slip_buy_<size> / slip_sell_<size> are the means over its samples that
        fill that size, fill_samples_<size> how many; None and 0 when none does.

Minute rows (`expected_minutes`) and hour rows (`expected_hours`)
    Per (symbol, minute): tick-weighted means of the windows' means, min/max of their
    spreads, last bid/ask of the newest window, twap weighted by covered_ms, depth
    means weighted by depth_samples (rows without samples weigh nothing), slippage
    means weighted by fill_samples_<size> (likewise). Hours are the same over the
    hour's minute rows; their `windows` is the sum of the minutes'.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any, Iterable, NamedTuple

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
BANDS_BPS = (10, 50, 100)
DEPTH_MEANS = ("bid_depth_10", "ask_depth_10", "bid_depth_50", "ask_depth_50", "bid_depth_100", "ask_depth_100")
DEPTH_COLUMNS = DEPTH_MEANS + ("imbalance_50", "depth_samples")
SLIPPAGE_SIZES = (1_000, 10_000, 100_000, 1_000_000)  # quote notional, USD
SLIPPAGE_NAMES = ("1k", "10k", "100k", "1m")
SLIPPAGE_COLUMNS = tuple(f"{c}_{n}" for n in SLIPPAGE_NAMES for c in ("slip_buy", "slip_sell", "fill_samples"))


# ---------------------------------------------------------------------------
# Order book
# ---------------------------------------------------------------------------


class NaiveBook:
    """The obvious order book: dicts, max/min over all levels, a nonce chain."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.nonce: int | None = None
        self.valid = False

    @staticmethod
    def _set(side: dict[Decimal, Decimal], levels: Iterable[tuple[Any, Any]]) -> None:
        for price, size in levels:
            p, s = Decimal(str(price)), Decimal(str(size))
            if s == 0:
                side.pop(p, None)
            else:
                side[p] = s

    def snapshot(self, bids: Iterable, asks: Iterable, nonce: int) -> None:
        self.bids, self.asks = {}, {}
        self._set(self.bids, bids)
        self._set(self.asks, asks)
        self.nonce = nonce
        self.valid = True

    def update(self, bids: Iterable, asks: Iterable, begin_nonce: int, nonce: int) -> bool:
        if not self.valid or begin_nonce != self.nonce:
            self.valid = False
            return False
        self._set(self.bids, bids)
        self._set(self.asks, asks)
        self.nonce = nonce
        return True

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        if not self.bids:
            return None
        price = max(self.bids)
        return price, self.bids[price]

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        if not self.asks:
            return None
        price = min(self.asks)
        return price, self.asks[price]

    def band_depths(self) -> tuple[float, ...]:
        """(bid_10, ask_10, bid_50, ask_50, bid_100, ask_100): sum of price * size of the
        levels within each band of the mid, computed exactly (Decimal), then as floats."""
        with localcontext() as ctx:
            ctx.prec = 60
            mid = (max(self.bids) + min(self.asks)) / 2
            out = []
            for band in BANDS_BPS:
                low = mid * (1 - Decimal(band) / 10_000)
                high = mid * (1 + Decimal(band) / 10_000)
                out.append(float(sum((p * s for p, s in self.bids.items() if p >= low), Decimal(0))))
                out.append(float(sum((p * s for p, s in self.asks.items() if p <= high), Decimal(0))))
        return tuple(out)

    def slippages(self) -> tuple[float | None, ...]:
        """(buy_1k, sell_1k, buy_10k, sell_10k, ...) in bps of the mid, None where the side
        cannot fill the size (see the module doc), each size walked on its own."""
        with localcontext() as ctx:
            ctx.prec = 60  # every sum and product of the book's decimals (~35 digits at most) is exact
            mid = (max(self.bids) + min(self.asks)) / 2
            asks = sorted(self.asks.items())
            bids = sorted(self.bids.items(), reverse=True)
            out: list[float | None] = []
            for size in SLIPPAGE_SIZES:
                buy = _vwap(asks, Decimal(size))
                sell = _vwap(bids, Decimal(size))
                out.append(None if buy is None else float((buy - mid) / mid * 10_000))
                out.append(None if sell is None else float((mid - sell) / mid * 10_000))
        return tuple(out)

    def top_event(self, market: int, ts_ms: int, depth: bool = False, clock: "SampleClock | None" = None) -> "Event":
        """The aggregator event this book's state amounts to after a frame at ts_ms
        (with `depth`, a tick carries the book's band depths and slippages; with a
        `clock`, only the ticks it samples do)."""
        bb, ba = self.best_bid(), self.best_ask()
        if not self.valid or bb is None or ba is None or bb[0] >= ba[0]:
            return Event(market, ts_ms, "invalid")
        depths = slips = None
        if depth or (clock is not None and clock.due(market, ts_ms)):
            depths, slips = self.band_depths(), self.slippages()
        return Event(market, ts_ms, "tick", float(bb[0]), float(bb[1]), float(ba[0]), float(ba[1]), depths, slips)

    def apply_frame(self, text: str) -> None:
        """Apply a Lighter order-book frame (its JSON text) the obvious way."""
        frame = json.loads(text)
        body = frame["order_book"]
        bids = [(level["price"], level["size"]) for level in body.get("bids", [])]
        asks = [(level["price"], level["size"]) for level in body.get("asks", [])]
        if frame["type"] == "subscribed/order_book":
            self.snapshot(bids, asks, body["nonce"])
        else:
            self.update(bids, asks, body["begin_nonce"], body["nonce"])

    def apply_sbe(self, frame: bytes) -> None:
        """Apply a Paradex SBE frame the obvious way (frames of other templates change
        nothing): a DELTA chains onto the previous frame when its seq is one more."""
        event = decode_paradex_book(frame)
        if event is None:
            return
        if event["snapshot"]:
            self.snapshot(event["bids"], event["asks"], event["seq"])
        else:
            self.update(event["bids"], event["asks"], event["seq"] - 1, event["seq"])


def _vwap(levels: list[tuple[Decimal, Decimal]], size: Decimal) -> Decimal | None:
    """The average price of `size` quote notional taken from `levels` (best first), or
    None when all of them hold less. Whole levels while they do not complete it; of the
    one that does, (size - cost) / price base units. VWAP = size / quantity, written as
    size * price / (qty * price + size - cost) so that it is one division."""
    cost = qty = Decimal(0)
    for price, amount in levels:
        if cost + price * amount >= size:
            return size * price / (qty * price + size - cost)
        cost += price * amount
        qty += amount
    return None


class SampleClock:
    """The depth-sampling rule, once: a market's tick is sampled when its exchange second
    (ts_ms // 1000) differs from that of the market's previous sample."""

    def __init__(self) -> None:
        self.seconds: dict[int, int] = {}

    def due(self, market: int, ts_ms: int) -> bool:
        second = ts_ms // 1000
        if self.seconds.get(market) == second:
            return False
        self.seconds[market] = second
        return True


# ---------------------------------------------------------------------------
# Paradex SBE book frames, read (and written, for tests) the plain way
# ---------------------------------------------------------------------------
#
# Every number is little-endian; nothing is padded. A frame is:
#   offset 0   blockLength  uint16  length of the fixed part after this 8-byte header
#   offset 2   templateId   uint16  3 = BookEvent (40 = heartbeat, others: not a book frame)
#   offset 4   schemaId     uint16  1
#   offset 6   version      uint16  1
#   offset 8   ts           int64   microseconds
#   offset 16  seq          int64   the market's order-book sequence number
#   offset 24  pkgType      uint8   0 = SNAPSHOT, 1 = DELTA
#   offset 25  nine int64 best-price fields (not needed to rebuild the book)
#   offset 8 + blockLength: the bids, then the asks, each as
#       entryLength uint16, count uint16, then `count` entries of entryLength bytes
#       whose first 16 bytes are price int64, size int64
#   then the market symbol: length uint8, then that many UTF-8 bytes.
# Prices and sizes are integers to be multiplied by 10^-8. Size 0 removes a level.


def decode_paradex_book(frame: bytes) -> dict | None:
    """One Paradex binary frame -> {"ts_us", "seq", "snapshot", "market", "bids", "asks"}
    with Decimal (price, size) pairs, or None when it is not a book frame (template
    other than 3). Raises ValueError for a frame that cannot be read."""
    try:
        block_length, template, schema, _version = struct.unpack_from("<HHHH", frame, 0)
        if schema != 1:
            raise ValueError(f"schema {schema}, not 1")
        if template != 3:
            return None
        ts_us, seq = struct.unpack_from("<qq", frame, 8)
        pkg_type = frame[24]
        position = 8 + block_length
        sides = []
        for _side in ("bids", "asks"):
            entry_length, count = struct.unpack_from("<HH", frame, position)
            position += 4
            levels = []
            for i in range(count):
                price, size = struct.unpack_from("<qq", frame, position + i * entry_length)
                levels.append((Decimal(price).scaleb(-8), Decimal(size).scaleb(-8)))
            position += count * entry_length
            sides.append(levels)
        length = frame[position]
        market = frame[position + 1:position + 1 + length]
        if len(market) != length:
            raise ValueError("market symbol cut short")
    except (struct.error, IndexError) as e:
        raise ValueError(f"unreadable frame: {e}") from None
    return {"ts_us": ts_us, "seq": seq, "snapshot": pkg_type == 0, "market": market.decode("utf-8"),
            "bids": sides[0], "asks": sides[1]}


def paradex_book_frame(market: str, *, ts_us: int, seq: int, bids: Iterable[tuple[str, str]] = (),
                       asks: Iterable[tuple[str, str]] = (), snapshot: bool = False,
                       block_length: int = 89, entry_length: int = 16) -> bytes:
    """A Paradex BookEvent with the best-price fields null, (price, size) given as
    decimal strings; a longer block_length / entry_length appends filler bytes."""
    def group(levels: Iterable[tuple[str, str]]) -> bytes:
        levels = list(levels)
        out = struct.pack("<HH", entry_length, len(levels))
        for price, size in levels:
            out += struct.pack("<qq", int(Decimal(price).scaleb(8)), int(Decimal(size).scaleb(8)))
            out += b"\xee" * (entry_length - 16)
        return out
    fixed = struct.pack("<qqB", ts_us, seq, 0 if snapshot else 1) + struct.pack("<q", -(2**63)) * 9
    fixed += b"\xee" * (block_length - 89)
    name = market.encode("utf-8")
    return (struct.pack("<HHHH", block_length, 3, 1, 1) + fixed + group(bids) + group(asks)
            + bytes([len(name)]) + name)


# ---------------------------------------------------------------------------
# Lighter frames, in the exact JSON shape of the captures
# ---------------------------------------------------------------------------


def book_frame(
    market: int,
    *,
    ts_ms: int,
    nonce: int,
    begin_nonce: int = 0,
    bids: Iterable[tuple[str, str]] = (),
    asks: Iterable[tuple[str, str]] = (),
    snapshot: bool = False,
    offset: int = 1,
) -> str:
    """A `subscribed/order_book` (snapshot=True) or `update/order_book` frame."""
    return json.dumps(
        {
            "channel": f"order_book:{market}",
            "last_updated_at": ts_ms * 1000,
            "offset": offset,
            "order_book": {
                "code": 0,
                "asks": [{"price": p, "size": s} for p, s in asks],
                "bids": [{"price": p, "size": s} for p, s in bids],
                "offset": offset,
                "nonce": nonce,
                "last_updated_at": ts_ms * 1000,
                "begin_nonce": 0 if snapshot else begin_nonce,
            },
            "timestamp": ts_ms,
            "type": "subscribed/order_book" if snapshot else "update/order_book",
        }
    )


# ---------------------------------------------------------------------------
# Window statistics
# ---------------------------------------------------------------------------


class Event(NamedTuple):
    market: int
    ts_ms: int
    kind: str  # 'tick' | 'invalid' | 'flush'
    bid: float | None = None
    bid_size: float | None = None
    ask: float | None = None
    ask_size: float | None = None
    depths: tuple[float, ...] | None = None  # a tick's band depths (see the module doc)
    slips: tuple[float | None, ...] | None = None  # its slippages, given with the depths


def _event(raw: Any) -> Event:
    if isinstance(raw, Event):
        return raw
    if isinstance(raw, dict):
        return Event(**raw)
    return Event(*raw)


def events_from_sim_record(records: Iterable[dict], *, split_connections: bool = True) -> list[Event]:
    """Simulator record entries (in the order sent) -> events.

    A record with `valid` true and both sides present with bid < ask is a tick of
    its top of book; anything else is an invalidation of that market, except an
    injected malformed frame (type `malformed/<kind>`): the tracker counts it and
    skips it, and so does the reference (it is no book frame, and its timestamp is
    the simulator's clock, not the book's).

    Records carrying `frame` (the simulator's record_frames: a Lighter frame's text) or
    `frame_b64` (a Paradex SBE frame's bytes, base64): each connection's books are
    replayed from the frames with NaiveBook, every tick carries the band depths of the
    replayed book, and the replayed top of book must equal the record's.

    With `split_connections` (and records carrying `conn_id`), where one
    connection's records end and the next one's begin, every market seen on the
    old connection is invalidated at the timestamp of its last record: the tracker
    lets no top of book stand through a disconnect (it invalidates its books at the
    last frame's timestamp when it drops a connection).
    """
    events: list[Event] = []
    conn = None
    seen: list[int] = []
    last_ts = None
    books: dict[tuple[Any, int], NaiveBook] = {}
    for r in records:
        if str(r.get("type", "")).startswith("malformed/"):
            continue
        market, ts = int(r["market_id"]), int(r["timestamp_ms"])
        if split_connections and r.get("conn_id") != conn:
            if conn is not None and last_ts is not None:
                events.extend(Event(m, last_ts, "invalid") for m in seen)
            conn, seen = r.get("conn_id"), []
        if market not in seen:
            seen.append(market)
        last_ts = ts
        bid, ask = r.get("best_bid"), r.get("best_ask")
        bid_size, ask_size = r.get("best_bid_size"), r.get("best_ask_size")
        if (
            r.get("valid")
            and None not in (bid, ask, bid_size, ask_size)
            and Decimal(str(bid)) < Decimal(str(ask))
        ):
            depths = slips = None
            if "frame" in r or "frame_b64" in r:
                book = books.setdefault((r.get("conn_id"), market), NaiveBook())
                _apply_recorded_frame(book, r)
                replayed = (book.best_bid(), book.best_ask())
                recorded = ((Decimal(str(bid)), Decimal(str(bid_size))), (Decimal(str(ask)), Decimal(str(ask_size))))
                if not book.valid or replayed != recorded:
                    raise ValueError(f"replayed book of market {market} at {ts} disagrees with the record: "
                                     f"{replayed} != {recorded}")
                depths, slips = book.band_depths(), book.slippages()
            events.append(Event(market, ts, "tick", float(bid), float(bid_size), float(ask), float(ask_size),
                                depths, slips))
        else:
            if r.get("type") in BOOK_RECORD_TYPES and ("frame" in r or "frame_b64" in r):
                _apply_recorded_frame(books.setdefault((r.get("conn_id"), market), NaiveBook()), r)
            events.append(Event(market, ts, "invalid"))
    return events


# record types of real book frames: Lighter's, then Paradex's (malformed/... are not)
BOOK_RECORD_TYPES = ("subscribed/order_book", "update/order_book", "snapshot", "delta")


def _apply_recorded_frame(book: NaiveBook, record: dict) -> None:
    if "frame_b64" in record:
        book.apply_sbe(base64.b64decode(record["frame_b64"]))
    else:
        book.apply_frame(record["frame"])


@dataclass
class _Window:
    ticks: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass
class Replay:
    """Everything `replay` works out: rows per (market, window start) and late ticks."""

    windows: dict[tuple[int, int], dict]
    late_ticks: int
    segments: list[tuple[int, int, int, float]]  # (market, from_ms, to_ms, mid)


def replay(
    events: Iterable[Any],
    window_ms: int,
    *,
    flushed_until: int = 0,
    close_at: int | None = None,
) -> Replay:
    events = [_event(e) for e in events]
    ticks: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
    samples: dict[tuple[int, int], list[Event]] = {}
    clock = SampleClock()
    # Depth mode: some tick carries depths. Then every sampled tick must (module doc).
    with_depth = any(e.depths is not None for e in events if e.kind == "tick")
    segments: list[tuple[int, int, int, float]] = []
    standing: dict[int, list] = {}  # market -> [since_ms, mid]
    credited: dict[int, int] = {}  # market -> how far its time was credited when its top was invalidated
    late = 0

    for e in events:
        if e.kind == "flush":
            boundary = e.ts_ms - e.ts_ms % window_ms
            if boundary > flushed_until:
                flushed_until = boundary
                for market, (since, mid) in standing.items():
                    if since < boundary:
                        segments.append((market, since, boundary, mid))
                        standing[market] = [boundary, mid]
            continue
        if e.kind == "invalid":
            old = standing.pop(e.market, None)
            if old is not None and e.ts_ms > old[0]:
                segments.append((e.market, old[0], e.ts_ms, old[1]))
            if old is not None:  # a later tick stamped before this point credits nothing twice
                credited[e.market] = max(e.ts_ms, old[0], credited.get(e.market, e.ts_ms))
            continue
        if e.kind != "tick":
            raise ValueError(f"unknown event kind {e.kind!r}")
        mid = (e.bid + e.ask) / 2
        old = standing.get(e.market)
        sample = None
        if with_depth and clock.due(e.market, e.ts_ms):
            if e.depths is None:
                raise ValueError(f"a sampled tick ({e.market} at {e.ts_ms}) carries no depths, others do")
            sample = e
        if e.ts_ms < flushed_until:
            late += 1
            standing[e.market] = [max(flushed_until, credited.get(e.market, 0)) if old is None else old[0], mid]
            continue
        start = e.ts_ms - e.ts_ms % window_ms
        ticks.setdefault((e.market, start), []).append((e.bid, e.bid_size, e.ask, e.ask_size))
        if sample is not None:
            samples.setdefault((e.market, start), []).append(sample)
        if old is None:  # its mid stands from its stamp, or from where time was credited to, if later
            standing[e.market] = [max(e.ts_ms, credited.get(e.market, e.ts_ms)), mid]
        elif e.ts_ms > old[0]:
            segments.append((e.market, old[0], e.ts_ms, old[1]))
            standing[e.market] = [e.ts_ms, mid]
        else:  # stamped before the market's clock: new mid, clock unchanged
            standing[e.market] = [old[0], mid]

    end_of_time = close_at if close_at is not None else float("inf")
    for market, (since, mid) in standing.items():
        if end_of_time > since:
            segments.append((market, since, end_of_time, mid))

    windows = {}
    for (market, start), tick_list in ticks.items():
        end = start + window_ms
        covered = 0
        weighted = 0.0
        for seg_market, a, b, mid in segments:
            if seg_market != market:
                continue
            overlap = min(b, end) - max(a, start)
            if overlap > 0:
                covered += overlap
                weighted += mid * overlap
        row = _window_row(market, start, window_ms, tick_list, covered, weighted)
        if with_depth:
            sampled = samples.get((market, start), [])
            row.update(_depth_columns([e.depths for e in sampled]))
            row.update(_slippage_columns([e.slips for e in sampled]))
        windows[(market, start)] = row
    return Replay(windows=windows, late_ticks=late, segments=segments)


def _window_row(market, start, window_ms, tick_list, covered, weighted) -> dict:
    n = len(tick_list)
    bids = [t[0] for t in tick_list]
    asks = [t[2] for t in tick_list]
    spreads = [ask - bid for bid, _, ask, _ in tick_list]
    bps = [(ask - bid) / ((bid + ask) / 2) * 10_000 for bid, _, ask, _ in tick_list]
    avg_bid = sum(bids) / n
    avg_ask = sum(asks) / n
    covered = int(covered)
    return {
        "market_index": market,
        "timestamp": start,
        "avg_bid": avg_bid,
        "avg_ask": avg_ask,
        "avg_spread": sum(spreads) / n,
        "tick_count": n,
        "avg_mid": (avg_bid + avg_ask) / 2,
        "avg_spread_bps": sum(bps) / n,
        "min_spread": min(spreads),
        "max_spread": max(spreads),
        "avg_bid_size": sum(t[1] for t in tick_list) / n,
        "avg_ask_size": sum(t[3] for t in tick_list) / n,
        "last_bid": tick_list[-1][0],
        "last_ask": tick_list[-1][2],
        "twap_mid": weighted / covered if covered else None,
        "covered_ms": covered,
        "window_ms": window_ms,
    }


def _imbalance(bid: float | None, ask: float | None) -> float | None:
    if bid is None or ask is None or bid + ask == 0:
        return None
    return (bid - ask) / (bid + ask)


def _depth_columns(sample_list: list[tuple[float, ...]]) -> dict:
    n = len(sample_list)
    means = {
        name: (sum(s[i] for s in sample_list) / n if n else None) for i, name in enumerate(DEPTH_MEANS)
    }
    return {**means, "imbalance_50": _imbalance(means["bid_depth_50"], means["ask_depth_50"]), "depth_samples": n}


def _slippage_columns(slip_list: list[tuple[float | None, ...]]) -> dict:
    out = {}
    for k, name in enumerate(SLIPPAGE_NAMES):
        filled = [s for s in slip_list if s[2 * k] is not None and s[2 * k + 1] is not None]
        n = len(filled)
        out[f"slip_buy_{name}"] = sum(s[2 * k] for s in filled) / n if n else None
        out[f"slip_sell_{name}"] = sum(s[2 * k + 1] for s in filled) / n if n else None
        out[f"fill_samples_{name}"] = n
    return out


def expected_windows(
    events: Iterable[Any],
    window_ms: int,
    *,
    flushed_until: int = 0,
    close_at: int | None = None,
) -> dict[tuple[int, int], dict]:
    """(market, window start) -> the row the tracker should write for that window."""
    return replay(events, window_ms, flushed_until=flushed_until, close_at=close_at).windows


def expected_late_ticks(events: Iterable[Any], window_ms: int, *, flushed_until: int = 0) -> int:
    return replay(events, window_ms, flushed_until=flushed_until).late_ticks


# ---------------------------------------------------------------------------
# Minute rows
# ---------------------------------------------------------------------------

_MEANS = ("avg_bid", "avg_ask", "avg_spread", "avg_spread_bps", "avg_bid_size", "avg_ask_size")


def expected_minutes(window_rows: Iterable[dict]) -> dict[tuple[str, int], dict]:
    """(symbol, minute start) -> the minute row rolled up from window rows (dicts as D1
    returns them: symbol, market_index, timestamp, the statistics, covered_ms, and the
    depth columns if they have them). Rows are grouped by market, as the tracker keys
    them: a market renamed within a minute makes one row, under its newest symbol."""
    return _expected_rollup(window_rows, MINUTE_MS, lambda rows: len(rows))


def expected_hours(minute_rows: Iterable[dict]) -> dict[tuple[str, int], dict]:
    """(symbol, hour start) -> the hour row rolled up from minute rows."""
    return _expected_rollup(minute_rows, HOUR_MS, lambda rows: sum(r["windows"] for r in rows))


def _expected_rollup(parts: Iterable[dict], period: int, windows_of) -> dict[tuple[str, int], dict]:
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in parts:
        if row["tick_count"] <= 0:
            continue
        start = row["timestamp"] - row["timestamp"] % period
        groups.setdefault((row["market_index"], start), []).append(row)
    out = {}
    for (_, start), rows in groups.items():
        newest = max(rows, key=lambda r: r["timestamp"])
        symbol = newest["symbol"]
        ticks = sum(r["tick_count"] for r in rows)
        rolled = {
            "symbol": symbol,
            "market_index": newest["market_index"],
            "timestamp": start,
            "tick_count": ticks,
            "windows": windows_of(rows),
            "min_spread": min(r["min_spread"] for r in rows),
            "max_spread": max(r["max_spread"] for r in rows),
            "last_bid": newest["last_bid"],
            "last_ask": newest["last_ask"],
        }
        for name in _MEANS:
            rolled[name] = sum(r[name] * r["tick_count"] for r in rows) / ticks
        rolled["avg_mid"] = (rolled["avg_bid"] + rolled["avg_ask"]) / 2
        timed = [r for r in rows if r["twap_mid"] is not None and r["covered_ms"] > 0]
        covered = sum(r["covered_ms"] for r in timed)
        rolled["covered_ms"] = covered
        rolled["twap_mid"] = sum(r["twap_mid"] * r["covered_ms"] for r in timed) / covered if covered else None
        if any("depth_samples" in r for r in rows):
            sampled = [r for r in rows if (r.get("depth_samples") or 0) > 0]
            n = sum(r["depth_samples"] for r in sampled)
            for name in DEPTH_MEANS:
                rolled[name] = sum(r[name] * r["depth_samples"] for r in sampled) / n if n else None
            rolled["imbalance_50"] = _imbalance(rolled["bid_depth_50"], rolled["ask_depth_50"])
            rolled["depth_samples"] = n
        if any(f"fill_samples_{name}" in r for r in rows for name in SLIPPAGE_NAMES):
            for name in SLIPPAGE_NAMES:
                count = f"fill_samples_{name}"
                filled = [r for r in rows if (r.get(count) or 0) > 0]  # rows from before weigh nothing
                n = sum(r[count] for r in filled)
                for side in ("buy", "sell"):
                    column = f"slip_{side}_{name}"
                    rolled[column] = sum(r[column] * r[count] for r in filled) / n if n else None
                rolled[count] = n
        out[(symbol, start)] = rolled
    return out


# ---------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------


def close_enough(a: Any, b: Any, rel: float = 1e-9, abs_tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_tol)
    return a == b


def row_mismatches(actual: dict, expected: dict, rel: float = 1e-9) -> list[str]:
    """Field-by-field differences between a produced row and the reference's ([] if equal).
    Every column the reference computed is compared, the depth columns included when
    it had depths; a column the produced row lacks is a mismatch even if expected None."""
    return [
        f"{name}: missing, expected {value!r}" if name not in actual
        else f"{name}: got {actual[name]!r}, expected {value!r}"
        for name, value in expected.items()
        if name not in actual or not close_enough(actual[name], value, rel)
    ]
