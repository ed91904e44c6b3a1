"""Paradex behind the exchange interface (tracker/exchange.py).

The socket: `wss://ws.api.prod.paradex.trade/v1?sbeSchemaId=1&sbeSchemaVersion=1`.
Control frames are JSON-RPC text (subscribe, unsubscribe, their acks and errors);
data frames are binary SBE messages (tracker/sbe.py), one per WebSocket frame.

Per market, `order_book.{symbol}.deltas` sends a SNAPSHOT of the whole book, then
DELTAs whose `seq` is the previous frame's + 1 (empty deltas advance it too).
That is Lighter's continuity rule with `begin_nonce = seq - 1`, so the common
order book checks it unchanged; a gap resubscribes the market (unsubscribe, then
subscribe: a fresh snapshot), as for Lighter.

Choices where the sources conflict (see DEPLOY.md, "Paradex"):
  * channel spelling: the venue refuses every suffixed `deltas@15@...` form and
    accepts the bare `order_book.{m}.deltas` (and `.interactive_deltas`, the
    RPI-inclusive book): PARADEX_BOOK_CHANNEL chooses between the two bare names;
  * SBE required or optional: data frames are decoded whichever way they come; a
    JSON-era book message (`method: subscription`) is read too;
  * keepalive: the server's protocol pings are answered by the runtime; an idle
    connection's HeartbeatEvent counts as a message for the stale-feed watchdog,
    so STALE_FEED_SECONDS must stay above its 20 s period;
  * schema version: version 1 is requested (templates 2, 3 and 40 are the same in
    versions 0, 1 and 2, and the decoder accepts all three).

Markets have no numeric id on Paradex: a market's id is a hash of its symbol
(`paradex_markets.market_index_of`), stable across restarts and shards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import sql
from .exchange import Exchange
from .markets import Market
from .paradex_markets import MARKETS_PATH, market_index_of, parse_markets
from .protocol import INF, BookFrame, ControlFrame, Level, MalformedFrame
from .sbe import BookEvent, Heartbeat, decode

if TYPE_CHECKING:
    from .config import Config

BOOK_CHANNELS = ("deltas", "interactive_deltas")


class ParadexWire:
    """One connection: numbers its JSON-RPC requests and remembers which market each
    was about (Paradex's errors name only the request id)."""

    ready_on_open = True  # no `connected` frame: subscribing starts once the socket is open
    ping = None  # the server pings (protocol level); the runtime answers
    pong = None

    def __init__(self, symbols: Mapping[int, str], channel: str = "deltas") -> None:
        if channel not in BOOK_CHANNELS:
            raise ValueError(f"Paradex book channel must be one of {BOOK_CHANNELS}, got {channel!r}")
        self.symbols = symbols  # market id -> symbol (the shard's, kept current)
        self.channel = channel
        self._ids: dict[str, int] = {}  # symbol -> market id, a cache of market_index_of
        self._requests: dict[int, tuple[int, str]] = {}  # request id -> (market id, method)
        self._next_id = 0

    def channel_of(self, market_id: int) -> str:
        return f"order_book.{self.symbols[market_id]}.{self.channel}"

    def subscribe(self, market_id: int) -> str:
        return self._request("subscribe", market_id)

    def unsubscribe(self, market_id: int) -> str:
        return self._request("unsubscribe", market_id)

    def _request(self, method: str, market_id: int) -> str:
        self._next_id += 1
        self._requests[self._next_id] = (market_id, method)
        if len(self._requests) > 4096:  # answers that never came: keep the map bounded
            for key in list(self._requests)[:1024]:
                del self._requests[key]
        return json.dumps({"jsonrpc": "2.0", "method": method,
                           "params": {"channel": self.channel_of(market_id)}, "id": self._next_id})

    def market_id(self, symbol: str) -> int:
        market_id = self._ids.get(symbol)
        if market_id is None:
            market_id = self._ids[symbol] = market_index_of(symbol)
        return market_id

    # -- server frames ---------------------------------------------------------------------

    def parse(self, data: str | bytes) -> BookFrame | ControlFrame:
        if type(data) is not str:
            return self._binary(data)
        return self._text(data)

    def _binary(self, data: bytes) -> BookFrame | ControlFrame:
        event = decode(data)
        if type(event) is BookEvent:
            seq = event.seq
            # µs -> ms: every captured ts is a whole millisecond; windows are by ms.
            return BookFrame(self.market_id(event.market), event.snapshot, event.ts_us // 1000,
                             seq, seq - 1, event.bids, event.asks)
        if type(event) is Heartbeat:
            return ControlFrame(type="heartbeat")
        return ControlFrame(type="skipped", code=event.template)

    def _text(self, text: str) -> BookFrame | ControlFrame:
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            raise MalformedFrame(f"not JSON: {text[:80]!r}") from None
        if not isinstance(msg, dict):
            raise MalformedFrame(f"not a JSON object: {text[:80]!r}")
        request = self._requests.pop(msg.get("id"), None) if type(msg.get("id")) is int else None
        if "error" in msg:
            error = msg["error"] if isinstance(msg["error"], dict) else {"message": str(msg["error"])}
            code = error.get("code")
            message = " ".join(str(error.get(k, "")) for k in ("message", "data") if error.get(k))[:200]
            market_id, method = request if request else (None, "")
            refusal = None
            if method == "subscribe":
                # Re-subscribing a channel already held is an error too: the market is
                # held, so the retry unsubscribes first.
                refusal = "held" if "already" in message.lower() else "refused"
            return ControlFrame(type="error", market_id=market_id, code=code if type(code) is int else None,
                                message=message, refusal=refusal)
        if "result" in msg:
            market_id, method = request if request else (None, "ack")
            return ControlFrame(type=f"{method}d" if request else "ack", market_id=market_id)
        if msg.get("method") == "subscription":
            return self._json_book(msg.get("params"))
        return ControlFrame(type=str(msg.get("method") or "unknown"))

    def _json_book(self, params: object) -> BookFrame:
        """A JSON-era book message (if SBE is ever optional again): `{seq_no, market,
        last_updated_at (ms), update_type "s"|"d", inserts, updates, deletes}` with
        levels `{side BUY|SELL, price, size}`."""
        data = params.get("data") if isinstance(params, dict) else None
        if not isinstance(data, dict):
            raise MalformedFrame("subscription message without data")
        seq, ts, market = data.get("seq_no"), data.get("last_updated_at"), data.get("market")
        if type(seq) is not int or type(ts) is not int or not isinstance(market, str):
            raise MalformedFrame("JSON book message without seq_no, last_updated_at or market")
        bids: list[Level] = []
        asks: list[Level] = []
        for key in ("deletes", "inserts", "updates"):
            for level in data.get(key) or ():
                try:
                    side, price, size = level["side"], float(level["price"]), float(level["size"])
                except (TypeError, KeyError, ValueError):
                    raise MalformedFrame(f"JSON book level malformed: {level!r:.80}") from None
                if not (0.0 < price < INF and 0.0 <= size < INF) or side not in ("BUY", "SELL"):
                    raise MalformedFrame(f"JSON book level out of range: {level!r:.80}")
                (bids if side == "BUY" else asks).append((price, 0.0 if key == "deletes" else size))
        return BookFrame(self.market_id(market), data.get("update_type") == "s", ts, seq, seq - 1, bids, asks)

    def describe_gap(self, market_id: int, nonce: int, begin_nonce: int) -> str:
        return f"seq gap on market {self.symbols.get(market_id, market_id)}: expected seq {nonce + 1}, got {begin_nonce + 1}"

    def market_of(self, data: str | bytes) -> int | None:
        if type(data) is str:
            return None
        try:
            event = decode(data)
        except Exception:
            return None
        return self.market_id(event.market) if type(event) is BookEvent else None


def _parse_markets(payload: object, config: Config, now: int) -> list[Market]:
    return parse_markets(payload, config.paradex_asset_kinds, now)


EXCHANGE = Exchange(
    name="paradex",
    label="Paradex",
    sql=sql.PARADEX,
    markets_path=MARKETS_PATH,
    parse_markets=_parse_markets,
    new_wire=lambda config, symbols: ParadexWire(symbols, config.paradex_book_channel),
    # No client-message limit is documented for Paradex's WebSocket (its limits are
    # 20 new connections a second and 600 a minute per IP): subscribing stays modest
    # anyway, 10 messages a second and 20 unanswered subscriptions per IP.
    budget_per_minute=600,
    budget_in_flight=20,
    # No per-session cap is documented (3 markets on one session were tried): one
    # connection per shard carries every market of the shard.
    max_subscriptions=1_000,
    ping_every_ms=None,
)
