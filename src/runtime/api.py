"""The Worker's routes: the JSON API, the dashboard page and its WebSocket.

Routing comes from the OpenAPI document (runtime/openapi.py): each documented
path + method is dispatched to the handler its operationId names, so every
route is documented by construction. Handlers are short: parse the query
(tracker/validation.py, which raises ValidationError -> 4xx), run SQL from
tracker/sql.py, shape the answer (tracker/views.py). Anything unexpected becomes a
JSON 500 logged with an `[API]` prefix, never a runtime error page.

CORS, deliberately:
- GET /api/* is read-only market data: every answer (errors included, so a page
  can show them) carries `Access-Control-Allow-Origin: *`, and an OPTIONS
  preflight gets 204 allowing the `authorization` header.
- POST /api/start and /api/stop change what the deployment does and take the
  admin token: they send no CORS headers and refuse preflights (405), so no web
  page on another origin can drive them from a browser, token or not. Operators
  use the dashboard (same origin), curl or CI.

Private reads: with the READ_TOKEN secret set, every GET /api/* route but
/api/openapi.json (the contract, static, the same for every deployment) and /ws
need `Authorization: Bearer <READ_TOKEN>` (ADMIN_TOKEN works too); else 401 JSON.
/ws also takes the token as a `bearer.<base64url>` WebSocket subprotocol, since a
browser cannot set headers on a socket (tracker/validation.py). Unset, reads are
public, as before. Preflights never need it (browsers send no credentials there).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import js
from workers import Response

from tracker import assets as asset_map
from tracker import compare as comparison
from tracker import export, health, history_cache, views
from tracker.config import EXCHANGES, Config, ConfigError
from tracker.exchange import by_name
from tracker.shardstats import merge_exchanges
from tracker.sql import Statements
from tracker.validation import (
    DEFAULT_EXCHANGE,
    ExportQuery,
    ValidationError,
    bearer_token,
    check_bearer,
    check_origin,
    check_read,
    token_from_protocols,
    parse_compare_query,
    parse_exchange,
    parse_exchange_query,
    parse_export_query,
    parse_no_params,
    parse_row_query,
)

from . import d1_bulk, edge_cache, shards
from .http import JSON_HEADERS, error_response, json_response
from .hub_client import stub as hub_stub
from .log import emit
from .openapi import DOCUMENT, operations
from .streams import text_stream

PUBLIC_HEADERS = {"access-control-allow-origin": "*"}
PREFLIGHT_HEADERS = {
    **PUBLIC_HEADERS,
    "access-control-allow-methods": "GET, OPTIONS",
    "access-control-allow-headers": "authorization, content-type",
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


MINUTE_MS = 60_000
HOUR_MS = 3_600_000


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
        if public and config.read_token and path not in UNGUARDED:
            check_read(bearer_token(request.headers.get("authorization")), config.read_token, config.admin_token)
        return await HANDLERS[methods[method]](call)
    except ValidationError as exc:
        return error_response(exc.message, exc.status, {**headers, **exc.headers})
    except ConfigError as exc:
        # The operator's problem, named on every route: the message says which var is
        # wrong and why, and never echoes a secret (tracker/config.py words them).
        rid = request_id(request)
        emit("error", "API", f"configuration error: {exc} (request {rid})", event="config_error")
        return json_response({"error": f"configuration error: {exc}", "requestId": rid}, 500, headers)
    except Exception as exc:
        # Never the exception's text to the client: it may name internals. The log
        # line has it in full, findable by the request id the client is given.
        rid = request_id(request)
        emit(
            "error", "API",
            f"{method} {path} failed (request {rid}): {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
            event="request_failed",
        )
        return json_response({"error": "internal error", "requestId": rid}, 500, headers)


def request_id(request) -> str:
    """Cloudflare's Ray ID when there is one (it also names the request in Workers Logs), else random."""
    try:
        ray = request.headers.get("cf-ray")
    except Exception:
        ray = None
    return str(ray) if ray else secrets.token_hex(8)


ROUTES = operations()  # {path: {METHOD: operationId}}
# GET /api/* routes that READ_TOKEN does not guard: the contract (the same document for
# every deployment, no data, no D1 or Durable Object request behind it).
UNGUARDED = frozenset({"/api/openapi.json"})


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


