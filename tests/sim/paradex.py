"""A simulated Paradex for the deterministic simulation (the protocol reference is
/work/shared/paradex-reference/README.md, §2-§8), on the connection machinery every
simulated venue shares (exchange.py `SimVenue`).

REST: `GET {api}/markets` answers `{"results": [...]}` with every listed market,
PERP and others (options, spot, futures: the tracker must filter them out unless
PARADEX_ASSET_KINDS names them), `open_at`/`expiry_at` in ms; failures answer
429/500/503 with Paradex's `{"error", "message"}` body.

WebSocket: no `connected` frame (the client subscribes once the socket is open);
JSON-RPC text control frames (subscribe/unsubscribe with numeric ids, acks naming
the channel, errors with code -32600); data as binary SBE frames, one message per
frame, built by the tests' own encoder (tests/paradex_frames.py). Per market a
SNAPSHOT of the whole book, stamped with the book's last change (not the send
time), then DELTAs whose seq is the previous + 1; empty deltas advance seq too; a
quote move is often two frames with the same ts (delete, then insert). A
HeartbeatEvent goes out on a connection idle for 20 s. No client pings.

Limits, enforced as refusals (the tracker must never cause one): at most 20 new
connections per second and 600 per minute per IP (every Paradex shard shares it;
a connection over the limit is refused, HTTP 429 on the upgrade); one book channel
per market per connection (a second subscribe errors); an unsubscribe of a channel
not held errors; and here also: a malformed request or channel, or a subscription
to a market of a kind the tracker was told not to track.

Books: 3-9 levels a side, sizes drawn in lots worth about 1,500 USD at the market's
price (so every level holds more than 1k), 1-400 lots a level; a market in three
(by id) has lots twenty times larger: 1m is seen filled and not. Now and then a
level crosses the book, or a delta takes a whole side (a sweep: one-sided until
that side gets a level again).

Faults: drops (all, one shard's, a burst of them), seq gaps, a delta delivered
truncated (its seq is lost: a gap follows), malformed binary and text frames,
templates the tracker does not read (BBO, trades, summaries), stalls, REST
failures, markets listed (possibly opening later) and delisted (expired or gone).

Trace payloads (what the reference reads): a delivered book frame is
`(market, ts_ms, snapshot, seq, bids, asks)` with levels as (price, size) int64
mantissas (value x 10^8), exactly what was encoded; anything else is a short tag.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import deque
from decimal import Decimal

import paradex_frames as pf

from exchange import Book, Conn, SimVenue

CONNECTIONS_PER_SECOND = 20
CONNECTIONS_PER_MINUTE = 600
HEARTBEAT_MS = 20_000
BOOK_FEEDS = ("deltas", "interactive_deltas")
OPEN_SINCE = 1_717_065_600_000  # open_at of the markets listed from the start
UNKNOWN_ID = 900_000_000  # ids of answers to no request of ours (never one the tracker used)
LOT_USD = 1_500  # a lot's worth at the listed price (the module doc)
DEEP_LOTS = 20  # lots of the deep markets (market id % 3 == 0) are this many times larger
SWEEP = 0.004  # updates with 0.2 <= roll < 0.2 + SWEEP take the whole side

# symbol -> (asset kind, price, tick, size step): decimals as the REST list gives them.
MARKETS = {
    "BTC-USD-PERP": ("PERP", "83000", "0.1", "0.00001"),
    "ETH-USD-PERP": ("PERP", "3100", "0.01", "0.0001"),
    "SOL-USD-PERP": ("PERP", "150", "0.001", "0.01"),
    "DOGE-USD-PERP": ("PERP", "0.16", "0.00001", "1"),
    "ARB-USD-PERP": ("PERP", "0.45", "0.0001", "0.1"),
    "kBONK-USD-PERP": ("PERP", "0.021", "0.000001", "1"),
    "HYPE-USD-PERP": ("PERP", "28", "0.001", "0.01"),
    "XRP-USD-PERP": ("PERP", "2.1", "0.0001", "0.1"),
    "BODEN-USD-PERP": ("PERP", "0.012", "0.00001", "1"),
    "AVAX-USD-PERP": ("PERP", "24", "0.001", "0.01"),
    "BTC-USD-PERP-96000-C": ("PERP_OPTION", "1200", "0.1", "0.001"),
    "ETH-USD-PERP-3000-P": ("PERP_OPTION", "85", "0.01", "0.01"),
    "PDEX-USDC": ("SPOT", "1.2", "0.0001", "0.1"),
    "BTC-USD-27MAR26": ("FUTURE", "84000", "0.5", "0.0001"),
    "ETH-USD-26DEC26-4000-C": ("OPTION", "150", "0.1", "0.01"),
}
# Listed during a run.
NEW_MARKETS = {
    "WIF-USD-PERP": ("PERP", "1.9", "0.0001", "0.1"),
    "TIA-USD-PERP": ("PERP", "5.2", "0.001", "0.1"),
    "PENGU-USD-PERP": ("PERP", "0.011", "0.000001", "10"),
    "TRUMP-USD-PERP": ("PERP", "12.5", "0.001", "0.01"),
    "SOL-USD-PERP-200-C": ("PERP_OPTION", "9", "0.01", "0.1"),
    "BTC-USD-26JUN26": ("FUTURE", "86000", "0.5", "0.0001"),
}
SPECS = {**MARKETS, **NEW_MARKETS}
PERPS = [s for s, spec in MARKETS.items() if spec[0] == "PERP"]
OTHERS = [s for s, spec in MARKETS.items() if spec[0] != "PERP"]


def market_id_of(symbol: str) -> int:
    """Paradex has no numeric market ids; the tracker keys a market on the first six
    bytes of its symbol's SHA-256 (documented, and restated here)."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:6], "big")


