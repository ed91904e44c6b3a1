"""Paradex SBE decoding (tracker.sbe): the captured production frames, an independent
encoder (tests/paradex_frames.py) round-tripping through the decoder, and everything
that must be refused with MalformedFrame (and never another exception)."""

from __future__ import annotations

import random
import struct
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paradex_frames as pf
from tracker import sbe
from tracker.protocol import MalformedFrame
from tracker.sbe import BookEvent, Heartbeat, Skipped, decode

DELTAS = "btc-deltas-head.jsonl"
BBO = "btc-bbo-head.jsonl"
FIRST_SEQ = 7687289234


def expected_float(m: int) -> float:
    """What the Lighter path would compute: float() of the decimal text."""
    return float(pf.value_text(m))


def mantissa_of(x: float) -> int:
    """The mantissa a decoded float came from (the decimal of its shortest repr, x 10^8)."""
    return pf.mantissa(x)


# -- the captures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def deltas() -> list[BookEvent]:
    return [decode(f) for f in pf.binary_frames(DELTAS)]


def test_every_captured_frame_decodes():
    for name in (DELTAS, BBO):
        for lineno, _, opcode, frame in pf.read_capture(name):
            if opcode == "binary":
                decode(frame)  # raises on any problem
            else:
                assert lineno == 1  # the subscribe ack, JSON text


def test_deltas_capture_snapshot_then_consecutive_deltas(deltas):
    assert len(deltas) == 60 and all(type(e) is BookEvent for e in deltas)
    assert [e.snapshot for e in deltas] == [True] + [False] * 59
    assert [e.seq for e in deltas] == list(range(FIRST_SEQ, FIRST_SEQ + 60))
    assert {e.market for e in deltas} == {"BTC-USD-PERP"}
    assert all(e.ts_us % 1000 == 0 for e in deltas)  # whole milliseconds, as captured
    assert sum(1 for e in deltas[1:] if not e.bids and not e.asks) == 24
    snapshot = deltas[0]
    assert (len(snapshot.bids), len(snapshot.asks)) == (115, 60)
    assert snapshot.ts_us == 1791421535318000
    assert deltas[1] == BookEvent(1791421535936000, FIRST_SEQ + 1, False, "BTC-USD-PERP", [(83412.2, 0.00019)], [])


def test_deltas_capture_rebuilds_the_reference_book(deltas):
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for event in deltas:
        if event.snapshot:
            bids.clear()
            asks.clear()
        for book, levels in ((bids, event.bids), (asks, event.asks)):
            for price, size in levels:
                if size == 0.0:
                    book.pop(price, None)
                else:
                    book[price] = size  # absolute sizes, not increments
        assert not bids or not asks or max(bids) < min(asks)  # never crossed
    assert (len(bids), len(asks)) == (116, 59)
    best_bid = max(bids)
    best_ask = min(asks)
    assert (best_bid, bids[best_bid]) == (83484.2, 0.01198)
    assert (best_ask, asks[best_ask]) == (83504.6, 0.00024)


def test_reference_example_frame_capture_line_10():
    (frame,) = [f for lineno, _, _, f in pf.read_capture(DELTAS) if lineno == 10]
    # §4 of the reference: the header, ts, seq, pkgType DELTA and nine nulls
    assert frame[:8].hex(" ") == "59 00 03 00 01 00 01 00"
    assert frame[24] == 1 and frame[25:97] == pf.NULL.to_bytes(8, "little", signed=True) * 9
    assert len(frame) == 118 + 16 * 2
    assert decode(frame) == BookEvent(
        ts_us=int.from_bytes(bytes.fromhex("38da57d4495d0600"), "little"),
        seq=7687289242,
        snapshot=False,
        market="BTC-USD-PERP",
        bids=[(81672.7, 0.0)],
        asks=[(84867.0, 0.0)],
    )


def test_captured_frame_sizes():
    frames = pf.binary_frames(DELTAS)
    assert len(frames[0]) == 2918
    for frame in frames:
        event = decode(frame)
        assert len(frame) == 118 + 16 * (len(event.bids) + len(event.asks))


