"""A small synchronous Paradex client for the simulator tests: decodes the SBE frames
on its own (independently of the simulator's encoder and of the tracker's decoder),
rebuilds each market's book, checks the seq chain, and keeps every frame received, so
tests can compare what a client saw with what the simulator says it sent."""
from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Optional

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

NULL = -(2 ** 63)
HEADER = struct.Struct("<HHHH")  # blockLength, templateId, schemaId, version
BOOK_NULLABLE = ("best_bid_price", "best_bid_size", "best_ask_price", "best_ask_size", "relative_spread",
                 "best_bid_api_price", "best_bid_api_size", "best_ask_api_price", "best_ask_api_size")


class FrameError(ValueError):
    pass


def market_id(symbol: str) -> int:
    """The tracker's id of a Paradex symbol."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:6], "big")


def dec(mantissa: Optional[int]) -> Optional[Decimal]:
    return None if mantissa is None else Decimal(mantissa).scaleb(-8)


def decode(raw: bytes) -> dict:
    """One binary frame -> dict. Book frames: ts, seq, pkg (SNAPSHOT/DELTA), the nine
    best-* fields (None when null), bids/asks as (price, size) mantissas, market,
    block_length and group strides. Heartbeats: ts, seq. Others: template only."""
    if len(raw) < 8:
        raise FrameError(f"{len(raw)} bytes: no header")
    block, template, schema, version = HEADER.unpack_from(raw, 0)
    out: dict[str, Any] = {"template": template, "schema": schema, "version": version,
                           "block_length": block, "size": len(raw)}
    if schema != 1:
        raise FrameError(f"schema {schema}")
    if 8 + block > len(raw):
        raise FrameError("root block past the end")
    try:
        if template == 3:
            ts, seq, pkg = struct.unpack_from("<qqB", raw, 8)
            best = struct.unpack_from("<9q", raw, 25)
            out.update(kind="book", ts=ts, seq=seq, pkg={0: "SNAPSHOT", 1: "DELTA"}[pkg])
            out.update({k: (None if v == NULL else v) for k, v in zip(BOOK_NULLABLE, best)})
            pos = 8 + block
            strides = []
            for side in ("bids", "asks"):
                stride, n = struct.unpack_from("<HH", raw, pos)
                pos += 4
                if stride < 16:
                    raise FrameError("group entries under 16 bytes")
                out[side] = [struct.unpack_from("<qq", raw, pos + i * stride) for i in range(n)]
                pos += n * stride
                strides.append(stride)
            n = raw[pos]
            if pos + 1 + n != len(raw):
                raise FrameError("market string does not end the frame")
            out["market"] = raw[pos + 1:pos + 1 + n].decode()
            out["strides"] = strides
        elif template == 40:
            out.update(kind="heartbeat", ts=struct.unpack_from("<q", raw, 8)[0],
                       seq=struct.unpack_from("<q", raw, 16)[0])
        else:
            out["kind"] = "unknown"
    except (struct.error, IndexError, KeyError) as e:
        raise FrameError(str(e)) from None
    return out


@dataclass
class PxBook:
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    seq: Optional[int] = None
    valid: bool = False

    def apply(self, f: dict) -> None:
        if f["pkg"] == "SNAPSHOT":
            self.bids = {p: s for p, s in f["bids"]}
            self.asks = {p: s for p, s in f["asks"]}
            self.valid = True
        else:
            for side, levels in ((self.bids, f["bids"]), (self.asks, f["asks"])):
                for p, s in levels:
                    if s == 0:
                        side.pop(p, None)
                    else:
                        side[p] = s
        self.seq = f["seq"]

    def top(self) -> tuple[Optional[Decimal], ...]:
        bb = max(self.bids) if self.bids else None
        ba = min(self.asks) if self.asks else None
        return (dec(bb), dec(self.bids.get(bb)) if bb is not None else None,
                dec(ba), dec(self.asks.get(ba)) if ba is not None else None)

    def crossed(self) -> bool:
        return bool(self.bids and self.asks and max(self.bids) >= min(self.asks))

    def levels(self) -> tuple[list[list[Decimal]], list[list[Decimal]]]:
        bids = [[dec(p), dec(self.bids[p])] for p in sorted(self.bids, reverse=True)]
        asks = [[dec(p), dec(self.asks[p])] for p in sorted(self.asks)]
        return bids, asks


def as_decimals(levels: list[list[str]]) -> list[list[Decimal]]:
    return [[Decimal(p), Decimal(s)] for p, s in levels]


class PxClient:
    def __init__(self, url: str, source: Optional[str] = None):
        extra = {"source_address": (source, 0)} if source else {}
        self.ws = connect(url, open_timeout=5, close_timeout=2, max_size=None, max_queue=None,
                          **extra).__enter__()
        self.next_id = 1
        self.books: dict[str, PxBook] = {}
        self.texts: list[Any] = []  # JSON-RPC answers (parsed) and undecodable texts
        self.binary: list[bytes] = []  # every binary frame, as received
        self.decoded: list[Any] = []  # decode() of each (or the FrameError)
        self.gaps: list[tuple[str, int, int]] = []  # (market, expected seq, got)
        self.tops: list[tuple[str, str, int, tuple]] = []  # (market, pkg, seq, top) per book frame
        self.heartbeats: list[dict] = []

    # ---- reading ----------------------------------------------------------------------
    def read(self, timeout: float = 3.0) -> Any:
        raw = self.ws.recv(timeout=timeout)
        if isinstance(raw, str):
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = raw
            self.texts.append(msg)
            return msg
        self.binary.append(raw)
        try:
            f = decode(raw)
        except FrameError as e:
            self.decoded.append(e)
            return e
        self.decoded.append(f)
        if f["kind"] == "book":
            self._apply(f)
        elif f["kind"] == "heartbeat":
            self.heartbeats.append(f)
        return f

    def _apply(self, f: dict) -> None:
        m = f["market"]
        book = self.books.get(m)
        if f["pkg"] == "SNAPSHOT":
            book = self.books[m] = PxBook()
        elif book is None:
            return
        elif book.seq is not None and f["seq"] != book.seq + 1:
            self.gaps.append((m, book.seq + 1, f["seq"]))
            book.valid = False
        book.apply(f)
        self.tops.append((m, f["pkg"], f["seq"], book.top()))

    def wait_for(self, pred: Callable[[Any], bool], timeout: float = 3.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching frame")
            frame = self.read(timeout=left)
            if pred(frame):
                return frame

    def drain(self, seconds: float) -> list[Any]:
        out, deadline = [], time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.read(timeout=left))
            except TimeoutError:
                return out

    def book_frames(self) -> list[dict]:
        return [f for f in self.decoded if isinstance(f, dict) and f["kind"] == "book"]

    # ---- JSON-RPC -----------------------------------------------------------------------
    def send(self, obj: Any) -> None:
        self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    def rpc(self, method: str, channel: str, timeout: float = 3.0) -> dict:
        """Send a request and return its answer (ack or error)."""
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "method": method, "params": {"channel": channel}, "id": rid})
        return self.wait_for(lambda f: isinstance(f, dict) and f.get("id") == rid, timeout)

    def subscribe(self, symbol: str, feed: str = "deltas", timeout: float = 3.0) -> dict:
        """Subscribe and wait for the SNAPSHOT; returns the decoded snapshot."""
        ans = self.rpc("subscribe", f"order_book.{symbol}.{feed}", timeout)
        assert "result" in ans, ans
        return self.wait_for(lambda f: isinstance(f, dict) and f.get("kind") == "book"
                             and f["market"] == symbol and f["pkg"] == "SNAPSHOT", timeout)

    def unsubscribe(self, symbol: str, feed: str = "deltas") -> dict:
        return self.rpc("unsubscribe", f"order_book.{symbol}.{feed}")

    def wait_closed(self, timeout: float = 5.0) -> tuple[Optional[int], str]:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    self.read(timeout=max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    break
        except ConnectionClosed as e:
            return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")
        raise TimeoutError("connection still open")

    def conn_id(self, sim) -> int:
        """This client's connection id in the simulator (matched by the client's port)."""
        port = self.ws.local_address[1]
        return next(c["conn"] for c in sim.state()["connections"] if c["port"] == port and c["open"])

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> "PxClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
