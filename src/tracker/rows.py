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
"""

from __future__ import annotations

from dataclasses import dataclass, fields

DEPTH_COLUMNS = (
    "bid_depth_10", "ask_depth_10", "bid_depth_50", "ask_depth_50", "bid_depth_100", "ask_depth_100",
    "imbalance_50", "depth_samples",
)
DEPTH_MEANS = DEPTH_COLUMNS[:6]


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


# The depth fields are declared in each row class (not in _StatsRow) so that they come
# after window_ms / windows, in the tables' column order.


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


@dataclass(slots=True)
class HourRow(MinuteRow):
    """One hour of one market, rolled up from its minutes: a `lighter_hours` row.
    `windows` is the number of windows in all its minutes."""


def imbalance(bid_depth: float | None, ask_depth: float | None) -> float | None:
    if bid_depth is None or ask_depth is None:
        return None
    total = bid_depth + ask_depth
    return (bid_depth - ask_depth) / total if total > 0 else None