def test_captured_floats_equal_parsed_decimal_text(deltas):
    """Each decoded float is float() of the value's decimal text, as on the Lighter path."""
    for frame, event in zip(pf.binary_frames(DELTAS), deltas):
        nb, na = len(event.bids), len(event.asks)
        for levels, off, n in ((event.bids, 101, nb), (event.asks, 101 + 16 * nb + 4, na)):
            vals = struct.unpack_from(f"<{2 * n}q", frame, off)
            assert levels == [(expected_float(p), expected_float(s)) for p, s in zip(vals[0::2], vals[1::2])]


def test_reencoding_the_captures_gives_the_captured_bytes(deltas):
    """The test encoder and the decoder agree with production bytes, frame by frame."""
    for frame, event in zip(pf.binary_frames(DELTAS), deltas):
        again = pf.encode_book(
            ts_us=event.ts_us,
            seq=event.seq,
            snapshot=event.snapshot,
            market=event.market,
            bids=[(mantissa_of(p), mantissa_of(s)) for p, s in event.bids],
            asks=[(mantissa_of(p), mantissa_of(s)) for p, s in event.asks],
            raw=True,
        )
        assert again == frame


def test_bbo_capture_is_skipped():
    frames = pf.binary_frames(BBO)
    assert len(frames) == 40
    assert all(decode(f) == Skipped(template=sbe.TEMPLATE_BBO, version=1) for f in frames)
    assert all(len(f) == 69 for f in frames)


def test_bbo_encoder_matches_the_capture():
    first = pf.binary_frames(BBO)[0]
    ts_us, seq = struct.unpack_from("<qq", first, 8)
    assert seq == 7687292570
    assert pf.encode_bbo(ts_us=ts_us, seq=seq, bid=("83422.7", "0.00015"), ask=("83452.9", "0.00031")) == first


# -- round trips through the independent encoder ------------------------------------------

prices = st.integers(min_value=1, max_value=2**63 - 1)
sizes = st.integers(min_value=0, max_value=2**63 - 1)
levels = st.lists(st.tuples(prices, sizes), max_size=40)
markets = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)  # <= 240 bytes


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    ts=st.integers(min_value=0, max_value=2**63 - 1),
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    snapshot=st.booleans(),
    market=markets,
    bids=levels,
    asks=levels,
    root_extra=st.sampled_from([b"", b"\x07" * 8, b"\xff" * 3]),
    entry_extra=st.sampled_from([b"", b"\x00" * 8, b"\xab"]),
    trailing=st.sampled_from([b"", b"\x05more"]),
    version=st.sampled_from([0, 1, 2]),
    container=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_round_trip(ts, seq, snapshot, market, bids, asks, root_extra, entry_extra, trailing, version, container):
    frame = pf.encode_book(
        ts_us=ts, seq=seq, snapshot=snapshot, market=market, bids=bids, asks=asks, raw=True,
        root_extra=root_extra, entry_extra=entry_extra, trailing=trailing, version=version,
    )
    event = decode(container(frame))
    assert event == BookEvent(
        ts, seq, snapshot, market,
        [(expected_float(p), expected_float(s)) for p, s in bids],
        [(expected_float(p), expected_float(s)) for p, s in asks],
    )
    assert all(type(v) is float for side in (event.bids, event.asks) for level in side for v in level)
    assert all(type(level) is tuple for level in event.bids + event.asks)


def test_decimal_values_round_trip_exactly():
    values = ["83472.2", "0.00000001", "1", "92233720368.54775807", "0.1", "0.3", "1e-8", "123456789.12345678"]
    frame = pf.encode_book(ts_us=1, seq=2, bids=[(v, v) for v in values])
    assert decode(frame).bids == [(float(Decimal(v)), float(Decimal(v))) for v in values]


def test_longer_root_block_and_wider_entries_decode_the_same():
    kwargs = dict(ts_us=1791421535936000, seq=FIRST_SEQ, snapshot=True,
                  bids=[("83412.2", "0.00019"), ("83400", "1.5"), ("83399.9", "0")], asks=[("83504.6", "0.00024")])
    plain = decode(pf.encode_book(**kwargs))
    longer = pf.encode_book(**kwargs, root_extra=b"\x01" * 8, entry_extra=b"\x02" * 8)
    assert struct.unpack_from("<H", longer)[0] == 97
    assert struct.unpack_from("<H", longer, 105)[0] == 24  # the bids group's stride
    assert decode(longer) == plain
    assert plain.bids == [(83412.2, 0.00019), (83400.0, 1.5), (83399.9, 0.0)]


