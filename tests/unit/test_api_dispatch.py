"""runtime/api.py's dispatcher in CPython, with the Workers runtime faked.

What the integration tests cannot force: an unexpected exception in a handler
(500 JSON, logged with [API]), a bad configuration, and — over many random query
strings — that bad input never yields a 500 and never reaches SQL: every statement
the API runs is one of the fixed texts in tracker/sql.py, with values bound.
"""

from __future__ import annotations

import asyncio
import json
import sys
import types
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker import sql

API_STATEMENTS = {value for statements in (sql.LIGHTER, sql.PARADEX) for name, value in vars(statements).items()
                  if name.startswith("API_") and isinstance(value, str)}
# GET /api/compare's: each exchange's part by resolution, and the page start over both.
API_STATEMENTS |= {text for statements in (sql.LIGHTER, sql.PARADEX) for text in statements.API_COMPARE.values()}
API_STATEMENTS |= set(sql.COMPARE_PAGE_START.values())


class FakeResponse:
    def __init__(self, body=None, status=200, headers=None, **_):
        self.body = body
        self.status = status
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}

    def json(self):
        return json.loads(self.body)


class FakeHeaders(dict):
    def get(self, name, default=None):
        return super().get(name.lower(), default)


class FakeRequest:
    def __init__(self, path: str, method: str = "GET", headers: dict | None = None, body: str = "",
                 origin: str = "https://tracker.test"):
        self.url = origin + path
        self.js_object = types.SimpleNamespace(method=method)
        self.headers = FakeHeaders({k.lower(): v for k, v in (headers or {}).items()})
        self.body = body

    async def text(self):
        return self.body


class FakeStatement:
    def __init__(self, db, text):
        self.db, self.text, self.params = db, text, ()

    def bind(self, *params):
        self.params = params
        return self

    async def all(self):
        self.db.executed.append((self.text, self.params))
        if self.db.fail:
            raise RuntimeError("D1 is on fire")
        if self.text in (sql.LIGHTER.API_SYMBOL_EXISTS, sql.PARADEX.API_SYMBOL_EXISTS):
            return FakeResult(results=[{"found": 1}] if self.params[0] in self.db.symbols else [])
        if self.text in (sql.LIGHTER.API_EXPORT_MINUTES_EXTENT, sql.LIGHTER.API_EXPORT_HOURS_EXTENT,
                         sql.PARADEX.API_EXPORT_MINUTES_EXTENT, sql.PARADEX.API_EXPORT_HOURS_EXTENT):
            return FakeResult(results=[{"markets": 0, "oldest": None, "newest": None}])
        if self.text in (sql.LIGHTER.API_COUNT_ROWS, sql.PARADEX.API_COUNT_ROWS):
            return FakeResult(results=[{"snapshots": 0, "minutes": 0}])
        if self.text in (sql.LIGHTER.API_SEALED_UNTIL, sql.PARADEX.API_SEALED_UNTIL):
            return FakeResult(results=[{"sealed_until": self.db.sealed_until}])
        if self.text in self.db.answers:
            return FakeResult(results=self.db.answers[self.text])
        return FakeResult(results=[])


class FakeResult(dict):
    """A D1 result both as the SDK wrapper gives it (a dict) and as the raw binding
    does (`.results`, which the API serialises with JSON.stringify)."""

    def __getattr__(self, name):
        return self[name]


