"""OrderBook against the naive reference book: every step, best levels and whole book."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.orderbook import OrderBook
from tracker.protocol import parse_frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402


# Prices on a 0.01 grid written in several decimal spellings ("12.5", "12.50", "12.5000");
# sizes likewise, zero spelled "0", "0.0", "0.0000".
def _spell(value: Decimal, decimals: int) -> str:
    return f"{value:.{decimals}f}"


prices = st.builds(
    lambda ticks, decimals: _spell(Decimal(ticks) / 100, decimals),
    st.integers(min_value=1, max_value=60),  # a dense grid: deltas often hit existing levels
    st.sampled_from([2, 3, 4]),
)
sizes = st.one_of(
    st.sampled_from(["0", "0.0", "0.0000"]),
    st.builds(
        lambda lots, decimals: _spell(Decimal(lots) / 10_000, decimals),
        st.integers(min_value=1, max_value=10**7),
        st.sampled_from([4, 5, 6]),
    ),
)
positive_sizes = sizes.filter(lambda s: Decimal(s) > 0)


def unique_levels(size_strategy, max_size):
    return st.lists(st.tuples(prices, size_strategy), max_size=max_size, unique_by=lambda lv: Decimal(lv[0]))


# A step: ('update', bids, asks, nonce jump, gap?) or ('snapshot', bids, asks, nonce).
update_steps = st.tuples(
    st.just("update"),
    st.lists(st.tuples(prices, sizes), max_size=6),
    st.lists(st.tuples(prices, sizes), max_size=6),
    st.integers(min_value=1, max_value=50),
    st.sampled_from([False] * 12 + [True]),
)
snapshot_steps = st.tuples(
    st.just("snapshot"),
    unique_levels(positive_sizes, 15),
    unique_levels(positive_sizes, 15),
    st.integers(min_value=1, max_value=10**12),
)


def as_float_book(side: dict[Decimal, Decimal]) -> dict[float, float]:
    return {float(p): float(s) for p, s in side.items()}


def assert_same(book: OrderBook, naive: ref.NaiveBook) -> None:
    assert book.valid == naive.valid
    assert book.bids == as_float_book(naive.bids)
    assert book.asks == as_float_book(naive.asks)
    assert book.bid_prices == sorted(book.bids)
    assert book.ask_prices == sorted(book.asks)
    assert book.depth() == len(naive.bids) + len(naive.asks)
    for mine, theirs in ((book.best_bid(), naive.best_bid()), (book.best_ask(), naive.best_ask())):
        assert mine == (None if theirs is None else (float(theirs[0]), float(theirs[1])))
    if naive.valid:
        assert book.nonce == naive.nonce


@settings(max_examples=100, derandomize=True, deadline=None)
@given(
    market=st.integers(min_value=0, max_value=70_000),
    first=snapshot_steps,
    steps=st.lists(st.one_of(update_steps, update_steps, update_steps, snapshot_steps), max_size=40),
)
def test_book_matches_naive_reference_after_every_frame(market, first, steps):
    book, naive = OrderBook(market), ref.NaiveBook()
    assert not book.valid and book.best_bid() is None and book.best_ask() is None
    ts = 1_700_000_000_000
    nonce = None
    for step in [first, *steps]:
        ts += 7
        if step[0] == "snapshot":
            _, bids, asks, nonce = step
            frame = parse_frame(ref.book_frame(market, ts_ms=ts, nonce=nonce, bids=bids, asks=asks, snapshot=True))
            book.apply_snapshot(frame.bids, frame.asks, frame.nonce)
            naive.snapshot(bids, asks, nonce)
        else:
            _, bids, asks, jump, gap = step
            begin = nonce + (jump if gap else 0)
            nonce = nonce + jump + 1
            frame = parse_frame(ref.book_frame(market, ts_ms=ts, nonce=nonce, begin_nonce=begin, bids=bids, asks=asks))
            applied = book.apply_update(frame.bids, frame.asks, frame.begin_nonce, frame.nonce)
            assert applied == naive.update(bids, asks, begin, nonce)
            if not applied:
                nonce = begin  # keep feeding a chain that would be continuous from here on
        assert frame.market_id == market
        assert_same(book, naive)


def test_gap_invalidates_until_a_new_snapshot():
    book = OrderBook(4095)
    book.apply_snapshot([(100.0, 1.0)], [(101.0, 2.0)], nonce=10)
    assert book.apply_update([(100.5, 3.0)], [], begin_nonce=10, nonce=15)
    assert book.best_bid() == (100.5, 3.0)
    assert not book.apply_update([], [(100.8, 1.0)], begin_nonce=14, nonce=20)  # gap
    assert not book.valid
    assert book.best_ask() == (101.0, 2.0)  # the gapped delta was not applied
    # Even a delta continuing from the last good nonce is refused: the book is dropped.
    assert not book.apply_update([], [(100.8, 1.0)], begin_nonce=15, nonce=20)
    assert not book.valid and book.best_ask() == (101.0, 2.0)
    book.apply_snapshot([(99.0, 1.0)], [(102.0, 1.0)], nonce=30)
    assert book.valid and book.best_bid() == (99.0, 1.0) and book.depth() == 2
    assert book.apply_update([], [], begin_nonce=30, nonce=31)


def test_update_before_any_snapshot_is_refused():
    book = OrderBook(1)
    assert not book.apply_update([(1.0, 1.0)], [], begin_nonce=0, nonce=1)
    assert not book.valid and book.depth() == 0


def test_snapshot_replaces_everything_and_drops_zero_levels():
    book = OrderBook(1)
    book.apply_snapshot([(1.0, 1.0), (2.0, 1.0)], [(3.0, 1.0)], nonce=1)
    book.apply_snapshot([(1.5, 0.0), (1.25, 2.0)], [(4.0, 1.0), (3.5, 0.0)], nonce=99)
    assert book.bids == {1.25: 2.0} and book.asks == {4.0: 1.0}
    assert book.bid_prices == [1.25] and book.ask_prices == [4.0]
    assert book.nonce == 99


def test_deleting_an_absent_level_and_re_adding_a_level():
    book = OrderBook(1)
    book.apply_snapshot([(1.0, 1.0)], [(2.0, 1.0)], nonce=1)
    assert book.apply_update([(0.5, 0.0)], [(2.0, 0.0), (2.0, 5.0)], begin_nonce=1, nonce=2)
    assert book.bids == {1.0: 1.0} and book.bid_prices == [1.0]
    assert book.asks == {2.0: 5.0} and book.ask_prices == [2.0]
    assert book.apply_update([], [(2.0, 7.0)], begin_nonce=2, nonce=3)  # size change, same level
    assert book.ask_prices == [2.0] and book.best_ask() == (2.0, 7.0)
