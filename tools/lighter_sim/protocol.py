"""Wire format: Lighter's frames, built exactly in the captured shapes.

Field order follows the live captures (tests/fixtures/lighter/*.json). Frames are
compact JSON, built once per market update and shared by every subscriber.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from .market import ASK, BID, Change, MarketSim

# error codes (Lighter docs / SDK)
INVALID_JSON = 30000
INVALID_TYPE = 30001
NOT_SUBSCRIBED = 30002
ALREADY_SUBSCRIBED = 30003
INVALID_CHANNEL = 30005
TOO_MANY_MESSAGES = 30009
TOO_MANY_INFLIGHT = 30010
FAILED_TO_SUBSCRIBE = 30012
TOO_MANY_REQUESTS = 23000  # REST 429 body code
TOO_MANY_SUBSCRIPTIONS = 23001
TOO_MANY_CONNECTIONS = 23003

MESSAGES = {
    INVALID_JSON: "invalid json",
    INVALID_TYPE: "invalid type",
    NOT_SUBSCRIBED: "not subscribed",
    ALREADY_SUBSCRIBED: "already subscribed",
    INVALID_CHANNEL: "invalid channel",
    TOO_MANY_MESSAGES: "too many websocket messages",
    TOO_MANY_INFLIGHT: "too many inflight messages",
    FAILED_TO_SUBSCRIBE: "failed to subscribe",
    TOO_MANY_SUBSCRIPTIONS: "too many subscriptions",
    TOO_MANY_CONNECTIONS: "too many connections",
}

SNAPSHOT = "subscribed/order_book"
UPDATE = "update/order_book"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> str:
    return _dumps(obj)


def parse_order_book_channel(channel: Any) -> Optional[int]:
    """'order_book/123' -> 123. Clients subscribe with a slash; Lighter's frames carry
    'order_book:123'. Anything else (colon form included) is an invalid channel here."""
    if not isinstance(channel, str) or not channel.startswith("order_book/"):
        return None
    tail = channel[len("order_book/"):]
    if not tail.isdigit() or len(tail) > 9:
        return None
    return int(tail)


def server_channel(market_id: int) -> str:
    return f"order_book:{market_id}"


def error_frame(code: int, channel: Optional[str] = None, message: Optional[str] = None) -> str:
    # the captured 30012 frame: {"type","code","channel","message"}
    frame: dict[str, Any] = {"type": "error", "code": code}
    if channel is not None:
        frame["channel"] = channel
    frame["message"] = message or MESSAGES.get(code, "error")
    return dumps(frame)


def connected_frame(session_id: str) -> str:
    return dumps({"type": "connected", "session_id": session_id})


PING = dumps({"type": "ping"})
PONG = dumps({"type": "pong"})


def _frame(m: MarketSim, kind: str, asks: list, bids: list, begin_nonce: int, ts_ms: int) -> str:
    lu = m.last_updated_us
    book = {"code": 0, "asks": asks, "bids": bids, "offset": m.offset, "nonce": m.nonce,
            "last_updated_at": lu, "begin_nonce": begin_nonce}
    if lu:
        frame = {"channel": f"order_book:{m.spec.market_id}", "last_updated_at": lu,
                 "offset": m.offset, "order_book": book, "timestamp": ts_ms, "type": kind}
    else:  # a never-traded book: the captured empty snapshot has no top-level last_updated_at
        frame = {"channel": f"order_book:{m.spec.market_id}", "offset": m.offset,
                 "order_book": book, "timestamp": ts_ms, "type": kind}
    return _dumps(frame)


def snapshot_frame(m: MarketSim, depth: int, ts_ms: int) -> str:
    return _frame(m, SNAPSHOT, m.levels_json(m.book.sorted_asks(depth)),
                  m.levels_json(m.book.sorted_bids(depth)), 0, ts_ms)


def update_frame(m: MarketSim, changes: list[Change], begin_nonce: int, ts_ms: int) -> str:
    fp, fs = m.fmt_price, m.fmt_size
    zero = m.zero  # the deleted-level spelling this update drew ("0.0000" or "0")
    asks = sorted((c.tick, c.lots) for c in changes if c.side == ASK)
    bids = sorted(((c.tick, c.lots) for c in changes if c.side == BID), reverse=True)
    return _frame(m, UPDATE,
                  [{"price": fp(t), "size": fs(q) if q else zero} for t, q in asks],
                  [{"price": fp(t), "size": fs(q) if q else zero} for t, q in bids],
                  begin_nonce, ts_ms)


# ---- malformed frames (fault injection) ---------------------------------------------
MALFORMED_KINDS = ("not_json", "bad_body", "wrong_types", "unknown_type")


def malformed_frame(kind: str, m: MarketSim, ts_ms: int, variant: int) -> str:
    ch = f"order_book:{m.spec.market_id}"
    if kind == "not_json":
        return '{"channel":"%s","type":"update/order_book","order_book":{"asks":[{"price":"1' % ch
    if kind == "bad_body":  # the captured ws_order_book_subscribed_bad_body.json shape
        return dumps({"channel": ch, "last_updated_at": ts_ms, "offset": 0, "order_book": 42,
                      "timestamp": ts_ms, "type": SNAPSHOT})
    if kind == "wrong_types":
        bb, bbs, ba, bas = m.book.top()
        if variant % 2 == 0:  # numbers where Lighter sends decimal strings
            scale_p, scale_s = 10 ** m.spec.price_decimals, 10 ** m.spec.size_decimals
            asks = [] if ba is None else [{"price": ba / scale_p, "size": bas / scale_s}]
            book = {"code": 0, "asks": asks, "bids": [], "offset": m.offset, "nonce": m.nonce,
                    "last_updated_at": m.last_updated_us, "begin_nonce": m.nonce}
        else:  # required fields missing
            asks = [] if ba is None else [{"price": m.fmt_price(ba)}]
            book = {"code": 0, "asks": asks, "bids": [], "offset": m.offset}
        return dumps({"channel": ch, "last_updated_at": m.last_updated_us, "offset": m.offset,
                      "order_book": book, "timestamp": ts_ms, "type": UPDATE})
    if kind == "unknown_type":
        return dumps({"channel": ch, "timestamp": ts_ms, "type": "update/quantum_flux",
                      "quantum_flux": {"level": variant}})
    raise ValueError(f"unknown malformed kind {kind!r}")
