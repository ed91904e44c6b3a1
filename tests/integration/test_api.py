"""The JSON API (issue #4) against the real Worker: wrangler dev tracking the simulator.

Uses the session's `worker` and `simulator` (tests/conftest.py). Robust to
tracking being on or off when the module starts: it starts tracking itself
(idempotent) and waits for rows. It leaves tracking on (restarted after its own
stop test) and the simulator's faults reset.

Nothing here measures time: every wait polls for a state, with a generous timeout.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from typing import Any, Callable

import pytest
import requests

import devstack
from tracker.sql import MINUTE_COLUMNS, OVERVIEW_MINUTE_COLUMNS, OVERVIEW_WINDOW_COLUMNS, SNAPSHOT_COLUMNS

ROW_ROUTES = {"/api/minutes": ("minutes", MINUTE_COLUMNS), "/api/snapshots": ("snapshots", SNAPSHOT_COLUMNS)}
PUBLIC_GET = (
    "/api/stats", "/api/markets", "/api/minutes", "/api/snapshots", "/api/overview", "/api/export",
    "/api/health", "/api/openapi.json",
)
CONTROL = ("/api/start", "/api/stop")


def poll(fn: Callable[[], Any], timeout: float = 60.0, what: str = "condition", interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def error_of(r: requests.Response, status: int) -> str:
    """The answer is `status` with a JSON {"error": "..."} body; returns the message."""
    assert r.status_code == status, f"{r.request.method} {r.url} -> {r.status_code}: {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body["error"]


@pytest.fixture(scope="module")
def api(worker):
    """The session worker, tracking, with window and minute rows in D1."""
    r = worker.admin_post("/api/start")
    assert r.status_code == 200, r.text[:500]
    assert r.json()["isTracking"] is True
    worker.wait_json("/api/snapshots", lambda b: b["count"] > 0, timeout=90)
    # Both exchanges' market lists are in: the asset map has the documented example asset.
    worker.wait_json("/api/assets", lambda b: any(a["asset"] == "BTC" for a in b["assets"]), timeout=60)
    if worker.get_json("/api/minutes")["count"] == 0:
        # Minutes are rolled up once a minute is complete. Stopping rolls up the
        # partial one at once, so a stop + start gives minute rows without a wait.
        assert worker.admin_post("/api/stop").status_code == 200
        assert worker.admin_post("/api/start").status_code == 200
        worker.wait_json("/api/minutes", lambda b: b["count"] > 0, timeout=90)
    return worker


@pytest.fixture(scope="module")
def openapi(worker) -> dict:
    return worker.get_json("/api/openapi.json")


def active_markets(api) -> list[dict]:
    return [m for m in api.get_json("/api/markets")["markets"] if m["active"]]


# -- a minimal JSON Schema check (what the OpenAPI document uses) --------------------------

_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def conforms(doc: dict, schema: dict, value: Any, where: str = "$") -> None:
    schema = resolve(doc, schema)
    if "anyOf" in schema:
        failures = []
        for option in schema["anyOf"]:
            try:
                conforms(doc, option, value, where)
                return
            except AssertionError as exc:
                failures.append(str(exc))
        raise AssertionError(f"{where}: matches no anyOf option: {failures}")
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} != {schema['const']!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        assert any(_TYPES[k](value) for k in kinds), f"{where}: {value!r} is not {kinds}"
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            assert key in value, f"{where}: required key {key!r} missing (has {sorted(value)})"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                conforms(doc, sub, value[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value[:50]):
            conforms(doc, schema["items"], item, f"{where}[{i}]")


def documented_schema(doc: dict, path: str, method: str, status: int, media: str = "application/json") -> dict:
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, not documented ({sorted(responses)})"
    response = resolve(doc, responses[str(status)])
    return response.get("content", {}).get(media, {}).get("schema", {})


# -- /api/openapi.json kept true ----------------------------------------------------------


def test_openapi_document_served(openapi):
    assert openapi["openapi"].startswith("3.1")
    assert set(openapi["paths"]) >= set(PUBLIC_GET) | set(CONTROL)


def test_every_documented_operation_answers_as_documented(api, openapi):
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            if method == "post":  # control: unauthenticated here; the authorized calls are tested below
                r = api.post(path)
                conforms(openapi, documented_schema(openapi, path, method, r.status_code), r.json(), path)
                assert r.status_code == 401
                continue
            # A required parameter takes its documented example (/api/compare's asset).
            required = {p["name"]: p["example"] for p in map(lambda x: resolve(openapi, x), op.get("parameters", ()))
                        if p.get("required") and p["in"] == "query"}
            r = api.get(path, params=required)
            documented_schema(openapi, path, method, r.status_code)  # the status itself is documented
            ctype = r.headers.get("content-type", "")
            if ctype.startswith("application/json"):
                conforms(openapi, documented_schema(openapi, path, method, r.status_code), r.json(), path)
            if path == "/ws":
                assert r.status_code == 403  # no Origin: refused before anything else
            elif path != "/api/health":  # 503 is documented for health while the feed is down
                assert r.status_code == 200, (path, r.text[:300])
            for param in op.get("parameters", ()):
                if resolve(openapi, param)["in"] != "query":
                    continue  # /ws's headers: tests/integration/test_live_socket.py
                name = resolve(openapi, param)["name"]
                bad = api.get(path, params={**required, name: "\u0000not valid"})
                assert "400" in op["responses"]
                conforms(openapi, documented_schema(openapi, path, method, 400), bad.json(), f"{path}?{name}")
                assert bad.status_code == 400, (path, name, bad.text[:300])


def test_every_route_is_documented(api, openapi):
    """Routes come from the document (tracker/openapi.py): anything else is 404, and
    each path's Allow lists exactly its documented methods."""
    for path in ("/api/nothing", "/api", "/api/minutes/extra", "/templates/base.html.j2", "/admin"):
        assert "unknown route" in error_of(api.get(path), 404)
    for path, item in openapi["paths"].items():
        documented = {m.upper() for m in item}
        wrong = "DELETE"
        r = api.request(wrong, path)
        error_of(r, 405)
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        assert allowed - {"OPTIONS"} == documented, (path, allowed)


