"""Order book model and the seeded update generator of one market.

Prices and sizes are integers (ticks and lots at the market's decimals) so that
formatting is exact and the same level always prints the same string: the
official SDK matches delta levels to book levels by comparing price strings.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from .catalog import MarketSpec

BID, ASK = 0, 1
# Book depth by market id (modulo): a typical order is worth $300 times this. With ~20
# levels a side, the thin books hold tens of thousands of dollars (1k fills, 1m never), the
# middling about a million (1m fills now and then), the deep tens of millions (1m
# fills, often at the best level): every slippage size is seen filled and not (issue 20).
DEPTH_TIERS = (3, 100, 3000)
Top = tuple[Optional[int], Optional[int], Optional[int], Optional[int]]  # bid, bid size, ask, ask size


def make_formatter(decimals: int) -> Callable[[int], str]:
    """Integer in units of 10**-decimals -> decimal string with exactly `decimals` places."""
    if decimals == 0:
        return str
    scale = 10 ** decimals

    def fmt(v: int) -> str:
        q, r = divmod(v, scale)
        return f"{q}.{r:0{decimals}d}"
    return fmt


@dataclass(slots=True)
class Change:
    side: int
    tick: int
    lots: int  # new absolute size; 0 deletes the level
    old: int  # size before the update (0: the level did not exist) - lets a view undo it


class Book:
    """Two price->size maps. ~20 levels a side, so max()/min() beat a sorted structure."""
    __slots__ = ("bids", "asks")

    def __init__(self, bids: dict[int, int] | None = None, asks: dict[int, int] | None = None):
        self.bids: dict[int, int] = bids if bids is not None else {}
        self.asks: dict[int, int] = asks if asks is not None else {}

    def side(self, side: int) -> dict[int, int]:
        return self.bids if side == BID else self.asks

    def apply(self, side: int, tick: int, lots: int) -> None:
        d = self.bids if side == BID else self.asks
        if lots:
            d[tick] = lots
        else:
            d.pop(tick, None)

    def top(self) -> Top:
        b = self.bids
        a = self.asks
        bb = max(b) if b else None
        ba = min(a) if a else None
        return bb, (b[bb] if bb is not None else None), ba, (a[ba] if ba is not None else None)

    def sorted_bids(self, depth: int = 0) -> list[tuple[int, int]]:
        lv = sorted(self.bids.items(), reverse=True)
        return lv[:depth] if depth else lv

    def sorted_asks(self, depth: int = 0) -> list[tuple[int, int]]:
        lv = sorted(self.asks.items())
        return lv[:depth] if depth else lv

    def copy(self) -> "Book":
        return Book(dict(self.bids), dict(self.asks))

    def crossed(self) -> bool:
        return bool(self.bids and self.asks and max(self.bids) >= min(self.asks))


@dataclass(eq=False)
class MarketSim:
    """One market: its book, its nonce chain (shared by every subscriber, as on
    Lighter) and a Random of its own, so its sequence of updates depends only on
    the seed and on how many updates it has produced."""
    spec: MarketSpec
    seed: int
    levels: int = 20
    book: Book = field(default_factory=Book)
    nonce: int = 0
    offset: int = 0
    last_updated_us: int = 0
    acc: float = 0.0  # fractional updates owed by the ticker
    steps: int = 0

    def __post_init__(self) -> None:
        s = self.spec
        self.rng = random.Random(f"market:{self.seed}:{s.market_id}")
        self.fmt_price = make_formatter(s.price_decimals)
        self.fmt_size = make_formatter(s.size_decimals)
        self.zero_size = self.fmt_size(0)  # "0.0000" - Lighter also sends plain "0" at times
        self.zero = self.zero_size
        self.subs: dict[int, tuple] = {}  # conn id -> (Connection, Sub), filled by the engine
        self.min_levels = max(3, self.levels // 2)
        self.max_levels = self.levels * 3 // 2
        scale = 10 ** s.price_decimals
        mid = max(self.levels * 40, round(s.price * scale))
        # gap between neighbouring levels: a few ticks, at least ~1bp of price on dear markets
        self.gap = max(1, min(8, mid // 100_000))
        self.fair = float(mid)
        self.floor = mid * 0.2
        self.sigma = self.gap * 0.6
        # typical order ~ $900, $30k or $900k worth (by market: DEPTH_TIERS), in lots
        typical_usd = 300.0 * DEPTH_TIERS[s.market_id % len(DEPTH_TIERS)]
        self.lot_scale = max(1.0, typical_usd / s.price * 10 ** s.size_decimals)
        self.acc = self.rng.random()  # spreads markets' updates over the ticks
        if s.empty:
            return  # never traded: nonce 0, last_updated_at 0 (the captured empty book)
        self.nonce = self.rng.randint(10 ** 6, 10 ** 10)
        self.last_updated_us = int(time.time() * 1_000_000)  # wall clock: not part of the seed
        self.offset = self.rng.randint(1000, 2_000_000)
        r = self.rng
        t = mid - r.randint(1, self.gap)
        for _ in range(self.levels):
            self.book.bids[t] = self._size()
            t -= r.randint(1, self.gap)
        t = mid + r.randint(1, self.gap)
        for _ in range(self.levels):
            self.book.asks[t] = self._size()
            t += r.randint(1, self.gap)

    @property
    def market_id(self) -> int:
        return self.spec.market_id

    def _size(self) -> int:
        return max(1, int(self.rng.lognormvariate(0.0, 1.1) * self.lot_scale))

    # ---- the generator -------------------------------------------------------------
    def step(self, now_us: int) -> list[Change]:
        """Advance the book by one update of 1-4 level changes, never crossing it.
        Returns the changes (new absolute sizes); bumps nonce and offset."""
        r = self.rng
        self.fair = max(self.floor, self.fair + r.gauss(0.0, self.sigma))
        touched: dict[tuple[int, int], int] = {}  # (side, tick) -> size before this update
        for _ in range(r.choice((1, 1, 1, 2, 2, 3, 4))):
            self._op(touched)
        changes = self._collect(touched)
        while not changes:  # e.g. a level added then taken within the same update
            self._modify(touched, r.randint(0, 1))
            changes = self._collect(touched)
        self.zero = "0" if r.random() < 0.1 else self.zero_size  # deletes: both spellings occur
        self.nonce += r.randint(2, 60)  # nonces jump: never assume +1
        self.offset += r.randint(1, 9)  # not contiguous either
        self.last_updated_us = now_us
        self.steps += 1
        return changes

    def _collect(self, touched: dict[tuple[int, int], int]) -> list[Change]:
        out = []
        for (side, tick), old in touched.items():
            new = self.book.side(side).get(tick, 0)
            if new != old:
                out.append(Change(side, tick, new, old))
        return out

    def _set(self, touched: dict, side: int, tick: int, lots: int) -> None:
        d = self.book.side(side)
        touched.setdefault((side, tick), d.get(tick, 0))
        if lots:
            d[tick] = lots
        else:
            d.pop(tick, None)

    def _modify(self, touched: dict, side: int) -> None:
        d = self.book.side(side)
        if not d:
            return self._add_deep(touched, side)
        lv = sorted(d, reverse=(side == BID))
        tick = lv[min(int(self.rng.expovariate(0.35)), len(lv) - 1)]
        new = self._size()
        if new == d[tick]:
            new += 1
        self._set(touched, side, tick, new)

    def _add_deep(self, touched: dict, side: int) -> None:
        r = self.rng
        d = self.book.side(side)
        if len(d) >= self.max_levels:
            return self._modify(touched, side)
        if side == BID:
            if not d:
                ba = min(self.book.asks) if self.book.asks else int(self.fair) + 1
                tick = ba - r.randint(1, self.gap)
            elif r.random() < 0.5 and max(d) - min(d) > len(d):  # fill a hole inside the side
                tick = r.randint(min(d), max(d) - 1)
            else:
                tick = min(d) - r.randint(1, self.gap)
            if tick <= 0 or tick in d:
                return self._modify(touched, side)
        else:
            if not d:
                bb = max(self.book.bids) if self.book.bids else int(self.fair)
                tick = bb + r.randint(1, self.gap)
            elif r.random() < 0.5 and max(d) - min(d) > len(d):
                tick = r.randint(min(d) + 1, max(d))
            else:
                tick = max(d) + r.randint(1, self.gap)
            if tick in d:
                return self._modify(touched, side)
        self._set(touched, side, tick, self._size())

    def _op(self, touched: dict) -> None:
        r = self.rng
        b, a = self.book.bids, self.book.asks
        bb, ba = max(b), min(a)
        x = r.random()
        if x < 0.40:
            return self._modify(touched, r.randint(0, 1))
        if x < 0.70:  # move the top toward the fair value: a new best or a taken best
            up = (self.fair * 2 > bb + ba) != (r.random() < 0.2)
            room = ba - bb - 1  # free ticks inside the spread
            if up:
                if room and len(b) < self.max_levels and (r.random() < 0.5 or len(a) <= self.min_levels):
                    return self._set(touched, BID, bb + r.randint(1, min(self.gap, room)), self._size())
                if len(a) > self.min_levels:  # best ask taken
                    return self._set(touched, ASK, ba, 0)
            else:
                if room and len(a) < self.max_levels and (r.random() < 0.5 or len(b) <= self.min_levels):
                    return self._set(touched, ASK, ba - r.randint(1, min(self.gap, room)), self._size())
                if len(b) > self.min_levels:  # best bid taken
                    return self._set(touched, BID, bb, 0)
            return self._modify(touched, r.randint(0, 1))
        side = r.randint(0, 1)  # depth keeping: add or cancel, pulled toward `levels`
        d = self.book.side(side)
        grow = len(d) < self.levels if r.random() < 0.8 else r.random() < 0.5
        if grow:
            return self._add_deep(touched, side)
        if len(d) <= self.min_levels:
            return self._modify(touched, side)
        best = max(d) if side == BID else min(d)
        tick = r.choice([t for t in d if t != best])  # cancel a resting order below the top
        self._set(touched, side, tick, 0)

    # ---- views ---------------------------------------------------------------------
    def levels_json(self, levels: list[tuple[int, int]]) -> list[dict[str, str]]:
        fp, fs = self.fmt_price, self.fmt_size
        return [{"price": fp(t), "size": fs(q)} for t, q in levels]

    def fmt_top(self, top: Top) -> tuple[Optional[str], Optional[str], Optional[str], Optional[str]]:
        bb, bbs, ba, bas = top
        fp, fs = self.fmt_price, self.fmt_size
        return (None if bb is None else fp(bb), None if bbs is None else fs(bbs),
                None if ba is None else fp(ba), None if bas is None else fs(bas))

    def mid_price(self) -> float:
        bb, _, ba, _ = self.book.top()
        scale = 10 ** self.spec.price_decimals
        if bb is None or ba is None:
            return round(self.spec.price, self.spec.price_decimals)
        return round((bb + ba) / 2 / scale, self.spec.price_decimals)
