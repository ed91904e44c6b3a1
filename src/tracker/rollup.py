"""Roll 15 s window rows up into minute rows, and minute rows up into hour rows.

A rolled-up row is the tick-weighted average of its parts (each part's means
weighted by its tick count), the min/max of their spreads, the last bid/ask of
its newest part, a time-weighted mid weighted by the time each part covered, depth
means weighted by each part's depth samples (parts without samples carry no depth
and weigh nothing), and slippage means at each size weighted by each part's
fill_samples at that size (likewise). Input rows are dicts as D1 returns them.
"""

from __future__ import annotations

from collections.abc import Iterable

from .rows import DEPTH_MEANS, SLIPPAGE_NAMES, HourRow, MinuteRow, imbalance

MINUTE_MS = 60_000
HOUR_MS = 3_600_000

_WEIGHTED = ("avg_bid", "avg_ask", "avg_spread", "avg_spread_bps", "avg_bid_size", "avg_ask_size")


def rollup_minutes(windows: Iterable[dict]) -> list[MinuteRow]:
    """Window rows -> one MinuteRow per (market, minute); `windows` counts its windows.
    Rows are keyed by market, not symbol: markets sharing a symbol stay apart."""
    return [
        MinuteRow(**_roll(minute, rows), windows=len(rows))
        for (_, minute), rows in _groups(windows, MINUTE_MS)
    ]


def rollup_hours(minutes: Iterable[dict]) -> list[HourRow]:
    """Minute rows -> one HourRow per (market, hour); `windows` sums its minutes' windows."""
    return [
        HourRow(**_roll(hour, rows), windows=sum(r["windows"] for r in rows))
        for (_, hour), rows in _groups(minutes, HOUR_MS)
    ]


def hours_to_roll(since: int, until: int, final: bool) -> list[int]:
    """Starts of the hours to (re)write after minutes [since, until) were rolled: each
    hour that completes in (since, until], and on `final` (tracking stopped) the
    partial hour holding until - 1 too. Re-rolling an hour rewrites its row."""
    hours = list(range(_ceil(since, HOUR_MS), until + 1, HOUR_MS))
    starts = [end - HOUR_MS for end in hours if end > since]
    if final and until > since:
        partial = (until - 1) - (until - 1) % HOUR_MS
        if partial not in starts:
            starts.append(partial)
    return starts


def _ceil(ms: int, period: int) -> int:
    return -(-ms // period) * period


def _groups(rows: Iterable[dict], period: int) -> list[tuple[tuple[int, int], list[dict]]]:
    groups: dict[tuple[int, int], list[dict]] = {}
    for row in rows:
        if row["tick_count"] > 0:
            start = row["timestamp"] - row["timestamp"] % period
            groups.setdefault((row["market_index"], start), []).append(row)
    return sorted(groups.items())


def _roll(start: int, rows: list[dict]) -> dict:
    rows.sort(key=lambda r: r["timestamp"])
    ticks = sum(r["tick_count"] for r in rows)
    means = {f: sum(r[f] * r["tick_count"] for r in rows) / ticks for f in _WEIGHTED}
    covered = sum(r["covered_ms"] for r in rows if r["twap_mid"] is not None)
    twap = (
        sum(r["twap_mid"] * r["covered_ms"] for r in rows if r["twap_mid"] is not None) / covered
        if covered
        else None
    )
    # Rows written before the depth columns existed have depth_samples 0 (or, read
    # from an old table, no such key) and NULL depth: they weigh nothing here.
    sampled = [r for r in rows if (r.get("depth_samples") or 0) > 0]
    samples = sum(r["depth_samples"] for r in sampled)
    depth = {
        f: sum(r[f] * r["depth_samples"] for r in sampled) / samples if samples else None for f in DEPTH_MEANS
    }
    slippage = {}
    for name in SLIPPAGE_NAMES:
        count = f"fill_samples_{name}"
        # Rows from before the slippage columns existed: 0 (or no key) and NULL, weigh nothing.
        filled = [r for r in rows if (r.get(count) or 0) > 0]
        n = sum(r[count] for r in filled)
        for column in (f"slip_buy_{name}", f"slip_sell_{name}"):
            slippage[column] = sum(r[column] * r[count] for r in filled) / n if n else None
        slippage[count] = n
    last = rows[-1]
    return {
        "symbol": last["symbol"],
        "market_index": last["market_index"],
        "timestamp": start,
        "avg_bid": means["avg_bid"],
        "avg_ask": means["avg_ask"],
        "avg_spread": means["avg_spread"],
        "tick_count": ticks,
        "avg_mid": (means["avg_bid"] + means["avg_ask"]) / 2,
        "avg_spread_bps": means["avg_spread_bps"],
        "min_spread": min(r["min_spread"] for r in rows),
        "max_spread": max(r["max_spread"] for r in rows),
        "avg_bid_size": means["avg_bid_size"],
        "avg_ask_size": means["avg_ask_size"],
        "last_bid": last["last_bid"],
        "last_ask": last["last_ask"],
        "twap_mid": twap,
        "covered_ms": covered,
        **depth,
        "imbalance_50": imbalance(depth["bid_depth_50"], depth["ask_depth_50"]),
        "depth_samples": samples,
        **slippage,
    }
