"""A small synchronous Lighter client for the simulator tests: reads frames,
rebuilds books and checks the begin_nonce chain on its own (independently of the
simulator's code), so tests can compare what a client sees with what the
simulator says it sent."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Optional

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lighter"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def shape(obj: Any) -> Any:
    """Field names and JSON types, recursively (list items: the shape of the first item)."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    if isinstance(obj, bool):
        return "bool"
    if isinstance(obj, (int, float)):
        return "number"
    return type(obj).__name__


@dataclass
class BookState:
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    nonce: Optional[int] = None
    valid: bool = False

    def apply_levels(self, side: dict[str, str], levels: list[dict]) -> None:
        for lv in levels:
            if Decimal(lv["size"]) == 0:
                side.pop(lv["price"], None)
            else:
                side[lv["price"]] = lv["size"]

    def top(self) -> tuple[Optional[str], Optional[str], Optional[str], Optional[str]]:
        bb = max(self.bids, key=Decimal) if self.bids else None
        ba = min(self.asks, key=Decimal) if self.asks else None
        return (bb, self.bids.get(bb) if bb else None, ba, self.asks.get(ba) if ba else None)

    def crossed(self) -> bool:
        bb, _, ba, _ = self.top()
        return bb is not None and ba is not None and Decimal(bb) >= Decimal(ba)

    def sorted_levels(self) -> tuple[list[dict], list[dict]]:
        asks = [{"price": p, "size": self.asks[p]} for p in sorted(self.asks, key=Decimal)]
        bids = [{"price": p, "size": self.bids[p]} for p in sorted(self.bids, key=Decimal, reverse=True)]
        return asks, bids


def wait_until(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll pred() until it returns something truthy (and return that)."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout}s")
        time.sleep(0.02)


class Client:
    def __init__(self, url: str, expect_connected: bool = True, source: Optional[str] = None):
        """source: the local address to connect from (127.0.0.2 is a second client IP)."""
        extra = {"source_address": (source, 0)} if source else {}
        # entered as a context manager: websockets 17 warns about bare connect()
        self.ws = connect(url, open_timeout=5, close_timeout=2, max_size=None,
                          max_queue=None, **extra).__enter__()  # unbounded: close() never waits on unread frames
        self.books: dict[int, BookState] = {}
        self.frames: list[Any] = []  # everything received, parsed when JSON
        self.chain_breaks: list[tuple[int, int, int]] = []  # (market, expected, got)
        self.tops: list[tuple[int, str, int, tuple]] = []  # (market, type, nonce, top) per book frame
        self.connected = self.read() if expect_connected else None

    # ---- reading ----------------------------------------------------------------------
    def read(self, timeout: float = 3.0) -> Any:
        raw = self.ws.recv(timeout=timeout)
        try:
            frame = json.loads(raw)
        except ValueError:
            frame = raw
        self.frames.append(frame)
        if isinstance(frame, dict):
            self._apply(frame)
        return frame

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
        """Read everything that arrives for `seconds`."""
        out, deadline = [], time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.read(timeout=left))
            except TimeoutError:
                return out

    def _apply(self, f: dict) -> None:
        t = f.get("type")
        if t not in ("subscribed/order_book", "update/order_book"):
            return
        body = f.get("order_book")
        if not isinstance(body, dict) or "nonce" not in body or "begin_nonce" not in body:
            return  # malformed: ignored, as a careful client would
        if any(not isinstance(lv.get("price"), str) or not isinstance(lv.get("size"), str)
               for lv in body.get("asks", []) + body.get("bids", [])):
            return
        mid = int(f["channel"].split(":")[1])
        if t == "subscribed/order_book":
            b = BookState(valid=True)
            b.apply_levels(b.asks, body["asks"])
            b.apply_levels(b.bids, body["bids"])
            self.books[mid] = b
        else:
            b = self.books.get(mid)
            if b is None:
                return
            if body["begin_nonce"] != b.nonce:
                self.chain_breaks.append((mid, b.nonce, body["begin_nonce"]))
                b.valid = False
            b.apply_levels(b.asks, body["asks"])
            b.apply_levels(b.bids, body["bids"])
        b.nonce = body["nonce"]
        self.tops.append((mid, t, body["nonce"], b.top()))

    # ---- sending ----------------------------------------------------------------------
    def send(self, obj: Any) -> None:
        self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    def subscribe(self, mid: int, wait: bool = True, timeout: float = 3.0) -> Optional[dict]:
        self.send({"type": "subscribe", "channel": f"order_book/{mid}"})
        if not wait:
            return None
        return self.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "subscribed/order_book"
                             and f.get("channel") == f"order_book:{mid}", timeout)

    def unsubscribe(self, mid: int) -> None:
        self.send({"type": "unsubscribe", "channel": f"order_book/{mid}"})

    def error(self, timeout: float = 3.0) -> dict:
        return self.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "error", timeout)

    def wait_closed(self, timeout: float = 5.0) -> tuple[Optional[int], str]:
        """Read until the server closes; returns (code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    self.read(timeout=max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    break
        except ConnectionClosed as e:
            rcvd = e.rcvd
            return (rcvd.code, rcvd.reason) if rcvd else (None, "")
        raise TimeoutError("connection still open")

    def session_conn_id(self, sim) -> int:
        sid = self.connected["session_id"]
        return next(c["conn"] for c in sim.state()["connections"] if c["session_id"] == sid)

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
