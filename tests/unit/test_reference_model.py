"""The reference model itself, checked against hand-computed numbers.

The aggregator and integration tests trust tests/reference_model.py, so its
rules are pinned here on small cases worked out by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

W = 15_000


def tick(market, ts, bid, ask, bid_size=1.0, ask_size=1.0):
    return ref.Event(market, ts, "tick", bid, bid_size, ask, ask_size)


def test_single_window_statistics_by_hand():
    events = [
        tick(1, 1_000, 99.0, 101.0, 2.0, 4.0),  # mid 100, spread 2
        tick(1, 5_000, 100.0, 104.0, 6.0, 8.0),  # mid 102, spread 4
    ]
    rows = ref.expected_windows(events, W, close_at=15_000)
    assert list(rows) == [(1, 0)]
    row = rows[(1, 0)]
    assert row["tick_count"] == 2
    assert row["avg_bid"] == pytest.approx(99.5)
    assert row["avg_ask"] == pytest.approx(102.5)
    assert row["avg_mid"] == pytest.approx(101.0)
    assert row["avg_spread"] == pytest.approx(3.0)
    assert row["min_spread"] == 2.0 and row["max_spread"] == 4.0
    assert row["avg_spread_bps"] == pytest.approx((2 / 100 + 4 / 102) / 2 * 1e4)
    assert row["avg_bid_size"] == pytest.approx(4.0) and row["avg_ask_size"] == pytest.approx(6.0)
    assert (row["last_bid"], row["last_ask"]) == (100.0, 104.0)
    # mid 100 stands 1000..5000 (4 s), mid 102 stands 5000..15000 (10 s)
    assert row["covered_ms"] == 14_000
    assert row["twap_mid"] == pytest.approx((100 * 4_000 + 102 * 10_000) / 14_000)
    assert row["window_ms"] == W


def test_standing_mid_is_cut_at_boundaries_and_invalidation_is_not_covered():
    events = [
        tick(7, 10_000, 9.0, 11.0),  # mid 10 from 10 s
        ref.Event(7, 20_000, "invalid"),  # stops at 20 s: 5 s in window 0, 5 s in window 15 s
        tick(7, 25_000, 19.0, 21.0),  # mid 20 from 25 s until the close at 28 s
    ]
    rows = ref.expected_windows(events, W, close_at=28_000)
    assert rows[(7, 0)]["covered_ms"] == 5_000 and rows[(7, 0)]["twap_mid"] == pytest.approx(10.0)
    second = rows[(7, 15_000)]
    assert second["tick_count"] == 1
    assert second["covered_ms"] == 5_000 + 3_000
    assert second["twap_mid"] == pytest.approx((10 * 5_000 + 20 * 3_000) / 8_000)


def test_without_close_windows_end_at_their_end_and_empty_windows_have_no_row():
    events = [tick(1, 14_000, 1.0, 3.0), tick(1, 47_000, 3.0, 5.0)]
    rows = ref.expected_windows(events, W)
    assert set(rows) == {(1, 0), (1, 45_000)}  # 15 s and 30 s windows saw no tick
    assert rows[(1, 0)]["covered_ms"] == 1_000
    # mid 2 stands on through the empty windows into 45 s..47 s, then mid 4 to the end
    assert rows[(1, 45_000)]["covered_ms"] == 2_000 + 13_000
    assert rows[(1, 45_000)]["twap_mid"] == pytest.approx((2 * 2_000 + 4 * 13_000) / 15_000)


def test_late_ticks_are_counted_not_merged_and_their_mid_stands_from_the_flush():
    events = [
        tick(1, 1_000, 1.0, 3.0),  # mid 2
        ref.Event(0, 16_000, "flush"),  # closes window 0 (boundary floored to 15 s)
        tick(1, 14_000, 5.0, 7.0),  # late: mid 6 stands from 15 s
        tick(1, 20_000, 9.0, 11.0),  # mid 10
    ]
    result = ref.replay(events, W, close_at=30_000)
    assert result.late_ticks == 1
    assert result.windows[(1, 0)]["tick_count"] == 1
    assert result.windows[(1, 0)]["covered_ms"] == 14_000
    second = result.windows[(1, 15_000)]
    assert second["tick_count"] == 1 and second["avg_bid"] == 9.0
    assert second["covered_ms"] == 15_000
    assert second["twap_mid"] == pytest.approx((6 * 5_000 + 10 * 10_000) / 15_000)


def test_a_tick_stamped_before_the_market_clock_replaces_the_mid_without_time():
    events = [tick(1, 2_000, 1.0, 3.0), tick(1, 6_000, 3.0, 5.0), tick(1, 4_000, 5.0, 7.0)]
    row = ref.expected_windows(events, W, close_at=10_000)[(1, 0)]
    assert row["tick_count"] == 3 and row["last_bid"] == 5.0  # last in arrival order
    assert row["covered_ms"] == 8_000
    assert row["twap_mid"] == pytest.approx((2 * 4_000 + 6 * 4_000) / 8_000)


def test_events_from_sim_record():
    records = [
        {"market_id": 3, "timestamp_ms": 10, "best_bid": "1.50", "best_ask": "1.60",
         "best_bid_size": "2", "best_ask_size": "3", "valid": True, "type": "subscribed/order_book"},
        {"market_id": 3, "timestamp_ms": 11, "best_bid": "1.60", "best_ask": "1.60",
         "best_bid_size": "2", "best_ask_size": "3", "valid": True, "type": "update/order_book"},
        {"market_id": 3, "timestamp_ms": 12, "best_bid": None, "best_ask": "1.60",
         "best_bid_size": None, "best_ask_size": "3", "valid": True, "type": "update/order_book"},
        {"market_id": 3, "timestamp_ms": 13, "best_bid": "1.50", "best_ask": "1.60",
         "best_bid_size": "2", "best_ask_size": "3", "valid": False, "type": "update/order_book"},
    ]
    events = ref.events_from_sim_record(records)
    assert events[0] == ref.Event(3, 10, "tick", 1.5, 2.0, 1.6, 3.0)
    assert [e.kind for e in events] == ["tick", "invalid", "invalid", "invalid"]
    assert [e.ts_ms for e in events] == [10, 11, 12, 13]


def test_events_from_sim_record_invalidates_at_a_connection_change():
    def rec(conn, market, ts):
        return {"conn_id": conn, "market_id": market, "timestamp_ms": ts, "best_bid": "1", "best_ask": "2",
                "best_bid_size": "1", "best_ask_size": "1", "valid": True, "type": "update/order_book"}

    records = [rec(1, 0, 100), rec(1, 5, 90), rec(2, 0, 400), rec(2, 5, 410), rec(3, 5, 500)]
    events = ref.events_from_sim_record(records)
    assert [(e.market, e.ts_ms, e.kind) for e in events] == [
        (0, 100, "tick"), (5, 90, "tick"),
        (0, 90, "invalid"), (5, 90, "invalid"),  # connection 1 dropped after its last frame (stamped 90)
        (0, 400, "tick"), (5, 410, "tick"),
        (0, 410, "invalid"), (5, 410, "invalid"),
        (5, 500, "tick"),
    ]
    assert [e.kind for e in ref.events_from_sim_record(records, split_connections=False)] == ["tick"] * 5


def test_expected_minutes_by_hand():
    base = {"symbol": "ETH", "market_index": 0, "avg_bid_size": 1.0, "avg_ask_size": 1.0, "avg_spread_bps": 1.0}
    rows = [
        {**base, "timestamp": 60_000, "tick_count": 1, "avg_bid": 10.0, "avg_ask": 12.0, "avg_spread": 2.0,
         "min_spread": 2.0, "max_spread": 2.0, "last_bid": 10.0, "last_ask": 12.0, "twap_mid": 11.0, "covered_ms": 1_000},
        {**base, "timestamp": 75_000, "tick_count": 3, "avg_bid": 20.0, "avg_ask": 22.0, "avg_spread": 2.0,
         "min_spread": 1.0, "max_spread": 3.0, "last_bid": 21.0, "last_ask": 23.0, "twap_mid": 21.0, "covered_ms": 3_000},
        {**base, "timestamp": 90_000, "tick_count": 0, "avg_bid": 0.0, "avg_ask": 0.0, "avg_spread": 0.0,
         "min_spread": 0.0, "max_spread": 0.0, "last_bid": 0.0, "last_ask": 0.0, "twap_mid": None, "covered_ms": 0},
    ]
    minute = ref.expected_minutes(rows)[("ETH", 60_000)]
    assert minute["tick_count"] == 4 and minute["windows"] == 2
    assert minute["avg_bid"] == pytest.approx((10 + 3 * 20) / 4)
    assert minute["avg_mid"] == pytest.approx(((10 + 60) / 4 + (12 + 66) / 4) / 2)
    assert (minute["min_spread"], minute["max_spread"]) == (1.0, 3.0)
    assert (minute["last_bid"], minute["last_ask"]) == (21.0, 23.0)
    assert minute["twap_mid"] == pytest.approx((11 * 1_000 + 21 * 3_000) / 4_000)
    assert minute["covered_ms"] == 4_000


def test_naive_book_and_frame_builder_shape():
    book = ref.NaiveBook()
    book.snapshot([("10.5", "1"), ("10.0", "2")], [("11.0", "3")], nonce=5)
    assert book.best_bid() == (ref.Decimal("10.5"), ref.Decimal("1"))
    assert book.update([("10.5", "0.0000")], [], begin_nonce=5, nonce=9)
    assert book.best_bid()[0] == ref.Decimal("10.0")
    assert not book.update([], [], begin_nonce=8, nonce=12)  # gap
    assert not book.valid and not book.update([], [], begin_nonce=9, nonce=12)
    frame = json.loads(ref.book_frame(4095, ts_ms=7, nonce=3, bids=[("1", "2")], snapshot=True))
    fixture = json.loads((Path(__file__).parents[1] / "fixtures/lighter/ws_order_book_subscribed.json").read_text())
    assert set(frame) == set(fixture)
    assert set(frame["order_book"]) == set(fixture["order_book"])
    assert frame["channel"] == "order_book:4095" and frame["order_book"]["begin_nonce"] == 0


def test_paradex_frames_decode_and_replay_with_the_seq_chain():
    D = ref.Decimal
    snap = ref.paradex_book_frame("BTC-USD-PERP", ts_us=1_000_000, seq=100, snapshot=True,
                                  bids=[("83412.2", "0.5"), ("83410", "1")], asks=[("83415.7", "0.25")])
    # the layout by hand: header, 89-byte block, two groups of 16-byte entries, the symbol
    assert snap[:8] == bytes([89, 0, 3, 0, 1, 0, 1, 0]) and len(snap) == 118 + 16 * 3
    assert snap[24] == 0 and snap[-13:] == b"\x0cBTC-USD-PERP"
    event = ref.decode_paradex_book(snap)
    assert event["seq"] == 100 and event["snapshot"] and event["market"] == "BTC-USD-PERP"
    assert event["bids"][0] == (D("83412.2"), D("0.5")) and event["asks"] == [(D("83415.7"), D("0.25"))]
    book = ref.NaiveBook()
    book.apply_sbe(snap)
    # a longer root block and 24-byte entries read the same (the extra bytes are skipped)
    book.apply_sbe(ref.paradex_book_frame("BTC-USD-PERP", ts_us=1_001_000, seq=101, bids=[("83412.2", "0")],
                                          asks=[("83415", "2")], block_length=97, entry_length=24))
    assert book.valid and book.best_bid() == (D("83410"), D("1")) and book.best_ask() == (D("83415"), D("2"))
    book.apply_sbe(ref.paradex_book_frame("BTC-USD-PERP", ts_us=1_001_000, seq=102))  # empty DELTA
    assert book.valid and book.nonce == 102
    assert ref.decode_paradex_book(bytes([16, 0, 40, 0, 1, 0, 1, 0]) + bytes(16)) is None  # a heartbeat
    book.apply_sbe(ref.paradex_book_frame("BTC-USD-PERP", ts_us=1_002_000, seq=104))  # 103 never came
    assert not book.valid
    with pytest.raises(ValueError):
        ref.decode_paradex_book(snap[:-3])


def test_events_from_sim_record_replays_paradex_frames():
    import base64

    def rec(seq, frame, bid, ask, valid=True, kind="delta"):
        return {"conn_id": 1, "market_id": 77, "timestamp_ms": seq, "type": kind, "seq": seq, "valid": valid,
                "best_bid": bid[0], "best_bid_size": bid[1], "best_ask": ask[0], "best_ask_size": ask[1],
                "frame_b64": base64.b64encode(frame).decode()}

    snap = ref.paradex_book_frame("ETH-USD-PERP", ts_us=10_000, seq=5, snapshot=True,
                                  bids=[("100", "1")], asks=[("101", "2"), ("102", "4")])
    delta = ref.paradex_book_frame("ETH-USD-PERP", ts_us=11_000, seq=6, asks=[("101", "0")])
    records = [rec(5, snap, ("100", "1"), ("101", "2"), kind="snapshot"), rec(6, delta, ("100", "1"), ("102", "4"))]
    events = ref.events_from_sim_record(records)
    assert [(e.kind, e.bid, e.ask) for e in events] == [("tick", 100.0, 101.0), ("tick", 100.0, 102.0)]
    assert events[1].depths[1] == 0.0 and events[1].depths[5] == pytest.approx(408.0)  # ask within 100 bps
    records[1]["best_ask"] = "101"  # a record that disagrees with its own frame
    with pytest.raises(ValueError):
        ref.events_from_sim_record(records)


def test_slippage_samples_by_hand_and_a_reader_that_samples_only_what_the_rule_samples():
    """Issue 20: a window's slippage is the mean over its samples that fill a size on both
    sides. A reader may give depths and slippages only to the ticks SampleClock samples
    (the simulation's invariants do: exact arithmetic is slow); a sampled tick without
    them is refused, not silently skipped."""
    depths = (1.0,) * 6
    slips = [(2.0, 4.0, 3.0, 5.0, None, 9.0, None, None),  # fills 1k and 10k; 100k only the sells
             (6.0, 8.0, None, 1.0, None, None, None, None)]  # fills 1k only
    events = [ref.Event(0, 100, "tick", 99.0, 1.0, 101.0, 1.0, depths, slips[0]),
              ref.Event(0, 600, "tick", 99.0, 1.0, 101.0, 1.0),  # same second: not sampled, carries nothing
              ref.Event(0, 1_200, "tick", 99.0, 1.0, 101.0, 1.0, depths, slips[1])]
    (row,) = ref.expected_windows(events, W).values()
    assert row["depth_samples"] == 2
    assert (row["slip_buy_1k"], row["slip_sell_1k"], row["fill_samples_1k"]) == (4.0, 6.0, 2)
    assert (row["slip_buy_10k"], row["slip_sell_10k"], row["fill_samples_10k"]) == (3.0, 5.0, 1)
    assert (row["slip_buy_100k"], row["slip_sell_100k"], row["fill_samples_100k"]) == (None, None, 0)
    assert row["fill_samples_1m"] == 0
    with pytest.raises(ValueError, match="carries no depths"):
        ref.expected_windows(events[:2] + [events[2]._replace(depths=None, slips=None)], W)
    clock = ref.SampleClock()
    assert [clock.due(0, t) for t in (100, 600, 1_200, 1_999, 2_000)] == [True, False, True, False, True]
    assert clock.due(1, 600)  # per market
