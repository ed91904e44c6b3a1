"""Slippage at fixed sizes (issue 20): OrderBook.slippages, the window, minute and hour
columns, against the naive reference (tests/reference_model.py: each size walked on
its own, exact Decimal arithmetic) and by hand; the reference's own properties."""

from __future__ import annotations

import dataclasses
import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.aggregator import WindowAggregator
from tracker.orderbook import SLIPPAGE_SIZES, OrderBook
from tracker.rollup import rollup_hours, rollup_minutes
from tracker.rows import SLIPPAGE_COLUMNS, SLIPPAGE_NAMES, WindowRow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402
from test_depth import Run, assert_rows_match  # noqa: E402

T0 = 1_778_138_580_000  # a whole minute


def book_of(bids, asks) -> tuple[OrderBook, ref.NaiveBook]:
    """The tracker's book and the reference's, from (price, size) strings."""
    mine = OrderBook(0)
    mine.apply_snapshot([(float(p), float(s)) for p, s in bids], [(float(p), float(s)) for p, s in asks], 1)
    naive = ref.NaiveBook()
    naive.snapshot(bids, asks, 1)
    return mine, naive


def per_size(mine: OrderBook) -> list[float | None]:
    """The tracker's (buy, sell) prefixes laid out like the reference's tuple."""
    buy, sell = mine.slippages()
    out: list[float | None] = []
    for k in range(len(SLIPPAGE_SIZES)):
        out += [buy[k], sell[k]] if k < len(buy) else [None, None]
    return out


def test_sizes_and_columns_agree_with_the_reference():
    assert SLIPPAGE_SIZES == tuple(float(s) for s in ref.SLIPPAGE_SIZES)
    assert SLIPPAGE_NAMES == ref.SLIPPAGE_NAMES and SLIPPAGE_COLUMNS == ref.SLIPPAGE_COLUMNS
    names = [f.name for f in dataclasses.fields(WindowRow)]
    assert names[names.index("depth_samples") + 1:] == list(SLIPPAGE_COLUMNS)


# -- by hand ----------------------------------------------------------------------------------


def test_a_partially_filled_last_level_by_hand():
    # mid 100. Asks: 101 x 5 (505 USD), then 102 x 1000. Buying 1k takes 101 x 5 whole and
    # (1000 - 505) / 102 of the 102 level; 10k: 505 + (9495 / 102) at 102; 100k: the same
    # two levels (102 x 1000 holds 102k). Bids: 99 x 20 (1980 USD) fills 1k alone, then
    # 98 x 100 (9800): 10k takes 1980 + 8020 / 98; 100k cannot be filled (11,780 USD).
    mine, naive = book_of([("99", "20"), ("98", "100")], [("101", "5"), ("102", "1000")])
    buy = [size / (5 + (size - 505) / 102) for size in (1_000, 10_000, 100_000)]
    sell_10k = 10_000 / (20 + (10_000 - 1_980) / 98)
    want_buy = [(vwap - 100) / 100 * 1e4 for vwap in buy]
    want_sell = [(100 - 99) / 100 * 1e4, (100 - sell_10k) / 100 * 1e4]
    got_buy, got_sell = mine.slippages()
    # The sample fills 1k and 10k (both sides); 100k only the asks: no value for it.
    assert got_buy == pytest.approx(want_buy[:2], rel=1e-12) and got_sell == pytest.approx(want_sell, rel=1e-12)
    expected = naive.slippages()
    assert expected[:4] == pytest.approx([want_buy[0], want_sell[0], want_buy[1], want_sell[1]], rel=1e-12)
    assert expected[4] == pytest.approx(want_buy[2], rel=1e-12) and expected[5] is None
    assert expected[6:] == (None, None)  # 1m: neither side (102 x 1000 + 505 < 1m)
    assert want_sell[0] == 100.0 == got_sell[0]  # the best bid alone: the half-spread, 100 bps


def test_a_side_whose_notional_is_the_size_exactly_fills_it_despite_float_rounding():
    # 0.1 x 13 + 0.3 x 3329 = 1.3 + 998.7 = 1000 exactly, but 999.9999999999999 in floats.
    asks = [("0.1", "13"), ("0.3", "3329")]
    assert 0.1 * 13 + 0.3 * 3329 < 1000.0
    mine, naive = book_of([("0.09", "1000000")], asks)
    want = naive.slippages()
    mid = (Decimal("0.09") + Decimal("0.1")) / 2
    vwap = Decimal(1000) / (13 + 3329)  # every level taken whole
    assert want[0] == float((vwap - mid) / mid * 10_000)
    assert per_size(mine)[0] == pytest.approx(want[0], rel=1e-12)
    # Short of 1k by 3e-8 USD: neither fills it.
    mine, naive = book_of([("0.09", "1000000")], [("0.1", "13"), ("0.3", "3328.9999999")])
    assert naive.slippages()[0] is None and per_size(mine)[0] is None


