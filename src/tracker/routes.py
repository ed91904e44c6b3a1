"""The Worker's routes: the JSON API, and the checks in front of the dashboard page and
its WebSocket. Pure: D1, the tracker shard objects, the edge cache, the clock and the
log come in as `ApiPorts`; runtime/api.py plugs in the Workers runtime, and the
deterministic simulation (tests/sim/worker.py) its own D1, shards and cache, so the API
runs in the same world as the trackers.

Routing comes from the OpenAPI document (tracker/openapi.py): each documented
path + method is dispatched to the handler its operationId names, so every
route is documented by construction. Handlers are short: parse the query
(tracker/validation.py, which raises ValidationError -> 4xx), run SQL from
tracker/sql.py, shape the answer (tracker/views.py). Anything unexpected becomes a
JSON 500 logged with an `[API]` prefix, never a runtime error page. Every D1 read has
a deadline (Deadlines.d1_ms, as the trackers' own): a D1 that hangs gets a JSON 500
saying so, not a request that waits as long as the hang.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from . import assets as asset_map
from . import compare as comparison
from . import control, export, health, history_cache, views
from .config import EXCHANGES, Config, ConfigError
from .exchange import by_name
from .openapi import DOCUMENT, operations
from .ports import Clock, Deadlines, DeadlinePassed, Log, within
from .shardstats import combine, merge_exchanges
from .sql import Statements
from .validation import (
    DEFAULT_EXCHANGE,
    ExportQuery,
    ValidationError,
    bearer_token,
    check_bearer,
    check_origin,
    check_read,
    parse_exchange,
    parse_exchange_query,
    parse_export_query,
    parse_no_params,
    parse_row_query,
    parse_compare_query,
    token_from_protocols,
)

JSON_HEADERS = {"content-type": "application/json; charset=utf-8", "cache-control": "no-store"}
PUBLIC_HEADERS = {"access-control-allow-origin": "*"}
PREFLIGHT_HEADERS = {
    **PUBLIC_HEADERS,
    "access-control-allow-methods": "GET, OPTIONS",
    "access-control-allow-headers": "authorization, content-type",
    "access-control-max-age": "86400",
}

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


# -- what comes in, what goes out, and the ports ------------------------------------------


class Headers(Protocol):
    def get(self, name: str) -> str | None:
        """A request header by its name, whatever its case; None if absent."""


@dataclass
class Request:
    method: str  # upper case
    url: str
    headers: Headers
    text: Callable[[], Awaitable[str]]  # the body
    native: Any = None  # the runtime's own request, for what passes it on (/ws)


@dataclass
class Answer:
    """A response: `body` is text (or None, or a cached page's body as the cache
    holds it); `stream` a body produced piece by piece as it is read (the export);
    `native` a response the runtime made itself, passed on as it is (the dashboard
    page, a WebSocket handshake)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    stream: AsyncIterator[str] | None = None
    native: Any = None

    def text(self) -> str:
        return self.body if isinstance(self.body, str) else ""


def json_answer(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, {**JSON_HEADERS, **(headers or {})}, json.dumps(body))


def error_answer(message: str, status: int = 400, headers: Mapping[str, str] | None = None) -> Answer:
    return json_answer({"error": message}, status, headers)


class Reads(Protocol):
    """D1, as the API reads it. Raises on any failure."""

    async def query(self, sql: str, *params) -> list[dict]: ...

    async def query_json(self, sql: str, *params) -> tuple[str, int]:
        """The rows as ONE JSON text (an array of objects, columns in SELECT order) and
        how many: an answer that passes rows through builds no Python object per row."""

    async def query_lists(self, sql: str, *params) -> list[list]:
        """The rows as lists, columns in SELECT order."""


@dataclass
class CachedPage:
    headers: dict[str, str]  # as stored (the ETag, Cache-Control and CORS header among them)
    body: Any  # the runtime's body (a stream) or text


class EdgeCache(Protocol):
    """The Workers Cache API (caches.default), keyed by the request's full URL."""

    async def lookup(self, url: str) -> CachedPage | None: ...

    async def store(self, url: str, body: str, headers: dict[str, str]) -> None: ...


class Shards(Protocol):
    async def __call__(self, exchange: str, shard: int, path: str, method: str, body: dict | None = None) -> dict:
        """A tracker shard object's JSON answer to `method path` (/stats, /release,
        /start, /stop; `body`: /start's hand-over, as JSON); raises if the object fails
        or answers another status than 200."""


