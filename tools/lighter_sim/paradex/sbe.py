"""Paradex's SBE frames (schema id 1, version 1), encoded byte for byte.

Layout (restated from the schema paradex_1_0.xml, as the captured frames show it):
little-endian, no padding or alignment. Every frame starts with the 8-byte message
header `blockLength u16, templateId u16, schemaId u16, version u16`.

BookEvent, template 3, root block of 89 bytes:
    body  0  ts              int64   µs since the epoch (whole milliseconds on Paradex)
    body  8  seq             int64   the market's order-book sequence
    body 16  pkgType         uint8   0 SNAPSHOT, 1 DELTA
    body 17  bestBidPrice    int64   \\
    body 25  bestBidSize     int64    | RPI-inclusive top of book: INT64_MIN (null)
    body 33  bestAskPrice    int64    | on the `deltas` channel, set on `interactive_deltas`
    body 41  bestAskSize     int64   /
    body 49  relativeSpread  int64   (ask - bid) / mid, same null rule
    body 57  bestBidApiPrice, 65 bestBidApiSize, 73 bestAskApiPrice, 81 bestAskApiSize (excl. RPI)
then the bids group and the asks group, each `blockLength u16, numInGroup u16` and then
numInGroup entries of blockLength bytes (price int64 @0, size int64 @8; 16 bytes on the
wire today), then `market` as varString8 (u8 length + UTF-8).

Prices, sizes and rates are int64 mantissas of exponent -8 (83472.2 -> 8347220000000).
A decoder must use the header's blockLength to find the groups and each group's
blockLength as its stride: a longer root block or a longer group entry means appended
fields. `block_length` and `group_stride` produce such frames (the extra bytes are
filled with 0xAB, so a decoder that assumes 89 and 16 reads garbage).

HeartbeatEvent, template 40, root block of 16 bytes: ts int64, seq int64; nothing after.
"""
from __future__ import annotations

import struct
from typing import Iterable, Optional, Sequence

SCHEMA_ID = 1
VERSION = 1
T_BBO, T_BOOK, T_HEARTBEAT = 2, 3, 40
BOOK_BLOCK = 89
HEARTBEAT_BLOCK = 16
LEVEL_BLOCK = 16
NULL = -(2 ** 63)  # INT64_MIN: the null of every *NULL type
SNAPSHOT, DELTA = 0, 1
FILL = 0xAB  # appended (unknown) bytes of a longer block

_HEADER = struct.Struct("<HHHH")
_GROUP = struct.Struct("<HH")
_LEVEL = struct.Struct("<qq")
_BOOK_ROOT = struct.Struct("<qqB9q")  # 89 bytes
_HEARTBEAT = struct.Struct("<qq")
assert _BOOK_ROOT.size == BOOK_BLOCK and _HEARTBEAT.size == HEARTBEAT_BLOCK

NULL_BEST = (NULL,) * 9

Level = tuple[int, int]  # (price mantissa, size mantissa)


def header(block_length: int, template: int, version: int = VERSION, schema: int = SCHEMA_ID) -> bytes:
    return _HEADER.pack(block_length, template, schema, version)


def _group(levels: Sequence[Level], stride: int) -> bytes:
    out = [_GROUP.pack(stride, len(levels))]
    pad = bytes([FILL]) * (stride - LEVEL_BLOCK)
    for price, size in levels:
        out.append(_LEVEL.pack(price, size))
        if pad:
            out.append(pad)
    return b"".join(out)


def var_string8(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError("varString8 holds at most 255 bytes")
    return bytes([len(raw)]) + raw


def best_fields(top: tuple[Optional[int], Optional[int], Optional[int], Optional[int]]) -> tuple[int, ...]:
    """The nine best-* fields of an interactive frame from the top of book (mantissas, None
    for an empty side). This book has no RPI orders: the API-only fields repeat the top."""
    bb, bbs, ba, bas = (NULL if v is None else v for v in top)
    if bb != NULL and ba != NULL and ba + bb > 0:
        spread = (2 * (ba - bb) * 10 ** 8 + (ba + bb) // 2) // (ba + bb)  # (ask-bid)/mid, rounded
    else:
        spread = NULL
    return (bb, bbs, ba, bas, spread, bb, bbs, ba, bas)


def book_event(ts_us: int, seq: int, pkg_type: int, market: str, bids: Sequence[Level],
               asks: Sequence[Level], best: Iterable[int] = NULL_BEST, *, version: int = VERSION,
               block_length: int = BOOK_BLOCK, group_stride: int = LEVEL_BLOCK) -> bytes:
    """One BookEvent frame. bids/asks are (price, size) mantissas in the order sent."""
    if block_length < BOOK_BLOCK or group_stride < LEVEL_BLOCK:
        raise ValueError("blocks may grow (appended fields), never shrink")
    root = _BOOK_ROOT.pack(ts_us, seq, pkg_type, *best)
    if block_length > BOOK_BLOCK:
        root += bytes([FILL]) * (block_length - BOOK_BLOCK)
    return b"".join((header(block_length, T_BOOK, version), root, _group(bids, group_stride),
                     _group(asks, group_stride), var_string8(market)))


def heartbeat(ts_us: int, seq: int = 0, *, version: int = VERSION) -> bytes:
    return header(HEARTBEAT_BLOCK, T_HEARTBEAT, version) + _HEARTBEAT.pack(ts_us, seq)


def unknown_template(template: int, ts_us: int, seq: int, *, version: int = VERSION) -> bytes:
    """A well-formed frame of a template this client does not know: a 16-byte block
    (ts, seq) and a varString8 after it. A decoder skips it by its header."""
    return header(16, template, version) + _HEARTBEAT.pack(ts_us, seq) + var_string8("FUTURE")
