"""ParadexSimulator: Lighter's engine (books, random walk, ticker, fan-out, faults,
record, control plane) speaking Paradex's protocol: JSON-RPC text frames in, one SBE
BookEvent per binary frame out.

Per market there is one seq counter, shared by every connection and both book
channels (`deltas`, `interactive_deltas`): each DELTA frame takes the next number.
A book change of the random walk (MarketSim.step, 1-4 levels) goes out as one or more
DELTAs with the same `ts`, deletes first, then size changes, then new levels, so no
intermediate book is ever crossed (a quote move often arrives that way on Paradex:
delete at the old price, insert at the new one). A share of the ticker's updates
(--empty-deltas) are empty DELTAs: no level, seq still advances. Sizes are absolute,
size 0 removes a level. `ts` is in µs and always a whole millisecond; the SNAPSHOT's
`ts` is the book's last change, not the send time.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Optional

from aiohttp import web

from ..config import SimConfig
from ..connection import Connection, ProtocolFrame, Sub
from ..engine import Simulator
from ..limits import IpUsage, Limits, Window
from ..market import BID, Change, MarketSim
from . import protocol as PP
from . import sbe, views
from .catalog import ParadexMarket, build_catalog


@dataclass(eq=False)
class Feed:
    """A market's Paradex stream state."""
    seq: int  # seq of the last frame (the snapshot's seq until the next DELTA)
    ts_us: int  # the book's last change (a SNAPSHOT's ts)
    last_frame_us: int  # ts of the last frame: frames' ts never go backwards
    rng: random.Random  # framing decisions (empty DELTAs, splits): the book's walk is MarketSim's
    skip_next: bool = False  # gap fault, mode "skip": the next DELTA skips one seq number


class ParadexLimits(Limits):
    """Paradex documents only connection limits: 20 new connections a second and 600 a
    minute per IP (no message, in-flight or subscription limit). The attempt is counted
    before the upgrade, and refused with HTTP 429 (the refusal's form is undocumented)."""

    def admit(self, conn: Connection, now: float) -> Optional[str]:
        self.usage(conn.remote).conns.add(conn)  # counted (and let through) by attempt()
        return None

    def take_message(self, conn: Connection, now: float) -> bool:
        return True

    def in_flight(self, conn: Connection) -> int:
        return 0

    def settings(self) -> dict:
        c = self.cfg
        return {"per": "ip", "new_connections_per_second": c.max_new_connections_per_second,
                "new_connections": c.max_new_connections, "connection_window_s": c.conn_window,
                "connections": c.max_connections or None, "rest_per_minute": c.rest_limit or None}

    def _last_second(self, u: IpUsage, now: float) -> int:
        return sum(1 for t in u.attempts.times if t > now - 1.0)

    def report(self, now: float) -> dict[str, dict]:
        out = {}
        for ip, u in sorted(self.ips.items()):
            out[ip] = {"open_connections": len(u.conns),
                       "new_connections_in_window": u.attempts.count(now, self.cfg.conn_window),
                       "new_connections_last_second": self._last_second(u, now)}
        return out


def _now_ts_us() -> int:
    """Now, in µs, floored to a whole millisecond (every captured ts is)."""
    return time.time_ns() // 1_000_000 * 1000


