"""Paradex through the common feed: the exchange's Wire (tracker/paradex.py) under
BookFeed, the pacer and the connection, in CPython, on the captured session and on
generated frames (tests/paradex_frames.py encodes them independently of tracker.sbe)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from tracker.aggregator import WindowAggregator
from tracker.config import Config
from tracker.connection import FeedConnection
from tracker.feed import BookFeed
from tracker.paradex import EXCHANGE as PARADEX
from tracker.paradex import ParadexWire
from tracker.paradex_markets import market_index_of
from tracker.pacing import RETRY_BASE_MS, SubscriptionPacer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: paradex_frames
import paradex_frames as pf  # noqa: E402

BTC, ETH = "BTC-USD-PERP", "ETH-USD-PERP"
BTC_ID, ETH_ID = market_index_of(BTC), market_index_of(ETH)
SYMBOLS = {BTC_ID: BTC, ETH_ID: ETH}
T0_US = 1_791_421_535_000_000  # the capture's morning, µs
T0 = T0_US // 1000


def make_feed(markets=(BTC_ID,), window_ms=1_000, logs=None):
    wire = ParadexWire(dict(SYMBOLS))
    pacer = SubscriptionPacer(600, 20, wire=wire, max_subscriptions=PARADEX.max_subscriptions)
    log = (lambda level, component, event, message: logs.append((level, component, event, message))) \
        if logs is not None else None
    kwargs = {"log": log} if log else {}
    return BookFeed(list(markets), WindowAggregator(window_ms), pacer, wire=wire, label="Paradex", **kwargs)


def requests(sent):
    return [json.loads(text) for text in sent]


def ack(request_id, channel):
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"channel": channel},
                       "usIn": 1, "usDiff": 1, "usOut": 2})


def book(seq, *, snapshot=False, ts_us=T0_US, market=BTC, bids=(), asks=()):
    return pf.encode_book(ts_us=ts_us, seq=seq, snapshot=snapshot, market=market, bids=bids, asks=asks)


def open_and_subscribe(feed):
    assert feed.drain(T0) == []  # nothing goes out before the socket is open
    assert feed.on_open() is True  # no `connected` frame on Paradex: open is enough
    return requests(feed.drain(T0))


def test_the_captured_session_rebuilds_the_book_the_reference_states():
    """The ack and the 60 frames of captures/btc-deltas-head.jsonl: one snapshot, 59
    deltas each seq + 1 (24 of them empty), and the final top of book of the
    reference (83484.2 / 0.01198 bid, 83504.6 / 0.00024 ask), every frame a tick."""
    feed = make_feed()
    sent = open_and_subscribe(feed)
    assert sent == [{"jsonrpc": "2.0", "method": "subscribe", "params": {"channel": f"order_book.{BTC}.deltas"},
                     "id": 1}]
    frames = pf.read_capture("btc-deltas-head.jsonl")
    assert frames[0][2] == "text"  # the captured ack (its id is 1, like ours)
    feed.on_frame(frames[0][3])
    assert BTC_ID in feed.pacer.in_flight  # a subscribe is answered by its snapshot, not the ack
    for _, _, opcode, frame in frames[1:]:
        assert opcode == "binary"
        feed.on_frame(frame)
    counters = feed.counters
    assert (counters.snapshots, counters.updates, counters.gaps, counters.malformed) == (1, 59, 0, 0)
    assert BTC_ID in feed.pacer.subscribed and not feed.pacer.in_flight
    btc = feed.books[BTC_ID]
    assert btc.valid and btc.nonce == 7687289293
    assert btc.best_bid() == (83484.2, 0.01198) and btc.best_ask() == (83504.6, 0.00024)
    assert (len(btc.bids), len(btc.asks)) == (116, 59)
    closed = feed.aggregator.close_all(10**15, SYMBOLS)
    rows = [r for w in closed for r in w.rows]
    assert sum(r.tick_count for r in rows) == 60
    assert {r.symbol for r in rows} == {BTC} and {r.market_index for r in rows} == {BTC_ID}
    # Windows are keyed by the exchange's own ts (µs -> ms): the snapshot's is 01:05:35.318.
    assert min(r.timestamp for r in rows) == 1_791_421_535_000


def test_a_seq_gap_drops_the_book_and_resubscribes_with_new_request_ids():
    logs = []
    feed = make_feed(logs=logs)
    open_and_subscribe(feed)
    feed.on_frame(book(100, snapshot=True, bids=[("100", "1")], asks=[("101", "1")]))
    assert feed.on_frame(book(101, bids=[("100", "2")])) is False
    assert feed.on_frame(book(101 + 2, asks=[("101", "3")])) is True  # 102 is missing
    assert feed.counters.gaps == 1 and not feed.books[BTC_ID].valid
    assert [(r["method"], r["params"]["channel"], r["id"]) for r in requests(feed.drain(T0 + 1))] == [
        ("unsubscribe", f"order_book.{BTC}.deltas", 2), ("subscribe", f"order_book.{BTC}.deltas", 3)]
    assert any(event == "gap" and f"seq gap on market {BTC}: expected seq 102, got 103" in message
               for _, _, event, message in logs)
    # Deltas still in flight are ignored until the fresh snapshot; empty deltas advance seq.
    assert feed.on_frame(book(104)) is False
    feed.on_frame(book(500, snapshot=True, bids=[("99", "1")], asks=[("102", "1")]))
    assert feed.books[BTC_ID].valid
    assert feed.on_frame(book(501)) is False and feed.books[BTC_ID].nonce == 501  # empty delta: seq + 1


def test_size_zero_removes_and_sizes_are_absolute():
    feed = make_feed()
    open_and_subscribe(feed)
    feed.on_frame(book(1, snapshot=True, bids=[("100", "1"), ("99", "4")], asks=[("101", "1")]))
    feed.on_frame(book(2, bids=[("100", "0")]))  # delete the best bid
    feed.on_frame(book(3, bids=[("99", "2.5")]))  # replace, not add
    assert feed.books[BTC_ID].best_bid() == (99.0, 2.5)


def test_a_refused_subscribe_is_retried_and_already_subscribed_unsubscribes_first():
    feed = make_feed(markets=(BTC_ID, ETH_ID))
    sent = open_and_subscribe(feed)
    by_market = {r["params"]["channel"].split(".")[1]: r["id"] for r in sent}
    error = {"jsonrpc": "2.0", "error": {"code": -32600, "message": "invalid subscribe request",
                                         "data": "invalid channel"}, "usIn": 1, "usDiff": 1, "usOut": 2}
    assert feed.on_frame(json.dumps({**error, "id": by_market[BTC]})) is True
    held = {"code": -32600, "message": "channel already subscribed"}
    assert feed.on_frame(json.dumps({"jsonrpc": "2.0", "error": held, "id": by_market[ETH]})) is True
    assert feed.counters.errors == 2 and not feed.pacer.in_flight
    assert feed.drain(T0 + 1) == []  # backing off
    retried = requests(feed.drain(T0 + RETRY_BASE_MS + 1))
    assert [(r["method"], r["params"]["channel"]) for r in retried] == [
        ("unsubscribe", f"order_book.{ETH}.deltas"), ("subscribe", f"order_book.{ETH}.deltas"),
        ("subscribe", f"order_book.{BTC}.deltas")]


def test_heartbeats_keep_the_feed_alive_and_other_templates_are_counted_and_skipped():
    feed = make_feed()
    open_and_subscribe(feed)
    feed.on_frame(pf.encode_heartbeat(ts_us=T0_US, seq=5))
    feed.on_frame(pf.encode_bbo(ts_us=T0_US, seq=6, bid=("100", "1"), ask=("101", "1")))
    feed.on_frame(pf.encode_book(ts_us=T0_US, seq=7, template=77))  # an unknown template: skipped, not malformed
    assert feed.counters.messages == 3 and feed.counters.skipped == 2 and feed.counters.malformed == 0
    feed.on_frame(book(8)[:-3])  # truncated: counted and skipped
    feed.on_frame(b"\x00\x01")
    feed.on_frame("not json")
    assert feed.counters.malformed == 3 and feed.counters.messages == 6


def test_longer_root_blocks_and_group_strides_still_apply():
    feed = make_feed()
    open_and_subscribe(feed)
    feed.on_frame(pf.encode_book(ts_us=T0_US, seq=1, snapshot=True, market=BTC, bids=[("100", "1")],
                                 asks=[("101", "1")], root_extra=b"\x01" * 8, entry_extra=b"\x02" * 8))
    assert feed.books[BTC_ID].best_ask() == (101.0, 1.0) and feed.counters.malformed == 0


def test_a_json_era_book_message_is_read_too():
    """Sources disagree on whether SBE is required (reference §10.5): a JSON data
    message is tolerated, not dropped."""
    feed = make_feed()
    open_and_subscribe(feed)
    message = {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": f"order_book.{BTC}.deltas", "data": {
        "seq_no": 10, "market": BTC, "last_updated_at": T0, "update_type": "s",
        "inserts": [{"side": "BUY", "price": "100", "size": "1"}, {"side": "SELL", "price": "101", "size": "2"}],
        "updates": [], "deletes": []}}}
    feed.on_frame(json.dumps(message))
    delta = dict(message["params"]["data"], seq_no=11, update_type="d", inserts=[],
                 deletes=[{"side": "SELL", "price": "101", "size": "0"}],
                 updates=[{"side": "SELL", "price": "101.5", "size": "3"}])
    feed.on_frame(json.dumps({**message, "params": {**message["params"], "data": delta}}))
    assert feed.books[BTC_ID].best_ask() == (101.5, 3.0) and feed.counters.gaps == 0


def test_frames_of_a_market_not_tracked_are_counted_not_applied():
    feed = make_feed()
    open_and_subscribe(feed)
    feed.on_frame(book(1, snapshot=True, market="SOL-USD-PERP", bids=[("1", "1")], asks=[("2", "1")]))
    assert feed.counters.unknown_market == 1 and market_index_of("SOL-USD-PERP") not in feed.books


class FakeSocket:
    def __init__(self, on_frame, on_open):
        self.open = False
        self.sent: list[str] = []
        self.on_frame, self.on_open = on_frame, on_open

    def send(self, text):
        self.sent.append(text)

    def close(self, code, reason):
        self.open = False


def test_the_connection_subscribes_at_open_and_never_pings():
    """FeedConnection with Paradex's adapter: subscriptions go out when the socket
    opens (no `connected` frame), and no client ping is ever due (the server pings)."""
    sockets: list[FakeSocket] = []

    def factory(url, on_frame, on_open, on_down):
        sockets.append(FakeSocket(on_frame, on_open))
        return sockets[-1]

    clock = type("Clock", (), {"now_ms": staticmethod(lambda: T0)})()
    config = Config().for_exchange("paradex")
    connection = FeedConnection(config.ws_url, factory, clock, lambda *a: None, PARADEX.budget(1), 30_000,
                                wake=lambda at: None, on_drop=lambda feed: None, exchange=PARADEX,
                                new_wire=lambda: PARADEX.new_wire(config, SYMBOLS))
    connection.open([BTC_ID, ETH_ID], WindowAggregator(15_000))
    socket = sockets[0]
    assert socket.sent == []
    socket.open = True
    socket.on_open()
    assert [json.loads(t)["method"] for t in socket.sent] == ["subscribe", "subscribe"]
    assert connection.connected
    due = connection.next_due(T0)
    assert due == connection.watchdog.deadline()  # the watchdog, never a ping
    connection.check(T0 + 60_000 - 1)
    assert [json.loads(t)["method"] for t in socket.sent] == ["subscribe", "subscribe"]


def test_the_interactive_book_channel_is_a_setting():
    config = Config.from_env({"PARADEX_BOOK_CHANNEL": "interactive_deltas", "ENABLED_EXCHANGES": "lighter,paradex"}.get)
    wire = PARADEX.new_wire(config, SYMBOLS)
    assert json.loads(wire.subscribe(BTC_ID))["params"]["channel"] == f"order_book.{BTC}.interactive_deltas"
    assert config.enabled_exchanges == ("lighter", "paradex")
    assert dataclasses.replace(config).for_exchange("paradex").ws_url.endswith("sbeSchemaId=1&sbeSchemaVersion=1")
