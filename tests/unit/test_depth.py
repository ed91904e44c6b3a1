"""Depth within 10/50/100 bps of the mid (issue 11): OrderBook.band_depths, the feed's
one-sample-per-second rule and the window rows' depth columns, against the naive
reference (tests/reference_model.py: exact Decimal arithmetic over every level)."""

from __future__ import annotations

import dataclasses
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.aggregator import WindowAggregator
from tracker.feed import BookFeed
from tracker.orderbook import OrderBook
from tracker.pacing import SubscriptionPacer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

T0 = 1_778_138_580_000  # a whole minute
CONNECTED = '{"type":"connected","session_id":"s1"}'


def book_of(bids, asks) -> tuple[OrderBook, ref.NaiveBook]:
    """The tracker's book and the reference's, from (price, size) strings."""
    mine = OrderBook(0)
    mine.apply_snapshot([(float(p), float(s)) for p, s in bids], [(float(p), float(s)) for p, s in asks], 1)
    naive = ref.NaiveBook()
    naive.snapshot(bids, asks, 1)
    return mine, naive


# -- band edges by hand ------------------------------------------------------------------


def test_levels_exactly_on_each_band_edge_are_inside():
    # mid = 100: the 10/50/100 bps edges are 99.9/100.1, 99.5/100.5, 99/101.
    bids = [("99.95", "1"), ("99.9", "2"), ("99.89", "4"), ("99.5", "8"), ("99.49", "16"), ("99", "32"), ("98.99", "64")]
    asks = [("100.05", "1"), ("100.1", "2"), ("100.11", "4"), ("100.5", "8"), ("100.51", "16"), ("101", "32"), ("101.01", "64")]
    mine, naive = book_of(bids, asks)
    bid_10 = 99.95 + 99.9 * 2
    ask_10 = 100.05 + 100.1 * 2
    bid_50 = bid_10 + 99.89 * 4 + 99.5 * 8
    ask_50 = ask_10 + 100.11 * 4 + 100.5 * 8
    bid_100 = bid_50 + 99.49 * 16 + 99 * 32
    ask_100 = ask_50 + 100.51 * 16 + 101 * 32
    want = [bid_10, ask_10, bid_50, ask_50, bid_100, ask_100]
    assert mine.band_depths() == pytest.approx(want, rel=1e-12)
    assert list(naive.band_depths()) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("decimals", [0, 1, 2, 4, 6])
def test_edges_hold_at_any_price_scale(decimals):
    # mid = 10000 ticks of 10^-decimals; edges at 9990/10010, 9950/10050, 9900/10100 ticks.
    scale = Decimal(10) ** -decimals
    price = lambda ticks: str(Decimal(ticks) * scale)  # noqa: E731
    bids = [(price(t), "1") for t in (9999, 9990, 9989, 9950, 9949, 9900, 9899)]
    asks = [(price(t), "1") for t in (10001, 10010, 10011, 10050, 10051, 10100, 10101)]
    mine, naive = book_of(bids, asks)
    counts = []
    for got, want in zip(mine.band_depths(), naive.band_depths(), strict=True):
        assert got == pytest.approx(want, rel=1e-12)
    # 2, 4 and 6 levels a side inside: the ones on the edge count, the next tick out does not.
    for band, n in ((10, 2), (50, 4), (100, 6)):
        inside = [p for p, _ in bids if Decimal(p) >= Decimal(price(10_000)) * (1 - Decimal(band) / 10_000)]
        counts.append(len(inside) == n)
    assert all(counts)


def test_empty_bands_are_zero_and_imbalance_is_undefined():
    # A 4% spread: nothing within 100 bps of the mid on either side.
    mine, naive = book_of([("98", "5")], [("102", "5")])
    assert mine.band_depths() == [0.0] * 6 == list(naive.band_depths())
    agg = WindowAggregator(15_000, T0)
    agg.add_tick(0, T0 + 1, 98.0, 5.0, 102.0, 5.0)
    agg.add_sample(0, T0 + 1, mine.band_depths(), mine.slippages())
    (row,) = agg.close_all(T0 + 15_000, {0: "X"})[0].rows
    assert (row.bid_depth_50, row.ask_depth_50, row.imbalance_50, row.depth_samples) == (0.0, 0.0, None, 1)


