"""A test-side encoder of Paradex SBE frames (schema id 1), and capture reading.

Written from the protocol reference (schema 1, versions 0-2), independently of
`tracker.sbe`: the unit tests round-trip through both, and re-encoding every captured
production frame from its decoded values gives the captured bytes back. The Paradex
simulator's fidelity tests can reuse it.

    encode_book(ts_us=..., seq=..., snapshot=True, market="BTC-USD-PERP",
                bids=[("83472.2", "0.5")], asks=[("83480", "0.01")])
    encode_heartbeat(ts_us=..., seq=...)
    encode_bbo(ts_us=..., seq=..., bid=("83422.7", "0.00015"), ask=None)

Prices and sizes are decimal values (str, Decimal, int or float; at most 8
decimals) turned into the wire's int64 mantissas (value x 10^8), or, with
`raw=True`, the int64 mantissas themselves (to write nulls or negative values).
The keyword arguments after the values bend the layout the way tests need:
longer root blocks or group entries (appended fields), another schema id,
version or template, trailing bytes.
"""

from __future__ import annotations

import base64
import json
import struct
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Sequence

NULL = -(2**63)  # INT64_MIN: the null sentinel of Price8NULL / Qty8NULL / Rate8NULL
SCHEMA_ID = 1
VERSION = 1  # what the captures carry (and what the tracker requests)
BOOK, BBO, HEARTBEAT = 3, 2, 40
SNAPSHOT, DELTA = 0, 1
BOOK_BLOCK, BBO_BLOCK, HEARTBEAT_BLOCK, LEVEL_BLOCK = 89, 48, 16, 16

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "paradex"

Number = str | Decimal | int | float


def mantissa(value: Number) -> int:
    """A decimal value as its exponent -8 mantissa: "83472.2" -> 8347220000000."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a price or a size")
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    m = d.scaleb(8)
    if m != m.to_integral_value():
        raise ValueError(f"{value!r} has more than 8 decimals")
    m = int(m)
    if not NULL <= m < 2**63:
        raise ValueError(f"{value!r} does not fit an int64 mantissa")
    return m


def value_text(m: int) -> str:
    """A mantissa as the plain decimal text the reference decoder prints: 8347220000000 -> "83472.2"."""
    d = Decimal(m).scaleb(-8).normalize()
    return format(d, "f")


def header(block_length: int, template: int, *, schema_id: int = SCHEMA_ID, version: int = VERSION) -> bytes:
    return struct.pack("<HHHH", block_length, template, schema_id, version)


def var_string8(text: str | bytes) -> bytes:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > 255:
        raise ValueError("varString8 holds at most 255 bytes")
    return bytes([len(raw)]) + raw


def _group(levels: Iterable[Sequence[Number]], raw: bool, entry_extra: bytes) -> bytes:
    entries = []
    for price, size in levels:
        p, s = (price, size) if raw else (mantissa(price), mantissa(size))
        entries.append(struct.pack("<qq", p, s) + entry_extra)
    return struct.pack("<HH", LEVEL_BLOCK + len(entry_extra), len(entries)) + b"".join(entries)


def encode_book(
    *,
    ts_us: int,
    seq: int,
    snapshot: bool = False,
    market: str | bytes = "BTC-USD-PERP",
    bids: Iterable[Sequence[Number]] = (),
    asks: Iterable[Sequence[Number]] = (),
    raw: bool = False,
    pkg_type: int | None = None,
    best: Sequence[int] = (NULL,) * 9,
    root_extra: bytes = b"",
    entry_extra: bytes = b"",
    trailing: bytes = b"",
    schema_id: int = SCHEMA_ID,
    version: int = VERSION,
    template: int = BOOK,
    block_length: int | None = None,
) -> bytes:
    """A BookEvent frame. `best` = the nine nullable top-of-book mantissas @17..88
    (bestBid/Ask price+size, relativeSpread, bestBid/Ask API price+size), null on
    `deltas` channels. `root_extra` is appended to the 89-byte root block (an
    appended field: 8 bytes make the 97-byte block), `entry_extra` to every
    group entry (8 bytes: 24-byte stride). `block_length` overrides the header's."""
    if len(best) != 9:
        raise ValueError("best holds the nine nullable fields")
    pkg = pkg_type if pkg_type is not None else (SNAPSHOT if snapshot else DELTA)
    root = struct.pack("<qqB9q", ts_us, seq, pkg, *best) + root_extra
    block = len(root) if block_length is None else block_length
    return (
        header(block, template, schema_id=schema_id, version=version)
        + root
        + _group(bids, raw, entry_extra)
        + _group(asks, raw, entry_extra)
        + var_string8(market)
        + trailing
    )


def encode_heartbeat(
    *, ts_us: int, seq: int, block_extra: bytes = b"", schema_id: int = SCHEMA_ID, version: int = VERSION
) -> bytes:
    """A HeartbeatEvent frame (24 bytes; no groups, no var data)."""
    root = struct.pack("<qq", ts_us, seq) + block_extra
    return header(len(root), HEARTBEAT, schema_id=schema_id, version=version) + root


def encode_bbo(
    *,
    ts_us: int,
    seq: int,
    bid: Sequence[Number] | None,
    ask: Sequence[Number] | None,
    market: str = "BTC-USD-PERP",
    schema_id: int = SCHEMA_ID,
    version: int = VERSION,
) -> bytes:
    """A BboEvent frame (69 bytes for BTC-USD-PERP); a side of None is empty (null price and size)."""
    fields = []
    for side in (bid, ask):
        fields += [NULL, NULL] if side is None else [mantissa(side[0]), mantissa(side[1])]
    root = struct.pack("<qq4q", ts_us, seq, *fields)
    return header(len(root), BBO, schema_id=schema_id, version=version) + root + var_string8(market)


def read_capture(name: str | Path) -> list[tuple[int, int, str, bytes | str]]:
    """A JSONL capture as (line number, t_ns, opcode, frame): bytes for binary, str for text."""
    path = Path(name) if isinstance(name, Path) else FIXTURES / name
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec["opcode"] == "binary":
            out.append((lineno, rec["t_ns"], "binary", base64.b64decode(rec["b64"], validate=True)))
        else:
            out.append((lineno, rec["t_ns"], rec["opcode"], rec["text"]))
    return out


def binary_frames(name: str | Path) -> list[bytes]:
    return [frame for _, _, opcode, frame in read_capture(name) if opcode == "binary"]