def test_one_level_alone_fills_every_size_it_holds_at_the_half_spread():
    mine, naive = book_of([("99.99", "1000000")], [("100.01", "1000000")])  # ~100M USD a side
    half_spread_bps = 0.01 / 100.0 * 1e4
    buy, sell = mine.slippages()
    assert buy == sell == [pytest.approx(half_spread_bps, rel=1e-12)] * 4
    assert naive.slippages() == (float((Decimal("100.01") - 100) / 100 * 10_000),) * 8


def test_a_thin_side_limits_the_sample_and_sides_that_fill_nothing_give_nothing():
    # Deep asks, bids holding only 1,480 USD: the sample fills 1k only.
    mine, naive = book_of([("99", "10"), ("98", "5")], [("101", "1000000")])
    buy, sell = mine.slippages()
    assert len(buy) == len(sell) == 1
    expected = naive.slippages()
    assert [x is None for x in expected] == [False, False, False, True, False, True, False, True]
    # Neither side holds 1k: nothing at all.
    mine, naive = book_of([("99", "1")], [("101", "1")])
    assert mine.slippages() == ([], [])
    assert naive.slippages() == (None,) * 8


# -- one sample per second, through the feed -----------------------------------------------------


def test_samples_through_the_feed_one_sided_and_crossed_books_take_none():
    run = Run()
    deep = [("99", "50"), ("98", "2000")]  # 4,950 + 196,000 USD
    run.send(0, T0 + 100, bids=deep, asks=[("101", "20"), ("102", "20000")], snapshot=True)  # sampled: fills 1k-100k
    run.send(0, T0 + 1_000, asks=[("98.5", "1")])  # crossed: no tick, no sample
    run.send(0, T0 + 1_200, asks=[("98.5", "0")])  # second 1: sampled
    run.send(0, T0 + 2_050, bids=[("99", "0"), ("98", "0")])  # one-sided: no sample
    run.send(0, T0 + 2_300, bids=[("99.5", "5")])  # second 2: sampled, the bids hold 497.5 USD: fills nothing
    run.send(0, T0 + 3_300, bids=[("97", "20000")])  # second 3: bids 497.5 + 1.94M: fills every size
    assert run.feed.counters.crossed == 1 and run.feed.counters.one_sided == 1
    assert run.feed.counters.depth_samples == 4
    got, expected = run.rows(T0 + 15_000)
    assert_rows_match(got, expected)
    row = got[(0, T0)]
    assert [row[f"fill_samples_{n}"] for n in SLIPPAGE_NAMES] == [3, 3, 3, 1]
    assert row["depth_samples"] == 4
    # The 1m fills once (the last sample): its means are that sample's values.
    mine = OrderBook(0)
    mine.apply_snapshot([(99.5, 5.0), (97.0, 20000.0)], [(101.0, 20.0), (102.0, 20000.0)], 1)
    buy, sell = mine.slippages()
    assert (row["slip_buy_1m"], row["slip_sell_1m"]) == (buy[3], sell[3])


def test_no_sample_or_no_fill_is_null_not_zero():
    agg = WindowAggregator(15_000, T0)
    agg.add_tick(0, T0 + 5, 99.0, 1.0, 101.0, 1.0)
    agg.add_tick(1, T0 + 5, 99.0, 1.0, 101.0, 1.0)
    agg.add_sample(1, T0 + 5, [0.0] * 6, ([], []))
    rows = {r.market_index: r for r in agg.close_all(T0 + 15_000, {0: "A", 1: "B"})[0].rows}
    for row in rows.values():
        assert [getattr(row, c) for c in SLIPPAGE_COLUMNS] == [None, None, 0] * 4
    assert (rows[0].depth_samples, rows[1].depth_samples) == (0, 1)


# -- rolled up ------------------------------------------------------------------------------


def _window(ts: int, fills: list[int], buy: float, **extra) -> dict:
    row = {"symbol": "ETH", "market_index": 0, "timestamp": ts, "tick_count": 10, "avg_bid": 99.0,
           "avg_ask": 101.0, "avg_spread": 2.0, "avg_mid": 100.0, "avg_spread_bps": 200.0, "min_spread": 1.0,
           "max_spread": 3.0, "avg_bid_size": 1.0, "avg_ask_size": 1.0, "last_bid": 99.0, "last_ask": 101.0,
           "twap_mid": 100.0, "covered_ms": 15_000, "window_ms": 15_000, **extra}
    for k, name in enumerate(SLIPPAGE_NAMES):
        n = fills[k]
        row |= {f"slip_buy_{name}": buy * (k + 1) if n else None, f"slip_sell_{name}": buy * (k + 2) if n else None,
                f"fill_samples_{name}": n}
    return row