class Pages(Protocol):
    async def __call__(self, request: Request, config: Config) -> Answer:
        """An answer only the runtime can make: the dashboard page, /ws's handshake."""


@dataclass
class ApiPorts:
    config: Callable[[], Config]  # raises ConfigError for a bad var
    clock: Clock
    db: Reads
    cache: EdgeCache
    shards: Shards
    log: Log
    dashboard: Pages
    live_socket: Pages  # the DashboardHub object's handshake
    deadlines: Deadlines = Deadlines()


@dataclass
class Call:
    """One request on its way through a handler."""

    request: Request
    ports: ApiPorts
    config: Config
    query: str
    # Added to every answer of this route (the CORS header on public routes).
    headers: dict[str, str] = field(default_factory=dict)

    def json(self, body: Any, status: int = 200) -> Answer:
        return json_answer(body, status, self.headers)

    # D1 reads, each under its deadline.
    async def rows(self, sql: str, *params) -> list[dict]:
        return await within(self.ports.deadlines.d1_ms, "D1 query", self.ports.db.query(sql, *params))

    async def rows_json(self, sql: str, *params) -> tuple[str, int]:
        return await within(self.ports.deadlines.d1_ms, "D1 query", self.ports.db.query_json(sql, *params))

    async def rows_lists(self, sql: str, *params) -> list[list]:
        return await within(self.ports.deadlines.d1_ms, "D1 query", self.ports.db.query_lists(sql, *params))


Handler = Callable[[Call], Awaitable[Answer]]


# -- dispatch ------------------------------------------------------------------------