def test_live_socket_upgrades_through_the_router(api):
    """GET /ws with an Upgrade reaches the DashboardHub object (documented 101)."""
    from websockets.sync.client import connect

    # The dashboard's own origin, as a browser on the page would send it.
    with connect(api.url.replace("http://", "ws://", 1) + "/ws", origin=api.url, open_timeout=30) as ws:
        hello = json.loads(ws.recv(timeout=30))
    assert hello["type"] == "hello"


# -- stats, markets -----------------------------------------------------------------------


def test_stats(api, openapi):
    stats = api.get_json("/api/stats")
    conforms(openapi, openapi["components"]["schemas"]["Stats"], stats)
    assert stats["isTracking"] is True
    assert stats["database"]["snapshots"] > 0 and stats["database"]["minutes"] > 0
    assert len(stats["shards"]) >= 1 and stats["shards"][0]["shard"] == 0


def test_markets_lists_the_simulators_markets(api, simulator):
    body = api.get_json("/api/markets")
    listed = simulator.get("/api/v1/orderBooks")["order_books"]
    assert body["count"] == len(body["markets"]) == len(listed)
    assert [m["market_index"] for m in body["markets"]] == sorted(b["market_id"] for b in listed)
    assert {m["symbol"] for m in body["markets"]} == {b["symbol"] for b in listed}
    assert all(m["active"] is True for m in body["markets"])


