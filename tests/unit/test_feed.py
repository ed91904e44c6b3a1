"""BookFeed end to end in CPython: Lighter-shaped frames in, books, counters, rows out."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tracker import protocol
from tracker.aggregator import WindowAggregator
from tracker.feed import BookFeed
from tracker.pacing import RESERVED_FOR_KEEPALIVE, RETRY_BASE_MS, SubscriptionPacer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lighter"
T0 = 1_778_138_580_000
MARKETS = [0, 1, 4095, 50000]
SYMBOLS = {0: "ETH", 1: "BTC", 4095: "ETH-T", 50000: "FUTURE/USDC"}
CONNECTED = '{"type":"connected","session_id":"s1"}'


def sub(m):
    return protocol.subscribe(m)


def unsub(m):
    return protocol.unsubscribe(m)


def make_feed(markets=MARKETS, window_ms=1_000, log=None):
    kwargs = {"log": log} if log else {}
    return BookFeed(markets, WindowAggregator(window_ms), SubscriptionPacer(), **kwargs)


def connect(feed, now=T0):
    assert feed.drain(now) == []  # nothing goes out before Lighter says `connected`
    assert feed.on_frame(CONNECTED) is True
    assert feed.connected
    return feed.drain(now)


def snapshot(m, ts, nonce, bids=(("100.00", "1.0000"),), asks=(("101.00", "2.0000"),)):
    return ref.book_frame(m, ts_ms=ts, nonce=nonce, bids=bids, asks=asks, snapshot=True)


def update(m, ts, begin, nonce, bids=(), asks=()):
    return ref.book_frame(m, ts_ms=ts, nonce=nonce, begin_nonce=begin, bids=bids, asks=asks)


def rows_of(closed):
    return {(r.market_index, r.timestamp): dataclasses.asdict(r) for w in closed for r in w.rows}


# -- connection start ------------------------------------------------------------------


def test_connected_gates_the_first_subscriptions():
    feed = make_feed()
    assert feed.drain(T0) == [] and feed.drain(T0 + 60_000) == []
    assert feed.on_frame('{"type":"pong"}') is False and feed.drain(T0) == []
    out = connect(feed, T0 + 60_000)
    assert out == [sub(m) for m in MARKETS]
    assert feed.drain(T0 + 60_001) == []  # each subscription once


def test_captured_snapshot_and_update_through_the_feed():
    feed = make_feed(markets=[0, 39])
    connect(feed)
    assert feed.on_frame((FIXTURES / "ws_order_book_subscribed.json").read_text()) is True  # ack frees a slot
    book = feed.books[0]
    assert book.valid and book.best_bid() == (2000.0, 0.02) and book.best_ask() == (2325.0, 99.0)
    assert feed.on_frame((FIXTURES / "ws_order_book_subscribed_empty.json").read_text()) is True
    assert feed.books[39].valid and feed.books[39].depth() == 0
    assert feed.counters.snapshots == 2 and feed.counters.one_sided == 1
    assert feed.aggregator.current_markets() == 1  # only market 0 ticked
    # The update capture does not continue this snapshot's nonce: a gap.
    assert feed.on_frame((FIXTURES / "ws_order_book_update.json").read_text()) is True
    assert feed.counters.gaps == 1 and feed.counters.gaps_by_market == {0: 1}
    assert not feed.books[0].valid
    assert feed.last_timestamp == 1774884082326


def test_bad_body_capture_is_counted_and_skipped():
    feed = make_feed(markets=[4095])
    connect(feed)
    assert feed.on_frame((FIXTURES / "ws_order_book_subscribed_bad_body.json").read_text()) is False
    assert feed.counters.malformed == 1 and feed.counters.messages == 2
    assert not feed.books[4095].valid
    assert feed.on_frame(snapshot(4095, T0, 5)) is True
    assert feed.books[4095].valid and feed.counters.snapshots == 1


# -- gaps ---------------------------------------------------------------------------------


def test_gap_resubscribes_exactly_once_and_drops_ticks_until_a_fresh_snapshot():
    logs = []
    feed = make_feed(log=lambda level, component, event, msg: logs.append((level, msg)))
    connect(feed)
    for m in MARKETS:
        feed.on_frame(snapshot(m, T0 + 10, 100))
    assert feed.valid_books() == 4 and feed.drain(T0 + 20) == []
    assert feed.on_frame(update(1, T0 + 100, 100, 110, bids=[("100.50", "1")])) is False
    assert feed.on_frame(update(1, T0 + 200, 111, 120, bids=[("100.60", "1")])) is True  # gap: 111 != 110
    assert feed.counters.gaps == 1 and feed.counters.gaps_by_market == {1: 1}
    assert any(level == "warn" and "nonce gap on market 1" in msg for level, msg in logs)
    # More deltas while waiting: neither ticks nor more resubscriptions.
    ticks_before = _ticks(feed, 1)
    for i, (b, n) in enumerate([(120, 130), (130, 140), (110, 150)]):
        assert feed.on_frame(update(1, T0 + 300 + i, b, n, asks=[("100.70", "3")])) is False
    assert _ticks(feed, 1) == ticks_before and feed.counters.gaps == 1
    assert feed.drain(T0 + 400) == [unsub(1), sub(1)]
    assert feed.drain(T0 + 500) == []
    # Other markets keep ticking meanwhile.
    assert feed.on_frame(update(0, T0 + 600, 100, 101, bids=[("100.10", "1")])) is False
    assert _ticks(feed, 0) == 2
    # The fresh snapshot brings market 1 back.
    assert feed.on_frame(snapshot(1, T0 + 700, 999, bids=[("99.00", "1")], asks=[("99.50", "1")])) is True
    assert feed.books[1].valid and feed.books[1].best_ask() == (99.5, 1.0)
    assert _ticks(feed, 1) == ticks_before + 1
    assert feed.on_frame(update(1, T0 + 800, 999, 1005, bids=[("99.10", "2")])) is False
    assert feed.books[1].best_bid() == (99.1, 2.0) and feed.counters.gaps == 1


def _ticks(feed, market):
    start = feed.aggregator.current_window_start
    acc = feed.aggregator._windows.get(start, {}).get(market) if start is not None else None
    return 0 if acc is None else acc.ticks


def test_gap_stops_the_time_weighting_at_the_gap_frame():
    feed = make_feed(window_ms=1_000)
    connect(feed)
    feed.on_frame(snapshot(0, T0 + 100, 1, bids=[("10.00", "1")], asks=[("12.00", "1")]))  # mid 11
    feed.on_frame(update(0, T0 + 400, 7, 9))  # gap at +400: 11 stood 300 ms
    feed.on_frame(snapshot(0, T0 + 900, 20, bids=[("20.00", "1")], asks=[("22.00", "1")]))  # mid 21
    row = rows_of(feed.aggregator.close_all(T0 + 1_000, SYMBOLS))[(0, T0)]
    assert row["tick_count"] == 2 and row["covered_ms"] == 300 + 100
    assert row["twap_mid"] == pytest.approx((11 * 300 + 21 * 100) / 400)


# -- control frames --------------------------------------------------------------------------


def test_server_ping_gets_a_pong():
    feed = make_feed()
    connect(feed)
    assert feed.on_frame('{"type":"ping"}') is True
    assert feed.drain(T0 + 5) == [protocol.PONG]
    assert feed.drain(T0 + 6) == []
    assert feed.on_frame('{"type":"pong"}') is False  # a reply to our own ping: nothing to do


def test_pong_goes_out_even_when_subscriptions_have_used_the_rate_budget():
    markets = list(range(300))
    pacer = SubscriptionPacer(max_per_minute=180, max_in_flight=1_000)
    feed = BookFeed(markets, WindowAggregator(15_000), pacer)
    feed.on_frame(CONNECTED)
    assert len(feed.drain(T0)) == 180 - RESERVED_FOR_KEEPALIVE
    feed.on_frame('{"type":"ping"}')
    assert feed.drain(T0 + 1) == [protocol.PONG]


def test_malformed_frames_are_counted_and_the_feed_carries_on():
    logs = []
    feed = make_feed(markets=[0], log=lambda *a: logs.append(a))
    connect(feed)
    feed.on_frame(snapshot(0, T0, 10))
    bad = ["{", "[]", '{"type":"update/order_book","channel":"order_book:0"}', b"\xff",
           update(0, T0 + 1, 10, 11, bids=[("NaN", "1")]), update(0, T0 + 1, 10, 11, asks=[("1e999", "1")]),
           '{"type":"update/order_book","channel":"order_book:²","timestamp":1,"order_book":{}}']
    for i in range(250):
        assert feed.on_frame(bad[i % len(bad)]) is False
    assert feed.counters.malformed == 250 and feed.counters.messages == 252
    assert feed.books[0].valid and feed.books[0].nonce == 10  # untouched by the junk
    assert feed.on_frame(update(0, T0 + 2, 10, 11, bids=[("100.50", "1")])) is False
    assert feed.books[0].best_bid() == (100.5, 1.0)
    warned = [a for a in logs if "malformed" in a[2]]
    assert len(warned) == 10 + 2  # the first ten, then every 100th (#100, #200)


def test_frames_for_unknown_markets_are_counted_not_applied():
    feed = make_feed(markets=[0])
    connect(feed)
    assert feed.on_frame(snapshot(5, T0, 1)) is False
    assert feed.counters.unknown_market == 1 and 5 not in feed.books
    assert feed.aggregator.open_windows() == 0


def test_crossed_and_one_sided_books_are_counted_and_not_ticks():
    feed = make_feed(markets=[0])
    connect(feed)
    feed.on_frame(snapshot(0, T0, 1, bids=[("100.00", "1")], asks=[("101.00", "1")]))
    feed.on_frame(update(0, T0 + 1, 1, 2, bids=[("101.00", "1")]))  # bid == ask: crossed
    feed.on_frame(update(0, T0 + 2, 2, 3, bids=[("102.00", "1")]))  # bid > ask: crossed
    feed.on_frame(update(0, T0 + 3, 3, 4, bids=[("102.00", "0"), ("101.00", "0"), ("100.00", "0")]))  # no bids
    assert (feed.counters.crossed, feed.counters.one_sided, feed.counters.gaps) == (2, 1, 0)
    assert feed.books[0].valid
    feed.on_frame(update(0, T0 + 4, 4, 5, bids=[("99.00", "1")]))
    row = rows_of(feed.aggregator.close_all(T0 + 10, SYMBOLS))[(0, T0)]
    assert row["tick_count"] == 2  # the snapshot and the last delta
    assert row["covered_ms"] == 1 + 6 and row["symbol"] == "ETH"


# -- refusals ------------------------------------------------------------------------------


def failed(m, nested=False):
    if nested:
        return json.dumps({"type": "error", "error": {"code": 30012, "message": "failed to subscribe", "channel": f"order_book:{m}"}})
    return json.dumps({"type": "error", "code": 30012, "message": "failed to subscribe", "channel": f"order_book:{m}"})


@pytest.mark.parametrize("nested", [False, True])
def test_refused_subscription_is_retried_with_backoff(nested):
    feed = make_feed(markets=[0, 50000])
    assert connect(feed) == [sub(0), sub(50000)]
    feed.on_frame(snapshot(0, T0 + 5, 1))
    now = T0 + 10
    delays = []
    for refusal in range(1, 5):
        assert feed.on_frame(failed(50000, nested)) is True
        assert feed.counters.errors == refusal and not feed.books[50000].valid
        assert feed.drain(now) == []  # not at once
        wake = feed.pacer.next_send_at(now)
        assert wake is not None and wake > now
        assert feed.drain(wake - 1) == []
        assert feed.drain(wake) == [sub(50000)]  # refused: nothing held, a plain subscribe
        delays.append(wake - now)
        now = wake + 10
    assert delays == [RETRY_BASE_MS * 2**k for k in range(4)]
    # Accepted at last: the snapshot resets the backoff.
    assert feed.on_frame(snapshot(50000, now, 7)) is True
    assert feed.books[50000].valid
    assert feed.on_frame(failed(50000, nested)) is True
    feed.drain(now + 1)
    assert feed.pacer.next_send_at(now + 1) == now + 1 + RETRY_BASE_MS


def test_error_frames_that_need_no_action():
    feed = make_feed(markets=[0])
    connect(feed)
    assert feed.on_frame('{"type":"error","code":30009,"message":"too many websocket messages"}') is False
    assert feed.on_frame(failed(12345)) is False  # not one of ours
    assert feed.counters.errors == 2
    assert feed.drain(T0 + 1) == [] and feed.pacer.next_send_at(T0 + 1) == T0 + 30_000  # only the ack timeout


def test_snapshot_after_a_refusal_cancels_the_retry():
    """Lighter refused, then delivered the book anyway: no pointless resubscribe later."""
    feed = make_feed(markets=[0])
    connect(feed)
    feed.on_frame(failed(0))
    feed.drain(T0 + 1)  # the retry is scheduled
    feed.on_frame(snapshot(0, T0 + 2, 5))
    assert feed.books[0].valid
    assert feed.drain(T0 + 60_000) == []
    assert feed.pacer.pending == 0


# -- a long random session against the reference --------------------------------------------


class Exchange:
    """A toy Lighter: true books per market, deltas with a nonce chain, faults on demand."""

    def __init__(self, rng: random.Random, markets):
        self.rng = rng
        self.books = {m: ref.NaiveBook() for m in markets}
        self.nonce = {m: rng.randrange(1, 10**6) for m in markets}
        for m in markets:
            mid = rng.randrange(50_00, 150_00)
            self.books[m].snapshot(
                [(self._p(mid - k), "1.5") for k in range(1, 6)],
                [(self._p(mid + k), "2.5") for k in range(1, 6)],
                self.nonce[m],
            )

    @staticmethod
    def _p(cents: int) -> str:
        return f"{Decimal(cents) / 100:.2f}"

    def snapshot_frame(self, m, ts):
        b = self.books[m]
        return ref.book_frame(m, ts_ms=ts, nonce=self.nonce[m], snapshot=True,
                              bids=[(str(p), str(s)) for p, s in b.bids.items()],
                              asks=[(str(p), str(s)) for p, s in b.asks.items()])

    def delta_frame(self, m, ts):
        rng, b = self.rng, self.books[m]
        best_bid = b.best_bid()
        center = int((best_bid[0] if best_bid else Decimal(100)) * 100)
        levels = {"bids": [], "asks": []}
        for _ in range(rng.randint(1, 4)):
            side = rng.choice(("bids", "asks"))
            offset = rng.randint(-3, 8)  # sometimes through the other side: crossed books
            cents = center - offset if side == "bids" else center + offset
            if cents <= 0:
                continue
            existing = list(b.bids if side == "bids" else b.asks)
            if existing and rng.random() < 0.4:
                price = str(rng.choice(existing))
                size = rng.choice(("0", "0.0000"))
            else:
                price = self._p(cents)
                size = rng.choice(("0.5", "1.2500", "3", "0"))
            levels[side].append((price, size))
        if rng.random() < 0.01:  # wipe a side: one-sided book
            side = rng.choice(("bids", "asks"))
            levels[side] = [(str(p), "0") for p in (b.bids if side == "bids" else b.asks)]
        begin = self.nonce[m]
        self.nonce[m] += rng.randint(1, 30)
        b.update(levels["bids"], levels["asks"], begin, self.nonce[m])
        return ref.book_frame(m, ts_ms=ts, nonce=self.nonce[m], begin_nonce=begin,
                              bids=levels["bids"], asks=levels["asks"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_session_matches_the_reference(seed):
    rng = random.Random(seed)
    window_ms = 1_000
    feed = make_feed(window_ms=window_ms)
    exchange = Exchange(rng, MARKETS)
    views = {m: ref.NaiveBook() for m in MARKETS}  # what the tracker should believe
    events: list[ref.Event] = []
    closed = []
    now = T0
    assert connect(feed, now) == [sub(m) for m in MARKETS]
    awaiting_snapshot = {m: now + rng.randint(1, 50) for m in MARKETS}
    expected_gaps = expected_malformed = frames = 0
    for _ in range(3_000):
        now += rng.choice((0, 1, 3, 10, 40))
        for m, due in list(awaiting_snapshot.items()):
            if due <= now:
                del awaiting_snapshot[m]
                text = exchange.snapshot_frame(m, now)
                views[m].snapshot(*_levels(text), exchange.nonce[m])
                feed.on_frame(text)
                events.append(views[m].top_event(m, now, depth=True))
                frames += 1
        m = rng.choice(MARKETS)
        roll = rng.random()
        if roll < 0.01:
            assert feed.on_frame('{"type":"ping"}') is True
            assert feed.drain(now) == [protocol.PONG]
            continue
        if roll < 0.02:
            feed.on_frame('{"type":"update/order_book","channel":"order_book:%d","order_book":7}' % m)
            expected_malformed += 1
            continue
        text = exchange.delta_frame(m, now)
        if roll < 0.03:
            continue  # lost on the way: the next delta of m has a gap
        frames += 1
        was_valid = views[m].valid
        bids, asks = _levels(text)
        body = json.loads(text)["order_book"]
        ok = views[m].update(bids, asks, body["begin_nonce"], body["nonce"])
        wake = feed.on_frame(text)
        events.append(views[m].top_event(m, now, depth=True))
        if was_valid and not ok:
            expected_gaps += 1
            assert wake is True
            assert feed.drain(now) == [unsub(m), sub(m)]
            awaiting_snapshot[m] = now + rng.randint(5, 300)
        else:
            assert wake is False
        if rng.random() < 0.01:  # the alarm, with its grace
            closed += feed.aggregator.close_until(now - 300, SYMBOLS)
            events.append(ref.Event(0, now - 300, "flush"))
        for mk in MARKETS:
            assert feed.books[mk].valid == views[mk].valid
            if views[mk].valid:
                bb, ba = views[mk].best_bid(), views[mk].best_ask()
                assert feed.books[mk].best_bid() == (None if bb is None else (float(bb[0]), float(bb[1])))
                assert feed.books[mk].best_ask() == (None if ba is None else (float(ba[0]), float(ba[1])))
    closed += feed.aggregator.close_all(now + 500, SYMBOLS)
    got = rows_of(closed)
    expected = ref.replay(events, window_ms, close_at=now + 500)
    assert sorted(got) == sorted(expected.windows)
    for key, row in expected.windows.items():
        assert ref.row_mismatches(got[key], row) == [], key
    c = feed.counters
    assert c.gaps == expected_gaps > 0
    assert c.crossed > 0 and c.one_sided > 0
    assert c.malformed == expected_malformed > 0
    assert c.snapshots + c.updates == frames
    assert feed.aggregator.late_frames == expected.late_ticks
    assert sum(1 for e in events if e.kind == "invalid") >= expected_gaps
    # Depth was compared row by row above; the feed sampled about once per market-second.
    sampled = sum(row["depth_samples"] for row in expected.windows.values())
    assert 0 < sampled <= c.depth_samples


def _levels(text):
    body = json.loads(text)["order_book"]
    return [(lv["price"], lv["size"]) for lv in body["bids"]], [(lv["price"], lv["size"]) for lv in body["asks"]]