def test_large_group_struct_cache_is_bounded():
    for count in range(2, sbe._FLAT_CACHE_MAX + 50, 37):
        frame = pf.encode_book(ts_us=1, seq=1, bids=[(1, 0)] * count, raw=True)
        assert len(decode(frame).bids) == count
    big = pf.encode_book(ts_us=1, seq=1, asks=[(5, 5)] * 4000, raw=True)
    assert decode(big).asks == [(5e-8, 5e-8)] * 4000
    assert len(sbe._FLAT) <= sbe._FLAT_CACHE_MAX


def test_heartbeat():
    assert decode(pf.encode_heartbeat(ts_us=1791421535936000, seq=42)) == Heartbeat(1791421535936000, 42)
    assert decode(pf.encode_heartbeat(ts_us=5, seq=6, block_extra=b"\x00" * 8, version=2)) == Heartbeat(5, 6)
    assert len(pf.encode_heartbeat(ts_us=0, seq=0)) == 24


@pytest.mark.parametrize("body", [b"", b"\x00" * 3, b"\xff" * 60])  # short and long frames take two paths
@pytest.mark.parametrize("template", [0, 1, 2, 4, 5, 6, 20, 21, 22, 23, 41, 255, 65535])
def test_unknown_and_unused_templates_are_skipped(template, body):
    frame = pf.header(7, template, version=2) + body  # not validated past the header
    assert decode(frame) == Skipped(template=template, version=2)


def test_bbo_is_skipped_even_one_sided():
    frame = pf.encode_bbo(ts_us=1, seq=2, bid=("83422.7", "0.1"), ask=None, version=0)
    assert decode(frame) == Skipped(template=2, version=0)


# -- refused ------------------------------------------------------------------------------


def _book(**changes) -> bytes:
    kwargs = dict(ts_us=1791421535936000, seq=FIRST_SEQ, bids=[("83412.2", "0.00019")], asks=[("83504.6", "0")])
    if changes.get("raw"):
        kwargs.update(bids=[(8341220000000, 19000)], asks=[(8350460000000, 0)])
    kwargs.update(changes)
    return pf.encode_book(**kwargs)


@pytest.mark.parametrize(
    "frame, reason",
    [
        (b"", "shorter than the 8-byte SBE header"),
        (b"\x59\x00\x03\x00\x01\x00\x01", "shorter than the 8-byte SBE header"),
        (_book(schema_id=2), "schema id 2"),
        (_book(schema_id=0), "schema id 0"),
        (pf.encode_heartbeat(ts_us=1, seq=1, schema_id=2), "schema id 2"),
        (pf.header(48, 2, schema_id=2), "schema id 2"),
        (_book(version=3), "version 3"),
        (pf.encode_heartbeat(ts_us=1, seq=1, version=65535), "version 65535"),
        (_book(block_length=88), "blockLength 88 < 89"),
        (_book(block_length=0), "blockLength 0 < 89"),
        (pf.header(15, 40) + b"\x00" * 16, "blockLength 15 < 16"),
        (_book(pkg_type=2), "pkgType 2"),
        (_book(pkg_type=255), "pkgType 255"),
        (_book(ts_us=-1), "negative or null"),
        (_book(seq=pf.NULL), "negative or null"),
        (_book(bids=[(pf.NULL, 1)], raw=True), "bids level 0: null price"),
        (_book(asks=[(1, 1), (pf.NULL, 1)], raw=True), "asks level 1: null price"),
        (_book(bids=[(1, pf.NULL)], raw=True), "bids level 0: null size"),
        (_book(bids=[(0, 1)], raw=True), "price mantissa 0 <= 0"),
        (_book(asks=[(-5, 1)], raw=True), "price mantissa -5 <= 0"),
        (_book(bids=[(1, 1), (2, 2), (3, -1)], raw=True), "bids level 2: size mantissa -1 < 0"),
        (_book(asks=[(1, -1)], raw=True), "asks level 0: size mantissa -1 < 0"),
        (_book(entry_extra=b"\x00" * 8, bids=[(2, 1), (1, 0), (-1, 0)], raw=True), "bids level 2: price"),
        (_book(market=b"BTC-\xff-PERP"), "not UTF-8"),
        (_book(market=b"\xed\xa0\x80"), "not UTF-8"),  # an encoded surrogate
        (_book(market=""), "empty market"),
    ],
)
def test_refused(frame, reason):
    with pytest.raises(MalformedFrame, match=reason):
        decode(frame)


