"""A deterministic, seeded stream of Lighter `order_book` frames, pre-generated into memory.

Every frame has exactly the shape of tests/fixtures/lighter/ws_order_book_update.json
(same keys, same order, compact JSON)::

    {"channel":"order_book:7","last_updated_at":..,"offset":..,"order_book":{"code":0,
     "asks":[{"price":"..","size":".."}],"bids":[..],"offset":..,"nonce":..,
     "last_updated_at":..,"begin_nonce":..},"timestamp":..,"type":"update/order_book"}

Per market there is one snapshot (`subscribed/order_book`, begin_nonce 0) and a chain
of deltas whose `begin_nonce` is the previous frame's `nonce`. Each delta changes 1-4
levels (size change, new level, level removed with size 0); the book always stays
two-sided and uncrossed, so every frame is a valid top-of-book tick for the tracker.
Frames average ~300 bytes.

`order` says which market the i-th delta of the whole stream belongs to (uniform,
seeded); `chains[k]` holds market k's deltas in order, so a sender can serve any
subset of markets (those subscribed so far) and still keep each market's nonce chain.

A frame is stored as `head` bytes ending in `"timestamp":`; the full frame is
``head + b"<13-digit ms>" + TAIL``. The sender stamps live time there (one clock read
per batch), the CPython floor and the tests stamp the generator's synthetic time.
Everything else (prices, sizes, nonces, offsets, `last_updated_at`) is fixed by the seed.
"""
from __future__ import annotations

import random
from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass

from lighter_sim.catalog import MarketSpec, build_catalog, order_books_row
from lighter_sim.config import SimConfig

UPDATE_TAIL = b',"type":"update/order_book"}'
SNAPSHOT_TAIL = b',"type":"subscribed/order_book"}'
TS_DIGITS = 13  # ms timestamps have 13 digits until the year 2286

BASE_TS_MS = 1_774_884_082_326  # the fixture's timestamp: the default synthetic clock start
DEFAULT_RATE_HINT = 10_000  # synthetic clock: deltas per second of the whole stream
SNAPSHOT_LEVELS = 20  # per side in the initial book
MIN_LEVELS, MAX_LEVELS = 8, 40  # per side, kept within these by the deltas
# Changes per delta: 1-4 with weights 55/25/15/5 %, so frames average ~320 bytes.


@dataclass
class Stream:
    seed: int
    specs: list[MarketSpec]  # market k of the stream is specs[k] (market_id == k)
    snapshots: list[bytes]  # heads, per market
    chains: list[list[bytes]]  # heads of each market's deltas, in order
    order: array  # market index of the i-th delta of the whole stream
    base_ts_ms: int
    rate_hint: int

    @property
    def markets(self) -> int:
        return len(self.specs)

    @property
    def deltas(self) -> int:
        return len(self.order)

    def market_ids(self) -> list[int]:
        return [s.market_id for s in self.specs]

    def order_books_json(self) -> dict:
        """The answer of GET /api/v1/orderBooks for these markets (Lighter's shape)."""
        return {"code": 200, "order_books": [order_books_row(s) for s in self.specs]}

    def synthetic_ts(self, position: int) -> int:
        """Exchange time (ms) of the delta at `position` of the whole stream."""
        return self.base_ts_ms + position * 1000 // self.rate_hint

    def text_frames(self, limit: int | None = None) -> list[str]:
        """Snapshots of every market, then the deltas in stream order, as the text
        Lighter would send when every market is subscribed, stamped with synthetic time."""
        out = [
            (head + str(self.base_ts_ms).encode() + SNAPSHOT_TAIL).decode()
            for head in self.snapshots
        ]
        cursor = [0] * self.markets
        chains = self.chains
        n = len(self.order) if limit is None else min(limit, len(self.order))
        for position in range(n):
            k = self.order[position]
            head = chains[k][cursor[k]]
            cursor[k] += 1
            out.append((head + str(self.synthetic_ts(position)).encode() + UPDATE_TAIL).decode())
        return out

    def nbytes(self) -> int:
        return sum(len(h) for c in self.chains for h in c) + sum(len(h) for h in self.snapshots)


