"""The simulator core: markets, connections, the ticker and the fan-out.
(Read-only views are in views.py, the /_sim/ actions in control.py.)

Everything runs on one asyncio loop. One ticker task produces the updates of all
subscribed markets per tick and appends the (shared) frame text to each
subscriber's queue; one writer task per connection drains its queue. Nothing
creates a task per message.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, deque
from typing import Any, Optional

from aiohttp import web

from . import protocol as P
from . import views
from .catalog import MarketSpec, build_catalog
from .config import SimConfig
from .connection import Connection, Sub
from .faults import Faults
from .limits import Limits
from .market import MarketSim


def _stamps() -> tuple[int, int]:
    """(frame timestamp in ms, book last_updated_at in µs). The book changed a moment
    before the frame goes out, as in the captures (timestamp > last_updated_at / 1000)."""
    t = time.time()
    return int(t * 1000), int(t * 1_000_000) - 2_000


class Simulator:
    """Lighter's exchange. paradex/engine.py's ParadexSimulator reuses its books, ticker,
    faults, limits and record with Paradex's wire protocol."""
    exchange = "lighter"
    ws_path = "/stream"
    views = views  # the /_sim/state, /_sim/record and /_sim/book views
    malformed_kinds = P.MALFORMED_KINDS
    extra_actions: dict = {}  # exchange-specific /_sim/ actions beside control.ACTIONS
    stamps = staticmethod(_stamps)

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.specs: list[MarketSpec] = self.build_specs()
        self.markets: dict[int, MarketSim] = {
            s.market_id: MarketSim(s, cfg.seed, cfg.levels) for s in self.specs}
        self.rate = cfg.rate
        self.conns: dict[int, Connection] = {}  # open connections
        self.closed_conns: deque[Connection] = deque(maxlen=max(1, cfg.keep_closed))
        self.next_conn_id = 1
        self.faults = Faults()
        self.live: set[MarketSim] = set()  # active markets with at least one subscriber
        self.rest_times: deque[float] = deque()
        self.counters: Counter = Counter()
        self.errors_sent: Counter = Counter()  # error code -> frames/bodies sent since reset
        self.limits = self.make_limits()
        self.tasks: list[asyncio.Task] = []

    def build_specs(self) -> list[MarketSpec]:
        return build_catalog(self.cfg)

    def make_limits(self) -> Limits:
        return Limits(self.cfg)

    def market_ref(self, value: Any) -> int:
        """A market id from a control or view parameter: its id, or its symbol."""
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            for mid, m in self.markets.items():
                if m.spec.symbol == value:
                    return mid
            raise ValueError(f"unknown market {value!r}")
        mid = int(value)
        if mid not in self.markets:
            raise ValueError(f"unknown market_id {mid}")
        return mid

    def log(self, msg: str) -> None:
        print(f"[Sim] {msg}", flush=True)

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self._ticker()),
                      asyncio.ensure_future(self._housekeeping())]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        conns = list(self.conns.values())
        for conn in conns:
            conn.close_code, conn.close_reason = 1001, "server shutdown"
        if conns:
            await asyncio.wait([asyncio.ensure_future(c.ws.close(code=1001, message=b"server shutdown"))
                                for c in conns], timeout=2.0)

    # ---- connections ------------------------------------------------------------------
    def open_conn(self, ws: web.WebSocketResponse, request: web.Request) -> Connection:
        cid = self.next_conn_id
        self.next_conn_id += 1
        conn = Connection(cid, ws, request.transport, request.remote or "?",
                          request.query.get("readonly") == "true", self.cfg.max_queue,
                          self.cfg.record_limit, session_id=uuid.uuid4().hex)
        conn.record_frames = self.cfg.record_frames
        loop = asyncio.get_running_loop()
        conn.next_ping_at = loop.time() + self.cfg.ping_interval
        conn.writer_task = asyncio.ensure_future(conn.run_writer())
        refused = self.limits.admit(conn, loop.time())
        if refused:
            # Lighter's answer to a connection over its per-IP limits: the error frame,
            # then a close (no "connected" frame first)
            self.log(f"conn {cid} from {conn.remote} refused: {refused}")
            self._error(conn, P.TOO_MANY_CONNECTIONS)
            self.request_close(conn, 1008, refused, after_flush=True)
        else:
            conn.enqueue(P.connected_frame(conn.session_id))
            self.log(f"conn {cid} open from {conn.remote} path={request.path_qs}")
        self.conns[cid] = conn
        return conn

    def conn_closed(self, conn: Connection, code: Optional[int]) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.closed_ms = int(time.time() * 1000)
        if conn.close_code is None:
            conn.close_code = code
            conn.close_reason = conn.close_reason or "closed by client"
        for mid in list(conn.subs):
            self._drop_sub(conn, mid)
        conn.pending.clear()
        self.limits.release(conn)
        conn.outq.clear()
        conn.wake.set()
        for t in (conn.writer_task, conn.pump_task):
            if t is not None:
                t.cancel()
        self.conns.pop(conn.conn_id, None)
        self.closed_conns.append(conn)
        self.log(f"conn {conn.conn_id} closed code={conn.close_code} reason={conn.close_reason!r}"
                 f" sent={conn.sent} received={conn.received}")

    def request_close(self, conn: Connection, code: int, reason: str,
                      after_flush: bool = False) -> None:
        """Close from the server side. code 1006 drops the TCP connection with no close frame."""
        if conn.closed or conn.close_code is not None:
            return
        conn.close_code, conn.close_reason = code, reason
        self.log(f"conn {conn.conn_id} closing code={code} reason={reason!r}")

        async def _close() -> None:
            if after_flush:
                for _ in range(100):
                    if conn.flushed():
                        break
                    await asyncio.sleep(0.01)
            if code == 1006:
                if conn.transport is not None:
                    conn.transport.abort()
                return
            try:
                await conn.ws.close(code=code, message=reason.encode())
            except (ConnectionError, RuntimeError):
                pass
        asyncio.ensure_future(_close())

    def _drop_sub(self, conn: Connection, mid: int) -> None:
        conn.subs.pop(mid, None)
        m = self.markets[mid]
        m.subs.pop(conn.conn_id, None)
        if not m.subs:
            self.live.discard(m)

    # ---- client messages --------------------------------------------------------------
    def handle_text(self, conn: Connection, text: Optional[str]) -> None:
        conn.received += 1
        self.counters["messages_received"] += 1
        if conn.close_code is not None:
            return
        try:
            msg = json.loads(text) if text is not None else None
        except ValueError:
            msg = None
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "subscribe":  # even a refused one says which client (shard) asked
            mid = P.parse_order_book_channel(msg.get("channel"))
            if mid is not None:
                conn.asked.add(mid)
        now = asyncio.get_running_loop().time()
        # Every client message counts against the budget, pongs included (Lighter counts
        # them); one over the limit gets 30009 and is not acted upon, so a pong refused
        # here does not answer our ping.
        if not self.limits.take_message(conn, now):
            self._error(conn, P.TOO_MANY_MESSAGES)
            if conn.breach(now, self.cfg.msg_window) >= self.cfg.limit_close_after:
                self.request_close(conn, 1008, "too many websocket messages", after_flush=True)
            return
        if not isinstance(msg, dict):
            return self._error(conn, P.INVALID_JSON)
        if kind == "pong":  # answers our ping
            conn.ping_sent_at = None
        elif kind == "ping":
            conn.enqueue(P.PONG)
        elif kind == "subscribe":
            self._subscribe(conn, msg.get("channel"))
        elif kind == "unsubscribe":
            self._unsubscribe(conn, msg.get("channel"))
        else:
            self._error(conn, P.INVALID_TYPE)

    def _error(self, conn: Connection, code: int, channel: Optional[str] = None) -> None:
        self.errors_sent[code] += 1
        now_ms = int(time.time() * 1000)
        seen = conn.errors.setdefault(code, [0, now_ms, now_ms])
        seen[0] += 1
        seen[2] = now_ms
        conn.enqueue(P.error_frame(code, channel))
        if not self.cfg.quiet:
            self.log(f"conn {conn.conn_id} error {code} {P.MESSAGES.get(code, '')}"
                     + (f" channel={channel}" if channel else ""))

    def _subscribe(self, conn: Connection, channel: Any) -> None:
        mid = P.parse_order_book_channel(channel)
        if mid is None or mid not in self.markets:
            return self._error(conn, P.INVALID_CHANNEL, channel if isinstance(channel, str) else None)
        ch = P.server_channel(mid)
        if self.faults.take_refusal(conn.conn_id):
            return self._error(conn, P.FAILED_TO_SUBSCRIBE, ch)
        if mid in conn.subs or mid in conn.pending:
            return self._error(conn, P.ALREADY_SUBSCRIBED, ch)
        if len(conn.subs) + len(conn.pending) >= self.cfg.max_subs:
            return self._error(conn, P.TOO_MANY_SUBSCRIPTIONS, ch)
        if self.limits.in_flight(conn) >= self.cfg.max_inflight:
            return self._error(conn, P.TOO_MANY_INFLIGHT, ch)
        if not self.cfg.quiet:
            self.log(f"conn {conn.conn_id} subscribe {channel}")
        if self.cfg.snapshot_delay <= 0:
            return self._snapshot(conn, mid)
        conn.pending.append(mid)
        if conn.pump_task is None:
            conn.pump_task = asyncio.ensure_future(self._pump(conn))

    async def _pump(self, conn: Connection) -> None:
        """Answers queued subscribes one snapshot per snapshot_delay: until then they
        are 'in flight', which is what Lighter's 50-in-flight limit counts."""
        try:
            while conn.pending and not conn.closed:
                await asyncio.sleep(self.cfg.snapshot_delay)
                if conn.pending and not conn.closed:
                    self._snapshot(conn, conn.pending.popleft())
        finally:
            conn.pump_task = None

    def _snapshot(self, conn: Connection, mid: int) -> None:
        m = self.markets[mid]
        depth = self.cfg.snapshot_depth
        sub = Sub(m)
        if depth and (len(m.book.bids) > depth or len(m.book.asks) > depth):
            sub.view = m.book.copy()
            sub.view.bids = dict(m.book.sorted_bids(depth))
            sub.view.asks = dict(m.book.sorted_asks(depth))
        ts = int(time.time() * 1000)
        top = (sub.view or m.book).top()
        conn.subs[mid] = sub
        m.subs[conn.conn_id] = (conn, sub)
        if m.spec.status == "active":
            self.live.add(m)
        conn.enqueue(P.snapshot_frame(m, depth, ts), (mid, P.SNAPSHOT, ts, m.nonce, 0) + top + (True,))

    def _unsubscribe(self, conn: Connection, channel: Any) -> None:
        mid = P.parse_order_book_channel(channel)
        if mid is None or mid not in self.markets:
            return self._error(conn, P.INVALID_CHANNEL, channel if isinstance(channel, str) else None)
        if mid in conn.subs:
            self._drop_sub(conn, mid)
        elif mid in conn.pending:
            conn.pending.remove(mid)
        else:
            return self._error(conn, P.NOT_SUBSCRIBED, P.server_channel(mid))
        if not self.cfg.quiet:
            self.log(f"conn {conn.conn_id} unsubscribe {channel}")
        if self.cfg.unsubscribe_ack:
            conn.enqueue(P.dumps({"type": "unsubscribed/order_book", "channel": P.server_channel(mid)}))

    # ---- the ticker -------------------------------------------------------------------
    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.cfg.tick)
            now = loop.time()
            dt, last = min(now - last, 1.0), now
            if self.rate > 0 and self.live:
                inc = self.rate * dt
                ts_ms, now_us = _stamps()
                for m in list(self.live):
                    m.acc += inc
                    while m.acc >= 1.0:
                        m.acc -= 1.0
                        self.emit_update(m, ts_ms, now_us)
                self.close_overflowed()

    def emit_update(self, m: MarketSim, ts_ms: int, now_us: int, empty: Optional[bool] = None) -> None:
        """One book update of market m to its subscribers (`empty` is Paradex's: Lighter
        has no update without a level)."""
        begin = m.nonce
        changes = m.step(now_us)
        self.counters["updates"] += 1
        if not m.subs:
            return
        text = P.update_frame(m, changes, begin, ts_ms)
        nonce = m.nonce
        top = m.book.top()
        for conn, sub in m.subs.values():
            if sub.drop_next:  # gap fault: this update never reaches the client
                sub.drop_next = False
                sub.valid = False
                if sub.view is None:
                    sub.view = m.book.copy()
                    for c in reversed(changes):
                        sub.view.apply(c.side, c.tick, c.old)
                self.faults.counts["gap"] += 1
                continue
            if sub.view is not None:
                for c in changes:
                    sub.view.apply(c.side, c.tick, c.lots)
                t = sub.view.top()
            else:
                t = top
            conn.enqueue(text, (m.spec.market_id, P.UPDATE, ts_ms, nonce, begin) + t + (sub.valid,))

    def close_overflowed(self) -> None:
        for conn in list(self.conns.values()):
            if conn.overflowed and conn.close_code is None:
                self.request_close(conn, 1011, "slow consumer")

    # ---- faults the control plane asks for ----------------------------------------------
    def arm_gap(self, targets: list[Connection], mid: Optional[int], params: dict) -> int:
        """Arm each matching subscription to swallow its next update (emit_update does it)."""
        if params.get("mode", "drop") != "drop":
            raise ValueError("Lighter's gap has one mode: drop")
        n = 0
        for conn in targets:
            for sid, sub in conn.subs.items():
                if mid is None or sid == mid:
                    sub.drop_next = True
                    n += 1
        return n

    def reset_faults(self) -> None:
        """What /_sim/reset clears beyond faults.reset(), connections' stalls and gaps."""

    def send_malformed(self, conn: Connection, kind: str, m: MarketSim, variant: int) -> None:
        ts = int(time.time() * 1000)
        conn.enqueue(P.malformed_frame(kind, m, ts, variant),
                     (m.market_id, f"malformed/{kind}", ts, None, None, None, None, None, None, False))

    # ---- keepalive --------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        period = max(0.02, min(0.25, cfg.pong_timeout / 4, (cfg.ping_interval or 1.0) / 4))
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self.conns.values()):
                if conn.close_code is not None or cfg.ping_interval <= 0:
                    continue
                if conn.stalled_until > now:  # a stalled server sends no pings either
                    conn.ping_sent_at = None
                    conn.next_ping_at = max(conn.next_ping_at, conn.stalled_until)
                    continue
                if conn.ping_sent_at is not None:
                    if now - conn.ping_sent_at > cfg.pong_timeout:
                        self.counters["no_pong_closes"] += 1
                        self.request_close(conn, 1008, "no pong")
                elif now >= conn.next_ping_at:
                    conn.enqueue(P.PING)
                    conn.ping_sent_at = now
                    conn.next_ping_at = now + cfg.ping_interval