# -- minutes, snapshots ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ROW_ROUTES)
def test_rows_default_newest_first_with_every_column(api, path):
    key, columns = ROW_ROUTES[path]
    body = api.get_json(path)
    rows = body[key]
    assert body["count"] == len(rows) and 0 < len(rows) <= 60
    assert (body["limit"], body["offset"]) == (60, 0)
    assert all(list(r) == list(columns) for r in rows)
    order = [(-r["timestamp"], r["symbol"]) for r in rows]
    assert order == sorted(order), "newest first, then by symbol"
    assert all(r["avg_bid"] < r["avg_ask"] and r["tick_count"] > 0 for r in rows)


@pytest.mark.parametrize("path", ROW_ROUTES)
def test_rows_pages_with_limit_and_offset(api, path):
    key, _ = ROW_ROUTES[path]
    newest = api.get_json(path, params={"limit": 1})[key][0]["timestamp"]
    # Bounded by `to`, later flushes cannot shift the pages under the test.
    whole = api.get_json(path, params={"to": newest, "limit": 6})[key]
    first = api.get_json(path, params={"to": newest, "limit": 3})[key]
    second = api.get_json(path, params={"to": newest, "limit": 3, "offset": 3})[key]
    keys = lambda rows: [(r["symbol"], r["timestamp"]) for r in rows]  # noqa: E731
    assert keys(first) + keys(second) == keys(whole)
    assert len(api.get_json(path, params={"limit": 1000})[key]) <= 1000
    assert api.get_json(path, params={"offset": 1_000_000})[key] == []


@pytest.mark.parametrize("path", ROW_ROUTES)
def test_rows_filter_by_symbol_and_inclusive_time_range(api, path):
    key, _ = ROW_ROUTES[path]
    # A market with rows on this route (the fixture waits for some; an active market's
    # first minute may not be rolled yet when this module runs first on its worker).
    market = api.get_json(path, params={"limit": 1})[key][0]["symbol"]
    assert market in {m["symbol"] for m in active_markets(api)}
    rows = api.get_json(path, params={"symbol": market, "limit": 1000})[key]
    assert rows and {r["symbol"] for r in rows} == {market}
    t = rows[0]["timestamp"]
    exact = api.get_json(path, params={"from": t, "to": t, "limit": 1000})[key]
    assert exact and {r["timestamp"] for r in exact} == {t}
    assert market in {r["symbol"] for r in exact}
    after = api.get_json(path, params={"from": t + 1, "symbol": market})[key]
    assert all(r["timestamp"] > t for r in after)
    before = api.get_json(path, params={"to": t - 1, "symbol": market, "limit": 1000})[key]
    assert all(r["timestamp"] < t for r in before)
    assert api.get_json(path, params={"from": 1, "to": 2})[key] == []
    # `from` after `to`: an empty range, answered (each bound is valid on its own).
    assert api.get_json(path, params={"from": t, "to": t - 1, "symbol": market})[key] == []


BAD_ROW_QUERIES = [
    ({"limit": "abc"}, "limit must be an integer"),
    ({"limit": "-1"}, "limit must not be negative"),
    ({"limit": "0"}, "limit must be at least 1"),
    ({"limit": "1001"}, "limit must be at most 1000"),
    ({"limit": "2.5"}, "limit must be an integer"),
    ({"offset": "-3"}, "offset must not be negative"),
    ({"offset": "ten"}, "offset must be an integer"),
    ({"from": "yesterday"}, "from must be a timestamp in milliseconds"),
    ({"to": "1.5"}, "to must be a timestamp in milliseconds"),
    ({"to": "99999999999999999999"}, "to must be at most"),
    ({"symbol": ""}, "symbol is empty"),
    ({"symbl": "ETH"}, "unknown query parameter 'symbl'"),
    ([("limit", "1"), ("limit", "2")], "'limit' is given more than once"),
]