# Vars and secrets cannot change within an isolate (a deploy or `wrangler secret
# put` starts new ones), and reading them through the SDK's env wrapper costs a
# JS round trip each: read once. A ConfigError is never kept, so it is raised
# (and logged) on every request until the configuration is fixed.
_CONFIG: list[Config] = []


def _config(env) -> Config:
    if not _CONFIG:
        _CONFIG.append(Config.from_env(lambda name: getattr(env, name, None)))
    return _CONFIG[0]


# -- data ----------------------------------------------------------------------------


def _sql(exchange: str) -> Statements:
    return by_name(exchange).sql


def _answering(config: Config, asked: str | None) -> list[str]:
    """The exchanges a stats/health/control call is about: the one asked for, or every
    enabled one."""
    return [asked] if asked else list(config.enabled_exchanges)


async def stats(call: Call) -> Response:
    names = _answering(call.config, parse_exchange_query(call.query))
    answers = await asyncio.gather(*(_exchange_stats(call, name) for name in names))
    return call.json(merge_exchanges(dict(zip(names, answers))))


async def _exchange_stats(call: Call, exchange: str) -> dict:
    per_shard, counts = await asyncio.gather(
        shards.call_all(call.env, call.config, "/stats", exchange=exchange),
        d1_bulk.query("DB", _sql(exchange).API_COUNT_ROWS),
    )
    combined = shards.combine(per_shard)
    combined["database"] = {"snapshots": counts[0]["snapshots"], "minutes": counts[0]["minutes"], "hours": counts[0]["hours"]}
    combined["enabled"] = exchange in call.config.enabled_exchanges
    return combined


async def markets(call: Call) -> Response:
    exchange = parse_exchange_query(call.query) or DEFAULT_EXCHANGE
    config = call.config.for_exchange(exchange)
    rows = [views.market_row(r, config.tracks) for r in await d1_bulk.query("DB", _sql(exchange).API_SELECT_MARKETS)]
    # `allowlist`: LIGHTER_MARKETS / PARADEX_MARKETS (null: every market is tracked). Which of
    # its symbols the exchange does not list, the shards say: /api/stats marketsNotListed.
    return call.json({"markets": rows, "count": len(rows), "exchange": exchange,
                      "allowlist": list(config.market_symbols) or None})


async def minutes(call: Call) -> Response:
    return await _page(call, "minutes", MINUTE_MS, "API_MINUTES_PAGE")


async def hours(call: Call) -> Response:
    return await _page(call, "hours", HOUR_MS, "API_HOURS_PAGE")


async def snapshots(call: Call) -> Response:
    return await _page(call, "snapshots", call.config.window_ms, "API_SNAPSHOTS_PAGE")


async def _page(call: Call, key: str, row_ms: int, statement_name: str) -> Response:
    """A page of rows, newest first. A page of final history (tracker/history_cache.py)
    is answered from the edge cache when it is there, without a D1 query (never on
    *.workers.dev, where the Cache API does nothing)."""
    q = parse_row_query(call.query)
    statements = _sql(q.exchange)
    all_symbols = getattr(statements, statement_name)
    one_symbol = getattr(statements, statement_name + "_FOR_SYMBOL")
    cacheable = history_cache.may_be_cached(q.to_ms)
    edge = cacheable and not history_cache.edge_cache_off(str(call.request.url))
    if edge:
        hit = await edge_cache.lookup(str(call.request.url))
        if hit is not None:
            return edge_cache.answer_hit(hit, call.request.headers.get("if-none-match"))
    statement, binds = (all_symbols, ()) if q.symbol is None else (one_symbol, (q.symbol,))
    # The page, the symbol check and (for a bounded page) the sealed point, all at
    # once: one D1 round trip's wait, not three. An unknown symbol's page is empty.
    (rows, count), known, sealed = await asyncio.gather(
        d1_bulk.query_json("DB", statement, *binds, q.from_ms, q.to_ms, q.limit, q.offset),
        _symbol_known(statements, q.symbol),
        sealed_until(statements) if cacheable else _nothing(),
    )
    if not known:
        raise _unknown_symbol(q.symbol)
    # The rows go out as the runtime serialised them: no Python object per row or value.
    body = f'{{"{key}": {rows}, "count": {count}, "limit": {q.limit}, "offset": {q.offset}}}'
    if not history_cache.is_final(q.to_ms, row_ms, sealed):
        extra = {"x-cache": "bypass"} if cacheable else {}
        return Response(body, status=200, headers={**JSON_HEADERS, **call.headers, **extra})
    return await _final(call, body, edge)


