"""The Worker in the simulated world: the API's routes (tracker/routes.py, what
runtime/api.py runs) over the world's D1 (its outages, hangs and latency), its shard
objects and a simulated edge cache, so the API, health and the history cache run in the
same world as the trackers.

Each seed sends it a handful of requests at random moments, drawn from the OpenAPI
document (tracker/openapi.py): every route, valid and invalid parameters, both
exchanges, with and without the read token (one seed in four sets READ_TOKEN), on a
custom domain (edge cache on) or on *.workers.dev (off). A page answered as final is
asked for again later. For one seed in three, /api/start and /api/stop go through
the API's control path (POST with the admin token; called again while it says a shard
failed) instead of the world's direct fan-out (world.Venue.control).

What the world knows about each request (`ApiRecord`), for invariants.check_api:
when it was sent and answered, the answer, whether D1 was failing or hanging at any
moment of it, and for a page of rows what D1 held at the moment the page was read (the
world's own query on its SQLite, run in the same instant as the API's; for an edge
cache hit, at the answer).

Drawn from generators of their own (never the world's or D1's): a seed's plan, the
exchanges' frames and D1's latencies stay what they were without the requests.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from tracker import routes
from tracker.config import Config
from tracker.openapi import DOCUMENT
from tracker.routes import Answer, ApiPorts, CachedPage, Request

from cloud import Evicted

ADMIN_TOKEN = "sim-admin-token"
READ_TOKEN = "sim-read-token"
CUSTOM_HOST = "https://tracker.sim.example"  # the edge cache acts here
WORKERS_DEV = "https://lighter-tracker.sim.workers.dev"  # and does nothing here
REQUESTS = (3, 8)  # drawn per seed
API_CONTROL_ONE_SEED_IN = 3
READ_TOKEN_ONE_SEED_IN = 4
PAGE_ROUTES = {"/api/minutes": "minutes", "/api/hours": "hours", "/api/snapshots": "snapshots"}
TABLE_SUFFIX = {"minutes": "minutes", "hours": "hours", "snapshots": "snapshots"}


class SimHeaders(dict):
    """Request headers, looked up by name whatever its case."""

    def __init__(self, items: dict[str, str] | None = None) -> None:
        super().__init__({k.lower(): v for k, v in (items or {}).items()})

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


@dataclass
class ApiRecord:
    at: int  # when it was sent (world ms)
    method: str
    url: str
    headers: dict[str, str]
    body: str = ""
    purpose: str = "drawn"  # drawn | repeat | control
    repeat_of: int | None = None  # the index of the record this one asks again
    done: int | None = None  # when the answer (its whole body) was in
    status: int | None = None
    answer_headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    stream_failed: str | None = None  # a streamed body that broke off (why)
    d1_trouble: bool = False  # D1 failing or hanging at some moment of the request
    reference: list[dict] | None = None  # what D1 held for a page, at the moment it was read
    reference_at: int | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path.rstrip("/") or "/"

    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def final(self) -> bool:
        """Answered as final history: cacheable, with an ETag."""
        return self.status == 200 and "etag" in self.answer_headers and \
            self.answer_headers.get("cache-control", "").startswith("public")


class SimCache:
    """caches.default on a custom domain: pages by URL, as the API stored them."""

    def __init__(self) -> None:
        self.pages: dict[str, CachedPage] = {}

    async def lookup(self, url: str) -> CachedPage | None:
        await asyncio.sleep(0.002)
        return self.pages.get(url)

    async def store(self, url: str, body: str, headers: dict[str, str]) -> None:
        await asyncio.sleep(0.002)
        self.pages[url] = CachedPage(dict(headers), body)


class SimReads:
    """The API's D1 (routes.Reads) for one request: the world's SimD1, failing and
    hanging as the world says; reads run uncounted (SimD1.usage is the trackers')."""

    def __init__(self, worker: SimWorker, record: ApiRecord) -> None:
        self.worker, self.record = worker, record

    def _note(self) -> None:
        d1 = self.worker.world.d1
        if d1._fail_now() or d1._hanging_now():
            self.record.d1_trouble = True

    async def _rows(self, sql: str, params) -> list[dict]:
        world = self.worker.world
        d1 = world.d1
        self._note()
        delay = self.worker.rng.randint(1, 30) + max(0, d1.hanging_until - world.loop.now_ms())
        try:
            await asyncio.sleep(delay / 1000)
        finally:
            self._note()
        if d1._fail_now():
            raise RuntimeError("D1_ERROR: simulated outage")
        rows = d1.rows(sql, *params)
        if sql in self.worker.page_statements:  # the same instant: what D1 held for this page
            self.worker.take_reference(self.record)
        return rows

    async def query(self, sql: str, *params) -> list[dict]:
        return await self._rows(sql, params)

    async def query_json(self, sql: str, *params) -> tuple[str, int]:
        rows = await self._rows(sql, params)
        return json.dumps(rows, separators=(",", ":")), len(rows)

    async def query_lists(self, sql: str, *params) -> list[list]:
        return [list(r.values()) for r in await self._rows(sql, params)]


class SimWorker:
    def __init__(self, world) -> None:
        self.world = world
        self.rng = random.Random(world.plan.seed * 15_485_863 + 7)
        self.drives_control = self.rng.randrange(API_CONTROL_ONE_SEED_IN) == 0
        self.read_token = READ_TOKEN if self.rng.randrange(READ_TOKEN_ONE_SEED_IN) == 0 else None
        self.cache = SimCache()
        self.records: list[ApiRecord] = []
        self.logs: list[tuple[int, str, str, str, str]] = []  # (ms, level, component, event, message)
        self.page_statements = {getattr(s, name) for s in (_sql("lighter"), _sql("paradex"))
                                for name in ("API_MINUTES_PAGE", "API_MINUTES_PAGE_FOR_SYMBOL", "API_HOURS_PAGE",
                                             "API_HOURS_PAGE_FOR_SYMBOL", "API_SNAPSHOTS_PAGE",
                                             "API_SNAPSHOTS_PAGE_FOR_SYMBOL")}

    # -- the deployment as the Worker sees it -------------------------------------------------

    def config(self) -> Config:
        """The Worker's settings: the venues' own (they may change: a SHARDS change is a
        deploy), with the tokens set."""
        by = {v.name: v.config for v in self.world.venues}
        base = by.get("lighter") or by["paradex"]
        if "paradex" in by:
            base = replace(base, paradex_shards=by["paradex"].shards,
                           paradex_market_symbols=by["paradex"].market_symbols)
        return replace(base, admin_token=ADMIN_TOKEN, read_token=self.read_token)

    def ports(self, record: ApiRecord) -> ApiPorts:
        return ApiPorts(config=self.config, clock=self.world.loop, db=SimReads(self, record), cache=self.cache,
                        shards=self._shard, log=self._log, dashboard=self._dashboard, live_socket=self._live_socket)

    def _log(self, level: str, component: str, event: str, message: str) -> None:
        self.logs.append((self.world.loop.now_ms(), level, component, event, message))

    async def _dashboard(self, request: Request, config: Config) -> Answer:
        return Answer(200, {"content-type": "text/html; charset=utf-8"}, "<!doctype html><title>sim</title>")

    async def _live_socket(self, request: Request, config: Config) -> Answer:
        return Answer(101, {"upgrade": "websocket"})

    async def _shard(self, exchange: str, shard: int, path: str, method: str, body: dict | None = None) -> dict:
        """A shard object's fetch(), as runtime/durable_object.py answers it."""
        venue = next((v for v in self.world.venues if v.name == exchange), None)
        if venue is None:
            raise RuntimeError(f"no {exchange} tracker binding in this world")
        if path == "/release":  # the first step of a start (tracker/control.py)
            return await venue.request(shard, "release", body["shards"])
        if path in ("/start", "/stop"):  # a start's body: the old split's hand-over
            return await venue.request(shard, path.strip("/"), *([body] if body is not None else []))
        if path != "/stats":
            raise RuntimeError(f"unknown tracker route {path}")
        tracker = venue.instance(shard)
        life = venue.instances[shard][0]
        await asyncio.sleep(self.rng.randint(1, 30) / 1000)
        if not life.alive:
            raise RuntimeError("object reset")
        try:
            await tracker.ensure_running()
            await tracker.ready()
            return tracker.stats().to_json()
        except Evicted:
            raise RuntimeError("object reset (evicted during the request)") from None

    # -- requests --------------------------------------------------------------------------------

    async def send(self, method: str, path_query: str, headers: dict[str, str] | None = None, body: str = "",
                   host: str = CUSTOM_HOST, purpose: str = "drawn", repeat_of: int | None = None) -> ApiRecord:
        loop = self.world.loop
        headers = {"cf-ray": f"sim{len(self.records):04d}", **(headers or {})}
        record = ApiRecord(loop.now_ms(), method, host + path_query, headers, body, purpose, repeat_of)
        self.records.append(record)
        await asyncio.sleep(self.rng.randint(1, 20) / 1000)

        async def text() -> str:
            return body

        answer = await routes.handle(Request(method, record.url, SimHeaders(headers), text), self.ports(record))
        record.status, record.answer_headers = answer.status, dict(answer.headers)
        if answer.stream is not None:  # the client reads the streamed body to its end
            pieces = []
            try:
                async for piece in answer.stream:
                    pieces.append(piece)
            except Exception as exc:
                record.stream_failed = f"{type(exc).__name__}: {exc}"
            record.text = "".join(pieces)
        else:
            record.text = answer.body if isinstance(answer.body, str) else ""
        if answer.headers.get("x-cache") == "hit":
            self.take_reference(record)
        record.done = loop.now_ms()
        return record

    def take_reference(self, record: ApiRecord) -> None:
        """What D1 holds now for `record`'s page (see reference_page)."""
        if record.path in PAGE_ROUTES:
            record.reference = reference_page(self.world, record)
            record.reference_at = self.world.loop.now_ms()

    def begin(self, until_ms: int) -> None:
        """Schedule the seed's requests at random moments from now until `until_ms`."""
        loop = self.world.loop
        now = loop.now_ms()
        for _ in range(self.rng.randint(*REQUESTS)):
            at = self.rng.randint(now + 1_000, max(now + 1_000, until_ms))
            drawn = draw_request(self, self.rng)
            loop.at_ms(at, lambda drawn=drawn: self._spawn(self._drawn(*drawn, until_ms)))

    def _spawn(self, coro) -> None:
        self.world._spawn(coro, "an API request")

    async def _drawn(self, method, path_query, headers, body, host, until_ms: int) -> None:
        record = await self.send(method, path_query, headers, body, host)
        if record.final() and record.done < until_ms:
            # The same page again, later: from the edge cache (a custom domain) or D1
            # (workers.dev), maybe with the ETag it got.
            index = self.records.index(record)
            again = dict(headers)
            if self.rng.random() < 0.5:
                again["if-none-match"] = record.answer_headers["etag"]
            at = self.rng.randint(record.done + 1, until_ms)
            self.world.loop.at_ms(at, lambda: self._spawn(self.send(method, path_query, again, body, host, "repeat",
                                                                    index)))

    # -- /api/start and /api/stop through the API ----------------------------------------------

    async def control(self, action: str, venues) -> None:
        """The operator's POST /api/start|stop (with the admin token), sent again while its
        answer says a shard failed; the world's bookkeeping as Venue.control keeps it."""
        loop = self.world.loop
        for venue in venues:
            venue.control_calls.append(loop.now_ms())
            if action == "stop":
                venue._end_span()
        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        everything = len(venues) == len(self.world.venues)
        names = [v.name for v in venues]
        if everything and (action == "start" or len(names) == 1):
            how = [("", "")]  # no exchange named: every enabled one (stop: disabled ones too)
        else:
            how = [(f"?exchange={name}", "") if self.rng.random() < 0.5 else ("", json.dumps({"exchange": name}))
                   for name in names]
        answers: dict[str, dict] = {}
        for query, body in how:
            for attempt in range(4):
                record = await self.send("POST", f"/api/{action}{query}", auth, body, purpose="control")
                answer = _json(record.text)
                if record.status == 200 and answer.get("ok"):
                    break
                await asyncio.sleep(1)
            per = answer.get("exchanges") or {}
            answers.update({name: per.get(name, {}) for name in names if name in per})
        for venue in venues:
            venue.control_results.append([answers.get(venue.name, {})])
            if action == "start":
                venue.tracking = True
                venue.tracking_spans.append([loop.now_ms(), None])
            else:
                venue._end_span()


def _sql(exchange: str):
    from tracker.exchange import by_name

    return by_name(exchange).sql


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def table_of(record: ApiRecord) -> tuple[str, str]:
    """(rows table, market symbols table) of a page request."""
    exchange = (record.params().get("exchange") or "lighter").lower()
    return f"{exchange}_{TABLE_SUFFIX[PAGE_ROUTES[record.path]]}", f"{exchange}_market_symbols"


# A page's rows when the request names no limit: as the document says.
DEFAULT_LIMIT = DOCUMENT["components"]["parameters"]["limit"]["schema"]["default"]


def reference_page(world, record: ApiRecord) -> list[dict] | None:
    """What D1 holds for the page `record` asks for: the rows of [from, to] (that carry
    `symbol`, of the markets ever saved under it: a rename or a reused id leaves the
    old symbol's rows to it), newest first, ties by symbol, cut by limit and offset:
    the world's own query, not sql.py's. None for a request that is
    not a valid page request (it gets a 4xx)."""
    p = record.params()
    try:
        exchange = (p.get("exchange") or "lighter").lower()
        if exchange not in ("lighter", "paradex"):
            return None
        limit, offset = int(p.get("limit", DEFAULT_LIMIT)), int(p.get("offset", 0))
        since, until = int(p.get("from", 0)), int(p.get("to", 253402300799999))
    except ValueError:
        return None
    table, symbols = table_of(record)
    where, binds = ["timestamp >= ?", "timestamp <= ?"], [since, until]
    if "symbol" in p:
        where.append(f"symbol = ? AND market_index IN (SELECT market_index FROM {symbols} WHERE symbol = ?)")
        binds += [p["symbol"], p["symbol"]]
    rows = world.d1.rows(f"SELECT * FROM {table} WHERE {' AND '.join(where)} "
                         "ORDER BY timestamp DESC, symbol, market_index", *binds)
    return rows[offset:offset + limit]


# -- what the requests are, drawn from the document -------------------------------------------

def _routes() -> dict[str, dict[str, dict]]:
    return {path: {m.upper(): op for m, op in item.items()} for path, item in DOCUMENT["paths"].items()}


ROUTES = _routes()


def _param_names(op: dict) -> list[str]:
    return [p["$ref"].rsplit("/", 1)[1] if "$ref" in p else p["name"] for p in op.get("parameters", [])
            if "$ref" in p or p.get("in") == "query"]


def draw_request(worker: SimWorker, rng: random.Random) -> tuple[str, str, dict, str, str]:
    """(method, path?query, headers, body, host) of one request: a documented route and
    method, with parameters drawn for this world (its symbols and times; now and then
    one invalid), or a request the router must refuse."""
    world = worker.world
    host = CUSTOM_HOST if rng.random() < 0.6 else WORKERS_DEV
    headers: dict[str, str] = {}
    if worker.read_token and rng.random() < 0.85:
        headers["authorization"] = f"Bearer {rng.choice((READ_TOKEN, READ_TOKEN, ADMIN_TOKEN, 'wrong'))}"
    roll = rng.random()
    if roll < 0.04:
        return "GET", rng.choice(("/api/nope", "/api", "/favicon.ico")), headers, "", host
    if roll < 0.10:  # a method the route does not take, or a preflight
        path = rng.choice(sorted(ROUTES))
        return rng.choice(("PUT", "DELETE", "OPTIONS", "PATCH")), path, headers, "", host
    if roll < 0.15:  # control, refused: no token, a wrong one, or a bad body (never run)
        path = rng.choice(("/api/start", "/api/stop"))
        kind = rng.choice(("none", "wrong", "body"))
        auth = {} if kind == "none" else {"authorization": "Bearer " + ("nope" if kind == "wrong" else ADMIN_TOKEN)}
        body = rng.choice(("not json", '{"exchange": "kraken"}', '{"other": 1}')) if kind == "body" else ""
        return "POST", path, auth, body, host
    if roll < 0.20:  # the dashboard page and its socket
        if rng.random() < 0.5:
            return "GET", "/", headers, "", host
        if rng.random() < 0.7:
            headers["origin"] = host
        if rng.random() < 0.7:
            headers["upgrade"] = "websocket"
        return "GET", "/ws", headers, "", host
    path = rng.choice(("/api/minutes", "/api/minutes", "/api/snapshots", "/api/snapshots", "/api/hours",
                       "/api/hours", "/api/export", "/api/stats", "/api/health", "/api/overview", "/api/markets",
                       "/api/openapi.json"))
    names = _param_names(ROUTES[path]["GET"])
    # Named half of the time (one of this world's, or either); else the default's.
    exchange = rng.choice([v.name for v in world.venues] + ["lighter", "PARADEX"]) if rng.random() < 0.5 else None
    params = [(name, value) for name in names if rng.random() < _USED.get(name, 0.5)
              for value in [_draw_param(worker, rng, name, exchange)] if value is not None]
    if path in PAGE_ROUTES and rng.random() < 0.6:  # a bounded page: maybe final history
        params = [(k, v) for k, v in params if k not in ("from", "to")] + _bounded(world, rng, path)
    if rng.random() < 0.12:
        params = _spoil(rng, params)
    query = urlencode(params)
    return "GET", path + (f"?{query}" if query else ""), headers, "", host


_USED = {"symbol": 0.6, "limit": 0.5, "offset": 0.2, "from": 0.3, "to": 0.3, "exchange": 1.0, "format": 0.5,
         "resolution": 0.5}


def _symbols(world, exchange: str) -> list[str]:
    venue = next((v for v in world.venues if v.name == exchange), None)
    return sorted(venue.plan.markets.values()) if venue else []


def _draw_param(worker: SimWorker, rng: random.Random, name: str, exchange: str) -> str | None:
    world = worker.world
    if name == "exchange":
        return exchange
    if name == "symbol":  # one of the exchange's (the default's when no exchange is named), or none's
        symbols = _symbols(world, (exchange or "lighter").lower())
        return rng.choice(symbols) if symbols and rng.random() < 0.85 else "NOPE-1"
    if name == "limit":
        return str(rng.choice((1, 2, 5, 20, 100, 1000)))
    if name == "offset":
        return str(rng.choice((0, 1, 3)))
    if name in ("from", "to"):
        now = world.loop.now_ms()
        return str(now - rng.randint(0, 600_000))
    if name == "format":
        return rng.choice(("csv", "json"))
    if name == "resolution":
        return rng.choice(("minutes", "hours"))
    return None


def _bounded(world, rng: random.Random, path: str) -> list[tuple[str, str]]:
    """from/to of a page that may be final: `to` on a row boundary some while ago."""
    now = world.loop.now_ms()
    step = {"/api/snapshots": 15_000, "/api/minutes": 60_000, "/api/hours": 3_600_000}[path]
    to = now - rng.randint(0, 240_000)
    to -= to % step
    if path == "/api/hours" and rng.random() < 0.5:
        to -= step  # the hour before: final once it has ended (a run that crosses an hour boundary)
    if rng.random() < 0.5:
        to -= 1  # just before a row: the previous row is the last one the page can hold
    since = to - rng.choice((step, 4 * step, 20 * step))
    return [("from", str(max(0, since))), ("to", str(to))]


def _spoil(rng: random.Random, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One thing wrong with the query: a value out of range, an unknown name, a name twice."""
    kind = rng.choice(("limit", "from", "unknown", "twice", "exchange", "symbol"))
    if kind == "limit":
        return params + [("limit", rng.choice(("0", "1001", "ten", "-1")))]
    if kind == "from":
        return params + [("from", rng.choice(("-5", "1e3", "253402300800000")))]
    if kind == "unknown":
        return params + [("foo", "1")]
    if kind == "twice":
        return params + params[:1] if params else [("limit", "1"), ("limit", "2")]
    if kind == "exchange":
        return [(k, v) for k, v in params if k != "exchange"] + [("exchange", "kraken")]
    return [(k, v) for k, v in params if k != "symbol"] + [("symbol", rng.choice(("", "x" * 80, "a\u0001b")))]