# -- the property ---------------------------------------------------------------------------


@st.composite
def books(draw):
    """A two-sided book on a tick grid whose mid is a whole number of 10000 ticks, so every
    band edge falls on a tick, with levels drawn on, next to and between the edges."""
    decimals = draw(st.integers(0, 8))
    mid = 10_000 * draw(st.integers(1, 5_000))
    half = draw(st.integers(1, mid // 100))  # spread up to 200 bps
    edge_offsets = [mid * b // 10_000 for b in ref.BANDS_BPS]
    near = st.sampled_from([o + d for o in edge_offsets for d in (-1, 0, 1)])
    anywhere = st.integers(half, mid // 50)
    offsets = st.lists(st.one_of(near, anywhere).filter(lambda o: o >= half), max_size=25)
    sizes = st.integers(1, 10**6)
    scale = Decimal(10) ** -decimals
    bids = {mid - half: draw(sizes)} | {mid - o: draw(sizes) for o in draw(offsets)}
    asks = {mid + half: draw(sizes)} | {mid + o: draw(sizes) for o in draw(offsets)}
    text = lambda ticks: str(Decimal(ticks) * scale)  # noqa: E731
    return [(text(p), text(s)) for p, s in bids.items()], [(text(p), text(s)) for p, s in asks.items()]


@settings(max_examples=300, deadline=None)
@given(books())
def test_band_depths_match_the_reference(book):
    mine, naive = book_of(*book)
    for got, want in zip(mine.band_depths(), naive.band_depths(), strict=True):
        assert ref.close_enough(got, want, rel=1e-12, abs_tol=0.0)


# -- sampling through the feed ----------------------------------------------------------------


class Run:
    """Frames through a BookFeed and, for the reference, the same frames through a NaiveBook."""

    def __init__(self, window_ms: int = 15_000) -> None:
        self.feed = BookFeed([0, 1], WindowAggregator(window_ms, T0), SubscriptionPacer())
        self.feed.on_frame(CONNECTED)
        self.books = {0: ref.NaiveBook(), 1: ref.NaiveBook()}
        self.nonce = {0: 100, 1: 500}
        self.events: list[ref.Event] = []
        self.window_ms = window_ms
        self.closed: list = []

    def flush(self, boundary: int) -> None:
        self.closed += self.feed.aggregator.close_until(boundary, {0: "A", 1: "B"})
        self.events.append(ref.Event(0, boundary, "flush"))

    def send(self, market: int, ts: int, bids=(), asks=(), snapshot=False) -> None:
        begin = self.nonce[market]
        self.nonce[market] += 1
        text = ref.book_frame(market, ts_ms=ts, nonce=self.nonce[market], begin_nonce=begin,
                              bids=bids, asks=asks, snapshot=snapshot)
        self.feed.on_frame(text)
        self.books[market].apply_frame(text)
        self.events.append(self.books[market].top_event(market, ts, depth=True))

    def rows(self, close_at: int) -> tuple[dict, dict]:
        closed = self.closed + self.feed.aggregator.close_all(close_at, {0: "A", 1: "B"})
        got = {(r.market_index, r.timestamp): dataclasses.asdict(r) for w in closed for r in w.rows}
        return got, ref.expected_windows(self.events, self.window_ms, flushed_until=T0, close_at=close_at)


def assert_rows_match(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key, row in expected.items():
        assert ref.row_mismatches(got[key], row) == [], key


def test_first_tick_of_each_second_is_sampled_one_sided_and_crossed_are_not():
    run = Run()
    run.send(0, T0 + 100, bids=[("99", "1")], asks=[("101", "1")], snapshot=True)  # sampled (second 0)
    run.send(0, T0 + 900, bids=[("99.5", "2")])  # same second: a tick, no sample
    run.send(0, T0 + 1_000, asks=[("98", "1")])  # crossed (98 < 99.5): no tick, no sample
    run.send(0, T0 + 1_100, asks=[("98", "0")])  # second 1, first tick there: sampled
    run.send(0, T0 + 2_050, bids=[("99", "0"), ("99.5", "0")])  # one-sided: no sample
    run.send(0, T0 + 2_500, bids=[("99.9", "3")])  # second 2's first tick: sampled
    run.send(0, T0 + 2_600, bids=[("99.95", "1")])  # same second again: not sampled
    assert run.feed.counters.crossed == 1 and run.feed.counters.one_sided == 1
    assert run.feed.counters.depth_samples == 3
    got, expected = run.rows(T0 + 15_000)
    assert_rows_match(got, expected)
    row = got[(0, T0)]
    assert row["tick_count"] == 5 and row["depth_samples"] == 3
    # The three samples by hand: mids 100, 100.25 and 100.45. At 100.25 the 100 bps edge
    # is 99.2475, so the bid at 99 is out; the ask at 101 is in every time.
    bid_100 = (99 + 99.5 * 2 + 99.9 * 3) / 3
    assert row["bid_depth_100"] == pytest.approx(bid_100, rel=1e-12)
    assert row["ask_depth_100"] == pytest.approx((101 + 101 + 101) / 3, rel=1e-12)
    # Within 50 bps there is nothing on either side (the spread is >= 1%): no imbalance.
    assert (row["bid_depth_50"], row["ask_depth_50"], row["imbalance_50"]) == (0.0, 0.0, None)


def test_samples_follow_the_exchange_second_not_arrival_and_go_to_their_frames_window():
    run = Run(window_ms=1_000)
    run.send(1, T0 + 999, bids=[("10", "1")], asks=[("10.01", "1")], snapshot=True)  # second 0
    run.send(1, T0 + 1_000, bids=[("10", "2")])  # second 1: sampled, into window T0 + 1000
    run.send(1, T0 + 1_001, bids=[("10", "3")])
    got, expected = run.rows(T0 + 2_000)
    assert_rows_match(got, expected)
    assert [got[(1, T0)]["depth_samples"], got[(1, T0 + 1_000)]["depth_samples"]] == [1, 1]
    assert got[(1, T0 + 1_000)]["bid_depth_10"] == pytest.approx(20.0)


def test_a_late_frame_is_sampled_but_its_sample_goes_nowhere():
    run = Run(window_ms=1_000)
    run.send(0, T0 + 2_100, bids=[("99", "1")], asks=[("101", "1")], snapshot=True)
    run.flush(T0 + 3_000)
    run.send(0, T0 + 1_900, bids=[("99", "5")])  # late (its window is closed), second 1: sampled
    run.send(0, T0 + 3_100, bids=[("99", "7")])  # second 3: sampled
    assert run.feed.aggregator.late_frames == 1
    assert run.feed.counters.depth_samples == 3
    got, expected = run.rows(T0 + 4_000)
    assert_rows_match(got, expected)
    assert got[(0, T0 + 3_000)]["depth_samples"] == 1


def test_no_sample_means_null_depth_not_zero():
    agg = WindowAggregator(15_000, T0)
    agg.add_tick(0, T0 + 5, 99.0, 1.0, 101.0, 1.0)
    (row,) = agg.close_all(T0 + 15_000, {0: "A"})[0].rows
    assert row.depth_samples == 0
    assert [getattr(row, c) for c in ref.DEPTH_COLUMNS[:-1]] == [None] * 7


def test_the_sample_rule_holds_across_reconnects():
    # The aggregator outlives a connection's feed: a new feed in the same second takes no sample.
    agg = WindowAggregator(15_000, T0)
    first = BookFeed([0], agg, SubscriptionPacer())
    first.on_frame(ref.book_frame(0, ts_ms=T0 + 10, nonce=1, bids=[("99", "1")], asks=[("101", "1")], snapshot=True))
    second = BookFeed([0], agg, SubscriptionPacer())
    second.on_frame(ref.book_frame(0, ts_ms=T0 + 20, nonce=9, bids=[("99", "1")], asks=[("101", "1")], snapshot=True))
    assert (first.counters.depth_samples, second.counters.depth_samples) == (1, 0)
