"""Paradex's JSON-RPC control plane (text frames) and its error answers.

Requests:  {"jsonrpc":"2.0","method":"subscribe"|"unsubscribe","params":{"channel":...},"id":N}
Ack:       {"jsonrpc":"2.0","id":N,"result":{"channel":...},"usIn":..,"usDiff":..,"usOut":..}
Error:     {"jsonrpc":"2.0","error":{"code":..,"message":..,"data":..},"usIn":..,"usDiff":..,"usOut":..,"id":N}
(key order as captured / as in the documented sample; usIn/usOut in µs of the server clock).
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Optional

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

MESSAGES = {
    PARSE_ERROR: "parse error",
    INVALID_REQUEST: "invalid request",
    METHOD_NOT_FOUND: "method not found",
    INVALID_PARAMS: "invalid params",
    INTERNAL_ERROR: "internal error",
}
SUBSCRIBE_ERROR = "invalid subscribe request"  # the observed message of -32600 on subscribe
UNSUBSCRIBE_ERROR = "invalid unsubscribe request"  # (simulator's choice, by analogy)
INVALID_CHANNEL = "invalid channel"  # observed data
NO_PARAMETERS = "no parameters expected for deltas topic."  # observed data (suffixed deltas)

BOOK_FEEDS = ("deltas", "interactive_deltas")  # the bare channels the venue accepts
_CHANNEL = re.compile(r"^order_book\.(?P<market>.+?)\.(?P<feed>deltas|interactive_deltas|snapshot|interactive)"
                      r"(?P<suffix>@.*)?$")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def now_us() -> int:
    return time.time_ns() // 1000


class ChannelError(ValueError):
    """A channel this session refuses: (data for the -32600 answer)."""


def parse_book_channel(channel: str) -> tuple[str, str]:
    """'order_book.BTC-USD-PERP.deltas' -> ('BTC-USD-PERP', 'deltas'). The venue accepts
    only the bare deltas / interactive_deltas names; a suffixed deltas name is refused
    with the observed text; the documented periodic snapshot channels are not served
    here (invalid channel); so is anything else."""
    m = _CHANNEL.match(channel)
    if m is None:
        raise ChannelError(INVALID_CHANNEL)
    feed = m.group("feed")
    if feed not in BOOK_FEEDS:
        raise ChannelError(INVALID_CHANNEL)
    if m.group("suffix"):
        raise ChannelError(NO_PARAMETERS)
    return m.group("market"), feed


def book_channel(symbol: str, feed: str) -> str:
    return f"order_book.{symbol}.{feed}"


def ack(req_id: Any, channel: str, us_in: int) -> str:
    us_out = max(now_us(), us_in)
    return _dumps({"jsonrpc": "2.0", "id": req_id, "result": {"channel": channel},
                   "usIn": us_in, "usDiff": us_out - us_in, "usOut": us_out})


def error(req_id: Any, code: int, us_in: int, message: Optional[str] = None,
          data: Optional[str] = None) -> str:
    err: dict[str, Any] = {"code": code, "message": message or MESSAGES.get(code, "error")}
    if data is not None:
        err["data"] = data
    us_out = max(now_us(), us_in)
    return _dumps({"jsonrpc": "2.0", "error": err, "usIn": us_in, "usDiff": us_out - us_in,
                   "usOut": us_out, "id": req_id})


# REST error bodies: {"error": CODE, "message": ...}; the 404 code is Paradex's own,
# the others are this simulator's choice (Paradex documents none for these cases).
REST_ERRORS = {
    "MARKET_NOT_FOUND": (404, "market not found"),
    "VALIDATION_ERROR": (400, "invalid request parameters"),
    "RATE_LIMIT_EXCEEDED": (429, "rate limit exceeded"),
    "INTERNAL_ERROR": (500, "internal server error"),
    "BAD_GATEWAY": (502, "bad gateway"),
    "SERVICE_UNAVAILABLE": (503, "service unavailable"),
    "UNSUPPORTED_SBE_SCHEMA": (400, "unsupported sbeSchemaId / sbeSchemaVersion"),
    "TOO_MANY_CONNECTIONS": (429, "too many new connections"),
}
STATUS_ERROR = {429: "RATE_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY",
                503: "SERVICE_UNAVAILABLE"}


def rest_error_body(code: str, message: Optional[str] = None) -> tuple[int, dict[str, Any]]:
    status, default = REST_ERRORS[code]
    return status, {"error": code, "message": message or default}


# ---- malformed frames (fault injection) ----------------------------------------------
MALFORMED_KINDS = ("truncated", "short", "bad_group", "wrong_schema", "unknown_template", "not_json")