def test_minutes_and_hours_weigh_slippage_by_fill_samples_and_old_rows_by_nothing():
    old = {"symbol": "ETH", "market_index": 0, "timestamp": T0, "tick_count": 10, "avg_bid": 99.0, "avg_ask": 101.0,
           "avg_spread": 2.0, "avg_mid": 100.0, "avg_spread_bps": 200.0, "min_spread": 1.0, "max_spread": 3.0,
           "avg_bid_size": 1.0, "avg_ask_size": 1.0, "last_bid": 99.0, "last_ask": 101.0, "twap_mid": 100.0,
           "covered_ms": 15_000, "window_ms": 15_000}  # written before the columns: no such keys
    windows = [old, _window(T0 + 15_000, [3, 1, 0, 0], 2.0), _window(T0 + 30_000, [1, 1, 1, 0], 10.0)]
    (minute,) = rollup_minutes(windows)
    assert (minute.fill_samples_1k, minute.fill_samples_10k, minute.fill_samples_100k, minute.fill_samples_1m) == (4, 2, 1, 0)
    assert minute.slip_buy_1k == pytest.approx((3 * 2.0 + 1 * 10.0) / 4)
    assert minute.slip_sell_10k == pytest.approx((1 * 6.0 + 1 * 30.0) / 2)
    assert minute.slip_buy_100k == pytest.approx(30.0)
    assert (minute.slip_buy_1m, minute.slip_sell_1m) == (None, None)
    expected = ref.expected_minutes([w for w in windows if "fill_samples_1k" in w] + [old])
    assert ref.row_mismatches(dataclasses.asdict(minute), expected[("ETH", T0)]) == []
    later = dataclasses.asdict(rollup_minutes([_window(T0 + 60_000, [2, 0, 0, 0], 4.0)])[0])
    (hour,) = rollup_hours([dataclasses.asdict(minute), later])
    assert hour.fill_samples_1k == 6 and hour.slip_buy_1k == pytest.approx((4 * 4.0 + 2 * 4.0) / 6)
    assert (hour.fill_samples_10k, hour.slip_buy_10k) == (2, pytest.approx(minute.slip_buy_10k))


# -- properties ---------------------------------------------------------------------------------