class ParadexSimulator(Simulator):
    exchange = "paradex"
    ws_path = "/v1?sbeSchemaId=1&sbeSchemaVersion=1"
    views = views
    malformed_kinds = PP.MALFORMED_KINDS

    def __init__(self, cfg: SimConfig):
        super().__init__(cfg)
        now = _now_ts_us()
        self.feeds: dict[int, Feed] = {}
        for mid in self.markets:
            rng = random.Random(f"paradex-feed:{cfg.seed}:{mid}")
            self.feeds[mid] = Feed(rng.randint(10 ** 9, 9 * 10 ** 9), now, now, rng)
        self.versions = {int(v) for v in cfg.sbe_versions.split(",")}
        self.rest_windows: dict[str, Window] = {}  # per client IP (1500 a minute by default)

    def build_specs(self):
        self.catalog: list[ParadexMarket] = build_catalog(self.cfg)
        self.px: dict[int, ParadexMarket] = {m.spec.market_id: m for m in self.catalog}
        self.by_symbol: dict[str, int] = {m.symbol: mid for mid, m in self.px.items()}
        return [m.spec for m in self.catalog]

    def make_limits(self) -> Limits:
        return ParadexLimits(self.cfg)

    def market_ref(self, value: Any) -> int:
        if isinstance(value, str) and value in self.by_symbol:
            return self.by_symbol[value]
        return super().market_ref(value)

    # ---- connections ------------------------------------------------------------------
    def open_conn(self, ws: web.WebSocketResponse, request: web.Request, version: int = 1) -> Connection:
        cid = self.next_conn_id
        self.next_conn_id += 1
        conn = Connection(cid, ws, request.transport, request.remote or "?", False, self.cfg.max_queue,
                          self.cfg.record_limit, session_id=uuid.uuid4().hex)
        conn.record_frames = self.cfg.record_frames
        peer = request.transport.get_extra_info("peername") if request.transport else None
        conn.peer_port = peer[1] if peer else None  # lets a test find its own connection
        conn.sbe_version = version  # echoed in every frame header
        conn.layout = None  # [block_length, group_stride, book frames left]: the sbe_layout fault
        loop = asyncio.get_running_loop()
        conn.next_ping_at = loop.time() + self.cfg.ping_interval
        conn.last_write = loop.time()
        conn.writer_task = asyncio.ensure_future(conn.run_writer())
        self.limits.admit(conn, loop.time())
        self.conns[cid] = conn
        self.log(f"conn {cid} open from {conn.remote} path={request.path_qs}")
        return conn

    def on_ping(self, conn: Connection, data: bytes) -> None:
        conn.enqueue(ProtocolFrame("pong", data))  # queued: a stalled server answers nothing

    def on_pong(self, conn: Connection) -> None:
        conn.ping_sent_at = None
        self.counters["pongs_received"] += 1

    # ---- client messages (JSON-RPC) -----------------------------------------------------
    def handle_text(self, conn: Connection, text: Optional[str], us_in: Optional[int] = None) -> None:
        us_in = us_in or PP.now_us()
        conn.received += 1
        self.counters["messages_received"] += 1
        if conn.close_code is not None:
            return
        try:
            msg = json.loads(text) if text is not None else None
        except ValueError:
            return self._rpc_error(conn, None, PP.PARSE_ERROR, us_in)
        if text is None:  # a binary frame: clients send JSON text only
            return self._rpc_error(conn, None, PP.PARSE_ERROR, us_in)
        if not isinstance(msg, dict):
            return self._rpc_error(conn, None, PP.INVALID_REQUEST, us_in)
        req_id = msg.get("id")
        method = msg.get("method")
        if method not in ("subscribe", "unsubscribe"):
            return self._rpc_error(conn, req_id, PP.METHOD_NOT_FOUND, us_in)
        params = msg.get("params")
        channel = params.get("channel") if isinstance(params, dict) else None
        if not isinstance(channel, str):
            return self._rpc_error(conn, req_id, PP.INVALID_PARAMS, us_in)
        if method == "subscribe":
            self._subscribe_rpc(conn, req_id, channel, us_in)
        else:
            self._unsubscribe_rpc(conn, req_id, channel, us_in)

    def _rpc_error(self, conn: Connection, req_id: Any, code: int, us_in: int,
                   message: Optional[str] = None, data: Optional[str] = None) -> None:
        self.errors_sent[code] += 1
        now_ms = int(time.time() * 1000)
        seen = conn.errors.setdefault(code, [0, now_ms, now_ms])
        seen[0] += 1
        seen[2] = now_ms
        conn.enqueue(PP.error(req_id, code, us_in, message, data))
        if not self.cfg.quiet:
            self.log(f"conn {conn.conn_id} error {code} {message or PP.MESSAGES.get(code, '')}"
                     + (f" ({data})" if data else ""))

    def _channel_market(self, conn: Connection, req_id: Any, channel: str, us_in: int,
                        what: str) -> Optional[tuple[int, str]]:
        try:
            symbol, feed = PP.parse_book_channel(channel)
        except PP.ChannelError as e:
            self._rpc_error(conn, req_id, PP.INVALID_REQUEST, us_in, what, str(e))
            return None
        mid = self.by_symbol.get(symbol)
        if mid is None:
            self._rpc_error(conn, req_id, PP.INVALID_REQUEST, us_in, what, PP.INVALID_CHANNEL)
            return None
        return mid, feed

    def _subscribe_rpc(self, conn: Connection, req_id: Any, channel: str, us_in: int) -> None:
        found = self._channel_market(conn, req_id, channel, us_in, PP.SUBSCRIBE_ERROR)
        if found is None:
            return
        mid, _feed = found
        conn.asked.add(mid)
        if self.faults.take_refusal(conn.conn_id):
            return self._rpc_error(conn, req_id, PP.INTERNAL_ERROR, us_in, data="failed to subscribe")
        held = conn.subs.get(mid)
        if held is not None:
            data = ("already subscribed" if held.channel == channel
                    else f"channel '{channel}' cannot share an SBE session with '{held.channel}'")
            return self._rpc_error(conn, req_id, PP.INVALID_REQUEST, us_in, PP.SUBSCRIBE_ERROR, data)
        if not self.cfg.quiet:
            self.log(f"conn {conn.conn_id} subscribe {channel}")
        conn.enqueue(PP.ack(req_id, channel, us_in))
        self._book_snapshot(conn, mid, channel)

    def _unsubscribe_rpc(self, conn: Connection, req_id: Any, channel: str, us_in: int) -> None:
        found = self._channel_market(conn, req_id, channel, us_in, PP.UNSUBSCRIBE_ERROR)
        if found is None:
            return
        mid, _feed = found
        held = conn.subs.get(mid)
        if held is None or held.channel != channel:
            return self._rpc_error(conn, req_id, PP.INVALID_REQUEST, us_in, PP.UNSUBSCRIBE_ERROR,
                                   "not subscribed")
        self._drop_sub(conn, mid)
        if not self.cfg.quiet:
            self.log(f"conn {conn.conn_id} unsubscribe {channel}")
        conn.enqueue(PP.ack(req_id, channel, us_in))

    # ---- frames -----------------------------------------------------------------------
    def _layout(self, conn: Connection) -> tuple[int, int]:
        """(root blockLength, group stride) of conn's next book frame (the sbe_layout fault)."""
        lay = conn.layout
        if lay is None:
            return sbe.BOOK_BLOCK, sbe.LEVEL_BLOCK
        lay[2] -= 1
        if lay[2] <= 0:
            conn.layout = None
        self.faults.counts["sbe_layout_frames"] += 1
        return lay[0], lay[1]

    @staticmethod
    def _interactive(sub: Sub) -> bool:
        return sub.channel.endswith(".interactive_deltas")

    def _mantissas(self, px: ParadexMarket, top: tuple) -> tuple:
        bb, bbs, ba, bas = top
        ps, ss = px.price_scale, px.size_scale
        return (None if bb is None else bb * ps, None if bbs is None else bbs * ss,
                None if ba is None else ba * ps, None if bas is None else bas * ss)

    def _book_snapshot(self, conn: Connection, mid: int, channel: str) -> None:
        m = self.markets[mid]
        f = self.feeds[mid]
        px = self.px[mid]
        sub = Sub(m, channel=channel)
        depth = self.cfg.snapshot_depth
        if depth and (len(m.book.bids) > depth or len(m.book.asks) > depth):
            sub.view = m.book.copy()
            sub.view.bids = dict(m.book.sorted_bids(depth))
            sub.view.asks = dict(m.book.sorted_asks(depth))
        book = sub.view or m.book
        conn.subs[mid] = sub
        m.subs[conn.conn_id] = (conn, sub)
        if m.spec.status == "active":
            self.live.add(m)
        ps, ss = px.price_scale, px.size_scale
        bids = [(t * ps, q * ss) for t, q in book.sorted_bids()]
        asks = [(t * ps, q * ss) for t, q in book.sorted_asks()]
        interactive = self._interactive(sub)
        best = sbe.best_fields(self._mantissas(px, m.book.top())) if interactive else sbe.NULL_BEST
        block, stride = self._layout(conn)
        data = sbe.book_event(f.ts_us, f.seq, sbe.SNAPSHOT, px.symbol, bids, asks, best,
                              version=conn.sbe_version, block_length=block, group_stride=stride)
        top = book.top()
        conn.enqueue(data, (mid, "snapshot", f.ts_us // 1000, f.seq, f.ts_us) + top
                     + (True, "interactive_deltas" if interactive else "deltas"))

    def emit_update(self, m: MarketSim, ts_ms: int, now_us: int, empty: Optional[bool] = None) -> None:
        """One update of the ticker (or of /_sim/step): an empty DELTA, or a book change
        sent as one or more DELTAs with the same ts."""
        f = self.feeds[m.market_id]
        ts_us = max(ts_ms * 1000, f.last_frame_us)
        f.last_frame_us = ts_us
        if empty is None:
            empty = self.cfg.empty_deltas > 0 and f.rng.random() < self.cfg.empty_deltas
        if empty:
            self.counters["empty_deltas"] += 1
            self._delta(m, f, [], ts_us)
            return
        changes = m.step(now_us)
        self.counters["updates"] += 1
        f.ts_us = ts_us
        for c in changes:  # back to the book before the change, then forward frame by frame
            m.book.apply(c.side, c.tick, c.old)
        ordered = ([c for c in changes if c.lots == 0] + [c for c in changes if c.lots and c.old]
                   + [c for c in changes if not c.old])
        i = 0
        while i < len(ordered):
            n = f.rng.choice((1, 1, 1, 2, 2, 3))
            chunk = ordered[i:i + n]
            i += n
            for c in chunk:
                m.book.apply(c.side, c.tick, c.lots)
            self._delta(m, f, chunk, ts_us)

    def _delta(self, m: MarketSim, f: Feed, chunk: list[Change], ts_us: int) -> None:
        skipped = f.skip_next
        f.skip_next = False
        f.seq += 2 if skipped else 1
        if skipped:
            self.faults.counts["gap_skip"] += 1
        if not m.subs:
            return
        mid = m.market_id
        px = self.px[mid]
        ps, ss = px.price_scale, px.size_scale
        bids = [(c.tick * ps, c.lots * ss) for c in chunk if c.side == BID]
        asks = [(c.tick * ps, c.lots * ss) for c in chunk if c.side != BID]
        top = m.book.top()
        best: Optional[tuple] = None
        frames: dict[tuple, bytes] = {}
        seq = f.seq
        for conn, sub in list(m.subs.values()):
            if sub.drop_next:  # gap fault, mode "drop": this frame never reaches the client
                sub.drop_next = False
                sub.valid = False
                if sub.view is None:
                    sub.view = m.book.copy()
                    for c in chunk:
                        sub.view.apply(c.side, c.tick, c.old)
                self.faults.counts["gap"] += 1
                continue
            if skipped:
                sub.valid = False
            if sub.view is not None:
                for c in chunk:
                    sub.view.apply(c.side, c.tick, c.lots)
                t = sub.view.top()
            else:
                t = top
            interactive = self._interactive(sub)
            layout = self._layout(conn)
            key = (interactive, conn.sbe_version, layout)
            data = frames.get(key)
            if data is None:
                if interactive and best is None:
                    best = sbe.best_fields(self._mantissas(px, top))
                data = frames[key] = sbe.book_event(
                    ts_us, seq, sbe.DELTA, px.symbol, bids, asks, best if interactive else sbe.NULL_BEST,
                    version=conn.sbe_version, block_length=layout[0], group_stride=layout[1])
            conn.enqueue(data, (mid, "delta", ts_us // 1000, seq, ts_us) + t
                         + (sub.valid, "interactive_deltas" if interactive else "deltas"))

    # ---- faults -----------------------------------------------------------------------
    def arm_gap(self, targets: list[Connection], mid: Optional[int], params: dict) -> int:
        """mode "drop" (default): each matching subscription loses its next DELTA, as on
        Lighter. mode "skip": the market's seq skips a number (every subscriber sees the
        jump; no level is lost)."""
        mode = params.get("mode", "drop")
        if mode == "drop":
            return super().arm_gap(targets, mid, params)
        if mode != "skip":
            raise ValueError("mode must be drop or skip")
        mids = {mid} if mid is not None else {sid for conn in targets for sid in conn.subs}
        for x in mids:
            self.feeds[x].skip_next = True
        return len(mids)

    def reset_faults(self) -> None:
        for conn in self.conns.values():
            conn.layout = None
        for f in self.feeds.values():
            f.skip_next = False

    def send_malformed(self, conn: Connection, kind: str, m: MarketSim, variant: int) -> None:
        """Extra frames that carry no book change (the real stream and its seq go on as if
        they were not there). Binary kinds start from a DELTA of the market's current top
        at its current seq."""
        mid = m.market_id
        f = self.feeds[mid]
        px = self.px[mid]
        ts_us = _now_ts_us()
        v = conn.sbe_version
        ps, ss = px.price_scale, px.size_scale
        bids = [(t * ps, q * ss) for t, q in m.book.sorted_bids(2)]
        asks = [(t * ps, q * ss) for t, q in m.book.sorted_asks(2)]
        full = sbe.book_event(ts_us, f.seq, sbe.DELTA, px.symbol, bids, asks, version=v)
        payload: Any
        if kind == "truncated":  # cut somewhere after the header: in the root, a group or the market
            payload = full[:9 + (variant * 37 + len(full) // 2) % (len(full) - 10)]
        elif kind == "short":  # not even a header
            payload = full[:5]
        elif kind == "bad_group":  # the bids group claims more entries than the frame holds
            at = 8 + sbe.BOOK_BLOCK  # the bids group header: blockLength u16, numInGroup u16
            payload = full[:at + 2] + (200 + variant).to_bytes(2, "little") + full[at + 4:]
        elif kind == "wrong_schema":  # schemaId 7: not Paradex's schema 1
            payload = sbe.header(sbe.BOOK_BLOCK, sbe.T_BOOK, v, schema=7) + full[8:]
        elif kind == "unknown_template":  # well-formed, template 99: skipped by its header
            payload = sbe.unknown_template(99, ts_us, f.seq, version=v)
        elif kind == "not_json":  # a text frame cut short
            payload = '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"order_book.%s.deltas","data":{"seq_no":' % px.symbol
        else:
            raise ValueError(f"unknown malformed kind {kind!r}")
        sub = conn.subs.get(mid)
        feed = ("interactive_deltas" if sub and self._interactive(sub) else "deltas") if sub else ""
        conn.enqueue(payload, (mid, f"malformed/{kind}", ts_us // 1000, None, ts_us,
                               None, None, None, None, False, feed))

    # ---- keepalive --------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        """Protocol pings every --ping-interval (closing 1008 "no pong" past --pong-timeout)
        and a HeartbeatEvent after --heartbeat-interval with nothing sent. A stalled
        connection gets neither."""
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        period = max(0.02, min(0.25, cfg.pong_timeout / 4, (cfg.ping_interval or 1.0) / 4,
                               (cfg.heartbeat_interval or 1.0) / 4))
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self.conns.values()):
                if conn.close_code is not None:
                    continue
                if conn.stalled_until > now:
                    conn.ping_sent_at = None
                    conn.next_ping_at = max(conn.next_ping_at, conn.stalled_until)
                    conn.last_write = max(conn.last_write, conn.stalled_until)
                    continue
                if cfg.ping_interval > 0:
                    if conn.ping_sent_at is not None:
                        if now - conn.ping_sent_at > cfg.pong_timeout:
                            self.counters["no_pong_closes"] += 1
                            self.request_close(conn, 1008, "no pong")
                            continue
                    elif now >= conn.next_ping_at:
                        conn.enqueue(ProtocolFrame("ping"))
                        conn.ping_sent_at = now
                        conn.next_ping_at = now + cfg.ping_interval
                hb = cfg.heartbeat_interval
                if hb > 0 and not conn.outq and now - conn.last_write >= hb:
                    conn.enqueue(sbe.heartbeat(_now_ts_us(), 0, version=conn.sbe_version))
                    conn.last_write = now
                    self.counters["heartbeats"] += 1


def sbe_layout(sim: ParadexSimulator, p: dict) -> dict:
    """POST /_sim/sbe_layout {block_length=97, group_stride=24, count=10, conn?}: the next
    `count` book frames of each connection use a longer root block and group entries
    (valid SBE: appended fields a decoder must step over)."""
    block, stride, count = int(p.get("block_length", 97)), int(p.get("group_stride", 24)), int(p.get("count", 10))
    if not sbe.BOOK_BLOCK <= block <= 1024 or not sbe.LEVEL_BLOCK <= stride <= 1024 or count < 1:
        raise ValueError("block_length 89..1024, group_stride 16..1024, count >= 1")
    targets = [sim.conns[int(p["conn"])]] if p.get("conn") is not None and int(p["conn"]) in sim.conns \
        else ([] if p.get("conn") is not None else list(sim.conns.values()))
    for conn in targets:
        conn.layout = [block, stride, count]
    return {"affected": len(targets)}


ParadexSimulator.extra_actions = {"sbe_layout": sbe_layout}