class _MarketGen:
    """One market's book model (integer price ticks, sizes as pre-formatted strings)
    and its frame counters. Built for speed: ~5 µs a delta in CPython."""

    SIZE_POOL = 512  # distinct sizes a market draws from (formatted once)

    def __init__(self, spec: MarketSpec, seed: int) -> None:
        self.spec = spec
        rng = self.rng = random.Random(f"bench-stream:{seed}:{spec.market_id}")
        self.rand = rng.random
        self.channel = b'{"channel":"order_book:%d"' % spec.market_id
        pd, sd = spec.price_decimals, spec.size_decimals
        self.pscale = 10 ** pd
        self.pfmt = f"{{:.{pd}f}}"
        sscale = 10 ** sd
        # Sizes worth a few dollars to a few thousand: 1 lot .. ~2000 display units.
        self.sizes = [f"{rng.randint(1, 2000 * sscale) / sscale:.{sd}f}" for _ in range(self.SIZE_POOL)]
        self.zero = f"{0:.{sd}f}"
        self.prices: dict[int, str] = {}  # tick -> its decimal string
        mid = max(50, round(spec.price * self.pscale))
        spread = rng.randint(1, 3)
        best_bid = mid - spread // 2 - 1
        best_ask = best_bid + spread
        self.bids: dict[int, str] = {}
        self.asks: dict[int, str] = {}
        price = best_bid
        for _ in range(SNAPSHOT_LEVELS):
            self.bids[price] = self._size()
            price -= rng.randint(1, 3)
        price = best_ask
        for _ in range(SNAPSHOT_LEVELS):
            self.asks[price] = self._size()
            price += rng.randint(1, 3)
        self.bid_ticks = sorted(self.bids)  # ascending: best bid last
        self.ask_ticks = sorted(self.asks)  # ascending: best ask first
        self.nonce = rng.randint(10**9, 10**10)
        self.offset = rng.randint(1_000, 2_000_000)

    def _size(self) -> str:
        return self.sizes[int(self.rand() * self.SIZE_POOL)]

    def _price(self, tick: int) -> str:
        text = self.prices.get(tick)
        if text is None:
            text = self.prices[tick] = self.pfmt.format(tick / self.pscale)
        return text

    def _levels(self, items) -> str:
        price = self._price
        return ",".join(['{"price":"%s","size":"%s"}' % (price(t), q) for t, q in items])

    def _head(self, asks: str, bids: str, begin_nonce: int, lu_us: int) -> bytes:
        o = self.offset
        return self.channel + (
            ',"last_updated_at":%d,"offset":%d,"order_book":{"code":0,"asks":[%s],"bids":[%s],'
            '"offset":%d,"nonce":%d,"last_updated_at":%d,"begin_nonce":%d},"timestamp":'
            % (lu_us, o, asks, bids, o, self.nonce, lu_us, begin_nonce)
        ).encode()

    def snapshot(self, lu_us: int) -> bytes:
        asks = self._levels([(t, self.asks[t]) for t in self.ask_ticks])
        bids = self._levels([(t, self.bids[t]) for t in reversed(self.bid_ticks)])
        return self._head(asks, bids, 0, lu_us)

    def delta(self, lu_us: int) -> bytes:
        rand = self.rand
        ask_changes: dict[int, str] = {}
        bid_changes: dict[int, str] = {}
        u = rand() * 100.0
        n = 1 if u < 55 else 2 if u < 80 else 3 if u < 95 else 4
        for _ in range(n):
            side = rand() < 0.5
            if side:
                book, ticks, changes = self.asks, self.ask_ticks, ask_changes
            else:
                book, ticks, changes = self.bids, self.bid_ticks, bid_changes
            r = rand()
            depth = len(ticks)
            if (r < 0.15 and depth > MIN_LEVELS) or depth >= MAX_LEVELS:
                # remove a level among the 10 nearest the top (the best one too)
                i = int(rand() * min(10, depth))
                tick = ticks[i] if side else ticks[-1 - i]
                del book[tick]
                del ticks[bisect_left(ticks, tick)]
                changes[tick] = self.zero
            elif r < 0.4:
                # a new level: inside the spread or up to 25 ticks behind the top
                best_bid, best_ask = self.bid_ticks[-1], self.ask_ticks[0]
                if side:
                    tick = best_bid + 1 + int(rand() * (best_ask + 25 - best_bid))
                else:
                    tick = best_ask - 1 - int(rand() * (best_ask + 25 - best_bid))
                if tick <= 0 or tick in book:
                    continue
                size = book[tick] = self._size()
                insort(ticks, tick)
                changes[tick] = size
            else:
                # a new size for one of the 10 nearest the top
                i = int(rand() * min(10, depth))
                tick = ticks[i] if side else ticks[-1 - i]
                size = book[tick] = self._size()
                changes[tick] = size
        if not ask_changes and not bid_changes:  # every draw collided: resize the best bid
            tick = self.bid_ticks[-1]
            bid_changes[tick] = self.bids[tick] = self._size()
        asks = self._levels(sorted(ask_changes.items())) if ask_changes else ""
        bids = self._levels(sorted(bid_changes.items(), reverse=True)) if bid_changes else ""
        begin_nonce = self.nonce
        self.nonce += 1 + int(rand() * 40)
        self.offset += 1
        return self._head(asks, bids, begin_nonce, lu_us)