def _mantissa(text: str) -> int:
    return int(Decimal(text).scaleb(8))


class SimParadex(SimVenue):
    name = "paradex"
    ws_host = "paradex.sim"
    api_url = "http://paradex.sim/v1"

    def __init__(self, loop, rng: random.Random, symbols: list[str], frame_ms: tuple[int, int], *,
                 tracked_kinds: frozenset[str], quiet: frozenset[str] = frozenset()) -> None:
        super().__init__(loop, rng, frame_ms)
        self.tracked_kinds = tracked_kinds
        self.quiet = {market_id_of(s) for s in quiet}  # markets that change every 8-40 s
        self.listing: dict[str, dict] = {}
        self.symbols: dict[int, str] = {}  # market id -> symbol, of every market ever listed
        self.units: dict[int, tuple[int, int]] = {}  # market id -> (tick, size step) as mantissas
        self.lots: dict[int, int] = {}  # market id -> size steps in a lot
        self.opens: deque[int] = deque()  # connection attempts in the rolling minute (the IP's)
        self.truncate_next: set[int] = set()
        self.heartbeat_seq = 0
        for symbol in symbols:
            self.list_market(symbol, open_at=OPEN_SINCE)

    # -- markets ---------------------------------------------------------------------

    def list_market(self, symbol: str, open_at: int | None = None) -> int:
        """List `symbol`; its book starts changing at `open_at` (default: now)."""
        kind, price, tick, step = SPECS[symbol]
        m = market_id_of(symbol)
        now = self.loop.now_ms()
        open_at = now if open_at is None else open_at
        self.listing[symbol] = {
            "symbol": symbol, "base_currency": symbol.split("-")[0], "quote_currency": "USD",
            "settlement_currency": "USDC", "asset_kind": kind, "price_tick_size": tick,
            "order_size_increment": step, "min_notional": "10", "max_order_size": "1000000",
            "position_limit": "2000000", "open_at": open_at, "expiry_at": 0, "trading_mode": "STANDARD",
            "market_kind": "cross", "price_bands_width": "0.05", "max_open_orders": 100,
        }
        self.symbols[m] = symbol
        self.units[m] = (_mantissa(tick), _mantissa(step))
        lot = -(-LOT_USD // (Decimal(step) * Decimal(price)))
        self.lots[m] = int(lot) * (DEEP_LOTS if m % 3 == 0 else 1)
        if open_at <= now:
            self._start_market(m)
        else:
            self.loop.at_ms(open_at, self._start_market, m)
        return m

    def delist_market(self, symbol: str, how: str) -> None:
        """'expire': still listed, `expiry_at` now; 'remove': gone from the list."""
        if how == "expire":
            self.listing[symbol]["expiry_at"] = self.loop.now_ms()
        else:
            self.listing.pop(symbol, None)
        self._stop_book(market_id_of(symbol))

    def tracked(self) -> set[int]:
        """Markets listed, open, and of a kind the tracker follows (now)."""
        now = self.loop.now_ms()
        return {market_id_of(s) for s, e in self.listing.items()
                if e["asset_kind"] in self.tracked_kinds and e["open_at"] <= now
                and not (e["expiry_at"] and e["expiry_at"] <= now)}

    def _frame_ms(self, m: int) -> tuple[int, int]:
        return (8_000, 40_000) if m in self.quiet else self.frame_ms

    def _start_market(self, m: int) -> None:
        symbol = self.symbols[m]
        if symbol not in self.listing or m in self.books:
            return
        _, price, tick, _ = SPECS[symbol]
        rng = self.rng
        center = int(Decimal(price) / Decimal(tick)) + rng.randint(-200, 200)
        book = Book(m, nonce=rng.randint(10**6, 10**10), changed_ms=self.clock_ms() - rng.randint(0, 5_000))
        tick_m, step_m = self.units[m]
        t = center
        for _ in range(rng.randint(3, 9)):
            book.bids[t * tick_m] = rng.randint(1, 400) * step_m * self.lots[m]
            t -= rng.randint(1, 3)
        t = center + rng.randint(1, 5)
        for _ in range(rng.randint(3, 9)):
            book.asks[t * tick_m] = rng.randint(1, 400) * step_m * self.lots[m]
            t += rng.randint(1, 3)
        self.books[m] = book
        self._schedule_update(m)

    def _update(self, m: int) -> None:
        book = self.books.get(m)
        if book is None or not self.generating:
            return
        self._schedule_update(m)
        rng = self.rng
        now = self.clock_ms()  # the exchange's clock: its stamps, and its books' last change
        roll = rng.random()
        if roll < 0.2:  # an empty delta: seq moves, the book does not (an RPI-only change)
            return self._publish(book, now, [], [])
        side = rng.choice(("bids", "asks"))
        levels = getattr(book, side)
        tick_m, step_m = self.units[m]
        if roll < 0.2 + SWEEP and levels:  # the whole side taken: one-sided until it gets a level
            gone = [(price, 0) for price in sorted(levels)]
            levels.clear()
            book.changed_ms = now
            return self._publish(book, now, *((gone, []) if side == "bids" else ([], gone)))
        if roll < 0.55 and len(levels) > 1:
            price = rng.choice(sorted(levels))
            size = levels.pop(price)
            book.changed_ms = now
            gone = [(price, 0)]
            self._publish(book, now, *((gone, []) if side == "bids" else ([], gone)))
            if roll < 0.42:
                return
            # A quote move: the delete, then the insert at a new price, with the same ts.
            step = rng.choice((-3, -2, -1, 1, 2, 3)) * tick_m
            price = self._uncrossed(book, side, price + step, tick_m)
            if price is None:
                return
            levels[price] = size
            moved = [(price, size)]
            return self._publish(book, now, *((moved, []) if side == "bids" else ([], moved)))
        changes = {"bids": [], "asks": []}
        for s in (side, "asks" if side == "bids" else "bids") if rng.random() < 0.1 else (side,):
            # A swept side starts again a few ticks from the other one (both swept: at the
            # listed price).
            listed = _mantissa(SPECS[self.symbols[m]][1]) // tick_m * tick_m
            best_bid = max(book.bids) if book.bids else min(book.asks, default=listed) - 3 * tick_m
            best_ask = min(book.asks) if book.asks else best_bid + 3 * tick_m
            if s == "bids":
                price = best_bid + rng.choice((-2, -1, 0, 1)) * tick_m
            else:
                price = best_ask + rng.choice((-1, 0, 1, 2)) * tick_m
            price = self._uncrossed(book, s, price, tick_m)
            if price is None:
                continue
            size = rng.randint(1, 400) * step_m * self.lots[m]
            getattr(book, s)[price] = size
            changes[s].append((price, size))
        book.changed_ms = now
        self._publish(book, now, changes["bids"], changes["asks"])

    def _uncrossed(self, book: Book, side: str, price: int, tick_m: int) -> int | None:
        """`price` for a new level on `side`, mostly kept off the other side (a crossed
        book is rare, but happens); None if not a positive price."""
        if side == "bids" and book.asks and price >= min(book.asks) and self.rng.random() < 0.97:
            price = min(book.asks) - tick_m
        elif side == "asks" and book.bids and price <= max(book.bids) and self.rng.random() < 0.97:
            price = max(book.bids) + tick_m
        return price if price > 0 else None

    def _publish(self, book: Book, now: int, bids: list, asks: list) -> None:
        """One DELTA: seq + 1, sent to every connection holding the market (or lost: a gap)."""
        m = book.market
        book.nonce += 1
        if m in self.skip_next:
            self.skip_next.discard(m)
            return
        targets = self._targets(m)
        if not targets:
            return
        now += self.shift_next.pop(m, 0)  # a clock fault of this one frame, if set
        data = pf.encode_book(ts_us=now * 1000, seq=book.nonce, market=self.symbols[m], bids=bids, asks=asks, raw=True)
        payload = (m, now, False, book.nonce, tuple(bids), tuple(asks))
        if m in self.truncate_next:  # cut short on the way: undecodable, and its seq is lost
            self.truncate_next.discard(m)
            data, payload = data[: self.rng.randint(0, len(data) - 1)], "truncated"
        for conn in targets:
            self._deliver(conn, data, payload)

    def _snapshot(self, conn: Conn, m: int, request_id: int, channel: str) -> None:
        book = self.books.get(m)
        if book is None or conn.closed or m not in conn.in_flight:
            return
        del conn.in_flight[m]
        conn.subscribed.add(m)
        self._held(m)
        self._deliver(conn, self._ack(request_id, channel), "ack")
        bids = sorted(book.bids.items(), reverse=True)
        asks = sorted(book.asks.items())
        ts = book.changed_ms  # the book's last change, not the send time
        data = pf.encode_book(ts_us=ts * 1000, seq=book.nonce, snapshot=True, market=self.symbols[m],
                              bids=bids, asks=asks, raw=True)
        self._deliver(conn, data, (m, ts, True, book.nonce, tuple(bids), tuple(asks)), snapshot_of=m)

    # -- connections -----------------------------------------------------------------

    def _admit(self, conn: Conn) -> bool:
        now = self.loop.now_ms()
        opens = self.opens
        while opens and opens[0] <= now - 60_000:
            opens.popleft()
        opens.append(now)
        in_second = sum(1 for t in opens if t > now - 1_000)
        if in_second > CONNECTIONS_PER_SECOND:
            self._violation("connections per second", f"{in_second} connections opened within 1 s at {now}")
        elif len(opens) > CONNECTIONS_PER_MINUTE:
            self._violation("connections per minute", f"{len(opens)} connections opened within 60 s at {now}")
        else:
            return True
        self.loop.call_later(self.rng.randint(5, 80) / 1000, self.end, conn, True, "HTTP 429 on the upgrade")
        return False

    def _opened(self, conn: Conn) -> None:
        self.loop.at_ms(conn.sent_ms + HEARTBEAT_MS, self._heartbeat, conn)

    def _heartbeat(self, conn: Conn) -> None:
        """A HeartbeatEvent on a connection idle for HEARTBEAT_MS (not while stalled)."""
        if conn.closed:
            return
        now = self.loop.now_ms()
        if now - conn.sent_ms >= HEARTBEAT_MS:
            if conn.silenced:
                conn.sent_ms = now  # a stall sends nothing, heartbeats included
            else:
                self.heartbeat_seq += 1
                self._deliver(conn, pf.encode_heartbeat(ts_us=self.clock_ms() * 1000, seq=self.heartbeat_seq),
                              "heartbeat")
        self.loop.at_ms(conn.sent_ms + HEARTBEAT_MS, self._heartbeat, conn)

    # -- the protocol: JSON-RPC --------------------------------------------------------------

    @staticmethod
    def _us(now_ms: int) -> dict:
        return {"usIn": now_ms * 1000, "usDiff": 143, "usOut": now_ms * 1000 + 143}

    def _ack(self, request_id: int, channel: str) -> str:
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"channel": channel},
                           **self._us(self.loop.now_ms())})

    def _error(self, conn: Conn, request_id, message: str, data: str) -> None:
        self.errors_sent[data] += 1
        text = json.dumps({"jsonrpc": "2.0", "error": {"code": -32600, "message": message, "data": data},
                           **self._us(self.loop.now_ms()), "id": request_id})
        self._deliver(conn, text, "error")

    def _act(self, conn: Conn, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            self._violation("invalid request", f"not JSON: {text[:80]!r}")
            return self._error(conn, None, "parse error", "invalid JSON")
        if not isinstance(msg, dict):
            msg = {}
        request_id, method, params = msg.get("id"), msg.get("method"), msg.get("params")
        if (msg.get("jsonrpc") != "2.0" or type(request_id) is not int or method not in ("subscribe", "unsubscribe")
                or not isinstance(params, dict)):
            self._violation("invalid request", text[:120])
            return self._error(conn, request_id, "invalid request", "invalid request")
        channel = params.get("channel")
        parts = channel.split(".") if isinstance(channel, str) else []
        if len(parts) != 3 or parts[0] != "order_book" or parts[2] not in BOOK_FEEDS:
            self._violation("invalid channel", f"{method} {channel!r}")
            return self._error(conn, request_id, f"invalid {method} request", "invalid channel")
        symbol = parts[1]
        m = market_id_of(symbol)
        held = m in conn.subscribed or m in conn.in_flight
        if method == "subscribe":
            if held:  # one book channel per market per session
                self._violation("channel already held", f"{channel} on connection {conn.id}")
                return self._error(conn, request_id, "invalid subscribe request", f"already subscribed to {channel}")
            entry = self.listing.get(symbol)
            if entry is None or m not in self.books:
                return self._error(conn, request_id, "invalid subscribe request", "invalid channel")
            if entry["asset_kind"] not in self.tracked_kinds:
                self._violation("untracked kind subscribed", f"{channel} ({entry['asset_kind']})")
            self._check_allowed(symbol, channel)
            conn.in_flight[m] = self.loop.now_ms()
            self._subscribing(conn, m)
            self.loop.call_later(self.rng.randint(20, 300) / 1000, self._snapshot, conn, m, request_id, channel)
        else:
            if not held:
                self._violation("unsubscribe of a channel not held", f"{channel} on connection {conn.id}")
                return self._error(conn, request_id, "invalid unsubscribe request", "not subscribed")
            conn.subscribed.discard(m)
            conn.in_flight.pop(m, None)
            self._released(conn, [m])
            self._deliver(conn, self._ack(request_id, channel), "ack")
        return None

    # -- faults ------------------------------------------------------------------------------

    def truncate(self, m: int) -> None:
        self.truncate_next.add(m)

    def _held_market(self, conn: Conn) -> int | None:
        held = sorted(conn.subscribed)
        return self.rng.choice(held) if held else None

    def malformed(self) -> None:
        """Frames the tracker must count and skip (none consumes a seq)."""
        rng = self.rng
        now = self.clock_ms()
        for conn in list(self.conns.values()):
            m = self._held_market(conn)
            kind = rng.choice(("garbage", "text", "truncated", "bad level", "schema", "version") if m is not None
                              else ("garbage", "text"))
            if kind == "garbage":
                data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            elif kind == "text":
                data = rng.choice(("not json", "[1, 2]", '{"jsonrpc":"2.0"',
                                   '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"x"}}'))
            else:
                book = self.books.get(m)
                seq = book.nonce if book else 1  # a repeat: decoded by mistake, it would be a gap
                args = dict(ts_us=now * 1000, seq=seq, market=self.symbols[m], raw=True,
                            bids=[(max(book.bids), 1)] if book and book.bids else [])
                if kind == "truncated":
                    full = pf.encode_book(**args)
                    data = full[: rng.randint(0, len(full) - 1)]
                elif kind == "bad level":
                    args["asks"] = [rng.choice(((pf.NULL, 1), (-5, 1), (10**8, -1), (10**8, pf.NULL)))]
                    data = pf.encode_book(**args)
                elif kind == "schema":
                    data = pf.encode_book(**args, schema_id=2)
                else:
                    data = pf.encode_book(**args, version=3)
            self._deliver(conn, data, "malformed")

    def junk(self) -> None:
        """Frames the tracker reads and ignores: other templates, answers to no request."""
        rng = self.rng
        now = self.clock_ms()
        for conn in list(self.conns.values()):
            m = self._held_market(conn)
            kind = rng.choice(("bbo", "trade", "summary", "ack", "error") if m is not None
                              else ("trade", "summary", "ack", "error"))
            if kind == "bbo":
                book = self.books.get(m)
                bid = (pf.value_text(max(book.bids)), "1") if book and book.bids else None
                data = pf.encode_bbo(ts_us=now * 1000, seq=rng.randint(1, 10**9), bid=bid, ask=None,
                                     market=self.symbols[m])
            elif kind == "trade":
                data = pf.header(40, 1) + bytes(40) + pf.var_string8("BTC-USD-PERP")
            elif kind == "summary":
                data = pf.header(24, 4) + bytes(24)
            elif kind == "ack":
                data = self._ack(UNKNOWN_ID + rng.randint(0, 999), "bbo.BTC-USD-PERP")
            else:
                self.errors_sent["unknown id"] += 1
                data = json.dumps({"jsonrpc": "2.0", "error": {"code": -32603, "message": "internal error"},
                                   "id": UNKNOWN_ID + rng.randint(0, 999)})
            self._deliver(conn, data, kind)

    # -- REST --------------------------------------------------------------------------------

    async def get_text(self, url: str) -> tuple[int, str]:
        await self._rest_latency()
        if url != self.api_url + "/markets":
            self._violation("wrong url", f"GET {url}")
            return 404, json.dumps({"error": "NOT_FOUND", "message": "not found"})
        if self.loop.now_ms() < self.rest_failing_until:
            status, error = self.rng.choice(((429, "RATE_LIMIT_EXCEEDED"), (500, "INTERNAL_ERROR"),
                                             (503, "SERVICE_UNAVAILABLE")))
            return status, json.dumps({"error": error, "message": "simulated failure"})
        return 200, json.dumps({"results": [dict(e) for _, e in sorted(self.listing.items())]})
