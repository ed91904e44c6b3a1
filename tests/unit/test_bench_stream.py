"""Smoke test of the benchmark stream generator (tools/bench/stream.py): deterministic,
Lighter-shaped, and clean for the tracker's pure feed (no malformed frame, no gap)."""
from __future__ import annotations

import json
from pathlib import Path

from bench.stream import generate
from tracker.aggregator import WindowAggregator
from tracker.feed import BookFeed

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lighter" / "ws_order_book_update.json"


def _shape(obj):
    """Keys (in order) all the way down, values replaced by their type."""
    if isinstance(obj, dict):
        return [(k, _shape(v)) for k, v in obj.items()]
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj else []
    return type(obj).__name__


def test_same_seed_same_frames_other_seed_other_frames():
    a = generate(markets=8, deltas=2_000, seed=3).text_frames()
    b = generate(markets=8, deltas=2_000, seed=3).text_frames()
    c = generate(markets=8, deltas=2_000, seed=4).text_frames()
    assert a == b
    assert a != c
    assert len(a) == 8 + 2_000


def test_frames_have_the_fixture_shape_and_a_nonce_chain():
    stream = generate(markets=12, deltas=3_000, seed=1)
    frames = [json.loads(f) for f in stream.text_frames()]
    fixture = json.loads(FIXTURE.read_text())
    level_shape = _shape(fixture["order_book"]["asks"][0])
    last_nonce = {}
    sizes = []
    for text, frame in zip(stream.text_frames(), frames):
        market = int(frame["channel"].split(":")[1])
        book = frame["order_book"]
        levels = book["asks"] + book["bids"]
        assert all(_shape(level) == level_shape for level in levels)
        if frame["type"] == "subscribed/order_book":
            assert book["begin_nonce"] == 0
        else:
            assert frame["type"] == "update/order_book"
            # same keys in the same order as the captured frame
            assert [k for k, _ in _shape(frame)] == [k for k, _ in _shape(fixture)]
            assert [k for k, _ in _shape(book)] == [k for k, _ in _shape(fixture["order_book"])]
            assert 1 <= len(levels) <= 4
            assert book["begin_nonce"] == last_nonce[market]
            assert book["nonce"] > book["begin_nonce"]
            sizes.append(len(text))
        last_nonce[market] = book["nonce"]
    assert 250 <= sum(sizes) / len(sizes) <= 380  # ~300-byte frames


def test_the_pure_feed_takes_the_stream_without_malformed_frames_or_gaps():
    stream = generate(markets=20, deltas=5_000, seed=2)
    aggregator = WindowAggregator(15_000, stream.base_ts_ms - stream.base_ts_ms % 15_000)
    feed = BookFeed(stream.market_ids(), aggregator)
    feed.on_frame('{"session_id":"t","type":"connected"}')
    for text in stream.text_frames():
        feed.on_frame(text)
    c = feed.counters
    assert (c.malformed, c.gaps, c.crossed, c.one_sided, c.unknown_market) == (0, 0, 0, 0, 0)
    assert (c.snapshots, c.updates) == (20, 5_000)
    assert feed.valid_books() == 20


def test_the_sbe_stream_carries_the_same_changes_and_the_paradex_feed_takes_it_clean():
    """bench.stream.sbe_frames (the Paradex sender's frames): the same levels as the
    Lighter frames, seq + 1 per market, and no gap or malformed frame through the
    pure feed with Paradex's wire."""
    from bench.stream import SNAPSHOT_TAIL, UPDATE_TAIL, paradex_markets_json, sbe_frames
    from tracker.pacing import SubscriptionPacer
    from tracker.paradex import ParadexWire
    from tracker.paradex_markets import parse_markets
    from tracker.protocol import parse_frame
    from tracker.sbe import decode

    stream = generate(markets=6, deltas=2_000, seed=5)
    sbe = sbe_frames(stream)
    markets = parse_markets(paradex_markets_json(stream), now_ms=0)
    assert sorted(m.symbol for m in markets) == sorted(sbe.symbols)
    for k in range(stream.markets):
        pairs = [(stream.snapshots[k], SNAPSHOT_TAIL, sbe.snapshots[k])]
        pairs += [(head, UPDATE_TAIL, split) for head, split in zip(stream.chains[k], sbe.chains[k])]
        seqs = []
        for head, tail, split in pairs:
            lighter = parse_frame((head + b"1774884082326" + tail).decode())
            event = decode(sbe.frame(split, 1_774_884_082_326_000))
            assert (event.bids, event.asks, event.market) == (lighter.bids, lighter.asks, sbe.symbols[k])
            seqs.append(event.seq)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    symbols = {m.market_index: m.symbol for m in markets}
    wire = ParadexWire(symbols)
    aggregator = WindowAggregator(15_000, stream.base_ts_ms - stream.base_ts_ms % 15_000)
    feed = BookFeed(list(symbols), aggregator, SubscriptionPacer(wire=wire), wire=wire)
    feed.on_open()
    cursor = [0] * stream.markets
    for k in range(stream.markets):
        feed.on_frame(sbe.frame(sbe.snapshots[k], stream.base_ts_ms * 1000))
    for position, k in enumerate(stream.order):
        feed.on_frame(sbe.frame(sbe.chains[k][cursor[k]], stream.synthetic_ts(position) * 1000))
        cursor[k] += 1
    c = feed.counters
    assert (c.malformed, c.gaps, c.crossed, c.one_sided, c.unknown_market) == (0, 0, 0, 0, 0)
    assert (c.snapshots, c.updates) == (6, 2_000)
    assert feed.valid_books() == 6
