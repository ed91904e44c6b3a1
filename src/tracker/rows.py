"""The rows the tracker writes: one market's statistics over a window or a minute.

Field order is column order (tracker/sql.py's SNAPSHOT_COLUMNS / MINUTE_COLUMNS),
so `values()` is what a bulk upsert binds. Means are tick-weighted; `twap_mid` is
time-weighted over the `covered_ms` during which the market had a valid top of book.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(slots=True)
class _StatsRow:
    symbol: str
    market_index: int
    timestamp: int  # window or minute start, ms
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


@dataclass(slots=True)
class WindowRow(_StatsRow):
    """One closed window of one market: a `lighter_snapshots` row."""

    window_ms: int


@dataclass(slots=True)
class MinuteRow(_StatsRow):
    """One complete minute of one market: a `lighter_minutes` row."""

    windows: int  # how many windows it was rolled up from
