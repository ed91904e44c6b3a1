"""Frame parsing: the captured Lighter frames, and everything that must be refused."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker import protocol
from tracker.protocol import BookFrame, ControlFrame, MalformedFrame, channel_market_id, parse_frame

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lighter"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_text(name))


# -- the captures ------------------------------------------------------------------


def test_subscribed_snapshot_capture():
    frame = parse_frame(fixture_text("ws_order_book_subscribed.json"))
    assert frame == BookFrame(
        market_id=0,
        is_snapshot=True,
        timestamp=1778138582602,
        nonce=904845,
        begin_nonce=0,
        bids=[(2000.0, 0.02)],
        asks=[(2325.0, 99.0), (2341.25, 340.1028)],
    )


def test_update_capture():
    frame = parse_frame(fixture_text("ws_order_book_update.json"))
    assert frame == BookFrame(
        market_id=0,
        is_snapshot=False,
        timestamp=1774884082326,
        nonce=9182390020,
        begin_nonce=9182389998,
        bids=[],
        asks=[(2064.54, 0.3285)],
    )


def test_update_capture_as_bytes():
    frame = parse_frame(fixture_text("ws_order_book_update.json").encode())
    assert isinstance(frame, BookFrame) and frame.nonce == 9182390020


def test_empty_book_capture_parses_with_no_levels():
    frame = parse_frame(fixture_text("ws_order_book_subscribed_empty.json"))
    assert isinstance(frame, BookFrame)
    assert (frame.market_id, frame.is_snapshot, frame.nonce) == (39, True, 0)
    assert frame.bids == [] and frame.asks == []


def test_bad_body_capture_is_malformed():
    with pytest.raises(MalformedFrame, match="order_book is not an object"):
        parse_frame(fixture_text("ws_order_book_subscribed_bad_body.json"))


def test_subscribe_failed_capture_is_an_error_frame():
    frame = parse_frame(fixture_text("ws_order_book_subscribe_failed.json"))
    assert frame == ControlFrame(type="error", market_id=0, code=30012, message="failed to subscribe", refusal="refused")


def test_nested_error_shape():
    text = json.dumps({"type": "error", "error": {"code": 30012, "message": "failed to subscribe", "channel": "order_book:77"}})
    assert parse_frame(text) == ControlFrame(type="error", market_id=77, code=30012, message="failed to subscribe", refusal="refused")


def test_nested_error_shape_with_channel_outside():
    text = json.dumps({"type": "error", "channel": "order_book:70000", "error": {"code": 30003, "message": "already subscribed"}})
    assert parse_frame(text) == ControlFrame(type="error", market_id=70000, code=30003, message="already subscribed", refusal="held")


def test_error_without_channel_or_integer_code():
    frame = parse_frame('{"type":"error","code":"30009","message":"too many websocket messages"}')
    assert frame == ControlFrame(type="error", market_id=None, code=None, message="too many websocket messages")
    assert parse_frame('{"type":"error","error":"boom"}') == ControlFrame(type="error")


def test_error_message_is_truncated():
    frame = parse_frame(json.dumps({"type": "error", "code": 1, "message": "x" * 10_000}))
    assert frame.message == "x" * 200


@pytest.mark.parametrize(
    "text, kind",
    [
        ('{"type":"connected","session_id":"abc"}', "connected"),
        ('{"type":"ping"}', "ping"),
        ('{"type":"pong"}', "pong"),
        ('{"type":"unsubscribed/order_book","channel":"order_book:5"}', "unsubscribed/order_book"),
        ('{"type":"subscribed/trade","channel":"trade:5"}', "subscribed/trade"),
    ],
)
def test_control_frames(text, kind):
    frame = parse_frame(text)
    assert isinstance(frame, ControlFrame) and frame.type == kind
    assert frame.market_id == (5 if "order_book:5" in text else None)


# -- channels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel, market_id",
    [
        ("order_book:0", 0),
        ("order_book/0", 0),
        ("order_book:2048", 2048),
        ("order_book:4095", 4095),
        ("order_book:50000", 50000),  # above 16 bits
        ("order_book/65536", 65536),
        ("order_book:4294967296", 2**32),
        ("order_book:9007199254740991", 2**53 - 1),
    ],
)
def test_channel_ids(channel, market_id):
    assert channel_market_id(channel) == market_id


@pytest.mark.parametrize(
    "channel",
    [None, 5, "", "order_book", "order_book:", "order_book/", "order_book:-1", "order_book:1.5",
     "order_book:1 ", "order_book: 1", "order_books:1", "order_book_1", "trade:1", "order_book:0x10",
     "order_book:²", "order_book:١٢", "order_book:" + "9" * 5000, ["order_book:1"]],
)
def test_bad_channels_are_not_order_books(channel):
    assert channel_market_id(channel) is None


def test_book_frame_with_non_ascii_digit_channel_is_malformed_not_a_crash():
    frame = fixture_json("ws_order_book_update.json")
    frame["channel"] = "order_book:²"
    with pytest.raises(MalformedFrame):
        parse_frame(json.dumps(frame))
    frame["channel"] = "order_book:" + "1" * 5000  # beyond int()'s digit limit
    with pytest.raises(MalformedFrame):
        parse_frame(json.dumps(frame))


def test_client_messages():
    assert json.loads(protocol.subscribe(50000)) == {"type": "subscribe", "channel": "order_book/50000"}
    assert json.loads(protocol.unsubscribe(7)) == {"type": "unsubscribe", "channel": "order_book/7"}
    assert json.loads(protocol.PING) == {"type": "ping"}
    assert json.loads(protocol.PONG) == {"type": "pong"}


# -- malformed frames ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "not json", "{", "[1,2]", '"text"', "42", "null", '{"no_type":1}', '{"type":5}', '{"type":null}',
     b"\xff\xfe\x00", "[" * 100_000],
)
def test_not_a_frame(text):
    with pytest.raises(MalformedFrame):
        parse_frame(text)


def _mutated(name: str, mutate) -> str:
    frame = copy.deepcopy(fixture_json(name))
    mutate(frame)
    return json.dumps(frame)


def _set(path, value):
    def mutate(frame):
        target = frame
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(frame):
        target = frame
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


BAD_BOOK_MUTATIONS = {
    "channel missing": _delete(["channel"]),
    "channel of another stream": _set(["channel"], "trade:0"),
    "body a list": _set(["order_book"], []),
    "body null": _set(["order_book"], None),
    "timestamp missing": _delete(["timestamp"]),
    "timestamp a string": _set(["timestamp"], "1778138582602"),
    "timestamp a float": _set(["timestamp"], 1778138582602.5),
    "timestamp a bool": _set(["timestamp"], True),
    "nonce missing": _delete(["order_book", "nonce"]),
    "nonce a string": _set(["order_book", "nonce"], "904845"),
    "begin_nonce null": _set(["order_book", "begin_nonce"], None),
    "asks missing": _delete(["order_book", "asks"]),
    "bids an object": _set(["order_book", "bids"], {"price": "1", "size": "1"}),
    "level a list": _set(["order_book", "asks", 0], ["2325.00", "99.0000"]),
    "level a string": _set(["order_book", "asks", 0], "2325.00"),
    "level without size": _set(["order_book", "asks", 0], {"price": "2325.00"}),
    "level without price": _set(["order_book", "bids", 0], {"size": "1"}),
    "price a number": _set(["order_book", "asks", 0, "price"], 2325.0),
    "price an int": _set(["order_book", "asks", 0, "price"], 2325),
    "size a number": _set(["order_book", "bids", 0, "size"], 0.02),
    "price null": _set(["order_book", "bids", 0, "price"], None),
    "price a bool": _set(["order_book", "bids", 0, "price"], True),
    "price not numeric": _set(["order_book", "asks", 0, "price"], "abc"),
    "price empty": _set(["order_book", "asks", 0, "price"], ""),
    "price NaN": _set(["order_book", "asks", 0, "price"], "NaN"),
    "price nan": _set(["order_book", "asks", 0, "price"], "nan"),
    "price inf": _set(["order_book", "asks", 0, "price"], "inf"),
    "price Infinity": _set(["order_book", "asks", 0, "price"], "Infinity"),
    "price overflowing to inf": _set(["order_book", "asks", 0, "price"], "1e400"),
    "price negative": _set(["order_book", "asks", 0, "price"], "-2325.00"),
    "price zero": _set(["order_book", "bids", 0, "price"], "0"),
    "price zero with decimals": _set(["order_book", "bids", 0, "price"], "0.0000"),
    "size NaN": _set(["order_book", "asks", 1, "size"], "NaN"),
    "size -inf": _set(["order_book", "asks", 1, "size"], "-inf"),
    "size negative": _set(["order_book", "bids", 0, "size"], "-0.0200"),
}


@pytest.mark.parametrize("what", sorted(BAD_BOOK_MUTATIONS))
@pytest.mark.parametrize("name", ["ws_order_book_subscribed.json", "ws_order_book_update_with_bids"])
def test_bad_book_frames_are_malformed(name, what):
    if name == "ws_order_book_update_with_bids":  # the update capture, with a bid and a second ask
        def base(frame):
            frame["order_book"]["bids"] = [{"price": "2000.00", "size": "0.0200"}]
            frame["order_book"]["asks"].append({"price": "2070.00", "size": "1.0000"})
        text = _mutated("ws_order_book_update.json", base)
        source = json.loads(text)
        BAD_BOOK_MUTATIONS[what](source)
        text = json.dumps(source)
    else:
        text = _mutated(name, BAD_BOOK_MUTATIONS[what])
    with pytest.raises(MalformedFrame):
        parse_frame(text)


def test_zero_size_is_a_removal_not_malformed():
    text = _mutated("ws_order_book_update.json", _set(["order_book", "asks", 0, "size"], "0.0000"))
    assert parse_frame(text).asks == [(2064.54, 0.0)]


def test_extra_fields_are_ignored():
    def mutate(frame):
        frame["new_field"] = {"x": [1, 2]}
        frame["order_book"]["asks"][0]["orders"] = 3

    frame = parse_frame(_mutated("ws_order_book_subscribed.json", mutate))
    assert frame.asks[0] == (2325.0, 99.0)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_fuzzed_order_books_either_parse_cleanly_or_are_malformed(body):
    """Whatever sits in order_book, parsing ends in a BookFrame or MalformedFrame, nothing else."""
    text = json.dumps({"type": "update/order_book", "channel": "order_book:1", "timestamp": 5, "order_book": body})
    try:
        frame = parse_frame(text)
    except MalformedFrame:
        return
    for price, size in frame.bids + frame.asks:
        assert 0 < price < math.inf and 0 <= size < math.inf


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.text(max_size=40))
def test_fuzzed_price_strings_parse_to_finite_positive_or_are_malformed(price):
    text = json.dumps({
        "type": "update/order_book", "channel": "order_book:1", "timestamp": 5,
        "order_book": {"nonce": 2, "begin_nonce": 1, "bids": [{"price": price, "size": "1"}], "asks": []},
    })
    try:
        frame = parse_frame(text)
    except MalformedFrame:
        return
    assert 0 < frame.bids[0][0] < math.inf