def generate(
    markets: int,
    deltas: int,
    seed: int = 1,
    base_ts_ms: int = BASE_TS_MS,
    rate_hint: int = DEFAULT_RATE_HINT,
) -> Stream:
    """Build `markets` books (lighter_sim's catalog: ids 0..markets-1, same symbols as the
    simulator with this seed) and `deltas` delta frames spread uniformly over them."""
    if not 1 <= markets <= 2000:
        raise ValueError("markets must be 1..2000")
    specs = build_catalog(SimConfig(markets=markets, seed=seed))
    gens = [_MarketGen(spec, seed) for spec in specs]
    base_us = base_ts_ms * 1000
    snapshots = [g.snapshot(base_us) for g in gens]
    order_rng = random.Random(f"bench-order:{seed}")
    order = array("H", order_rng.choices(range(markets), k=deltas))
    chains: list[list[bytes]] = [[] for _ in range(markets)]
    appends = [c.append for c in chains]
    deltas_fn = [g.delta for g in gens]
    step_us = 1_000_000 / rate_hint
    for position, k in enumerate(order):
        appends[k](deltas_fn[k](base_us + int(position * step_us)))
    return Stream(seed, specs, snapshots, chains, order, base_ts_ms, rate_hint)


# -- the same book changes as Paradex SBE frames -------------------------------------------

SBE_TS = slice(8, 16)  # BookEvent: 8-byte SBE header, then ts_us (int64 LE) at 8..16
PARADEX_SEQ_BASE = 1_000  # a market's snapshot has this seq; its i-th delta seq + 1 + i


def paradex_symbol(spec: MarketSpec) -> str:
    return f"{spec.symbol}-USD-PERP"


def paradex_markets_json(stream: Stream) -> dict:
    """The answer of GET /v1/markets for the stream's markets (Paradex's shape, all PERP)."""
    def step(decimals: int) -> str:
        return "1" if decimals <= 0 else "0." + "0" * (decimals - 1) + "1"

    return {"results": [
        {"symbol": paradex_symbol(s), "asset_kind": "PERP", "price_tick_size": step(s.price_decimals),
         "order_size_increment": step(s.size_decimals), "open_at": 0, "expiry_at": 0}
        for s in stream.specs]}


def _levels_of(head: bytes, tail: bytes) -> tuple[list, list]:
    import json

    book = json.loads(head + b"0" + tail)["order_book"]
    return ([(lv["price"], lv["size"]) for lv in book["bids"]],
            [(lv["price"], lv["size"]) for lv in book["asks"]])


@dataclass
class SbeFrames:
    """The stream's frames as Paradex BookEvents (tests/paradex_frames.py's encoder),
    each split around its timestamp: ``head + ts_us (8 bytes LE) + tail``. Same
    markets, same levels, same order as the Lighter frames; seq continues per market."""
    symbols: list[str]  # market k's symbol
    snapshots: list[tuple[bytes, bytes]]
    chains: list[list[tuple[bytes, bytes]]]

    def frame(self, split: tuple[bytes, bytes], ts_us: int) -> bytes:
        return split[0] + ts_us.to_bytes(8, "little", signed=True) + split[1]


def sbe_frames(stream: Stream) -> SbeFrames:
    """Encode every snapshot and delta of `stream` as a Paradex SBE BookEvent (~15 µs a frame)."""
    import sys
    from pathlib import Path

    tests = str(Path(__file__).resolve().parents[2] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from paradex_frames import encode_book

    def split(frame: bytes) -> tuple[bytes, bytes]:
        return frame[:SBE_TS.start], frame[SBE_TS.stop:]

    symbols = [paradex_symbol(s) for s in stream.specs]
    snapshots = []
    chains = []
    for k, symbol in enumerate(symbols):
        bids, asks = _levels_of(stream.snapshots[k], SNAPSHOT_TAIL)
        snapshots.append(split(encode_book(ts_us=0, seq=PARADEX_SEQ_BASE, snapshot=True, market=symbol,
                                           bids=bids, asks=asks)))
        chain = []
        for i, head in enumerate(stream.chains[k]):
            bids, asks = _levels_of(head, UPDATE_TAIL)
            chain.append(split(encode_book(ts_us=0, seq=PARADEX_SEQ_BASE + 1 + i, market=symbol,
                                           bids=bids, asks=asks)))
        chains.append(chain)
    return SbeFrames(symbols, snapshots, chains)
