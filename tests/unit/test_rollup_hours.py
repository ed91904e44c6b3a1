"""Depth and slippage in the minute rollup (weighted by samples, fills) and rollup_hours
against the reference's expected_minutes / expected_hours; which hours are rewritten when."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.rollup import HOUR_MS, MINUTE_MS, mark_stale, ripe_hours, rollup_hours, rollup_minutes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

T0 = 1_778_137_200_000  # a whole hour
SYMBOLS = {0: "ETH", 1: "BTC", 50000: "FUTURE/USDC"}


def _row(symbol, market, ts, ticks, bid, spread, samples, depth, **extra):
    row = {
        "symbol": symbol, "market_index": market, "timestamp": ts, "tick_count": ticks,
        "avg_bid": bid, "avg_ask": bid + spread, "avg_spread": spread, "avg_mid": bid + spread / 2,
        "avg_spread_bps": spread / (bid + spread / 2) * 1e4, "min_spread": spread * 0.5,
        "max_spread": spread * 2, "avg_bid_size": ticks * 0.5, "avg_ask_size": ticks * 0.25 + 1,
        "last_bid": bid * 1.01, "last_ask": bid * 1.01 + spread, "twap_mid": bid + spread / 2,
        "covered_ms": 1_000 * ticks, **extra,
    }
    # Depth as D1 holds it: NULL and 0 samples for a row without samples (e.g. an old row).
    means = [depth * k for k in (1, 1.5, 4, 3, 9, 8)] if samples else [None] * 6
    row |= dict(zip(ref.DEPTH_MEANS, means, strict=True))
    row["imbalance_50"] = (means[2] - means[3]) / (means[2] + means[3]) if samples else None
    row["depth_samples"] = samples
    # Slippage: the larger sizes filled by fewer of the samples (none for an old row).
    for k, name in enumerate(ref.SLIPPAGE_NAMES):
        fills = max(0, samples - 4 * k)
        row[f"slip_buy_{name}"] = depth / 1e6 * (k + 1) if fills else None
        row[f"slip_sell_{name}"] = depth / 1e6 * (k + 1.5) if fills else None
        row[f"fill_samples_{name}"] = fills
    return row


def rows(period_ms, count, extra):
    return st.lists(
        st.builds(
            lambda market, slot, ticks, bid, spread, samples, depth: _row(
                SYMBOLS[market], market, T0 + slot * period_ms, ticks, bid, spread,
                min(samples, ticks), depth, **extra,
            ),
            st.sampled_from(sorted(SYMBOLS)),
            st.integers(min_value=0, max_value=count - 1),
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=1, max_value=10**7).map(lambda n: n / 100),
            st.integers(min_value=1, max_value=1_000).map(lambda n: n / 100),
            st.integers(min_value=0, max_value=15),
            st.integers(min_value=1, max_value=10**9).map(lambda n: n / 7),
        ),
        max_size=40,
        unique_by=lambda r: (r["symbol"], r["timestamp"]),
    )


def check(got, expected):
    assert sorted((r.symbol, r.timestamp) for r in got) == sorted(expected)
    for row in got:
        assert ref.row_mismatches(dataclasses.asdict(row), expected[(row.symbol, row.timestamp)]) == []


@settings(max_examples=200, deadline=None)
@given(rows(15_000, 12, {"window_ms": 15_000}))
def test_minutes_weight_depth_by_samples(windows):
    check(rollup_minutes(windows), ref.expected_minutes(windows))


@settings(max_examples=200, deadline=None)
@given(rows(MINUTE_MS, 150, {"windows": 4}))
def test_hours_match_the_reference(minutes):
    got = rollup_hours(minutes)
    check(got, ref.expected_hours(minutes))
    assert all(h.timestamp % HOUR_MS == 0 for h in got)


def test_hours_from_minutes_by_hand():
    minutes = [
        _row("ETH", 0, T0, 10, 100.0, 0.5, 4, 1000.0, windows=4),
        _row("ETH", 0, T0 + 59 * MINUTE_MS, 30, 102.0, 0.5, 0, 0.0, windows=2),  # no samples
        _row("ETH", 0, T0 + 30 * MINUTE_MS, 20, 101.0, 0.5, 12, 2000.0, windows=4),
    ]
    (hour,) = rollup_hours(minutes)
    assert (hour.timestamp, hour.windows, hour.tick_count, hour.depth_samples) == (T0, 10, 60, 16)
    assert hour.avg_bid == (100.0 * 10 + 102.0 * 30 + 101.0 * 20) / 60
    assert hour.bid_depth_10 == (1000.0 * 4 + 2000.0 * 12) / 16
    assert hour.imbalance_50 == (hour.bid_depth_50 - hour.ask_depth_50) / (hour.bid_depth_50 + hour.ask_depth_50)
    assert hour.last_bid == minutes[1]["last_bid"]  # the newest minute's


def test_no_samples_anywhere_gives_null_depth():
    (hour,) = rollup_hours([_row("ETH", 0, T0, 10, 100.0, 0.5, 0, 0.0, windows=4)])
    assert hour.depth_samples == 0 and hour.bid_depth_50 is None and hour.imbalance_50 is None


def test_the_hours_of_minutes_just_rolled_become_stale_once():
    m = MINUTE_MS
    stale = [[1, T0 - HOUR_MS]]
    mark_stale(stale, 2, [T0 + 59 * m, T0 + 5 * m, T0 + HOUR_MS])
    mark_stale(stale, 2, [T0 + 7 * m])  # already stale under this split
    mark_stale(stale, 1, [T0])  # another split of markets: its own rows
    assert stale == [[1, T0 - HOUR_MS], [2, T0], [2, T0 + HOUR_MS], [1, T0]]


def test_an_hour_is_ripe_once_no_minute_of_it_is_owed():
    m = MINUTE_MS
    this, last = [1, T0], [1, T0 - HOUR_MS]
    # Tracking, the run's minutes rolled up to T0 + 5 min: the hour in progress waits.
    assert ripe_hours([last, this], [(T0 + 5 * m, 2**62)]) == [last]
    # The hour's last minute rolled: it is complete.
    assert ripe_hours([this], [(T0 + HOUR_MS, 2**62)]) == [this]
    # Stopped: the partial hour waits for its last minute, then is ripe (nothing owed),
    # also when the stop found no minute to roll at all.
    assert ripe_hours([this], [(T0 + 5 * m, T0 + 6 * m)]) == []
    assert ripe_hours([this], []) == [this]
    # A previous run's minutes still owed in the hour hold it back, whatever the split.
    assert ripe_hours([this], [(T0 + 50 * m, T0 + 52 * m), (T0 + HOUR_MS + m, 2**62)]) == []
    assert ripe_hours([this], [(T0 - 2 * m, T0)]) == [this]  # owed up to the hour's start only