async def _final(call: Call, body: str, edge: bool) -> Response:
    """Final history: validators, Cache-Control, and a copy in the edge cache where
    there is one (`edge`); on *.workers.dev only the browser's cache keeps it."""
    tag = history_cache.etag(body)
    control = history_cache.cache_control(call.config.history_cache_s)
    headers = {**JSON_HEADERS, **call.headers, "cache-control": control, "etag": tag}
    how = "miss" if edge else history_cache.EDGE_CACHE_OFF
    if edge:
        await edge_cache.store(str(call.request.url), body, headers)
    if history_cache.matches(call.request.headers.get("if-none-match"), tag):
        return edge_cache.not_modified(tag, control, call.headers, how)
    return Response(body, status=200, headers={**headers, "x-cache": how})


async def sealed_until(statements: Statements, binding: str = "DB") -> int | None:
    """End (ms) of the history that is final in D1 for every shard of the exchange;
    None before any flush."""
    rows = await d1_bulk.query(binding, statements.API_SEALED_UNTIL)
    value = rows[0].get("sealed_until") if rows else None
    return int(value) if value is not None else None


async def _require_symbol(statements: Statements, symbol: str) -> None:
    if not await _symbol_known(statements, symbol):
        raise _unknown_symbol(symbol)


async def _symbol_known(statements: Statements, symbol: str | None) -> bool:
    """No symbol asked for is as good as a known one."""
    return symbol is None or bool(await d1_bulk.query("DB", statements.API_SYMBOL_EXISTS, symbol))


def _unknown_symbol(symbol: str) -> ValidationError:
    # A well-formed symbol that no market has is a resource that does not exist (404),
    # not a malformed request (400): the OpenAPI document says so, and its checkers hold us to it.
    return ValidationError(f"unknown symbol {symbol[:64]!r}: /api/markets lists the symbols (case-sensitive)", 404)


async def _nothing() -> None:
    return None


async def overview(call: Call) -> Response:
    exchange = parse_exchange_query(call.query) or DEFAULT_EXCHANGE
    rows = await d1_bulk.query("DB", _sql(exchange).API_OVERVIEW)
    now = now_ms()
    tracks = call.config.for_exchange(exchange).tracks  # a market a deploy just left out, until the refresh
    markets = [views.overview_row(r, now) for r in rows if tracks(r["symbol"])]
    return call.json({"markets": markets, "count": len(markets), "now": now, "exchange": exchange})


class _D1:
    """The D1 port of tracker/assets.py and tracker/compare.py (the API's DB binding)."""

    @staticmethod
    async def query(sql: str, *params) -> list[dict]:
        return await d1_bulk.query("DB", sql, *params)


async def assets(call: Call) -> Response:
    parse_no_params(call.query)
    amap = await asset_map.load(_D1, call.config)
    return call.json(views.assets_answer(amap, call.config.enabled_exchanges))


async def compare(call: Call) -> Response:
    """One asset on every enabled exchange that tracks it, aligned on the row timestamps,
    with the basis (tracker/compare.py). A final page is cached like the other routes':
    every exchange in it must have sealed the range."""
    q = parse_compare_query(call.query)
    cacheable = history_cache.may_be_cached(q.to_ms)
    edge = cacheable and not history_cache.edge_cache_off(str(call.request.url))
    if edge:
        hit = await edge_cache.lookup(str(call.request.url))
        if hit is not None:
            return edge_cache.answer_hit(hit, call.request.headers.get("if-none-match"))
    amap = await asset_map.load(_D1, call.config)
    asset = amap.find(q.asset)
    if asset is None:
        raise _unknown_asset(q.asset, amap)
    sealed = [sealed_until(_sql(x)) for x in asset.markets] if cacheable else []
    page, *sealed = await asyncio.gather(
        comparison.read_page(_D1, asset, q.resolution, q.from_ms, q.to_ms, q.limit, q.offset), *sealed)
    body = json.dumps(comparison.answer(asset, q.resolution, page, q.limit, q.offset,
                                        call.config.enabled_exchanges))
    row_ms = {"windows": call.config.window_ms, "minutes": MINUTE_MS, "hours": HOUR_MS}[q.resolution]
    if not (cacheable and all(history_cache.is_final(q.to_ms, row_ms, s) for s in sealed)):
        extra = {"x-cache": "bypass"} if cacheable else {}
        return Response(body, status=200, headers={**JSON_HEADERS, **call.headers, **extra})
    return await _final(call, body, edge)


