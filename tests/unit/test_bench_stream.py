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
