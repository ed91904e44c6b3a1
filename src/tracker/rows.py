"""The rows the tracker writes: one market's statistics over a window, a minute or an hour.

Field order is column order (tracker/sql.py's SNAPSHOT_COLUMNS / MINUTE_COLUMNS /
HOUR_COLUMNS), so `values()` is what a bulk upsert binds. Means are tick-weighted;
`twap_mid` is time-weighted over the `covered_ms` during which the market had a
valid top of book.

Depth columns (after the table's own columns, as `ALTER TABLE ... ADD COLUMN` puts
them): quote notional within 10/50/100 bps of the mid per side, the mean over the
row's `depth_samples` (one sample per market and exchange second, see feed.py);
`imbalance_50` is (bid_depth_50 - ask_depth_50) / (bid_depth_50 + ask_depth_50) of
the row's own means. With no sample (or, for the imbalance, both 50 bps bands
empty) they are None: a missing measurement is not a zero depth.

Slippage columns (after the depth columns): for each size of orderbook.SLIPPAGE_SIZES
(1k, 10k, 100k, 1m USD of quote notional) what a market order costs in bps of the mid,
buying (`slip_buy_<size>`) and selling (`slip_sell_<size>`), the mean over the row's
samples whose book could fill that size on both sides (OrderBook.slippages); there are
`fill_samples_<size>` of them, so a thin book (few or none) tells itself apart from a
deep one. With none the two means are None.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

DEPTH_COLUMNS = (
    "bid_depth_10", "ask_depth_10", "bid_depth_50", "ask_depth_50", "bid_depth_100", "ask_depth_100",
    "imbalance_50", "depth_samples",
)
DEPTH_MEANS = DEPTH_COLUMNS[:6]
# Names of orderbook.SLIPPAGE_SIZES in column names, in the same order.
SLIPPAGE_NAMES = ("1k", "10k", "100k", "1m")
SLIPPAGE_COLUMNS = tuple(f"{c}_{n}" for n in SLIPPAGE_NAMES for c in ("slip_buy", "slip_sell", "fill_samples"))


@dataclass(slots=True)
class _StatsRow:
    symbol: str
    market_index: int
    timestamp: int  # window, minute or hour start, ms
    avg_bid: float
    avg_ask: float
    avg_spread: float
    tick_count: int
    avg_mid: float
    avg_spread_bps: float
    min_spread: float
    max_spread: float
    avg_bid_size: float
    avg_ask_size: float
    last_bid: float
    last_ask: float
    twap_mid: float | None
    covered_ms: int

    def values(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))


# The depth and slippage fields are declared in each row class (not in _StatsRow) so that
# they come after window_ms / windows, in the tables' column order.


@dataclass(slots=True)
class WindowRow(_StatsRow):
    """One closed window of one market: a `lighter_snapshots` row."""

    window_ms: int
    bid_depth_10: float | None = None
    ask_depth_10: float | None = None
    bid_depth_50: float | None = None
    ask_depth_50: float | None = None
    bid_depth_100: float | None = None
    ask_depth_100: float | None = None
    imbalance_50: float | None = None
    depth_samples: int = 0
    slip_buy_1k: float | None = None
    slip_sell_1k: float | None = None
    fill_samples_1k: int = 0
    slip_buy_10k: float | None = None
    slip_sell_10k: float | None = None
    fill_samples_10k: int = 0
    slip_buy_100k: float | None = None
    slip_sell_100k: float | None = None
    fill_samples_100k: int = 0
    slip_buy_1m: float | None = None
    slip_sell_1m: float | None = None
    fill_samples_1m: int = 0


@dataclass(slots=True)
class MinuteRow(_StatsRow):
    """One complete minute of one market: a `lighter_minutes` row."""

    windows: int  # how many windows it was rolled up from
    bid_depth_10: float | None = None
    ask_depth_10: float | None = None
    bid_depth_50: float | None = None
    ask_depth_50: float | None = None
    bid_depth_100: float | None = None
    ask_depth_100: float | None = None
    imbalance_50: float | None = None
    depth_samples: int = 0
    slip_buy_1k: float | None = None
    slip_sell_1k: float | None = None
    fill_samples_1k: int = 0
    slip_buy_10k: float | None = None
    slip_sell_10k: float | None = None
    fill_samples_10k: int = 0
    slip_buy_100k: float | None = None
    slip_sell_100k: float | None = None
    fill_samples_100k: int = 0
    slip_buy_1m: float | None = None
    slip_sell_1m: float | None = None
    fill_samples_1m: int = 0


@dataclass(slots=True)
class HourRow(MinuteRow):
    """One hour of one market, rolled up from its minutes: a `lighter_hours` row.
    `windows` is the number of windows in all its minutes."""


def imbalance(bid_depth: float | None, ask_depth: float | None) -> float | None:
    if bid_depth is None or ask_depth is None:
        return None
    total = bid_depth + ask_depth
    return (bid_depth - ask_depth) / total if total > 0 else None