class FakeCache:
    """caches.default, recording what the API asks of it. Unless a test makes history
    final (FakeDB.sealed_until), nothing may be stored."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.stored: dict[str, object] = {}
        self.allow_put = False

    async def match(self, url):
        self.calls.append(("match", url))
        return None

    async def put(self, url, response):
        self.calls.append(("put", url))
        if not self.allow_put:
            raise AssertionError(f"nothing should be cached here: {url}")
        self.stored[url] = response


class FakeDB:
    def __init__(self, symbols=("ETH",), fail=False):
        self.executed: list[tuple[str, tuple]] = []
        self.symbols = set(symbols)
        self.fail = fail
        self.sealed_until = None  # no shard has flushed: nothing is final
        self.answers: dict[str, list[dict]] = {}  # statement -> its rows

    def prepare(self, text):
        return FakeStatement(self, text)


class FakeEnv:
    def __init__(self, **vars):
        self.DB = FakeDB()
        self.ADMIN_TOKEN = "secret"
        for k, v in vars.items():
            setattr(self, k, v)


@pytest.fixture
def api(monkeypatch):
    """runtime.api imported against fake `js`, `workers` and `pyodide` modules,
    and forgotten afterwards so no other test sees the fakes."""
    logged: list[str] = []
    js = types.ModuleType("js")
    js.console = types.SimpleNamespace(error=lambda text, *_: logged.append(text), log=lambda text, *_: logged.append(text))
    js.Object = types.SimpleNamespace(fromEntries=dict)
    js.Date = types.SimpleNamespace(now=lambda: 1_700_000_000_000)
    js.ReadableStream = types.SimpleNamespace(new=lambda **source: source)  # never pulled here
    js.caches = types.SimpleNamespace(default=FakeCache())
    js.Headers = types.SimpleNamespace(new=lambda headers: dict(headers))
    js.Response = types.SimpleNamespace(new=lambda body, **kw: {"body": body, **kw})
    workers = types.ModuleType("workers")
    workers.Response = FakeResponse
    # The raw D1 binding (runtime/d1_bulk.py) is the same fake as env.DB: `call` sets it.
    workers.import_from_javascript = lambda name: RAW_ENV
    js.JSON = types.SimpleNamespace(stringify=json.dumps)
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.create_proxy = lambda x: x
    ffi.to_js = lambda x, **_: x
    pyodide.ffi = ffi
    for name, module in {"js": js, "workers": workers, "pyodide": pyodide, "pyodide.ffi": ffi}.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        monkeypatch.delitem(sys.modules, name)
    import runtime.api as module

    module.logged = logged
    module.cache = js.caches.default
    yield module
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        del sys.modules[name]


RAW_ENV = types.SimpleNamespace(env=None)


def call(api, path, method="GET", env=None, headers=None, body="", origin="https://tracker.test") -> FakeResponse:
    env = env or FakeEnv()
    RAW_ENV.env = env
    return asyncio.run(api.handle(FakeRequest(path, method, headers, body, origin), env))


def test_exchange_chooses_the_tables_and_lighter_stays_the_default(api):
    env = FakeEnv()
    env.DB.symbols = {"BTC-USD-PERP"}
    r = call(api, "/api/minutes?exchange=paradex&symbol=BTC-USD-PERP", env=env)
    assert r.status == 200, r.body
    texts = [text for text, _ in env.DB.executed]
    assert sql.PARADEX.API_SYMBOL_EXISTS in texts and sql.PARADEX.API_MINUTES_PAGE_FOR_SYMBOL in texts
    assert not any("lighter_" in text for text in texts)
    env = FakeEnv()
    assert call(api, "/api/overview", env=env).status == 200
    assert [text for text, _ in env.DB.executed] == [sql.LIGHTER.API_OVERVIEW]
    env = FakeEnv()
    assert call(api, "/api/markets?exchange=PARADEX", env=env).json()["exchange"] == "paradex"
    assert [text for text, _ in env.DB.executed] == [sql.PARADEX.API_SELECT_MARKETS]


@pytest.mark.parametrize("path", ["/api/minutes?exchange=kraken", "/api/stats?exchange=", "/api/health?exchange=x",
                                  "/api/export?exchange=binance", "/api/markets?exchange=lighter&exchange=paradex"])
def test_an_unknown_exchange_is_a_400_naming_the_choices(api, path):
    r = call(api, path)
    assert r.status == 400 and ("lighter, paradex" in r.json()["error"] or "more than once" in r.json()["error"])


def test_starting_an_exchange_that_is_not_enabled_is_refused_before_any_tracker_is_called(api):
    # FakeEnv has no tracker bindings: reaching a shard would fail differently.
    auth = {"authorization": "Bearer secret"}
    r = call(api, "/api/start?exchange=paradex", "POST", headers=auth)
    assert r.status == 400 and "paradex is not enabled" in r.json()["error"]
    r = call(api, "/api/start", "POST", headers=auth, body='{"exchange": "paradex"}')
    assert r.status == 400 and "ENABLED_EXCHANGES" in r.json()["error"]
    for body in ('{"exchange": "kraken"}', '{"exchange": 3}', '{"other": 1}', "not json"):
        r = call(api, "/api/start", "POST", headers=auth, body=body)
        assert r.status == 400, body


def test_unknown_route_is_404_json(api):
    r = call(api, "/api/nope")
    assert r.status == 404 and "unknown route /api/nope" in r.json()["error"]
    assert "access-control-allow-origin" not in r.headers


def test_wrong_method_is_405_with_allow(api):
    r = call(api, "/api/minutes", "PUT")
    assert r.status == 405 and r.headers["allow"] == "GET, OPTIONS"
    assert r.headers["access-control-allow-origin"] == "*"
    r = call(api, "/api/stop", "GET")
    assert r.status == 405 and r.headers["allow"] == "POST"


def test_preflights(api):
    r = call(api, "/api/minutes", "OPTIONS")
    assert r.status == 204 and r.headers["access-control-allow-origin"] == "*"
    r = call(api, "/api/start", "OPTIONS")
    assert r.status == 405 and "access-control-allow-origin" not in r.headers


def test_an_unexpected_exception_is_a_logged_json_500(api):
    env = FakeEnv()
    env.DB.fail = True
    r = call(api, "/api/markets", env=env, headers={"cf-ray": "8f00ba4-LHR"})
    assert r.status == 500
    # The client gets an id to quote, never the exception's text; the log has both.
    assert r.json() == {"error": "internal error", "requestId": "8f00ba4-LHR"}
    assert "on fire" not in r.body
    assert r.headers["access-control-allow-origin"] == "*"
    assert any(
        line.startswith("[API] GET /api/markets failed (request 8f00ba4-LHR): RuntimeError: D1 is on fire")
        for line in api.logged
    )


def test_a_500_without_a_ray_id_gets_a_random_request_id(api):
    env = FakeEnv()
    env.DB.fail = True
    first, second = call(api, "/api/markets", env=env).json(), call(api, "/api/markets", env=env).json()
    assert len(first["requestId"]) == 16 and first["requestId"] != second["requestId"]
    assert any(f"(request {first['requestId']})" in line for line in api.logged)


def test_a_bad_configuration_is_a_json_500(api):
    r = call(api, "/api/markets", env=FakeEnv(WINDOW_SECONDS="7"))
    assert r.status == 500 and r.json()["error"].startswith("configuration error: WINDOW_SECONDS")
    assert r.json()["requestId"] and any("WINDOW_SECONDS" in line and "(request " in line for line in api.logged)


@pytest.mark.parametrize("path, method", [
    ("/", "GET"), ("/api/openapi.json", "GET"), ("/api/health", "GET"), ("/ws", "GET"),
    ("/api/nope", "GET"), ("/api/minutes", "PUT"), ("/api/minutes", "OPTIONS"), ("/api/start", "POST"),
])
def test_a_bad_configuration_answers_every_route_naming_the_var(api, path, method):
    """Not only the routes that read the config: 404s, 405s and preflights too."""
    r = call(api, path, method, env=FakeEnv(FLUSH_GRACE_MS="1500.5"))
    assert r.status == 500
    assert r.json()["error"] == "configuration error: FLUSH_GRACE_MS must be a whole number, got '1500.5'"
    assert any(line.startswith("[API] configuration error: FLUSH_GRACE_MS") for line in api.logged)


def test_unknown_symbol_is_checked_with_a_bound_parameter(api):
    env = FakeEnv()
    r = call(api, "/api/minutes?symbol=" + quote("x' OR 1=1 --"), env=env)
    # A well-formed symbol nobody lists is a resource not found (issue 19, item 9), not a bad request.
    assert r.status == 404 and "unknown symbol" in r.json()["error"]
    assert (sql.LIGHTER.API_SYMBOL_EXISTS, ("x' OR 1=1 --",)) in env.DB.executed
    # The page ran alongside the check (one round trip), with the symbol bound too.
    assert all(text in API_STATEMENTS and sql.bind_count(text) == len(params) for text, params in env.DB.executed)


def test_a_known_symbol_pages_with_bound_values(api):
    env = FakeEnv()
    r = call(api, "/api/snapshots?symbol=ETH&limit=5&offset=10&from=1&to=2", env=env)
    assert r.status == 200 and r.json() == {"snapshots": [], "count": 0, "limit": 5, "offset": 10}
    assert (sql.LIGHTER.API_SNAPSHOTS_PAGE_FOR_SYMBOL, ("ETH", 1, 2, 5, 10)) in env.DB.executed
    # An explicit `to` asks whether the page is final; without a flushed shard it is not.
    assert (sql.LIGHTER.API_SEALED_UNTIL, ()) in env.DB.executed
    assert r.headers["cache-control"] == "no-store" and r.headers["x-cache"] == "bypass"


def test_control_without_a_configured_token_is_403_before_touching_anything(api):
    env = FakeEnv(ADMIN_TOKEN="")
    r = call(api, "/api/start", "POST", env=env, headers={"Authorization": "Bearer secret"})
    assert r.status == 403 and "wrangler secret put ADMIN_TOKEN" in r.json()["error"]
    assert env.DB.executed == []


def test_a_websocket_route_needs_an_upgrade(api):
    r = call(api, "/ws", headers={"origin": "https://tracker.test"})
    assert r.status == 426 and r.headers["upgrade"] == "websocket"


@pytest.mark.parametrize("path", ["/api/minutes", "/api/hours", "/api/snapshots", "/api/export"])
def test_an_unknown_symbol_is_404_on_every_route_that_takes_one(api, path):
    r = call(api, f"{path}?symbol=NOPE")
    assert r.status == 404, r.body
    assert r.json()["error"] == "unknown symbol 'NOPE': /api/markets lists the symbols (case-sensitive)"
    assert r.headers["access-control-allow-origin"] == "*"


def test_a_foreign_page_is_refused_before_the_upgrade_is_looked_at(api):
    """Who may open /ws is decided first (403), then how (426): a request from another
    origin learns nothing about the route, upgrade or not."""
    for headers in ({}, {"origin": "https://evil.example"}, {"origin": "https://evil.example", "upgrade": "websocket"}):
        r = call(api, "/ws", headers=headers)
        assert r.status == 403, (headers, r.body)


_query_text = st.text(alphabet=st.sampled_from(list("symbolimtfrang=&%0123456789-.xET H'")), max_size=40)


# The fixture only provides the module under test; each example builds its own env.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/minutes", "/api/snapshots", "/api/export", "/api/overview", "/api/markets",
                             "/api/compare", "/api/assets"]),
       query=_query_text)
def test_random_queries_never_500_and_never_reach_sql_unbound(api, path, query):
    env = FakeEnv()
    r = call(api, f"{path}?{query}", env=env)
    assert r.status in (200, 400, 404), (query, r.status, r.body)
    if r.status != 200:
        assert r.json()["error"]
    for text, params in env.DB.executed:
        assert text in API_STATEMENTS, text
        assert sql.bind_count(text) == len(params)


# -- the edge cache: only where Cloudflare's Cache API acts (issue 19, item 4) ------------------

FINAL_PAGE = "/api/minutes?symbol=ETH&from=0&to=60000"  # ends well before the sealed point below


def final_env() -> FakeEnv:
    env = FakeEnv()
    env.DB.sealed_until = 10 * 60_000
    return env


def test_on_workers_dev_final_history_keeps_its_validators_but_never_touches_the_cache(api):
    """The Cache API does nothing on *.workers.dev: no match/put is spent there, x-cache
    says `off` and why, and ETag/304 (the browser's own cache) work as anywhere."""
    host = "https://lighter-orderbook-tracker.someone.workers.dev"
    r = call(api, FINAL_PAGE, env=final_env(), origin=host)
    assert r.status == 200, r.body
    assert r.headers["x-cache"].startswith("off") and "workers.dev" in r.headers["x-cache"]
    assert r.headers["cache-control"].startswith("public, max-age=") and r.headers["etag"]
    assert api.cache.calls == []
    again = call(api, FINAL_PAGE, env=final_env(), origin=host, headers={"if-none-match": r.headers["etag"]})
    assert again.status == 304 and again.headers["etag"] == r.headers["etag"]
    assert again.headers["x-cache"].startswith("off")
    assert api.cache.calls == []
    # Not final (no `to`... or a `to` past the sealed point): bypass, and no cache call either.
    live = call(api, "/api/minutes?symbol=ETH&to=253402300799998", env=final_env(), origin=host)
    assert live.headers["x-cache"] == "bypass" and live.headers["cache-control"] == "no-store"
    assert api.cache.calls == []


def test_on_a_custom_domain_final_history_goes_through_the_edge_cache(api):
    api.cache.allow_put = True
    host = "https://tracker.example.com"
    r = call(api, FINAL_PAGE, env=final_env(), origin=host)
    assert r.status == 200 and r.headers["x-cache"] == "miss" and r.headers["etag"]
    assert api.cache.calls == [("match", host + FINAL_PAGE), ("put", host + FINAL_PAGE)]


# -- private reads: READ_TOKEN (issue 19, item 6) ------------------------------------------------

READ_ROUTES = ["/api/stats", "/api/markets", "/api/minutes", "/api/hours", "/api/snapshots", "/api/overview",
               "/api/export", "/api/health", "/api/assets", "/api/compare?asset=BTC"]


class FakeHubStub:
    def __init__(self, seen):
        self.seen = seen

    async def fetch(self, request):
        self.seen.append(request)
        return FakeResponse(None, 101)


def private_env(**vars) -> FakeEnv:
    env = FakeEnv(READ_TOKEN="read-me", **vars)
    env.hub_requests = []
    env.HUB = types.SimpleNamespace(getByName=lambda name: FakeHubStub(env.hub_requests))
    # /api/stats and /api/health ask the shards: none answer here, which is fine (reported as failed).
    env.TRACKER = env.PARADEX_TRACKER = types.SimpleNamespace(getByName=lambda name: None)
    return env


@pytest.mark.parametrize("path", READ_ROUTES)
def test_with_a_read_token_every_data_route_needs_it(api, path):
    env = private_env()
    r = call(api, path, env=env)
    assert r.status == 401, r.body
    assert "READ_TOKEN" in r.json()["error"] and r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["access-control-allow-origin"] == "*"  # a page elsewhere can read why
    assert env.DB.executed == []  # refused before any D1 read
    assert "wrong read token" in call(api, path, env=env, headers={"authorization": "Bearer nope"}).json()["error"]
    for token in ("read-me", "secret"):  # READ_TOKEN, or ADMIN_TOKEN
        ok = call(api, path, env=env, headers={"authorization": f"Bearer {token}"})
        assert ok.status != 401, (path, token, ok.body)


def test_without_a_read_token_reads_stay_public(api):
    assert call(api, "/api/markets").status == 200
    assert call(api, "/api/markets", headers={"authorization": "Basic whatever"}).status == 200


def test_the_contract_and_the_page_stay_public_and_preflights_allow_the_header(api):
    env = private_env()
    assert call(api, "/api/openapi.json", env=env).status == 200
    pre = call(api, "/api/minutes", "OPTIONS", env=env)
    assert pre.status == 204 and "authorization" in pre.headers["access-control-allow-headers"]
    # Control keeps the admin token alone: the read token does not start anything.
    r = call(api, "/api/start", "POST", env=env, headers={"authorization": "Bearer read-me"})
    assert r.status == 401 and r.json()["error"] == "wrong bearer token"


def test_the_live_socket_takes_the_read_token_as_a_subprotocol_or_a_header(api):
    import base64

    env = private_env()
    own = {"origin": "https://tracker.test", "upgrade": "websocket"}
    r = call(api, "/ws", env=env, headers=own)
    assert r.status == 401 and "READ_TOKEN" in r.json()["error"] and env.hub_requests == []
    wrong = base64.urlsafe_b64encode(b"nope").decode().rstrip("=")
    r = call(api, "/ws", env=env, headers={**own, "sec-websocket-protocol": f"lighter-tracker, bearer.{wrong}"})
    assert r.status == 401 and r.json()["error"] == "wrong read token"
    right = base64.urlsafe_b64encode(b"read-me").decode().rstrip("=")
    assert call(api, "/ws", env=env, headers={**own, "sec-websocket-protocol": f"lighter-tracker, bearer.{right}"}).status == 101
    assert call(api, "/ws", env=env, headers={**own, "authorization": "Bearer secret"}).status == 101
    assert len(env.hub_requests) == 2
    # The origin is still checked first, token or not.
    assert call(api, "/ws", env=env, headers={"upgrade": "websocket", "authorization": "Bearer read-me"}).status == 403


# -- LIGHTER_MARKETS / PARADEX_MARKETS (issue 19, item 2) ------------------------------------------


def test_markets_and_overview_tell_tracked_markets_from_the_rest(api):
    env = FakeEnv(LIGHTER_MARKETS="ETH,NOPE")
    env.DB.answers[sql.LIGHTER.API_SELECT_MARKETS] = [
        {"market_index": 0, "symbol": "ETH", "active": 1},
        {"market_index": 1, "symbol": "BTC", "active": 1},  # left out by a deploy; not refreshed yet
        {"market_index": 2, "symbol": "SOL", "active": 0},
    ]
    empty = {f"{p}{c}": None for p, cols in (("w_", sql.OVERVIEW_WINDOW_COLUMNS), ("m_", sql.OVERVIEW_MINUTE_COLUMNS))
             for c in cols}
    env.DB.answers[sql.LIGHTER.API_OVERVIEW] = [{"market_index": 0, "symbol": "ETH", **empty},
                                                {"market_index": 1, "symbol": "BTC", **empty}]
    body = call(api, "/api/markets", env=env).json()
    assert [(m["symbol"], m["active"], m["tracked"]) for m in body["markets"]] == [
        ("ETH", True, True), ("BTC", True, False), ("SOL", False, False)]
    assert body["allowlist"] == ["ETH", "NOPE"]
    assert [m["symbol"] for m in call(api, "/api/overview", env=env).json()["markets"]] == ["ETH"]
    # Paradex's own list (none here): every market of it is tracked.
    assert call(api, "/api/markets?exchange=paradex", env=env).json()["allowlist"] is None


# -- the asset map and the compare route (issue 20) ----------------------------------------------

BTC_P = 252258115184701


def both_env(**vars) -> FakeEnv:
    """Both exchanges enabled, each listing BTC (and Lighter a spot market and SOL)."""
    env = FakeEnv(**{"ENABLED_EXCHANGES": "lighter,paradex", **vars})
    env.DB.answers[sql.LIGHTER.API_ASSET_MARKETS] = [
        {"market_index": 1, "symbol": "BTC", "market_type": "perp", "base_asset": "BTC", "active": 1},
        {"market_index": 2, "symbol": "SOL", "market_type": "perp", "base_asset": "SOL", "active": 1},
        {"market_index": 2049, "symbol": "BTC/USDC", "market_type": "spot", "base_asset": "BTC", "active": 1},
    ]
    env.DB.answers[sql.PARADEX.API_ASSET_MARKETS] = [
        {"market_index": BTC_P, "symbol": "BTC-USD-PERP", "market_type": "perp", "base_asset": "BTC", "active": 1},
    ]
    return env


def series_row(ts: int, mid: float) -> dict:
    return {c: (ts if c == "timestamp" else mid if c in ("twap_mid", "avg_mid") else 1) for c in sql.COMPARE_COLUMNS}


def test_assets_lists_those_on_both_exchanges(api):
    env = both_env()
    body = call(api, "/api/assets", env=env).json()
    assert body == {"assets": [{"asset": "BTC", "source": "derived", "markets": {
        "lighter": {"symbol": "BTC", "market_index": 1}, "paradex": {"symbol": "BTC-USD-PERP", "market_index": BTC_P}}}],
        "count": 1, "exchanges": ["lighter", "paradex"], "note": None, "pairsNotListed": []}
    assert sorted(env.DB.executed) == sorted([(sql.LIGHTER.API_ASSET_MARKETS, ()), (sql.PARADEX.API_ASSET_MARKETS, ())])
    assert call(api, "/api/assets?asset=BTC", env=env).status == 400  # takes no parameters


def test_assets_with_one_exchange_enabled_says_so_and_reads_only_its_markets(api):
    env = both_env(ENABLED_EXCHANGES="lighter", ASSET_PAIRS="PEPE=1000PEPE:kPEPE-USD-PERP")
    body = call(api, "/api/assets", env=env).json()
    assert body["assets"] == [] and body["exchanges"] == ["lighter"]
    assert body["note"].startswith("only lighter is enabled (ENABLED_EXCHANGES=lighter)")
    assert body["pairsNotListed"] == [{"asset": "PEPE", "exchange": "lighter", "symbol": "1000PEPE"}]
    assert env.DB.executed == [(sql.LIGHTER.API_ASSET_MARKETS, ())]


def test_compare_answers_both_exchanges_aligned_with_the_basis(api):
    env = both_env()
    env.DB.answers[sql.LIGHTER.API_COMPARE["minutes"]] = [series_row(120_000, 100.0), series_row(60_000, 100.0)]
    env.DB.answers[sql.PARADEX.API_COMPARE["minutes"]] = [series_row(180_000, 100.2), series_row(120_000, 100.1)]
    r = call(api, "/api/compare?asset=BTC&limit=2", env=env)
    assert r.status == 200, r.body
    body = r.json()
    assert body["timestamps"] == [180_000, 120_000] and body["count"] == 2 and body["note"] is None
    assert body["series"]["lighter"]["twap_mid"] == [None, 100.0]
    assert body["basis_bps"][0] is None and abs(body["basis_bps"][1] - 10.0) < 1e-9
    assert r.headers["cache-control"] == "no-store" and "x-cache" not in r.headers  # no `to`: live
    # Each exchange's part with its market bound, newest `limit` of the range; no offset, no page start.
    assert (sql.LIGHTER.API_COMPARE["minutes"], (1, 0, 253402300799999, 2)) in env.DB.executed
    assert (sql.PARADEX.API_COMPARE["minutes"], (BTC_P, 0, 253402300799999, 2)) in env.DB.executed
    assert all(text in API_STATEMENTS and sql.bind_count(text) == len(params) for text, params in env.DB.executed)


def test_compare_with_an_offset_starts_where_the_union_of_both_says(api):
    env = both_env()
    env.DB.answers[sql.COMPARE_PAGE_START["windows"]] = [{"timestamp": 45_000}]
    r = call(api, "/api/compare?asset=BTC&resolution=windows&offset=3&limit=5&from=10", env=env)
    assert r.status == 200 and r.json()["offset"] == 3
    assert (sql.COMPARE_PAGE_START["windows"], (1, BTC_P, 10, 253402300799999, 3)) in env.DB.executed
    assert (sql.LIGHTER.API_COMPARE["windows"], (1, 10, 45_000, 5)) in env.DB.executed


def test_compare_with_one_exchange_enabled_answers_it_alone_and_says_so(api):
    env = both_env(ENABLED_EXCHANGES="lighter")
    env.DB.answers[sql.LIGHTER.API_COMPARE["hours"]] = [series_row(3_600_000, 100.0)]
    body = call(api, "/api/compare?asset=BTC&resolution=hours&offset=1", env=env).json()
    assert body["exchanges"] == ["lighter"] and list(body["series"]) == ["lighter"] and body["basis_bps"] is None
    assert body["note"].startswith("only lighter is enabled")
    # Only the page start names Paradex's table (every schema has it), binding -1: no market.
    assert not any("paradex_" in text for text, _ in env.DB.executed if text != sql.COMPARE_PAGE_START["hours"])
    assert (sql.COMPARE_PAGE_START["hours"], (1, -1, 0, 253402300799999, 1)) in env.DB.executed


def test_compare_errors(api):
    env = both_env()
    r = call(api, "/api/compare?asset=btc", env=env)
    assert r.status == 404 and r.json()["error"].startswith("unknown asset 'btc' (did you mean 'BTC'?")
    assert r.headers["access-control-allow-origin"] == "*"
    assert call(api, "/api/compare?asset=SOL", env=env).json()["note"].startswith("SOL is tracked on lighter only")
    assert call(api, "/api/compare?asset=NOPE", env=env).status == 404
    for query, words in (("", "asset is required"), ("asset=BTC&resolution=days", "resolution must be one of"),
                         ("asset=BTC&limit=1001", "limit must be at most 1000")):
        r = call(api, f"/api/compare?{query}", env=env)
        assert r.status == 400 and words in r.json()["error"], (query, r.body)


def test_a_final_compare_page_is_cached_only_when_every_exchange_sealed_it(api):
    api.cache.allow_put = True
    env = both_env()
    env.DB.sealed_until = 10 * 60_000
    host = "https://tracker.example.com"
    path = "/api/compare?asset=BTC&from=0&to=60000"
    r = call(api, path, env=env, origin=host)
    assert r.status == 200 and r.headers["x-cache"] == "miss" and r.headers["etag"], r.headers
    assert (sql.LIGHTER.API_SEALED_UNTIL, ()) in env.DB.executed and (sql.PARADEX.API_SEALED_UNTIL, ()) in env.DB.executed
    assert api.cache.calls == [("match", host + path), ("put", host + path)]
    # The row ending after the sealed point: not final, never stored.
    live = call(api, "/api/compare?asset=BTC&resolution=hours&from=0&to=60000", env=env, origin=host)
    assert live.headers["x-cache"] == "bypass" and live.headers["cache-control"] == "no-store"
