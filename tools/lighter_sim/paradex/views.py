"""Read-only JSON views of the Paradex mode: GET /_sim/state, /_sim/record, /_sim/book."""
from __future__ import annotations

import asyncio
import base64
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from .. import views as lighter_views
from ..views import all_conns, recorded
from . import protocol as PP
from .catalog import ParadexMarket, dec_str

if TYPE_CHECKING:
    from .engine import ParadexSimulator

# A Paradex record tuple: (market_id, type, timestamp_ms, seq, ts_us, bid, bid size, ask,
# ask size, valid, feed) + (sent_ms, frame) appended by the writer.
RECORD_FIELDS = ("conn_id", "market_id", "symbol", "channel", "type", "timestamp_ms", "ts_us", "seq",
                 "best_bid", "best_ask", "best_bid_size", "best_ask_size", "valid", "sent_ms")


def fmt_top(px: ParadexMarket, top: tuple) -> tuple[Optional[str], ...]:
    bb, bbs, ba, bas = top
    pd, sd = px.spec.price_decimals, px.spec.size_decimals

    def f(v: Optional[int], d: int) -> Optional[str]:
        return None if v is None else dec_str(Decimal(v).scaleb(-d))
    return f(bb, pd), f(bbs, sd), f(ba, pd), f(bas, sd)


def levels(px: ParadexMarket, lv: list[tuple[int, int]]) -> list[list[str]]:
    pd, sd = px.spec.price_decimals, px.spec.size_decimals
    return [[dec_str(Decimal(t).scaleb(-pd)), dec_str(Decimal(q).scaleb(-sd))] for t, q in lv]


def record(sim: "ParadexSimulator", market_id: Optional[int], since_ms: Optional[int],
           conn_id: Optional[int]) -> list[dict[str, Any]]:
    """One entry per book frame written (and per injected malformed frame), oldest first
    per connection. best_* is the book as that client rebuilds it after the frame."""
    out = []
    for conn, r in recorded(sim, market_id, since_ms, conn_id):
        mid = r[0]
        px = sim.px[mid]
        bb, bbs, ba, bas = fmt_top(px, r[5:9])
        feed = r[10]
        entry = dict(zip(RECORD_FIELDS, (
            conn.conn_id, mid, px.symbol, PP.book_channel(px.symbol, feed) if feed else None, r[1],
            r[2], r[4], r[3], bb, ba, bbs, bas, r[9], r[11])))
        frame = r[12]
        if isinstance(frame, bytes):
            entry["frame_b64"] = base64.b64encode(frame).decode()
        elif isinstance(frame, str):  # a text frame (the not_json fault)
            entry["frame_text"] = frame
        out.append(entry)
    return out


def market_top(sim: "ParadexSimulator", mid: int) -> dict[str, Any]:
    m, f, px = sim.markets[mid], sim.feeds[mid], sim.px[mid]
    bb, bbs, ba, bas = fmt_top(px, m.book.top())
    return {"symbol": px.symbol, "asset_kind": px.asset_kind, "status": m.spec.status, "seq": f.seq,
            "last_updated_at": f.ts_us // 1000, "best_bid": bb, "best_ask": ba, "best_bid_size": bbs,
            "best_ask_size": bas, "bid_levels": len(m.book.bids), "ask_levels": len(m.book.asks),
            "updates": m.steps, "subscribers": len(m.subs)}


def state(sim: "ParadexSimulator") -> dict[str, Any]:
    conns = []
    for c in all_conns(sim):
        view = lighter_views.connection(c)
        view.pop("readonly", None)
        view["channels"] = {sim.px[mid].symbol: sub.channel for mid, sub in sorted(c.subs.items())}
        view["port"] = c.peer_port
        view["sbe_version"] = c.sbe_version
        view["layout"] = list(c.layout) if c.layout else None
        conns.append(view)
    return {
        "exchange": "paradex",
        "rate": sim.rate,
        "connections": conns,
        "open_connections": len(sim.conns),
        "messages_sent": sum(c["sent"] for c in conns),
        "messages_received": sim.counters["messages_received"],
        "updates_generated": sim.counters["updates"],
        "empty_deltas": sim.counters["empty_deltas"],
        "heartbeats_sent": sim.counters["heartbeats"],
        "no_pong_closes": sim.counters["no_pong_closes"],
        "pongs_received": sim.counters["pongs_received"],  # answers to the server's protocol pings
        # JSON-RPC codes (WebSocket) and REST error codes, every one listed, zeros included
        "errors_sent": {str(code): sim.errors_sent.get(code, 0)
                        for code in [*PP.MESSAGES, *PP.REST_ERRORS,
                                     *(k for k in sim.errors_sent if k not in PP.MESSAGES
                                       and k not in PP.REST_ERRORS)]},
        "limits": sim.limits.settings(),
        "ips": sim.limits.report(asyncio.get_running_loop().time()),
        "faults": dict(sim.faults.counts),
        "markets": {str(mid): market_top(sim, mid) for mid in sim.markets},
    }


def book(sim: "ParadexSimulator", mid: int) -> dict[str, Any]:
    m, f, px = sim.markets[mid], sim.feeds[mid], sim.px[mid]
    return {"market_id": mid, "symbol": px.symbol, "seq": f.seq, "ts_us": f.ts_us,
            "last_updated_at": f.ts_us // 1000,
            "bids": levels(px, m.book.sorted_bids()), "asks": levels(px, m.book.sorted_asks())}