@pytest.mark.parametrize("path", ROW_ROUTES)
@pytest.mark.parametrize(("params", "words"), BAD_ROW_QUERIES)
def test_rows_refuse_bad_input(api, path, params, words):
    r = api.get(path, params=params)
    assert words in error_of(r, 400)
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", [*ROW_ROUTES, "/api/hours", "/api/export"])
@pytest.mark.parametrize("symbol", ["NOPE", "eth", "ETH' OR '1'='1"])
def test_a_symbol_no_market_has_is_not_found(api, path, symbol):
    """Well formed but unknown: 404 (a resource that does not exist), with the same help."""
    r = api.get(path, params={"symbol": symbol})
    assert error_of(r, 404) == f"unknown symbol {symbol!r}: /api/markets lists the symbols (case-sensitive)"
    assert r.headers["access-control-allow-origin"] == "*"


# -- overview -------------------------------------------------------------------------------


def test_overview_one_row_per_active_market(api, openapi):
    before = {r["symbol"]: r["timestamp"] for r in api.get_json("/api/snapshots", params={"limit": 100})["snapshots"]}
    body = api.get_json("/api/overview")
    conforms(openapi, openapi["components"]["schemas"]["Overview"], body)
    markets = active_markets(api)
    assert body["count"] == len(body["markets"]) == len(markets)
    assert [(m["market_index"], m["symbol"]) for m in body["markets"]] == [
        (m["market_index"], m["symbol"]) for m in markets
    ]
    for row in body["markets"]:
        window, minute = row["window"], row["minute"]
        assert window is not None and list(window) == list(OVERVIEW_WINDOW_COLUMNS)
        assert window["timestamp"] >= before.get(row["symbol"], 0), "the latest window, not an older one"
        assert window["avg_bid"] < window["avg_mid"] < window["avg_ask"]
        assert row["age_ms"] == max(0, body["now"] - window["timestamp"] - window["window_ms"])
        if minute is not None:
            assert list(minute) == list(OVERVIEW_MINUTE_COLUMNS)
    latest_minute = api.get_json("/api/minutes", params={"limit": 1})["minutes"][0]
    row = next(r for r in body["markets"] if r["symbol"] == latest_minute["symbol"])
    assert row["minute"]["timestamp"] >= latest_minute["timestamp"] - 60_000


def test_overview_takes_no_parameters(api):
    assert "unknown query parameter 'symbol'" in error_of(api.get("/api/overview", params={"symbol": "ETH"}), 400)


# -- export ---------------------------------------------------------------------------------


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_export_csv_streams_a_download(api):
    newest = api.get_json("/api/minutes", params={"limit": 1})["minutes"][0]["timestamp"]
    expected = api.get_json("/api/minutes", params={"to": newest, "limit": 1000})["minutes"]
    r = api.get("/api/export", params={"to": newest})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="lighter-minutes-all-to-{newest}.csv"'
    assert "content-length" not in r.headers and r.headers.get("transfer-encoding") == "chunked"
    assert r.headers["access-control-allow-origin"] == "*"
    records = parse_csv(r.text)
    assert records[0] == list(MINUTE_COLUMNS)
    got = [(rec[0], int(rec[2])) for rec in records[1:]]
    assert sorted(got, key=lambda k: (k[1], k[0])) == got, "oldest first"
    assert set(got) == {(m["symbol"], m["timestamp"]) for m in expected}


def test_export_json_for_one_symbol_and_range(api, openapi):
    minutes = api.get_json("/api/minutes", params={"limit": 1000})["minutes"]
    symbol = minutes[0]["symbol"]
    stamps = sorted({m["timestamp"] for m in minutes if m["symbol"] == symbol})
    lo, hi = stamps[0], stamps[-1]
    r = api.get("/api/export", params={"symbol": symbol, "from": lo, "to": hi, "format": "json"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"] == f'attachment; filename="lighter-minutes-{symbol}-{lo}-{hi}.json"'
    body = r.json()
    conforms(openapi, openapi["components"]["schemas"]["MinuteList"], body)
    assert body["count"] == len(body["minutes"]) == len(stamps)
    assert [m["timestamp"] for m in body["minutes"]] == stamps
    assert {m["symbol"] for m in body["minutes"]} == {symbol}


def test_export_empty_range_is_a_header_only_csv(api):
    r = api.get("/api/export", params={"from": 1, "to": 2})
    assert r.status_code == 200
    assert parse_csv(r.text) == [list(MINUTE_COLUMNS)]
    assert api.get_json("/api/export", params={"from": 1, "to": 2, "format": "json"}) == {"minutes": [], "count": 0}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"format": "xml"}, "format must be one of csv, json, got 'xml'"),
        ({"from": "abc"}, "from must be a timestamp"),
        ({"limit": "10"}, "unknown query parameter 'limit'"),
    ],
)
def test_export_refuses_bad_input(api, params, words):
    assert words in error_of(api.get("/api/export", params=params), 400)