@st.composite
def books(draw):
    """A two-sided, uncrossed book on a tick grid, with sizes from dust to whales, so that
    every size is sometimes filled by the best level alone, sometimes partway into a
    deeper level, sometimes not at all; and levels whose notional completes a size exactly."""
    decimals = draw(st.integers(0, 6))
    scale = Decimal(10) ** -decimals
    best_bid = draw(st.integers(1, 10**7))
    best_ask = best_bid + draw(st.integers(1, max(1, best_bid // 20)))
    sizes = st.integers(1, 10**6).map(lambda n: Decimal(n) * Decimal(10) ** -draw(st.integers(0, 4)))
    gaps = st.lists(st.integers(1, 50), max_size=12)
    bids = {best_bid: draw(sizes)}
    price = best_bid
    for gap in draw(gaps):
        price -= gap
        if price <= 0:
            break
        bids[price] = draw(sizes)
    asks = {best_ask: draw(sizes)}
    price = best_ask
    for gap in draw(gaps):
        price += gap
        asks[price] = draw(sizes)
    if draw(st.booleans()):  # make a level complete a size exactly: its size = (size left) / price
        target = Decimal(draw(st.sampled_from(ref.SLIPPAGE_SIZES)))
        ordered = sorted(asks)
        cost = Decimal(0)
        for tick in ordered:
            left = target - cost
            exact = left / (Decimal(tick) * scale)
            if exact > 0 and exact == exact.quantize(Decimal(10) ** -12):
                asks[tick] = exact
                break
            cost += Decimal(tick) * scale * asks[tick]
    text = lambda d: format(d.normalize(), "f")  # noqa: E731
    return ([(text(Decimal(p) * scale), text(s)) for p, s in bids.items()],
            [(text(Decimal(p) * scale), text(s)) for p, s in asks.items()])


@settings(max_examples=400, deadline=None)
@given(books())
def test_the_walk_matches_the_reference(book):
    mine, naive = book_of(*book)
    got, want = per_size(mine), list(naive.slippages())
    # A size the sample fills (both sides) has both values; otherwise the tracker keeps none.
    for k in range(len(SLIPPAGE_SIZES)):
        buy, sell = want[2 * k], want[2 * k + 1]
        if buy is None or sell is None:
            want[2 * k] = want[2 * k + 1] = None
    assert [x is None for x in got] == [x is None for x in want]
    for a, b in zip(got, want):
        assert ref.close_enough(a, b, rel=1e-9, abs_tol=1e-9), (got, want)


@settings(max_examples=400, deadline=None)
@given(books())
def test_slippage_is_non_negative_monotone_in_size_and_the_half_spread_at_the_top(book):
    """Buying walks up from the best ask and selling down from the best bid, so the VWAP is
    never better than the touch (non-negative), a larger order only adds worse levels
    (monotone), and an order the best level holds pays its price: the half-spread."""
    for which, (bids, asks) in (("reference", book), ("tracker", book)):
        mine, naive = book_of(bids, asks)
        values = naive.slippages() if which == "reference" else tuple(per_size(mine))
        best_bid = max(Decimal(p) for p, _ in bids)
        best_ask = min(Decimal(p) for p, _ in asks)
        mid = (best_bid + best_ask) / 2
        half = float((best_ask - best_bid) / 2 / mid * 10_000)
        top_notional = {"buy": best_ask * dict((Decimal(p), Decimal(s)) for p, s in asks)[best_ask],
                        "sell": best_bid * dict((Decimal(p), Decimal(s)) for p, s in bids)[best_bid]}
        for offset, side in ((0, "buy"), (1, "sell")):
            series = [values[2 * k + offset] for k in range(len(SLIPPAGE_SIZES))]
            filled = [x for x in series if x is not None]
            assert series[:len(filled)] == filled, f"{which}: the sizes a side fills are a prefix"
            assert all(x >= 0 for x in filled), (which, side, series)
            assert filled == sorted(filled), (which, side, series)
            for size, x in zip(ref.SLIPPAGE_SIZES, series):
                if x is not None and top_notional[side] >= size:
                    # Exact in the reference. The tracker's float mid rounds by an ulp of the
                    # price, which (ask - mid) keeps: close to 1e-12 bps, the rows' tolerance.
                    assert x == half if which == "reference" else ref.close_enough(x, half), \
                        (which, side, size, x, half)


# -- out of the API --------------------------------------------------------------------------------


def test_the_api_documents_serves_and_exports_every_slippage_column():
    from tracker.openapi import SCHEMAS
    from tracker import export, sql, views

    for name in ("Snapshot", "Minute", "Hour"):
        schema = SCHEMAS[name]
        assert set(SLIPPAGE_COLUMNS) <= set(schema["required"]), name
        for column in SLIPPAGE_COLUMNS:
            prop = schema["properties"][column]
            want = {"type": "integer"} if column.startswith("fill_samples_") else {"type": ["number", "null"]}
            assert {k: v for k, v in prop.items() if k != "description"} == want, (name, column)
            assert "bps of the mid" in prop["description"] or "on both sides" in prop["description"]
    assert set(SLIPPAGE_COLUMNS) <= set(export.EXPORT_COLUMNS)
    # The overview's latest window and minute carry 10k and 100k for the market table.
    for columns in (sql.OVERVIEW_WINDOW_COLUMNS, sql.OVERVIEW_MINUTE_COLUMNS):
        assert {"slip_buy_10k", "slip_sell_10k", "slip_buy_100k", "slip_sell_100k"} <= set(columns)
    row = {"market_index": 1, "symbol": "ETH", **{f"w_{c}": 1.5 for c in sql.OVERVIEW_WINDOW_COLUMNS},
           "w_timestamp": T0, "w_window_ms": 15_000, "w_slip_buy_100k": None, "m_timestamp": None}
    answer = views.overview_row(row, T0 + 20_000)
    assert (answer["window"]["slip_sell_10k"], answer["window"]["slip_buy_100k"], answer["minute"]) == (1.5, None, None)
    # An unfilled size is an empty CSV field and a JSON null.
    values = [0] * len(export.EXPORT_COLUMNS)
    values[export.EXPORT_COLUMNS.index("symbol")] = "ETH"
    values[export.EXPORT_COLUMNS.index("slip_buy_1m")] = None
    values[export.EXPORT_COLUMNS.index("slip_sell_1k")] = 0.25
    csv_text = export.CsvExport().begin() + export.CsvExport().page([values])
    header, line = csv_text.splitlines()
    cells = dict(zip(header.split(","), line.split(",")))
    assert (cells["slip_buy_1m"], cells["slip_sell_1k"], cells["fill_samples_1m"]) == ("", "0.25", "0")
    doc = export.JsonExport("minutes")
    parsed = json.loads(doc.begin() + doc.page([values]) + doc.end())
    assert parsed["minutes"][0]["slip_buy_1m"] is None and parsed["minutes"][0]["slip_sell_1k"] == 0.25
