"""rollup_minutes against the reference's expected_minutes."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.aggregator import WindowAggregator
from tracker import sql
from tracker.rollup import MINUTE_MS, rollup_minutes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

T0 = 1_778_138_580_000  # a whole minute
SYMBOLS = {0: "ETH", 1: "BTC", 50000: "FUTURE/USDC"}


def _row(symbol, market, ts, ticks, bid, spread, covered, twap):
    return {
        "symbol": symbol, "market_index": market, "timestamp": ts, "tick_count": ticks,
        "avg_bid": bid, "avg_ask": bid + spread, "avg_spread": spread, "avg_mid": bid + spread / 2,
        "avg_spread_bps": spread / (bid + spread / 2) * 1e4, "min_spread": spread * 0.5,
        "max_spread": spread * 2, "avg_bid_size": ticks * 0.5, "avg_ask_size": ticks * 0.25 + 1,
        "last_bid": bid * 1.01, "last_ask": bid * 1.01 + spread, "twap_mid": twap,
        "covered_ms": covered, "window_ms": 15_000,
    }


window_rows = st.lists(
    st.builds(
        lambda market, slot, ticks, bid, spread, covered: _row(
            SYMBOLS[market], market, T0 + slot * 15_000, ticks, bid, spread,
            covered if ticks else 0, (bid + spread / 2) * 1.001 if covered and ticks else None,
        ),
        st.sampled_from(sorted(SYMBOLS)),
        st.integers(min_value=0, max_value=11),  # three minutes of 15 s windows
        st.integers(min_value=0, max_value=500),
        st.integers(min_value=1, max_value=10**7).map(lambda n: n / 100),
        st.integers(min_value=1, max_value=1_000).map(lambda n: n / 100),
        st.integers(min_value=0, max_value=15_000),
    ),
    max_size=40,
    unique_by=lambda r: (r["market_index"], r["timestamp"]),  # one row per market and window (the table's key)
)


def check(windows):
    got = rollup_minutes(list(windows))
    expected = ref.expected_minutes(windows)
    keys = [(m.market_index, m.timestamp) for m in got]
    assert keys == sorted(keys), "sorted by (market, minute)"
    assert sorted((m.symbol, m.timestamp) for m in got) == sorted(expected), "one row per market and minute"
    for minute in got:
        want = expected[(minute.symbol, minute.timestamp)]
        assert ref.row_mismatches(dataclasses.asdict(minute), want) == []
        assert minute.timestamp % MINUTE_MS == 0
        assert len(minute.values()) == len(sql.MINUTE_COLUMNS)
    return got


@settings(max_examples=100, derandomize=True, deadline=None)
@given(rows=window_rows, order=st.randoms(use_true_random=False))
def test_random_window_rows_match_the_reference(rows, order):
    order.shuffle(rows)  # D1's order must not matter
    check(rows)


def test_by_hand():
    rows = [
        _row("ETH", 0, T0, 1, 100.0, 2.0, 1_000, 101.0),
        _row("ETH", 0, T0 + 15_000, 3, 200.0, 2.0, 3_000, 201.0),
        _row("ETH", 0, T0 + 30_000, 0, 0.0, 1.0, 0, None),  # no ticks: ignored
        _row("ETH", 0, T0 + 60_000, 2, 300.0, 4.0, 0, None),  # next minute, no covered time
    ]
    first, second = check(rows)
    assert (first.tick_count, first.windows) == (4, 2)
    assert first.avg_bid == pytest.approx((100 + 600) / 4)
    assert first.twap_mid == pytest.approx((101 * 1_000 + 201 * 3_000) / 4_000) and first.covered_ms == 4_000
    assert first.last_bid == pytest.approx(200 * 1.01)
    assert second.twap_mid is None and second.covered_ms == 0 and second.windows == 1
    assert rollup_minutes([]) == []


def test_aggregator_rows_roll_up_like_the_reference():
    """Windows straight from the aggregator (as D1 would return them) into minutes."""
    rng = random.Random(11)
    agg = WindowAggregator(15_000)
    ts = T0
    for _ in range(3_000):
        ts += rng.randint(0, 120)
        market = rng.choice(sorted(SYMBOLS))
        if rng.random() < 0.03:
            agg.invalidate(market, ts)
        else:
            bid = 1_000 + rng.random() * 10
            agg.add_tick(market, ts, bid, rng.random() * 5, bid + 0.01 + rng.random(), rng.random() * 5)
    rows = [dataclasses.asdict(r) for w in agg.close_all(ts, SYMBOLS) for r in w.rows]
    assert len({r["timestamp"] for r in rows}) >= 8  # two minutes and more
    got = check(rows)
    assert sum(m.tick_count for m in got) == sum(r["tick_count"] for r in rows)


def test_markets_sharing_a_symbol_roll_up_apart():
    rows = [_row("ETH", 1, T0, 5, 100.0, 1.0, 15_000, 100.5), _row("ETH", 2, T0, 3, 200.0, 2.0, 15_000, 201.0)]
    got = rollup_minutes(rows)
    assert [(m.market_index, m.tick_count) for m in got] == [(1, 5), (2, 3)]
    assert {m.avg_bid for m in got} == {100.0, 200.0}  # never merged into one row
