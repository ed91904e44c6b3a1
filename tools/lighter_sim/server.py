"""HTTP side: Lighter's REST endpoints, the /stream WebSocket and the /_sim control plane.
(Paradex mode: paradex/routes.py provides the exchange's routes; the control plane is this one.)"""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from typing import Any, Optional

from aiohttp import WSMsgType, web

from . import protocol as P
from .catalog import details_row, order_books_row
from .config import SimConfig
from . import control
from .engine import Simulator
from .control import UnknownAction

SIM_KEY = web.AppKey("sim", Simulator)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=P.dumps)


def _rest_error(sim: Simulator, code: int, message: str, status: int) -> web.Response:
    sim.errors_sent[code] += 1
    return _json({"code": code, "message": message}, status=status)


def _bad_param(sim: Simulator, message: str) -> web.Response:
    # Lighter answers bad query parameters with HTTP 400 and a ResultCode body; the exact
    # code for these cases is not documented: 20001 is this simulator's choice.
    return _rest_error(sim, 20001, message, 400)


async def _rest_gate(sim: Simulator) -> Optional[web.Response]:
    """Injected REST faults and the optional per-minute REST limit."""
    status, delay = sim.faults.take_rest()
    if delay:
        await asyncio.sleep(delay)
    if sim.cfg.rest_limit > 0 and not status:
        now = time.monotonic()
        q = sim.rest_times
        while q and q[0] <= now - 60.0:
            q.popleft()
        if len(q) >= sim.cfg.rest_limit:
            status = 429
        else:
            q.append(now)
    if status == 429:
        return _rest_error(sim, P.TOO_MANY_REQUESTS, "Too Many Requests!", 429)
    if status:
        return _rest_error(sim, status, "internal server error", status)
    return None


def _select(sim: Simulator, request: web.Request) -> tuple[Optional[list], Optional[web.Response]]:
    q = request.query
    flt = q.get("filter", "all")
    if flt not in ("all", "spot", "perp"):
        return None, _bad_param(sim, "invalid filter")
    specs = sim.specs
    if "market_id" in q:
        try:
            mid = int(q["market_id"])
        except ValueError:
            return None, _bad_param(sim, "invalid market_id")
        # the OpenAPI default 255 is the old "all markets" value
        if mid != 255 or mid in sim.markets:
            if mid not in sim.markets:
                return None, _bad_param(sim, "market not found")
            specs = [s for s in specs if s.market_id == mid]
    if flt != "all":
        specs = [s for s in specs if s.market_type == flt]
    return specs, None


async def _rest_markets(request: web.Request) -> tuple[Simulator, list, Optional[web.Response]]:
    """What both REST routes start with: injected faults first, then the market filter."""
    sim = request.app[SIM_KEY]
    fail = await _rest_gate(sim)
    if fail is not None:
        return sim, [], fail
    specs, err = _select(sim, request)
    return sim, specs, err


async def order_books(request: web.Request) -> web.Response:
    sim, specs, err = await _rest_markets(request)
    if err is not None:
        return err
    return _json({"code": 200, "order_books": [order_books_row(s) for s in specs]})


async def order_book_details(request: web.Request) -> web.Response:
    sim, specs, err = await _rest_markets(request)
    if err is not None:
        return err
    rows = {"perp": [], "spot": []}
    for s in specs:
        rows[s.market_type].append(details_row(s, sim.markets[s.market_id].mid_price()))
    return _json({"code": 200, "order_book_details": rows["perp"],
                  "spot_order_book_details": rows["spot"]})