def d1_execute(worker, statement: str) -> None:
    """Run SQL on the session worker's local D1 (the same files wrangler dev uses)."""
    argv = devstack.wrangler_argv(
        "d1", "execute", "DB", "--local", "--yes", "--persist-to", str(worker.persist_dir), "--command", statement
    )
    proc = subprocess.run(
        argv, cwd=str(devstack.ROOT), env=devstack.tool_env({"CI": "true"}), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


SYNTHETIC_SYMBOLS = 7  # 2000-row pages then end mid-timestamp: the cursor's symbol part matters
SYNTHETIC_MINUTES = 715  # 7 x 715 = 5005 rows: three pages (2000, 2000, 1005)


def test_export_pages_through_d1_beyond_one_page(api):
    """5005 minute rows for synthetic symbols, 23 to 11 hours old (inside the 24 h
    retention, older than anything the session tracked): the export must return
    each exactly once, in order, across D1 pages of 2000. Removed afterwards."""
    now = int(time.time() * 1000)
    base = (now - 23 * 3_600_000) // 60_000 * 60_000
    last = base + (SYNTHETIC_MINUTES - 1) * 60_000
    # The columns up to `windows` (the depth columns keep their NULL / 0 defaults).
    columns = ", ".join(MINUTE_COLUMNS[: MINUTE_COLUMNS.index("windows") + 1])
    d1_execute(
        api,
        f"INSERT INTO lighter_minutes ({columns}) "
        f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {SYNTHETIC_MINUTES - 1}), "
        f"s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < {SYNTHETIC_SYMBOLS - 1}) "
        f"SELECT 'ZZEXPORT' || k, 90000 + k, {base} + i * 60000, 1.0, 2.0, 1.0, 4, 1.5, 6666.5, 1.0, 1.0, "
        f"1.0, 1.0, 1.0, 2.0, NULL, 60000, 4 FROM n, s",
    )
    try:
        r = api.get("/api/export", params={"from": base, "to": last}, stream=True)
        assert r.status_code == 200
        records = parse_csv(b"".join(r.iter_content(chunk_size=65536)).decode())
        keys = [(int(rec[2]), rec[0]) for rec in records[1:]]
        assert len(keys) == SYNTHETIC_SYMBOLS * SYNTHETIC_MINUTES
        assert keys == sorted(set(keys)), "each row once, oldest first"
        assert records[1][MINUTE_COLUMNS.index("twap_mid")] == ""  # NULL -> empty field
        body = api.get_json("/api/export", params={"from": base, "to": last, "format": "json"})
        assert body["count"] == len(body["minutes"]) == SYNTHETIC_SYMBOLS * SYNTHETIC_MINUTES
        assert [(m["timestamp"], m["symbol"]) for m in body["minutes"]] == keys
    finally:
        d1_execute(api, "DELETE FROM lighter_minutes WHERE symbol LIKE 'ZZEXPORT%'")


# -- health ---------------------------------------------------------------------------------


def health(api) -> tuple[int, dict]:
    r = api.get("/api/health")
    return r.status_code, r.json()


def wait_health_ok(api, timeout: float = 60.0) -> dict:
    return poll(lambda: (lambda s, b: b if s == 200 and b["status"] == "ok" else None)(*health(api)),
                timeout=timeout, what="health ok")


