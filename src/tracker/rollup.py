"""Roll 15 s window rows up into minute rows.

A minute row is the tick-weighted average of its windows (each window's means
weighted by its tick count), the min/max of their spreads, the last bid/ask of
its newest window, and a time-weighted mid weighted by the time each window
covered. Input rows are dicts as D1 returns them from `lighter_snapshots`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .rows import MinuteRow

MINUTE_MS = 60_000

_WEIGHTED = ("avg_bid", "avg_ask", "avg_spread", "avg_spread_bps", "avg_bid_size", "avg_ask_size")


def rollup_minutes(windows: Iterable[dict]) -> list[MinuteRow]:
    """Group by (market_index, minute): rows are keyed by market, not symbol."""
    groups: dict[tuple[int, int], list[dict]] = {}
    for row in windows:
        if row["tick_count"] > 0:
            minute = row["timestamp"] - row["timestamp"] % MINUTE_MS
            groups.setdefault((row["market_index"], minute), []).append(row)
    return [_minute(minute, rows) for (_, minute), rows in sorted(groups.items())]


def _minute(minute: int, rows: list[dict]) -> MinuteRow:
    rows.sort(key=lambda r: r["timestamp"])
    ticks = sum(r["tick_count"] for r in rows)
    means = {f: sum(r[f] * r["tick_count"] for r in rows) / ticks for f in _WEIGHTED}
    covered = sum(r["covered_ms"] for r in rows if r["twap_mid"] is not None)
    twap = (
        sum(r["twap_mid"] * r["covered_ms"] for r in rows if r["twap_mid"] is not None) / covered
        if covered
        else None
    )
    last = rows[-1]
    return MinuteRow(
        symbol=last["symbol"],
        market_index=last["market_index"],
        timestamp=minute,
        avg_bid=means["avg_bid"],
        avg_ask=means["avg_ask"],
        avg_spread=means["avg_spread"],
        tick_count=ticks,
        avg_mid=(means["avg_bid"] + means["avg_ask"]) / 2,
        avg_spread_bps=means["avg_spread_bps"],
        min_spread=min(r["min_spread"] for r in rows),
        max_spread=max(r["max_spread"] for r in rows),
        avg_bid_size=means["avg_bid_size"],
        avg_ask_size=means["avg_ask_size"],
        last_bid=last["last_bid"],
        last_ask=last["last_ask"],
        twap_mid=twap,
        covered_ms=covered,
        windows=len(rows),
    )