async def handle(request: Request, ports: ApiPorts) -> Answer:
    method, path = request.method, "?"
    headers: dict[str, str] = {}
    try:
        # First, so that a bad var answers every route (404s and preflights included)
        # with a JSON 500 naming it, not only the routes that happen to read it.
        config = ports.config()
        url = urlparse(request.url)
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
        call = Call(request, ports, config, url.query, headers)
        if public and config.read_token and path not in UNGUARDED:
            check_read(bearer_token(request.headers.get("authorization")), config.read_token, config.admin_token)
        return await HANDLERS[methods[method]](call)
    except ValidationError as exc:
        return error_answer(exc.message, exc.status, {**headers, **exc.headers})
    except ConfigError as exc:
        # The operator's problem, named on every route: the message says which var is
        # wrong and why, and never echoes a secret (tracker/config.py words them).
        rid = request_id(request)
        ports.log("error", "API", "config_error", f"configuration error: {exc} (request {rid})")
        return json_answer({"error": f"configuration error: {exc}", "requestId": rid}, 500, headers)
    except DeadlinePassed as exc:
        # D1 did not answer in time (it hangs): say so; nothing internal to hide.
        rid = request_id(request)
        ports.log("error", "API", "request_failed", f"{method} {path} failed (request {rid}): {exc}")
        return json_answer({"error": f"the database did not answer: {exc}; try again", "requestId": rid},
                           500, headers)
    except Exception as exc:
        # Never the exception's text to the client: it may name internals. The log
        # line has it in full, findable by the request id the client is given.
        rid = request_id(request)
        ports.log("error", "API", "request_failed",
                  f"{method} {path} failed (request {rid}): {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return json_answer({"error": "internal error", "requestId": rid}, 500, headers)


def request_id(request: Request) -> str:
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


def _preflight(path: str, methods: dict[str, str], public: bool) -> Answer:
    if not public:
        raise ValidationError(
            f"{path} does not answer cross-origin requests: call it from the dashboard, curl or CI",
            405,
            {"allow": _allow(methods, public)},
        )
    return Answer(204, {**PREFLIGHT_HEADERS, "allow": _allow(methods, public)})


# -- the shard objects ---------------------------------------------------------------


async def ask_shards(call: Call, path: str, exchange: str) -> list[dict]:
    """Every shard's answer; a shard that fails is `{"shard": n, "failed": "unreachable"}`."""
    def failed(shard: int, exc: Exception) -> None:
        call.ports.log("error", "API", "tracker_unreachable",
                       f"{exchange} tracker shard {shard} unreachable: {type(exc).__name__}: {exc}")

    return await control.ask_all(call.config.for_exchange(exchange).shards,
                                 lambda s: call.ports.shards(exchange, s, path, "GET"), failed)


async def control_shards(call: Call, action: str, exchange: str, enabled: bool) -> list[dict]:
    """start/stop every shard of one exchange, and stop the objects beyond its SHARDS
    that its stats table knows (left tracking when SHARDS was lowered). A disabled
    exchange: only the shards its stats table knows are stopped (none is created)."""
    try:
        known = [r["shard"] for r in await call.rows(by_name(exchange).sql.SELECT_KNOWN_SHARDS)]
    except Exception:  # D1 down: the current shards still get the action
        known = []
    shards = call.config.for_exchange(exchange).shards if enabled else 0
    return await control.fan_out(action, shards, known,
                                 lambda s, a, body=None: call.ports.shards(exchange, s, f"/{a}", "POST", body))


# -- data ----------------------------------------------------------------------------


def _sql(exchange: str) -> Statements:
    return by_name(exchange).sql


def _answering(config: Config, asked: str | None) -> list[str]:
    """The exchanges a stats/health/control call is about: the one asked for, or every
    enabled one."""
    return [asked] if asked else list(config.enabled_exchanges)


async def stats(call: Call) -> Answer:
    names = _answering(call.config, parse_exchange_query(call.query))
    answers = await asyncio.gather(*(_exchange_stats(call, name) for name in names))
    return call.json(merge_exchanges(dict(zip(names, answers))))


async def _exchange_stats(call: Call, exchange: str) -> dict:
    per_shard, counts = await asyncio.gather(
        ask_shards(call, "/stats", exchange),
        call.rows(_sql(exchange).API_COUNT_ROWS),
    )
    combined = combine(per_shard)
    combined["database"] = {"snapshots": counts[0]["snapshots"], "minutes": counts[0]["minutes"], "hours": counts[0]["hours"]}
    combined["enabled"] = exchange in call.config.enabled_exchanges
    return combined


async def markets(call: Call) -> Answer:
    exchange = parse_exchange_query(call.query) or DEFAULT_EXCHANGE
    config = call.config.for_exchange(exchange)
    rows = [views.market_row(r, config.tracks) for r in await call.rows(_sql(exchange).API_SELECT_MARKETS)]
    # `allowlist`: LIGHTER_MARKETS / PARADEX_MARKETS (null: every market is tracked). Which of
    # its symbols the exchange does not list, the shards say: /api/stats marketsNotListed.
    return call.json({"markets": rows, "count": len(rows), "exchange": exchange,
                      "allowlist": list(config.market_symbols) or None})


async def minutes(call: Call) -> Answer:
    return await _page(call, "minutes", MINUTE_MS, "API_MINUTES_PAGE")


async def hours(call: Call) -> Answer:
    return await _page(call, "hours", HOUR_MS, "API_HOURS_PAGE")


async def snapshots(call: Call) -> Answer:
    return await _page(call, "snapshots", call.config.window_ms, "API_SNAPSHOTS_PAGE")


async def _page(call: Call, key: str, row_ms: int, statement_name: str) -> Answer:
    """A page of rows, newest first. A page of final history (tracker/history_cache.py)
    is answered from the edge cache when it is there, without a D1 query (never on
    *.workers.dev, where the Cache API does nothing)."""
    q = parse_row_query(call.query)
    statements = _sql(q.exchange)
    all_symbols = getattr(statements, statement_name)
    one_symbol = getattr(statements, statement_name + "_FOR_SYMBOL")
    cacheable = history_cache.may_be_cached(q.to_ms)
    url = call.request.url
    edge = cacheable and not history_cache.edge_cache_off(url)
    if edge:
        hit = await call.ports.cache.lookup(url)
        if hit is not None:
            return _cache_hit(hit, call.request.headers.get("if-none-match"))
    statement, binds = (all_symbols, ()) if q.symbol is None else (one_symbol, (q.symbol,))
    # The page, the symbol check and (for a bounded page) the sealed point, all at
    # once: one D1 round trip's wait, not three. An unknown symbol's page is empty.
    (rows, count), known, sealed = await asyncio.gather(
        call.rows_json(statement, *binds, q.from_ms, q.to_ms, q.limit, q.offset),
        _symbol_known(call, statements, q.symbol),
        sealed_until(call, statements) if cacheable else _nothing(),
    )
    if not known:
        raise _unknown_symbol(q.symbol)
    # The rows go out as D1 serialised them: no Python object per row or value.
    body = f'{{"{key}": {rows}, "count": {count}, "limit": {q.limit}, "offset": {q.offset}}}'
    if not history_cache.is_final(q.to_ms, row_ms, sealed):
        extra = {"x-cache": "bypass"} if cacheable else {}
        return Answer(200, {**JSON_HEADERS, **call.headers, **extra}, body)
    return await _final(call, body, edge)


async def _final(call: Call, body: str, edge: bool) -> Answer:
    """Final history: validators, Cache-Control, and a copy in the edge cache where
    there is one (`edge`); on *.workers.dev only the browser's cache keeps it."""
    tag = history_cache.etag(body)
    control_ = history_cache.cache_control(call.config.history_cache_s)
    headers = {**JSON_HEADERS, **call.headers, "cache-control": control_, "etag": tag}
    how = "miss" if edge else history_cache.EDGE_CACHE_OFF
    if edge:
        await call.ports.cache.store(call.request.url, body, headers)
    if history_cache.matches(call.request.headers.get("if-none-match"), tag):
        return not_modified(tag, control_, call.headers, how)
    return Answer(200, {**headers, "x-cache": how}, body)


def _cache_hit(hit: CachedPage, if_none_match: str | None) -> Answer:
    tag = hit.headers.get("etag") or ""
    public = {k: v for k, v in hit.headers.items() if k == "access-control-allow-origin"}
    if tag and history_cache.matches(if_none_match, tag):
        return not_modified(tag, hit.headers.get("cache-control") or "", public, "hit")
    return Answer(200, {**hit.headers, "x-cache": "hit"}, hit.body)


def not_modified(tag: str, cache_control: str, extra: Mapping[str, str], how: str) -> Answer:
    return Answer(304, {"etag": tag, "cache-control": cache_control, "x-cache": how, **extra})


async def sealed_until(call: Call, statements: Statements) -> int | None:
    """End (ms) of the history that is final in D1 for every shard of the exchange;
    None before any flush."""
    rows = await call.rows(statements.API_SEALED_UNTIL)
    value = rows[0].get("sealed_until") if rows else None
    return int(value) if value is not None else None


async def _require_symbol(call: Call, statements: Statements, symbol: str) -> None:
    if not await _symbol_known(call, statements, symbol):
        raise _unknown_symbol(symbol)


async def _symbol_known(call: Call, statements: Statements, symbol: str | None) -> bool:
    """No symbol asked for is as good as a known one."""
    return symbol is None or bool(await call.rows(statements.API_SYMBOL_EXISTS, symbol))


def _unknown_symbol(symbol: str) -> ValidationError:
    # A well-formed symbol that no market has is a resource that does not exist (404),
    # not a malformed request (400): the OpenAPI document says so, and its checkers hold us to it.
    return ValidationError(f"unknown symbol {symbol[:64]!r}: /api/markets lists the symbols (case-sensitive)", 404)


async def _nothing() -> None:
    return None


async def overview(call: Call) -> Answer:
    exchange = parse_exchange_query(call.query) or DEFAULT_EXCHANGE
    rows = await call.rows(_sql(exchange).API_OVERVIEW)
    now = call.ports.clock.now_ms()
    tracks = call.config.for_exchange(exchange).tracks  # a market a deploy just left out, until the refresh
    markets = [views.overview_row(r, now) for r in rows if tracks(r["symbol"])]
    return call.json({"markets": markets, "count": len(markets), "now": now, "exchange": exchange})


class _CallReads:
    """The D1 port of tracker/assets.py and tracker/compare.py: this call's reads,
    each under its deadline."""

    def __init__(self, call: Call) -> None:
        self.call = call

    async def query(self, sql: str, *params) -> list[dict]:
        return await self.call.rows(sql, *params)


async def assets(call: Call) -> Answer:
    parse_no_params(call.query)
    amap = await asset_map.load(_CallReads(call), call.config)
    return call.json(views.assets_answer(amap, call.config.enabled_exchanges))


async def compare(call: Call) -> Answer:
    """One asset on every enabled exchange that tracks it, aligned on the row timestamps,
    with the basis (tracker/compare.py). A final page is cached like the other routes':
    every exchange in it must have sealed the range."""
    q = parse_compare_query(call.query)
    cacheable = history_cache.may_be_cached(q.to_ms)
    url = call.request.url
    edge = cacheable and not history_cache.edge_cache_off(url)
    if edge:
        hit = await call.ports.cache.lookup(url)
        if hit is not None:
            return _cache_hit(hit, call.request.headers.get("if-none-match"))
    reads = _CallReads(call)
    amap = await asset_map.load(reads, call.config)
    asset = amap.find(q.asset)
    if asset is None:
        raise _unknown_asset(q.asset, amap)
    sealed = [sealed_until(call, _sql(x)) for x in asset.markets] if cacheable else []
    page, *sealed = await asyncio.gather(
        comparison.read_page(reads, asset, q.resolution, q.from_ms, q.to_ms, q.limit, q.offset), *sealed)
    body = json.dumps(comparison.answer(asset, q.resolution, page, q.limit, q.offset,
                                        call.config.enabled_exchanges))
    row_ms = {"windows": call.config.window_ms, "minutes": MINUTE_MS, "hours": HOUR_MS}[q.resolution]
    if not (cacheable and all(history_cache.is_final(q.to_ms, row_ms, s) for s in sealed)):
        extra = {"x-cache": "bypass"} if cacheable else {}
        return Answer(200, {**JSON_HEADERS, **call.headers, **extra}, body)
    return await _final(call, body, edge)


def _unknown_asset(asked: str, amap: asset_map.AssetMap) -> ValidationError:
    """404, as an unknown symbol is: well-formed, but no such asset. Names the asset a
    mere case slip meant, when there is one."""
    hint = next((n for n in sorted(amap.assets) if n.casefold() == asked.casefold()), None)
    also = f" (did you mean {hint!r}? names are case-sensitive)" if hint else ""
    return ValidationError(f"unknown asset {asked[:64]!r}{also}: GET /api/assets lists the assets tracked on "
                           "more than one exchange", 404)


async def export_minutes(call: Call) -> Answer:
    q = parse_export_query(call.query)
    if q.symbol is not None:  # checked before the 200 goes out: a stream cannot turn into a 400
        await _require_symbol(call, _sql(q.exchange), q.symbol)
    filename = export.export_filename(q.symbol, q.from_ms, q.to_ms, q.format, q.resolution)
    return Answer(
        200,
        {
            "content-type": export.CONTENT_TYPES[q.format],
            "content-disposition": export.content_disposition(filename),
            "cache-control": "no-store",
            **call.headers,
        },
        stream=_export_pieces(call, q),
    )


async def _export_pieces(call: Call, q: ExportQuery) -> AsyncIterator[str]:
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
        (extent,) = await call.rows(extent_sql, q.from_ms, q.to_ms)
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
        rows = await call.rows_lists(statement, *binds)
        if rows:
            yield fmt.page(rows)
        if len(rows) == export.PAGE_SIZE:
            cursor = export.next_cursor(rows)
        elif q.symbol is None and until <= last:
            cursor = export.first_cursor(until)  # this slice is done: the next one
        else:
            break
    yield fmt.end()


async def health_check(call: Call) -> Answer:
    names = _answering(call.config, parse_exchange_query(call.query))
    answers = await asyncio.gather(*(ask_shards(call, "/stats", n) for n in names))
    now = call.ports.clock.now_ms()
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


async def openapi(call: Call) -> Answer:
    parse_no_params(call.query)
    return Answer(200, {**JSON_HEADERS, **call.headers}, _OPENAPI_JSON)


# -- control -------------------------------------------------------------------------


async def start(call: Call) -> Answer:
    return await _control(call, "/start")


async def stop(call: Call) -> Answer:
    return await _control(call, "/stop")


async def _control(call: Call, action: str) -> Answer:
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
    results = await asyncio.gather(*(control_shards(call, action, n, enabled=n in call.config.enabled_exchanges)
                                     for n in names))
    per_exchange = {}
    for name, shard_results in zip(names, results):
        failed = [r for r in shard_results if "failed" in r]
        # A shard that failed is reported in the answer, never as a 500 of the whole call.
        body = {"ok": not failed, **combine(shard_results)}
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


async def dashboard(call: Call) -> Answer:
    return await call.ports.dashboard(call.request, call.config)


async def live_socket(call: Call) -> Answer:
    # Who may open it first (403), then how (426): a page of another origin is refused
    # whatever it sends, and learns nothing more about the route.
    headers = call.request.headers
    check_origin(headers.get("origin"), call.request.url, call.config.allowed_origins)
    if call.config.read_token:  # a browser sends it as a subprotocol; other clients may use the header
        token = bearer_token(headers.get("authorization"))
        if token is None:
            token = token_from_protocols(headers.get("sec-websocket-protocol"))
        check_read(token, call.config.read_token, call.config.admin_token)
    if (headers.get("upgrade") or "").lower() != "websocket":
        raise ValidationError("/ws is a WebSocket: send Upgrade: websocket", 426, {"upgrade": "websocket"})
    # The DashboardHub object serves every dashboard socket; the Upgrade passes through.
    return await call.ports.live_socket(call.request, call.config)


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
