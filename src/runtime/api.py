"""The Worker's routes: the JSON API, the dashboard page and its WebSocket.

Routing comes from the OpenAPI document (runtime/openapi.py): each documented
path + method is dispatched to the handler its operationId names, so every
route is documented by construction. Handlers are short: parse the query
(tracker/validation.py, which raises ValidationError -> 4xx), run SQL from
tracker/sql.py, shape the answer (tracker/views.py). Anything unexpected becomes a
JSON 500 logged with an `[API]` prefix, never a runtime error page.

CORS, deliberately:
- GET /api/* is public, read-only market data: every answer (errors included,
  so a page can show them) carries `Access-Control-Allow-Origin: *`, and an
  OPTIONS preflight gets 204.
- POST /api/start and /api/stop change what the deployment does and take the
  admin token: they send no CORS headers and refuse preflights (405), so no web
  page on another origin can drive them from a browser, token or not. Operators
  use the dashboard (same origin), curl or CI.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import js
from workers import Response

from tracker import export, health, sql, views
from tracker.config import Config, ConfigError
from tracker.validation import (
    ExportQuery,
    ValidationError,
    check_bearer,
    parse_export_query,
    parse_no_params,
    parse_row_query,
)

from . import d1, d1_bulk, shards
from .http import JSON_HEADERS, error_response, json_response
from .openapi import DOCUMENT, operations
from .streams import text_stream

PUBLIC_HEADERS = {"access-control-allow-origin": "*"}
PREFLIGHT_HEADERS = {
    **PUBLIC_HEADERS,
    "access-control-allow-methods": "GET, OPTIONS",
    "access-control-allow-headers": "content-type",
    "access-control-max-age": "86400",
}


@dataclass
class Call:
    """One request on its way through a handler."""

    request: Any
    env: Any
    config: Config
    query: str
    # Added to every answer of this route (the CORS header on public routes).
    headers: dict[str, str] = field(default_factory=dict)

    def json(self, body: Any, status: int = 200) -> Response:
        return json_response(body, status, self.headers)


Handler = Callable[[Call], Awaitable[Response]]


def now_ms() -> int:
    return int(js.Date.now())


# -- dispatch ------------------------------------------------------------------------


async def handle(request, env) -> Response:
    method, path = "?", "?"
    headers: dict[str, str] = {}
    try:
        # First, so that a bad var answers every route (404s and preflights included)
        # with a JSON 500 naming it, not only the routes that happen to read it.
        config = _config(env)
        method = _method(request)
        url = urlparse(str(request.url))
        path = url.path.rstrip("/") or "/"
        methods = _methods(path)
        public = _is_public(path, methods)
        headers = PUBLIC_HEADERS if public else {}
        if method == "OPTIONS":
            return _preflight(path, methods, public)
        if method not in methods:
            raise ValidationError(
                f"{path} accepts {', '.join(methods)}, not {method}", 405, {"allow": _allow(methods, public)}
            )
        call = Call(request, env, config, url.query, headers)
        return await HANDLERS[methods[method]](call)
    except ValidationError as exc:
        return error_response(exc.message, exc.status, {**headers, **exc.headers})
    except ConfigError as exc:
        js.console.error(f"[API] configuration error: {exc}")
        return error_response(f"configuration error: {exc}", 500, headers)
    except Exception as exc:
        js.console.error(f"[API] {method} {path} failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return json_response(
            {"error": "internal error", "detail": f"{type(exc).__name__}: {exc}"[:500]}, 500, headers
        )


ROUTES = operations()  # {path: {METHOD: operationId}}


def _methods(path: str) -> dict[str, str]:
    methods = ROUTES.get(path)
    if methods is None:
        raise ValidationError(f"unknown route {path[:200]} (routes: see /api/openapi.json)", 404)
    return methods


def _is_public(path: str, methods: dict[str, str]) -> bool:
    return path.startswith("/api/") and "GET" in methods


def _allow(methods: dict[str, str], public: bool) -> str:
    return ", ".join([*methods, "OPTIONS"] if public else methods)


def _preflight(path: str, methods: dict[str, str], public: bool) -> Response:
    if not public:
        raise ValidationError(
            f"{path} does not answer cross-origin requests: call it from the dashboard, curl or CI",
            405,
            {"allow": _allow(methods, public)},
        )
    return Response(None, status=204, headers={**PREFLIGHT_HEADERS, "allow": _allow(methods, public)})


def _method(request) -> str:
    # The SDK's `request.method` is an HTTPMethod enum, which raises KeyError on a
    # method it does not list (PROPFIND...): read the JS string instead.
    js_request = getattr(request, "js_object", request)
    return str(js_request.method).upper()


def _config(env) -> Config:
    return Config.from_env(lambda name: getattr(env, name, None))


# -- data ----------------------------------------------------------------------------


async def stats(call: Call) -> Response:
    parse_no_params(call.query)
    per_shard, snapshots, minutes = await asyncio.gather(
        shards.call_all(call.env, call.config, "/stats"),
        d1.first(call.env.DB, sql.API_COUNT_SNAPSHOTS),
        d1.first(call.env.DB, sql.API_COUNT_MINUTES),
    )
    combined = shards.combine(per_shard)
    combined["database"] = {"snapshots": snapshots["n"], "minutes": minutes["n"]}
    return call.json(combined)


async def markets(call: Call) -> Response:
    parse_no_params(call.query)
    rows = [views.market_row(r) for r in await d1.query(call.env.DB, sql.API_SELECT_MARKETS)]
    return call.json({"markets": rows, "count": len(rows)})


async def minutes(call: Call) -> Response:
    return await _page(call, "minutes", sql.API_MINUTES_PAGE, sql.API_MINUTES_PAGE_FOR_SYMBOL)


async def snapshots(call: Call) -> Response:
    return await _page(call, "snapshots", sql.API_SNAPSHOTS_PAGE, sql.API_SNAPSHOTS_PAGE_FOR_SYMBOL)


async def _page(call: Call, key: str, all_symbols: str, one_symbol: str) -> Response:
    q = parse_row_query(call.query)
    if q.symbol is None:
        statement, binds = all_symbols, ()
    else:
        await _require_symbol(call.env.DB, q.symbol)
        statement, binds = one_symbol, (q.symbol,)
    rows = await d1.query(call.env.DB, statement, *binds, q.from_ms, q.to_ms, q.limit, q.offset)
    return call.json({key: rows, "count": len(rows), "limit": q.limit, "offset": q.offset})


async def _require_symbol(db, symbol: str) -> None:
    if await d1.first(db, sql.API_SYMBOL_EXISTS, symbol) is None:
        raise ValidationError(f"unknown symbol {symbol[:64]!r}: /api/markets lists the symbols (case-sensitive)")


async def overview(call: Call) -> Response:
    parse_no_params(call.query)
    rows = await d1.query(call.env.DB, sql.API_OVERVIEW)
    now = now_ms()
    markets = [views.overview_row(r, now) for r in rows]
    return call.json({"markets": markets, "count": len(markets), "now": now})


async def export_minutes(call: Call) -> Response:
    q = parse_export_query(call.query)
    if q.symbol is not None:  # checked before the 200 goes out: a stream cannot turn into a 400
        await _require_symbol(call.env.DB, q.symbol)
    filename = export.export_filename(q.symbol, q.from_ms, q.to_ms, q.format)
    body = text_stream(_export_pieces(q), f"export {filename}")
    return Response(
        body,
        status=200,
        headers={
            "content-type": export.CONTENT_TYPES[q.format],
            "content-disposition": export.content_disposition(filename),
            "cache-control": "no-store",
            **call.headers,
        },
    )


async def _export_pieces(q: ExportQuery) -> AsyncIterator[str]:
    """The export document, one D1 page (keyset cursor) at a time."""
    fmt = export.make_format(q.format)
    yield fmt.begin()
    cursor = export.first_cursor(q.from_ms)
    while True:
        if q.symbol is None:
            statement, binds = sql.API_EXPORT_MINUTES_PAGE, (*cursor, q.to_ms, export.PAGE_SIZE)
        else:
            statement, binds = sql.API_EXPORT_MINUTES_PAGE_FOR_SYMBOL, (q.symbol, *cursor, q.to_ms, export.PAGE_SIZE)
        rows = await d1_bulk.query_lists("DB", statement, *binds)
        if rows:
            yield fmt.page(rows)
        if len(rows) < export.PAGE_SIZE:
            break
        cursor = export.next_cursor(rows)
    yield fmt.end()


async def health_check(call: Call) -> Response:
    parse_no_params(call.query)
    try:
        per_shard = await shards.call_all(call.env, call.config, "/stats")
    except Exception as exc:  # the tracker object itself failing is the worst health there is
        js.console.error(f"[API] health: tracker unreachable: {type(exc).__name__}: {exc}")
        body = {"status": "down", "reason": f"tracker unreachable: {exc}", "isTracking": None, "now": now_ms(),
                "staleAfterMs": call.config.stale_feed_ms, "shards": []}
        return call.json(body, 503)
    status, body = health.assess(per_shard, now_ms(), call.config.stale_feed_ms)
    return call.json(body, status)


_OPENAPI_JSON = json.dumps(DOCUMENT)


async def openapi(call: Call) -> Response:
    parse_no_params(call.query)
    return Response(_OPENAPI_JSON, status=200, headers={**JSON_HEADERS, **call.headers})


# -- control -------------------------------------------------------------------------


async def start(call: Call) -> Response:
    return await _control(call, "/start")


async def stop(call: Call) -> Response:
    return await _control(call, "/stop")


async def _control(call: Call, action: str) -> Response:
    check_bearer(call.request.headers.get("authorization"), call.config.admin_token)
    parse_no_params(call.query)
    results = await shards.call_all(call.env, call.config, action, "POST")
    return call.json({"ok": True, **shards.combine(results)})


# -- dashboard -----------------------------------------------------------------------


async def dashboard(call: Call) -> Response:
    # Imported here, not at the top: the page's module (and Jinja2 behind it)
    # costs the API nothing until someone opens the page.
    from .dashboard import render_dashboard

    return await render_dashboard(call.request, call.env, call.config)


async def live_socket(call: Call) -> Response:
    if (call.request.headers.get("upgrade") or "").lower() != "websocket":
        raise ValidationError("/ws is a WebSocket: send Upgrade: websocket", 426, {"upgrade": "websocket"})
    # Shard 0 serves the dashboard's live socket; the Upgrade passes through.
    return await shards.stub(call.env, 0).fetch(call.request)


HANDLERS: dict[str, Handler] = {
    "dashboard": dashboard,
    "live_socket": live_socket,
    "stats": stats,
    "markets": markets,
    "minutes": minutes,
    "snapshots": snapshots,
    "overview": overview,
    "export": export_minutes,
    "health": health_check,
    "openapi": openapi,
    "start": start,
    "stop": stop,
}

# Fail at deploy, not at request time, if the document names a handler that does not exist.
_missing = {op for methods in ROUTES.values() for op in methods.values()} - HANDLERS.keys()
if _missing:
    raise RuntimeError(f"OpenAPI operationIds without a handler: {sorted(_missing)}")
