"""Lighter's public WebSocket protocol: parse server frames, build client messages.

Frames arrive as JSON text. Book frames are parsed into a `BookFrame` with prices
and sizes already turned into floats, once, so the order book never sees strings.
Anything that does not have the documented shape raises `MalformedFrame`; the
caller counts it and carries on (a bad frame must never stop the feed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

INF = float("inf")

# Server frame types we act on.
SUBSCRIBED_ORDER_BOOK = "subscribed/order_book"
UPDATE_ORDER_BOOK = "update/order_book"

Level = tuple[float, float]  # (price, size); size 0 removes the level


class MalformedFrame(ValueError):
    """A frame that is not what Lighter documents; counted and skipped."""


@dataclass(slots=True)
class BookFrame:
    market_id: int
    is_snapshot: bool
    timestamp: int  # exchange time, ms
    nonce: int
    begin_nonce: int
    bids: list[Level]
    asks: list[Level]


@dataclass(slots=True)
class ControlFrame:
    """Every non-book frame: connected, ping, pong, error, (un)subscribed to other channels."""

    type: str
    market_id: int | None = None  # for errors/acks about an order_book channel
    code: int | None = None
    message: str = ""
    # An answer refusing one of our subscribes: "refused" (retry it later) or "held"
    # (the exchange says it holds the subscription already: unsubscribe, then retry).
    refusal: str | None = None


def subscribe(market_id: int) -> str:
    return '{"type":"subscribe","channel":"order_book/%d"}' % market_id


def unsubscribe(market_id: int) -> str:
    return '{"type":"unsubscribe","channel":"order_book/%d"}' % market_id


# Lighter's answers refusing a subscribe: 30012 failed to subscribe, 30003 already subscribed.
ERR_FAILED_TO_SUBSCRIBE = 30012
ERR_ALREADY_SUBSCRIBED = 30003
REFUSALS = {ERR_FAILED_TO_SUBSCRIBE: "refused", ERR_ALREADY_SUBSCRIBED: "held"}

PING = '{"type":"ping"}'
PONG = '{"type":"pong"}'


def channel_market_id(channel: object) -> int | None:
    """`order_book:12` (server) or `order_book/12` (client) -> 12; anything else -> None."""
    if not isinstance(channel, str) or not channel.startswith("order_book"):
        return None
    tail = channel[11:]
    # ASCII digits only: str.isdigit() also accepts "²" or "١", which int() refuses
    # (ValueError would escape as a non-MalformedFrame); the length cap keeps int()
    # far from its 4300-digit limit.
    if channel[10:11] not in (":", "/") or not (tail.isascii() and tail.isdigit()) or len(tail) > 20:
        return None
    return int(tail)


def _levels(raw: object, side: str) -> list[Level]:
    if not isinstance(raw, list):
        raise MalformedFrame(f"{side} is not a list")
    levels = []
    for entry in raw:
        try:
            price_text = entry["price"]
            size_text = entry["size"]
        except (TypeError, KeyError):
            raise MalformedFrame(f"{side} level without price/size: {entry!r:.80}") from None
        # Lighter sends decimal strings; a number here means the frame is not Lighter's.
        if type(price_text) is not str or type(size_text) is not str:
            raise MalformedFrame(f"{side} price/size are not decimal strings: {entry!r:.80}")
        try:
            price = float(price_text)
            size = float(size_text)
        except ValueError:
            raise MalformedFrame(f"{side} level is not numeric: {entry!r:.80}") from None
        # The comparisons also reject NaN, which float() accepts.
        if not (0.0 < price < INF and 0.0 <= size < INF):
            raise MalformedFrame(f"{side} level out of range: {entry!r:.80}")
        levels.append((price, size))
    return levels


def _not_int(name: str, value: object) -> MalformedFrame:
    return MalformedFrame(f"{name} is not an integer: {value!r:.40}")


# json.loads() is decode() -> raw_decode() -> the C scanner, plus two whitespace
# regex matches: under Pyodide each Python-level call costs microseconds, so a
# compact frame (as Lighter sends them) goes to the C scanner directly, and
# anything else (surrounding whitespace, trailing data, bytes) through json.loads.
_scan = json.JSONDecoder().scan_once


def _decode(text: str | bytes) -> object:
    try:
        if type(text) is str:
            try:
                value, end = _scan(text, 0)
            except StopIteration:
                end = -1
            if end == len(text):
                return value
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise MalformedFrame(f"not JSON: {str(text)[:80]!r}") from None


def parse_frame(text: str | bytes) -> BookFrame | ControlFrame:
    """Parse one WebSocket frame from Lighter (the hot path: keep it lean)."""
    msg = _decode(text)
    if not isinstance(msg, dict):
        raise MalformedFrame(f"not a JSON object: {str(text)[:80]!r}")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise MalformedFrame(f"frame without a type: {str(text)[:80]!r}")

    if kind == UPDATE_ORDER_BOOK or kind == SUBSCRIBED_ORDER_BOOK:
        market_id = channel_market_id(msg.get("channel"))
        if market_id is None:
            raise MalformedFrame(f"{kind} on channel {msg.get('channel')!r:.40}")
        body = msg.get("order_book")
        if type(body) is not dict:
            raise MalformedFrame(f"{kind} for market {market_id}: order_book is not an object")
        timestamp = msg.get("timestamp")
        nonce = body.get("nonce")
        begin_nonce = body.get("begin_nonce")
        if type(timestamp) is not int:
            raise _not_int("timestamp", timestamp)
        if type(nonce) is not int:
            raise _not_int("nonce", nonce)
        if type(begin_nonce) is not int:
            raise _not_int("begin_nonce", begin_nonce)
        bids = body.get("bids")
        asks = body.get("asks")
        # A delta usually touches one side: an empty list needs no parsing.
        return BookFrame(
            market_id,
            kind == SUBSCRIBED_ORDER_BOOK,
            timestamp,
            nonce,
            begin_nonce,
            _levels(bids, "bids") if bids != [] else [],
            _levels(asks, "asks") if asks != [] else [],
        )

    if kind == "error":
        # Lighter sends {"type":"error","code":N,"message":..}; one client has seen
        # the details nested as {"error":{"code":N,"message":..}}: accept both.
        detail = msg.get("error") if isinstance(msg.get("error"), dict) else msg
        code = detail.get("code")
        return ControlFrame(
            type="error",
            market_id=channel_market_id(msg.get("channel", detail.get("channel"))),
            code=code if type(code) is int else None,
            message=str(detail.get("message", ""))[:200],
            refusal=REFUSALS.get(code),
        )
    return ControlFrame(type=kind, market_id=channel_market_id(msg.get("channel")))


class LighterWire:
    """Lighter behind the exchange interface (tracker/exchange.py `Wire`)."""

    ready_on_open = False  # subscribing starts at Lighter's `connected` frame
    ping = PING
    pong = PONG

    subscribe = staticmethod(subscribe)
    unsubscribe = staticmethod(unsubscribe)
    parse = staticmethod(parse_frame)

    @staticmethod
    def describe_gap(market_id: int, nonce: int, begin_nonce: int) -> str:
        return f"nonce gap on market {market_id}: expected begin_nonce {nonce}, got {begin_nonce}"

    @staticmethod
    def market_of(data: str | bytes) -> int | None:
        try:
            return channel_market_id(json.loads(data).get("channel"))
        except Exception:
            return None
