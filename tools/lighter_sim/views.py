"""Read-only JSON views for GET /_sim/state, /_sim/record and /_sim/book."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

from . import protocol as P
from .connection import Connection
from .market import MarketSim

if TYPE_CHECKING:
    from .engine import Simulator

RECORD_FIELDS = ("conn_id", "market_id", "symbol", "type", "timestamp_ms", "nonce", "begin_nonce",
                 "best_bid", "best_ask", "best_bid_size", "best_ask_size", "valid", "sent_ms")


def all_conns(sim: "Simulator") -> list[Connection]:
    """Open connections and the last closed ones, oldest first."""
    return sorted(list(sim.closed_conns) + list(sim.conns.values()), key=lambda c: c.conn_id)


def recorded(sim: "Simulator", market_id: Optional[int], since_ms: Optional[int],
             conn_id: Optional[int]):
    """(connection, record tuple) of every recorded frame that passes the filters, oldest
    first per connection (the tuple's [0] is the market, [2] the timestamp in ms)."""
    for conn in all_conns(sim):
        if conn_id is not None and conn.conn_id != conn_id:
            continue
        for r in conn.record:
            if market_id is not None and r[0] != market_id:
                continue
            if since_ms is not None and r[2] < since_ms:
                continue
            yield conn, r


def record(sim: "Simulator", market_id: Optional[int], since_ms: Optional[int],
           conn_id: Optional[int]) -> list[dict[str, Any]]:
    out = []
    for conn, r in recorded(sim, market_id, since_ms, conn_id):
        mid = r[0]
        m = sim.markets[mid]
        bb, bbs, ba, bas = m.fmt_top(r[5:9])
        entry = dict(zip(RECORD_FIELDS, (conn.conn_id, mid, m.spec.symbol, r[1], r[2],
                                         r[3], r[4], bb, ba, bbs, bas, r[9], r[10])))
        if r[11] is not None:  # recorded with record_frames on
            entry["frame"] = r[11]
        out.append(entry)
    return out


def market_top(m: MarketSim) -> dict[str, Any]:
    bb, bbs, ba, bas = m.fmt_top(m.book.top())
    return {"symbol": m.spec.symbol, "status": m.spec.status, "nonce": m.nonce,
            "best_bid": bb, "best_ask": ba, "best_bid_size": bbs, "best_ask_size": bas,
            "bid_levels": len(m.book.bids), "ask_levels": len(m.book.asks),
            "updates": m.steps, "subscribers": len(m.subs)}


def connection(c: Connection) -> dict[str, Any]:
    return {"conn": c.conn_id, "open": not c.closed, "remote": c.remote, "readonly": c.readonly,
            "session_id": c.session_id, "opened_ms": c.opened_ms, "closed_ms": c.closed_ms,
            "close_code": c.close_code, "close_reason": c.close_reason,
            "subscriptions": sorted(c.subs), "pending": list(c.pending),
            "invalid": sorted(mid for mid, s in c.subs.items() if not s.valid),
            "sent": c.sent, "received": c.received, "queued": len(c.outq),
            "flushed": c.flushed(), "record_len": len(c.record),
            "stalled": c.stalled_until > asyncio.get_running_loop().time(),
            "errors_sent": {str(code): {"count": n, "first_ms": first, "last_ms": last}
                            for code, (n, first, last) in sorted(c.errors.items())},
            "asked": sorted(c.asked)}


def state(sim: "Simulator") -> dict[str, Any]:
    conns = [connection(c) for c in all_conns(sim)]
    return {
        "rate": sim.rate,
        "connections": conns,
        "open_connections": len(sim.conns),
        "messages_sent": sum(c["sent"] for c in conns),
        "messages_received": sim.counters["messages_received"],
        "updates_generated": sim.counters["updates"],
        # every code Lighter defines is listed, so "no 30009 sent" reads as a 0, not a gap
        "errors_sent": {str(code): sim.errors_sent.get(code, 0)
                        for code in sorted(set(P.MESSAGES) | {P.TOO_MANY_REQUESTS}
                                           | set(sim.errors_sent))},
        "limits": sim.limits.settings(),
        "ips": sim.limits.report(asyncio.get_running_loop().time()),
        "faults": dict(sim.faults.counts),
        "markets": {str(mid): market_top(m) for mid, m in sim.markets.items()},
    }


def book(sim: "Simulator", mid: int) -> dict[str, Any]:
    m = sim.markets[mid]
    return {"market_id": mid, "symbol": m.spec.symbol, "nonce": m.nonce, "offset": m.offset,
            "last_updated_at": m.last_updated_us,
            "asks": m.levels_json(m.book.sorted_asks()),
            "bids": m.levels_json(m.book.sorted_bids())}
