"""Paradex's public market data in SBE (Simple Binary Encoding), schema id 1.

One WebSocket binary frame is one SBE message. Only what the order-book tracker
uses is decoded: BookEvent (template 3: SNAPSHOT / DELTA of the book) and
HeartbeatEvent (template 40). Every other template (BboEvent 2, trades, market
summaries, anything new) comes back as `Skipped`, to be counted.

Layout (little-endian, no padding or alignment):

    header   8 bytes   blockLength u16, templateId u16, schemaId u16, version u16
    root     blockLength bytes; BookEvent (89 bytes in versions 0, 1 and 2):
             ts i64 (µs) @0, seq i64 @8, pkgType u8 @16 (0 SNAPSHOT, 1 DELTA),
             then nine nullable best-price fields @17..88 the tracker does not use
    bids     group: blockLength u16, numInGroup u16, then numInGroup entries of
             blockLength bytes: price i64 @0, size i64 @8 (16 bytes today)
    asks     the same
    market   varString8: length u8 + UTF-8 bytes (e.g. "BTC-USD-PERP")

Compatibility rules followed: the groups start right after the root block
whatever its length and each group's entries are `blockLength` apart (SBE
appends new fields at the end of a block, so longer blocks are tolerated);
bytes after the market (appended var data) are ignored. Templates 2, 3 and 40 are
identical in schema versions 0, 1 and 2; any other version could add a group
before the market (SBE puts new groups after the old ones), so it is refused.

Prices and sizes are int64 mantissas with the constant exponent -8 (not on the
wire). Anything that does not decode raises `MalformedFrame` (the caller counts
it and carries on; a bad frame must never stop the feed), never another error.

This is a hot path (thousands of frames a second under Pyodide): precompiled
structs, one `unpack_from` per group, no Python function call per level.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct

from .protocol import Level, MalformedFrame

SCHEMA_ID = 1
MAX_SCHEMA_VERSION = 2  # versions 0, 1 and 2 share templates 2, 3 and 40

TEMPLATE_BBO = 2
TEMPLATE_BOOK = 3
TEMPLATE_HEARTBEAT = 40

NULL_INT64 = -(2**63)  # the null sentinel of every *NULL type (Price8NULL, Qty8NULL, ...)

HEADER_SIZE = 8
BOOK_BLOCK = 89  # BookEvent root block; no shorter layout ever existed
HEARTBEAT_BLOCK = 16  # ts, seq
LEVEL_BLOCK = 16  # price int64, size int64
PKG_SNAPSHOT = 0
PKG_DELTA = 1

_HEADER = Struct("<HHHH")  # blockLength, templateId, schemaId, version
_HEADER_BOOK_ROOT = Struct("<HHHHqqB")  # the header, then ts, seq, pkgType
_TS_SEQ = Struct("<qq")
_GROUP = Struct("<HH")  # blockLength, numInGroup
_TWO_GROUPS = Struct("<HHHH")  # the bids group header, and the asks one when bids are empty
_LEVEL = Struct("<qq")  # price, size


@dataclass(slots=True)
class BookEvent:
    ts_us: int  # exchange time, µs (the book's last change, not a send time)
    seq: int  # per-market order-book sequence: each DELTA is the previous frame's + 1
    snapshot: bool  # pkgType 0 SNAPSHOT (the whole book), 1 DELTA
    market: str
    bids: list[Level]  # (price, size); size 0.0 removes the level, others replace it
    asks: list[Level]


@dataclass(slots=True)
class Heartbeat:
    ts_us: int
    seq: int  # undocumented meaning; passed on as sent


@dataclass(slots=True)
class Skipped:
    """A template the tracker does not use (BBO and unknown ones): counted, skipped."""

    template: int
    version: int


# A group of 16-byte entries is read with one unpack of 2n int64s. Structs are
# cached per entry count; the cache is bounded because a count comes from the wire.
_FLAT: dict[int, Struct] = {}
_FLAT_CACHE_MAX = 1024


def _flat_struct(count: int) -> Struct:
    s = Struct(f"<{2 * count}q")
    if len(_FLAT) < _FLAT_CACHE_MAX:
        _FLAT[count] = s
    return s


# Market symbols seen, by their UTF-8 bytes (bounded: the bytes come from the wire).
_MARKETS: dict[bytes, str] = {}
_MARKETS_CACHE_MAX = 4096


def _market(raw: bytes) -> str:
    if not raw:
        raise MalformedFrame("BookEvent with an empty market")
    try:
        market = str(raw, "utf-8")
    except UnicodeDecodeError:
        raise MalformedFrame(f"BookEvent market is not UTF-8: {raw!r}") from None
    if len(_MARKETS) < _MARKETS_CACHE_MAX:
        _MARKETS[raw] = market
    return market


def _bad_level(vals: tuple[int, ...], side: str) -> MalformedFrame:
    """The error for the first level that is not a (price > 0, size >= 0) pair."""
    for i in range(0, len(vals), 2):
        price, size = vals[i], vals[i + 1]
        if price == NULL_INT64 or size == NULL_INT64:
            what = "null price" if price == NULL_INT64 else "null size"
        elif price <= 0:
            what = f"price mantissa {price} <= 0"
        elif size < 0:
            what = f"size mantissa {size} < 0"
        else:
            continue
        return MalformedFrame(f"{side} level {i // 2}: {what}")
    return MalformedFrame(f"{side}: bad level")  # not reached


def _levels(frame: bytes | bytearray | memoryview, off: int, stride: int, count: int, side: str) -> list[Level]:
    """`count` (>= 2) entries of `stride` bytes from `off`, already bounds-checked."""
    if stride == LEVEL_BLOCK:
        vals = (_FLAT.get(count) or _flat_struct(count)).unpack_from(frame, off)
    else:  # longer entries (appended fields): never seen, so not optimised
        unpack = _LEVEL.unpack_from
        vals = tuple(v for i in range(count) for v in unpack(frame, off + i * stride))
    # Mantissa checks, exact and in C: a price must be > 0 and a size >= 0; the null
    # sentinel INT64_MIN is negative, so both comparisons also refuse it.
    if min(vals[0::2]) <= 0 or min(vals[1::2]) < 0:
        raise _bad_level(vals, side)
    it = iter(vals)
    # int / int true division is correctly rounded (CPython and Pyodide alike), so
    # 8347220000000 / 100_000_000 is exactly float("83472.2"): the same floats the
    # Lighter path gets from parsing decimal strings, whatever the mantissa's size.
    return [(p / 100_000_000, s / 100_000_000) for p, s in zip(it, it)]


def _short(frame: bytes | bytearray | memoryview, n: int) -> Heartbeat | Skipped:
    """A frame of fewer than 25 bytes: too short for a BookEvent; a heartbeat is 24."""
    if n < HEADER_SIZE:
        raise MalformedFrame(f"frame of {n} bytes is shorter than the {HEADER_SIZE}-byte SBE header")
    block, template, schema, version = _HEADER.unpack_from(frame)
    _check_schema(schema, version)
    if template == TEMPLATE_BOOK:
        if block < BOOK_BLOCK:
            raise MalformedFrame(f"BookEvent blockLength {block} < {BOOK_BLOCK}")
        raise MalformedFrame(f"BookEvent truncated: {n} bytes")
    if template == TEMPLATE_HEARTBEAT:
        if block < HEARTBEAT_BLOCK:
            raise MalformedFrame(f"HeartbeatEvent blockLength {block} < {HEARTBEAT_BLOCK}")
        if n < HEADER_SIZE + block:
            raise MalformedFrame(f"HeartbeatEvent truncated: {n} bytes, root block needs {HEADER_SIZE + block}")
        return Heartbeat(*_TS_SEQ.unpack_from(frame, HEADER_SIZE))
    return Skipped(template, version)


def _check_schema(schema: int, version: int) -> None:
    if schema != SCHEMA_ID:
        raise MalformedFrame(f"SBE schema id {schema}, expected {SCHEMA_ID}")
    if version > MAX_SCHEMA_VERSION:
        raise MalformedFrame(f"SBE schema version {version} not supported (0..{MAX_SCHEMA_VERSION})")


def decode(frame: bytes | bytearray | memoryview) -> BookEvent | Heartbeat | Skipped:
    """Decode one SBE binary frame; raises MalformedFrame with the reason.

    `frame` is any bytes-like object (a memoryview must be of unsigned bytes)."""
    n = len(frame)
    if n < 25:
        return _short(frame, n)
    # One unpack for the header and a BookEvent's ts, seq and pkgType (meaningless,
    # and unused, for other templates; a heartbeat's ts and seq are at the same place).
    block, template, schema, version, ts, seq, pkg = _HEADER_BOOK_ROOT.unpack_from(frame)
    if schema != 1 or version > 2:
        _check_schema(schema, version)

    if template == 3:  # TEMPLATE_BOOK
        if block < 89:
            raise MalformedFrame(f"BookEvent blockLength {block} < {BOOK_BLOCK}")
        if pkg > 1:
            raise MalformedFrame(f"BookEvent pkgType {pkg} is neither SNAPSHOT (0) nor DELTA (1)")
        if ts < 0 or seq < 0:
            raise MalformedFrame(f"BookEvent ts {ts} / seq {seq} negative or null")
        off = 8 + block  # groups start after the root block, whatever its length
        # Any BookEvent holds two group headers and the market's length byte after the
        # root block; reading both headers at once saves an unpack when bids are empty.
        if n < off + 9:
            raise MalformedFrame(f"BookEvent truncated: {n} bytes, root block, group headers and market need {off + 9}")
        stride, count, ask_stride, ask_count = _TWO_GROUPS.unpack_from(frame, off)
        if stride < 16:
            raise MalformedFrame(f"bids group blockLength {stride} < {LEVEL_BLOCK}")
        off += 4
        if count:
            end = off + stride * count
            if n < end + 4:
                raise MalformedFrame(f"BookEvent truncated: {n} bytes, {count} bids and the asks group header need {end + 4}")
            if count == 1:
                price, size = _LEVEL.unpack_from(frame, off)
                if price <= 0 or size < 0:
                    raise _bad_level((price, size), "bids")
                bids = [(price / 100_000_000, size / 100_000_000)]  # see _levels on the division
            else:
                bids = _levels(frame, off, stride, count, "bids")
            off = end
            ask_stride, ask_count = _GROUP.unpack_from(frame, off)
        else:
            bids = []

        if ask_stride < 16:
            raise MalformedFrame(f"asks group blockLength {ask_stride} < {LEVEL_BLOCK}")
        off += 4
        if ask_count:
            end = off + ask_stride * ask_count
            if n <= end:
                raise MalformedFrame(f"BookEvent truncated: {n} bytes, {ask_count} asks and the market need more than {end}")
            if ask_count == 1:
                price, size = _LEVEL.unpack_from(frame, off)
                if price <= 0 or size < 0:
                    raise _bad_level((price, size), "asks")
                asks = [(price / 100_000_000, size / 100_000_000)]
            else:
                asks = _levels(frame, off, ask_stride, ask_count, "asks")
            off = end
        else:
            if n <= off:
                raise MalformedFrame(f"BookEvent truncated: {n} bytes, no market after the groups")
            asks = []

        length = frame[off]
        end = off + 1 + length
        if n < end:
            raise MalformedFrame(f"BookEvent truncated: market of {length} bytes needs {end}, frame has {n}")
        raw = frame[off + 1 : end]
        if type(raw) is not bytes:  # a memoryview or bytearray slice: hashable bytes for the cache
            raw = bytes(raw)
        # A handful of symbols recur in every frame: a dict hit is cheaper than decoding.
        market = _MARKETS.get(raw)
        if market is None:
            market = _market(raw)
        return BookEvent(ts, seq, pkg == 0, market, bids, asks)

    if template == 40:  # TEMPLATE_HEARTBEAT
        if block < HEARTBEAT_BLOCK:
            raise MalformedFrame(f"HeartbeatEvent blockLength {block} < {HEARTBEAT_BLOCK}")
        if n < HEADER_SIZE + block:
            raise MalformedFrame(f"HeartbeatEvent truncated: {n} bytes, root block needs {HEADER_SIZE + block}")
        return Heartbeat(ts, seq)

    # BboEvent and every other template: not used, so not validated past the header.
    return Skipped(template, version)