async def stream(request: web.Request) -> web.WebSocketResponse:
    sim = request.app[SIM_KEY]
    # autoclose off: a stalled server must not even answer the client's close frame
    ws = web.WebSocketResponse(compress=sim.cfg.ws_compress, autoping=True, autoclose=False,
                               timeout=2.0, max_msg_size=1 << 20)
    await ws.prepare(request)
    conn = sim.open_conn(ws, request)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                sim.handle_text(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                sim.handle_text(conn, None)
            elif msg.type == WSMsgType.ERROR:
                break
        await close_after_peer(ws, conn)
    finally:
        sim.conn_closed(conn, ws.close_code)
    return ws


async def close_after_peer(ws: web.WebSocketResponse, conn) -> None:
    """The client went (or errored): nothing more is written after its close frame; a
    stalled server answers only once its stall is over."""
    conn.peer_closed = True
    loop = asyncio.get_running_loop()
    while not ws.closed and conn.stalled_until > loop.time():
        await asyncio.sleep(min(0.05, conn.stalled_until - loop.time()))
    if not ws.closed:
        await ws.close()


# ---- control plane -------------------------------------------------------------------
def _int_arg(request: web.Request, name: str) -> Optional[int]:
    v = request.query.get(name, "")
    return int(v) if v not in ("", "all") else None


async def sim_state(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return _json(sim.views.state(sim))


def _market_arg(sim: Simulator, request: web.Request) -> Optional[int]:
    """?market_id=ID or ?market=SYMBOL (None: absent or "all")."""
    q = request.query
    v = q.get("market_id", q.get("market", ""))
    if v in ("", "all"):
        return None
    return int(v) if v.lstrip("-").isdigit() else sim.market_ref(v)


async def sim_record(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    try:
        rows = sim.views.record(sim, _market_arg(sim, request), _int_arg(request, "since_ms"),
                                _int_arg(request, "conn"))
    except ValueError:
        return _json({"ok": False, "error": "bad query"}, status=400)
    return _json(rows)


async def sim_book(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    try:
        mid = _market_arg(sim, request)
        if mid is None:
            raise KeyError("market_id")
        return _json(sim.views.book(sim, mid))
    except (KeyError, ValueError):
        return _json({"ok": False, "error": "market_id (or market) required and must exist"}, status=404)


async def sim_control(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    action = request.match_info["action"]
    try:
        body = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        return _json({"ok": False, "error": "body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return _json({"ok": False, "error": "body must be a JSON object"}, status=400)
    try:
        return _json(control.run(sim, action, body))
    except UnknownAction:
        return _json({"ok": False, "error": f"unknown action {action!r}"}, status=404)
    except KeyError as e:
        return _json({"ok": False, "error": f"missing parameter {e}"}, status=400)
    except (TypeError, ValueError) as e:
        return _json({"ok": False, "error": str(e)}, status=400)


async def index(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return _json({"simulator": "lighter_sim", "exchange": sim.exchange, "markets": len(sim.markets),
                  "rate": sim.rate})


def build_app(cfg: SimConfig) -> web.Application:
    app = web.Application()
    if cfg.exchange == "paradex":
        from .paradex import routes as paradex_routes
        from .paradex.engine import ParadexSimulator
        sim: Simulator = ParadexSimulator(cfg)
        app[SIM_KEY] = sim
        paradex_routes.add_routes(app)
    else:
        sim = Simulator(cfg)
        app[SIM_KEY] = sim
        app.router.add_get("/api/v1/orderBooks", order_books)
        app.router.add_get("/api/v1/orderBookDetails", order_book_details)
        app.router.add_get("/stream", stream)
    app.router.add_get("/", index)
    app.router.add_get("/_sim/state", sim_state)
    app.router.add_get("/_sim/record", sim_record)
    app.router.add_get("/_sim/book", sim_book)
    app.router.add_post("/_sim/{action}", sim_control)

    async def on_startup(app: web.Application) -> None:
        sim.start()

    async def on_shutdown(app: web.Application) -> None:
        await sim.stop()
    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def serve(cfg: SimConfig) -> None:
    app = build_app(cfg)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((cfg.host, cfg.port))
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock)
    await site.start()
    sim = app[SIM_KEY]
    sim.log(f"listening on http://{cfg.host}:{port} (ws://{cfg.host}:{port}{sim.ws_path}) "
            f"exchange={sim.exchange} markets={len(sim.markets)} rate={cfg.rate} seed={cfg.seed}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # close sockets with 1001, then exit
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        sim.log("shutting down")
    finally:
        await runner.cleanup()