def _unknown_asset(asked: str, amap: asset_map.AssetMap) -> ValidationError:
    """404, as an unknown symbol is: well-formed, but no such asset. Names the asset a
    mere case slip meant, when there is one."""
    hint = next((n for n in sorted(amap.assets) if n.casefold() == asked.casefold()), None)
    also = f" (did you mean {hint!r}? names are case-sensitive)" if hint else ""
    return ValidationError(f"unknown asset {asked[:64]!r}{also}: GET /api/assets lists the assets tracked on "
                           "more than one exchange", 404)


async def export_minutes(call: Call) -> Response:
    q = parse_export_query(call.query)
    if q.symbol is not None:  # checked before the 200 goes out: a stream cannot turn into a 400
        await _require_symbol(_sql(q.exchange), q.symbol)
    filename = export.export_filename(q.symbol, q.from_ms, q.to_ms, q.format, q.resolution)
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
    """The export document, one D1 page (keyset cursor) at a time. Every symbol: the
    pages also walk time slices from the oldest row to the newest (sql.py, _export_page)."""
    fmt = export.make_format(q.format, q.resolution)
    yield fmt.begin()
    cursor = export.first_cursor(q.from_ms)
    hourly = q.resolution == "hours"
    statements = _sql(q.exchange)
    all_symbols = statements.API_EXPORT_HOURS_PAGE if hourly else statements.API_EXPORT_MINUTES_PAGE
    one_symbol = statements.API_EXPORT_HOURS_PAGE_FOR_SYMBOL if hourly else statements.API_EXPORT_MINUTES_PAGE_FOR_SYMBOL
    last, span = q.to_ms, 0
    if q.symbol is None:
        extent_sql = statements.API_EXPORT_HOURS_EXTENT if hourly else statements.API_EXPORT_MINUTES_EXTENT
        (extent,) = await d1_bulk.query("DB", extent_sql, q.from_ms, q.to_ms)
        # No row in [from, to]: the oldest row at or after `from` (if any) is after `to`,
        # and then no row is at or before `to` there either.
        if extent["oldest"] is None or extent["newest"] is None or extent["oldest"] > extent["newest"]:
            yield fmt.end()
            return
        cursor = export.first_cursor(max(q.from_ms, int(extent["oldest"])))
        last = min(q.to_ms, int(extent["newest"]))
        span = export.slice_ms(HOUR_MS if hourly else MINUTE_MS, int(extent["markets"]))
    while True:
        if q.symbol is None:
            until = cursor[0] + span
            statement, binds = all_symbols, (*cursor, last, export.PAGE_SIZE, until)
        else:
            statement, binds = one_symbol, (q.symbol, *cursor, q.to_ms, export.PAGE_SIZE)
        rows = await d1_bulk.query_lists("DB", statement, *binds)
        if rows:
            yield fmt.page(rows)
        if len(rows) == export.PAGE_SIZE:
            cursor = export.next_cursor(rows)
        elif q.symbol is None and until <= last:
            cursor = export.first_cursor(until)  # this slice is done: the next one
        else:
            break
    yield fmt.end()