def test_health_ok_while_tracking(api, openapi):
    body = wait_health_ok(api)
    conforms(openapi, documented_schema(openapi, "/api/health", "get", 200), body)
    assert body["isTracking"] is True and body["shards"][0]["connected"] is True
    assert body["shards"][0]["ageMs"] is not None and body["shards"][0]["ageMs"] <= body["staleAfterMs"]


def test_health_takes_no_parameters(api):
    assert "unknown query parameter" in error_of(api.get("/api/health", params={"verbose": "1"}), 400)


# -- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PUBLIC_GET)
def test_public_routes_allow_any_origin_and_answer_preflights(api, path):
    r = api.get(path, headers={"Origin": "https://example.org"})
    assert r.headers.get("access-control-allow-origin") == "*"
    pre = api.request(
        "OPTIONS", path, headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"}
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "GET" in pre.headers["access-control-allow-methods"]


@pytest.mark.parametrize("path", CONTROL)
def test_control_routes_are_not_cross_origin(api, path):
    pre = api.request(
        "OPTIONS", path,
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"},
    )
    assert "cross-origin" in error_of(pre, 405)
    assert "access-control-allow-origin" not in pre.headers
    r = api.post(path, headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in r.headers


# -- control --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONTROL)
@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": "Bearer wrong-token"}, "wrong bearer token"),
        ({"Authorization": "Basic dGVzdC10b2tlbg=="}, "Bearer scheme"),
        ({"Authorization": "test-token"}, "Bearer scheme"),
    ],
)
def test_control_refuses_without_the_token(api, path, headers, words):
    r = api.post(path, headers=headers)
    assert words in error_of(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_control_wrong_method(api):
    r = api.get("/api/start")
    assert "accepts POST, not GET" in error_of(r, 405)
    assert r.headers["allow"] == "POST"


def test_start_is_idempotent(api, openapi):
    for _ in range(2):
        r = api.admin_post("/api/start")
        assert r.status_code == 200, r.text[:300]
        conforms(openapi, openapi["components"]["schemas"]["Control"], r.json())
        assert r.json()["isTracking"] is True


def test_stop_then_idle_health_then_start_again(api, openapi):
    for _ in range(2):  # stop is idempotent too
        r = api.admin_post("/api/stop")
        assert r.status_code == 200, r.text[:300]
        conforms(openapi, openapi["components"]["schemas"]["Control"], r.json())
        assert r.json()["isTracking"] is False
    assert api.get_json("/api/stats")["isTracking"] is False
    status, body = health(api)
    assert (status, body["status"], body["isTracking"]) == (200, "idle", False)
    r = api.admin_post("/api/start")
    assert r.status_code == 200 and r.json()["isTracking"] is True
    wait_health_ok(api)


def test_health_503_while_the_feed_is_down_or_starved(api, simulator, openapi):
    """The simulator closes the connection and refuses the next subscriptions for a
    few seconds: health answers 503 (down while reconnecting, stale while connected
    without frames), then 200 once the tracker has resubscribed."""

    def run_is_past_start_up() -> bool:
        # Within STALE_FEED_SECONDS of a start, a silent feed still counts as starting up.
        started = api.get_json("/api/stats")["startedAt"]
        _, body = health(api)
        return started is not None and body["now"] - started > body["staleAfterMs"]

    poll(run_is_past_start_up, timeout=120, interval=1.0, what="the run to be past its start-up grace")
    wait_health_ok(api)
    simulator.control("refuse_subscriptions", seconds=5)
    simulator.control("close", code=1011, reason="test: health")
    try:
        status, body = poll(lambda: (lambda s, b: (s, b) if s == 503 else None)(*health(api)),
                            timeout=30, interval=0.1, what="health 503")
        conforms(openapi, documented_schema(openapi, "/api/health", "get", 503), body)
        assert body["status"] in ("down", "stale") and body["reason"], body
    finally:
        simulator.control("reset")
    wait_health_ok(api, timeout=120)