def test_group_stride_below_16_is_refused():
    frame = bytearray(_book(bids=[], asks=[]))
    struct.pack_into("<H", frame, 97, 15)
    with pytest.raises(MalformedFrame, match="bids group blockLength 15 < 16"):
        decode(bytes(frame))
    frame = bytearray(_book(bids=[], asks=[]))
    struct.pack_into("<H", frame, 101, 0)
    with pytest.raises(MalformedFrame, match="asks group blockLength 0 < 16"):
        decode(bytes(frame))


def _valid_frames() -> list[bytes]:
    return pf.binary_frames(DELTAS) + [
        _book(),
        _book(bids=[], asks=[]),
        _book(bids=[("1", "2"), ("3", "4"), ("5", "6")], asks=[("7", "8")] * 2),
        _book(root_extra=b"\x00" * 8, entry_extra=b"\x00" * 8, bids=[("1", "1")] * 3, asks=[("2", "0")]),
        _book(market="é"),
        pf.encode_heartbeat(ts_us=1, seq=2),
        pf.encode_heartbeat(ts_us=1, seq=2, block_extra=b"\x01" * 5),
    ]


def test_every_truncation_is_refused():
    for frame in _valid_frames():
        decode(frame)
        for cut in range(len(frame)):
            for prefix in (frame[:cut], memoryview(frame)[:cut]):
                with pytest.raises(MalformedFrame):
                    decode(prefix)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    bids=st.lists(st.tuples(prices, sizes), max_size=5),
    asks=st.lists(st.tuples(prices, sizes), max_size=5),
    market=markets,
    root_extra=st.binary(max_size=12),
    entry_extra=st.binary(max_size=12),
    data=st.data(),
)
def test_generated_truncations_are_refused(bids, asks, market, root_extra, entry_extra, data):
    frame = pf.encode_book(ts_us=1, seq=1, bids=bids, asks=asks, market=market, raw=True,
                           root_extra=root_extra, entry_extra=entry_extra)
    decode(frame)
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(MalformedFrame):
        decode(frame[:cut])


def test_group_counts_past_the_end_are_refused():
    for count in (1, 2, 3, 65535):
        for offset in (97, 101):  # the bids then the asks group header of an empty delta
            frame = bytearray(_book(bids=[], asks=[]))
            struct.pack_into("<H", frame, offset + 2, count)
            with pytest.raises(MalformedFrame, match="truncated"):
                decode(bytes(frame))


def _only_malformed(frame) -> None:
    try:
        result = decode(frame)
    except MalformedFrame:
        return
    assert type(result) in (BookEvent, Heartbeat, Skipped)


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_only_malformed(data):
    _only_malformed(data)


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(
    template=st.sampled_from([3, 40]),
    version=st.sampled_from([0, 1, 2]),
    block=st.one_of(st.integers(0, 120), st.integers(0, 65535)),
    body=st.binary(max_size=400),
)
def test_garbage_behind_a_valid_header_raises_only_malformed(template, version, block, body):
    _only_malformed(pf.header(block, template, version=version) + body)


def test_mutated_frames_raise_only_malformed():
    rng = random.Random(20261008)
    frames = _valid_frames()
    for _ in range(20000):
        frame = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(frame))
            frame[i] = rng.randrange(256) if rng.random() < 0.7 else rng.choice((0, 1, 0x7F, 0x80, 0xFF))
        if rng.random() < 0.2:
            del frame[rng.randrange(len(frame)) :]
        _only_malformed(bytes(frame))


def test_market_cache_is_bounded_and_holds_only_valid_symbols():
    for container in (bytes, bytearray, memoryview):
        assert decode(container(_book(market="ETH-USD-PERP"))).market == "ETH-USD-PERP"
    assert sbe._MARKETS[b"ETH-USD-PERP"] == "ETH-USD-PERP"
    with pytest.raises(MalformedFrame):
        decode(_book(market=b"\xff"))
    assert b"\xff" not in sbe._MARKETS
    for i in range(sbe._MARKETS_CACHE_MAX + 10):
        assert decode(_book(market=f"M{i}")).market == f"M{i}"
    assert len(sbe._MARKETS) <= sbe._MARKETS_CACHE_MAX