async def health_check(call: Call) -> Response:
    names = _answering(call.config, parse_exchange_query(call.query))
    answers = await asyncio.gather(*(shards.call_all(call.env, call.config, "/stats", exchange=n) for n in names))
    now = now_ms()
    verdicts = {name: health.assess(per_shard, now, call.config.stale_feed_ms) for name, per_shard in zip(names, answers)}
    # The worst exchange decides the HTTP status (a monitor watches one URL).
    status = max(code for code, _ in verdicts.values())
    merged = merge_exchanges({name: body for name, (_, body) in verdicts.items()})
    worst = max(verdicts, key=lambda name: health.rank(verdicts[name][1]["status"]))
    if health.rank(verdicts[worst][1]["status"]) > health.rank(merged["status"]):
        merged["status"] = verdicts[worst][1]["status"]
        merged["reason"] = f"{worst}: {verdicts[worst][1].get('reason', '')}"
    return call.json(merged, status)


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
    """Start or stop every enabled exchange, or the one named by ?exchange= (or a JSON
    body `{"exchange": "paradex"}`). Stop without an exchange also stops a disabled
    exchange's shards that still report in D1."""
    check_bearer(call.request.headers.get("authorization"), call.config.admin_token)
    asked = parse_exchange_query(call.query) or await _exchange_in_body(call)
    action = action.strip("/")
    if asked and asked not in call.config.enabled_exchanges and action == "start":
        raise ValidationError(
            f"{asked} is not enabled: ENABLED_EXCHANGES is {','.join(call.config.enabled_exchanges)!r}")
    names = _answering(call.config, asked)
    if action == "stop" and not asked:
        names += [n for n in EXCHANGES if n not in names]
    results = await asyncio.gather(*(shards.control_all(call.env, call.config, action, n,
                                                        enabled=n in call.config.enabled_exchanges) for n in names))
    per_exchange = {}
    for name, shard_results in zip(names, results):
        failed = [r for r in shard_results if "failed" in r]
        # A shard that failed is reported in the answer, never as a 500 of the whole call.
        body = {"ok": not failed, **shards.combine(shard_results)}
        if action == "stop":
            body["wasTracking"] = any(r.get("wasTracking") for r in shard_results)
        per_exchange[name] = body
    merged = merge_exchanges(per_exchange)
    merged["ok"] = all(body["ok"] for body in per_exchange.values())
    if action == "stop":
        merged["wasTracking"] = any(body["wasTracking"] for body in per_exchange.values())
    return call.json(merged)


async def _exchange_in_body(call: Call) -> str | None:
    try:
        text = await call.request.text()
    except Exception:
        return None
    if not text or not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError:
        raise ValidationError("the body must be JSON, e.g. {\"exchange\": \"paradex\"}, or empty") from None
    if not isinstance(body, dict) or set(body) - {"exchange"}:
        raise ValidationError("the body may only hold {\"exchange\": \"lighter\" | \"paradex\"}")
    value = body.get("exchange")
    if value is not None and not isinstance(value, str):
        raise ValidationError("exchange must be a string: lighter or paradex")
    return parse_exchange(value)


# -- dashboard -----------------------------------------------------------------------


async def dashboard(call: Call) -> Response:
    # Imported here, not at the top: the page's module (and Jinja2 behind it)
    # costs the API nothing until someone opens the page.
    from .dashboard import render_dashboard

    return await render_dashboard(call.request, call.env, call.config)


async def live_socket(call: Call) -> Response:
    # Who may open it first (403), then how (426): a page of another origin is refused
    # whatever it sends, and learns nothing more about the route.
    check_origin(call.request.headers.get("origin"), str(call.request.url), call.config.allowed_origins)
    if call.config.read_token:  # a browser sends it as a subprotocol; other clients may use the header
        headers = call.request.headers
        token = bearer_token(headers.get("authorization"))
        if token is None:
            token = token_from_protocols(headers.get("sec-websocket-protocol"))
        check_read(token, call.config.read_token, call.config.admin_token)
    if (call.request.headers.get("upgrade") or "").lower() != "websocket":
        raise ValidationError("/ws is a WebSocket: send Upgrade: websocket", 426, {"upgrade": "websocket"})
    # The DashboardHub object serves every dashboard socket; the Upgrade passes through.
    return await hub_stub(call.env).fetch(call.request)


HANDLERS: dict[str, Handler] = {
    "dashboard": dashboard,
    "live_socket": live_socket,
    "stats": stats,
    "markets": markets,
    "minutes": minutes,
    "hours": hours,
    "snapshots": snapshots,
    "overview": overview,
    "assets": assets,
    "compare": compare,
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
