"""One market's order book, rebuilt from a snapshot and kept by deltas.

Each side is a dict price -> size plus a sorted list of its prices, so the best
bid and ask are an index away (no scan per message) and a level change costs a
bisect. A delta carries a level's new absolute size; size 0 removes the level.

Continuity: every update's `begin_nonce` must equal the `nonce` of the frame
before it. On a mismatch the book can no longer be trusted: it is marked invalid
and stays so until a fresh snapshot replaces it.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

from .protocol import Level

# Depth bands, in basis points of the mid (the depth columns of every row).
DEPTH_BANDS_BPS = (10, 50, 100)
# Relative slack on a band's edge. Float rounding of mid * (1 +- B/1e4) is ~1e-16
# relative; two distinct decimal prices differ relatively by at least
# 5e-5 / (price in ticks), i.e. > 1e-14 for any price under 5e9 ticks. So with this
# slack a level exactly on the edge is inside, and no level off the edge is.
EDGE = 1e-14
# Slippage sizes: the quote notional (USD) of a market order, ascending (the slip_*
# columns of every row: 1k, 10k, 100k, 1m).
SLIPPAGE_SIZES = (1_000.0, 10_000.0, 100_000.0, 1_000_000.0)
# A side fills a size when its levels' notional reaches it. The float sum of n products
# price * size errs by at most ~n * 1.1e-16 relative, so a side whose notional is the size
# exactly (in decimal) fills it despite rounding; a side short by less than 1e-14 of the
# size (1e-8 USD on 1m) is not told apart from one that fills it.
_FILL_AT = tuple(size * (1.0 - EDGE) for size in SLIPPAGE_SIZES)


class OrderBook:
    __slots__ = ("market_id", "bids", "asks", "bid_prices", "ask_prices", "nonce", "valid")

    def __init__(self, market_id: int) -> None:
        self.market_id = market_id
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bid_prices: list[float] = []  # ascending: best bid is the last
        self.ask_prices: list[float] = []  # ascending: best ask is the first
        self.nonce: int | None = None
        self.valid = False  # no snapshot yet

    def apply_snapshot(self, bids: list[Level], asks: list[Level], nonce: int) -> None:
        self.bids = {price: size for price, size in bids if size > 0.0}
        self.asks = {price: size for price, size in asks if size > 0.0}
        self.bid_prices = sorted(self.bids)
        self.ask_prices = sorted(self.asks)
        self.nonce = nonce
        self.valid = True

    def apply_update(self, bids: list[Level], asks: list[Level], begin_nonce: int, nonce: int) -> bool:
        """Apply a delta. Returns False (and invalidates the book) on a nonce gap."""
        if not self.valid or begin_nonce != self.nonce:
            self.invalidate()
            return False
        if bids:
            _apply_levels(self.bids, self.bid_prices, bids)
        if asks:
            _apply_levels(self.asks, self.ask_prices, asks)
        self.nonce = nonce
        return True

    def invalidate(self) -> None:
        self.valid = False

    def best_bid(self) -> Level | None:
        if not self.bid_prices:
            return None
        price = self.bid_prices[-1]
        return price, self.bids[price]

    def best_ask(self) -> Level | None:
        if not self.ask_prices:
            return None
        price = self.ask_prices[0]
        return price, self.asks[price]

    def depth(self) -> int:
        return len(self.bid_prices) + len(self.ask_prices)

    def band_depths(self, bands_bps: tuple[int, ...] = DEPTH_BANDS_BPS) -> list[float]:
        """Quote notional (sum of price * size) within each band of the mid, per side:
        [bid_b1, ask_b1, bid_b2, ask_b2, ...] for `bands_bps` in ascending order.

        Call only on a two-sided book. A bid level is inside band B when
        `price >= mid * (1 - B/10000)`, an ask level when `price <= mid * (1 + B/10000)`.
        Each side is walked once from its best level outwards, the narrowest band
        first, so the cost is the number of levels within the widest band.
        """
        bid_prices = self.bid_prices
        ask_prices = self.ask_prices
        bids = self.bids
        asks = self.asks
        mid = (bid_prices[-1] + ask_prices[0]) * 0.5
        out: list[float] = []
        bid_i = len(bid_prices) - 1
        ask_i = 0
        ask_n = len(ask_prices)
        bid_sum = ask_sum = 0.0
        for band in bands_bps:
            # EDGE widens the threshold by far less than any tick: a level exactly on
            # the boundary (in decimal) stays inside despite float rounding of mid * (1 - B/1e4).
            low = mid * (1.0 - band / 10_000.0) * (1.0 - EDGE)
            while bid_i >= 0 and bid_prices[bid_i] >= low:
                price = bid_prices[bid_i]
                bid_sum += price * bids[price]
                bid_i -= 1
            high = mid * (1.0 + band / 10_000.0) * (1.0 + EDGE)
            while ask_i < ask_n and ask_prices[ask_i] <= high:
                price = ask_prices[ask_i]
                ask_sum += price * asks[price]
                ask_i += 1
            out.append(bid_sum)
            out.append(ask_sum)
        return out

    def slippages(self) -> tuple[list[float], list[float]]:
        """What a market order of each of SLIPPAGE_SIZES (quote notional) costs, in bps of
        the mid: (buy, sell), each as long as the number of sizes BOTH sides can fill (the
        sizes are ascending, so a side that fills one fills every smaller one: those it
        fills are a prefix). Buy walks the asks, `(vwap - mid) / mid * 1e4`; sell walks
        the bids, `(mid - vwap) / mid * 1e4`. Call only on a two-sided book.

        The walk takes levels from the best outwards while a level does not complete the
        size: their notional `cost` (sum of price * size) and base quantity `qty` add up.
        The level that completes it (the first whose price * size brings the notional to
        the size or beyond) is taken in part, `(size - cost) / price` base units of it (all
        of it when the notional ends exactly there), and
        `vwap = size / (qty + (size - cost) / price)`. When the best level alone completes
        the size, `vwap` is its price exactly (the same value; no division to round), so
        the slippage is then the half-spread in bps. A side whose whole notional falls
        short of a size (see _FILL_AT for the rounding slack) cannot fill it or any larger.

        One pass per side for all sizes, the smallest first: the cost is the levels up to
        the one completing the largest size filled, or the whole side when it falls short
        of a size. The bids are walked only up to the sizes the asks filled (a sample keeps
        only the sizes both sides fill). Nothing is cached between samples.
        """
        ask_prices = self.ask_prices
        bid_prices = self.bid_prices
        mid = (bid_prices[-1] + ask_prices[0]) * 0.5
        buy = _walk(ask_prices, self.asks, mid, len(SLIPPAGE_SIZES))
        if not buy:
            return buy, []
        sell = _walk(reversed(bid_prices), self.bids, mid, len(buy))
        # (mid - vwap) for the sell side: _walk measures (vwap - mid), so flip the sign.
        sell = [-slip for slip in sell]
        del buy[len(sell):]
        return buy, sell


def _walk(prices: Iterable[float], side: dict[float, float], mid: float, sizes: int) -> list[float]:
    """(vwap - mid) / mid * 1e4 for the first `sizes` of SLIPPAGE_SIZES, taking the levels
    of `side` in the order of `prices` (best first); stops at the first size the side
    cannot fill. See OrderBook.slippages for the arithmetic."""
    out: list[float] = []
    cost = 0.0  # notional of the levels taken whole
    qty = 0.0  # their base quantity
    k = 0
    size = SLIPPAGE_SIZES[0]
    fill_at = _FILL_AT[0]
    for price in prices:
        amount = side[price]
        level = price * amount
        while cost + level >= fill_at:  # this level completes the size (maybe the next ones too)
            vwap = price if qty == 0.0 else size / (qty + (size - cost) / price)
            out.append((vwap - mid) / mid * 10_000.0)
            k += 1
            if k == sizes:
                return out
            size = SLIPPAGE_SIZES[k]
            fill_at = _FILL_AT[k]
        cost += level
        qty += amount
    return out  # the side's whole notional falls short of the size it stopped at


def _apply_levels(side: dict[float, float], prices: list[float], levels: list[Level]) -> None:
    for price, size in levels:
        if size > 0.0:
            if price not in side:
                insort(prices, price)
            side[price] = size
        elif side.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]
