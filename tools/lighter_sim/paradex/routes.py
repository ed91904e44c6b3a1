"""Paradex's HTTP side: REST under /v1 and the SBE WebSocket at /v1
(the /_sim control plane is server.py's, shared with Lighter's mode)."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Optional

from aiohttp import WSMsgType, web

from ..limits import Window
from ..server import SIM_KEY, _json, close_after_peer
from . import protocol as PP
from .catalog import market_row
from .engine import ParadexSimulator
from .views import fmt_top, levels

MAX_DEPTH = 500  # the most levels per side GET /v1/orderbook returns (simulator's choice)


def _error(sim: ParadexSimulator, code: str, message: Optional[str] = None) -> web.Response:
    status, body = PP.rest_error_body(code, message)
    sim.errors_sent[code] += 1
    headers = {"Retry-After": "1"} if status == 429 else None
    resp = _json(body, status=status)
    if headers:
        resp.headers.update(headers)
    return resp


async def _gate(request: web.Request) -> Optional[web.Response]:
    """Injected REST faults, then the per-IP limit (1500 requests a minute by default)."""
    sim: ParadexSimulator = request.app[SIM_KEY]
    status, delay = sim.faults.take_rest()
    if delay:
        await asyncio.sleep(delay)
    if status:
        return _error(sim, PP.STATUS_ERROR[status])
    limit = sim.cfg.rest_limit
    if limit > 0:
        w = sim.rest_windows.setdefault(request.remote or "?", Window())
        if not w.take(time.monotonic(), limit, 60.0):
            return _error(sim, "RATE_LIMIT_EXCEEDED")
    return None


def _listed(sim: ParadexSimulator) -> list:
    """Markets GET /v1/markets lists: a status other than "active" (POST /_sim/set_status)
    takes a market off the list, as a delisting would."""
    return [px for px in sim.catalog if px.spec.status == "active"]


async def markets(request: web.Request) -> web.Response:
    sim: ParadexSimulator = request.app[SIM_KEY]
    fail = await _gate(request)
    if fail is not None:
        return fail
    rows = _listed(sim)
    want = request.query.get("market")
    if want:  # an unknown symbol lists nothing (simulator's choice)
        rows = [px for px in rows if px.symbol == want]
    return _json({"results": [market_row(px) for px in rows]})


def _market(sim: ParadexSimulator, request: web.Request):
    mid = sim.by_symbol.get(request.match_info["market"])
    return None if mid is None else (mid, sim.markets[mid], sim.feeds[mid], sim.px[mid])


def _aggregate(lv: list[tuple[int, int]], step: int, up: bool) -> list[tuple[int, int]]:
    """Levels (in ticks) grouped to multiples of `step` ticks: bids down, asks up."""
    out: dict[int, int] = {}
    for t, q in lv:
        b = -(-t // step) * step if up else t // step * step
        out[b] = out.get(b, 0) + q
    return sorted(out.items(), reverse=not up)


async def orderbook(request: web.Request) -> web.Response:
    """GET /v1/orderbook/{market}[/interactive]?depth=20&price_tick=..."""
    sim: ParadexSimulator = request.app[SIM_KEY]
    fail = await _gate(request)
    if fail is not None:
        return fail
    found = _market(sim, request)
    if found is None:
        return _error(sim, "MARKET_NOT_FOUND", f"market {request.match_info['market']} not found")
    mid, m, f, px = found
    try:
        depth = int(request.query.get("depth", "20"))
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError
    except ValueError:
        return _error(sim, "VALIDATION_ERROR", f"depth must be an integer 1..{MAX_DEPTH}")
    bids, asks = m.book.sorted_bids(), m.book.sorted_asks()
    if "price_tick" in request.query:
        try:
            tick = Decimal(request.query["price_tick"])
            steps = tick.scaleb(px.spec.price_decimals)
            if not tick.is_finite() or tick <= 0 or steps != steps.to_integral_value():
                raise ValueError
        except (ValueError, ArithmeticError):
            return _error(sim, "VALIDATION_ERROR", "price_tick must be a positive multiple of price_tick_size")
        bids, asks = _aggregate(bids, int(steps), False), _aggregate(asks, int(steps), True)
    bb, bbs, ba, bas = fmt_top(px, m.book.top())
    best_bid = [bb, bbs] if bb is not None else None
    best_ask = [ba, bas] if ba is not None else None
    return _json({"market": px.symbol, "seq_no": f.seq, "last_updated_at": f.ts_us // 1000,
                  "bids": levels(px, bids[:depth]), "asks": levels(px, asks[:depth]),
                  # no RPI orders here: the API-only and the interactive touch are the same
                  "best_bid_api": best_bid, "best_ask_api": best_ask,
                  "best_bid_interactive": best_bid, "best_ask_interactive": best_ask})


async def bbo(request: web.Request) -> web.Response:
    """GET /v1/bbo/{market}[/interactive]"""
    sim: ParadexSimulator = request.app[SIM_KEY]
    fail = await _gate(request)
    if fail is not None:
        return fail
    found = _market(sim, request)
    if found is None:
        return _error(sim, "MARKET_NOT_FOUND", f"market {request.match_info['market']} not found")
    mid, m, f, px = found
    bb, bbs, ba, bas = fmt_top(px, m.book.top())
    return _json({"market": px.symbol, "seq_no": f.seq, "bid": bb, "bid_size": bbs, "ask": ba,
                  "ask_size": bas, "last_updated_at": f.ts_us // 1000})


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /v1?sbeSchemaId=1&sbeSchemaVersion=1: the SBE market-data socket. Counted
    against the per-IP connection limits first (HTTP 429 beyond them), then the schema
    is checked (HTTP 400 for one not served); then the upgrade."""
    sim: ParadexSimulator = request.app[SIM_KEY]
    loop = asyncio.get_running_loop()
    ip = request.remote or "?"
    refused = sim.limits.attempt(ip, loop.time())
    if refused:
        sim.log(f"upgrade from {ip} refused: {refused}")
        return _error(sim, "TOO_MANY_CONNECTIONS", refused)
    q = request.query
    sid, ver = q.get("sbeSchemaId", ""), q.get("sbeSchemaVersion", "")
    if sid != "1" or not ver.isdigit() or int(ver) not in sim.versions:
        sim.log(f"upgrade from {ip} refused: schema {sid or '-'}:{ver or '-'} not served")
        return _error(sim, "UNSUPPORTED_SBE_SCHEMA",
                      f"unsupported SBE schema {sid or '-'}:{ver or '-'}; served: "
                      + ", ".join(f"1:{v}" for v in sorted(sim.versions)))
    # autoping off: pings and pongs are handled (and queued behind stalls) by the engine;
    # autoclose off: a stalled server must not even answer the client's close frame
    ws = web.WebSocketResponse(compress=sim.cfg.ws_compress, autoping=False, autoclose=False,
                               timeout=2.0, max_msg_size=1 << 20)
    await ws.prepare(request)
    conn = sim.open_conn(ws, request, int(ver))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                sim.handle_text(conn, msg.data, PP.now_us())
            elif msg.type == WSMsgType.BINARY:
                sim.handle_text(conn, None, PP.now_us())
            elif msg.type == WSMsgType.PING:
                sim.on_ping(conn, msg.data)
            elif msg.type == WSMsgType.PONG:
                sim.on_pong(conn)
            elif msg.type == WSMsgType.ERROR:
                break
        await close_after_peer(ws, conn)
    finally:
        sim.conn_closed(conn, ws.close_code)
    return ws


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1", websocket)
    r.add_get("/v1/markets", markets)
    r.add_get("/v1/orderbook/{market}", orderbook)
    r.add_get("/v1/orderbook/{market}/interactive", orderbook)
    r.add_get("/v1/bbo/{market}", bbo)
    r.add_get("/v1/bbo/{market}/interactive", bbo)
