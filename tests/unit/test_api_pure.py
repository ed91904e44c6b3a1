"""The JSON API's pure parts in CPython: health verdicts, export formatting, answer
shapes, the API's SQL (run on sqlite3 against schema.sql) and the OpenAPI document."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from tracker.openapi import DOCUMENT, PATHS, operations
from tracker import sql
from tracker.export import (
    EXPORT_COLUMNS,
    PAGE_SIZE,
    CsvExport,
    JsonExport,
    content_disposition,
    export_filename,
    first_cursor,
    next_cursor,
    slice_ms,
)
from tracker.health import assess, shard_health
from tracker.validation import MAX_TIMESTAMP_MS
from tracker.views import market_row, overview_row

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_700_000_100_000
STALE = 30_000


# -- health --------------------------------------------------------------------------


def shard(**over) -> dict:
    base = {
        "shard": 0,
        "isTracking": True,
        "connected": True,
        "lastMessageAt": NOW - 1_000,
        "startedAt": NOW - 600_000,
        "reconnectAt": None,
        "lastError": None,
    }
    return {**base, **over}


def test_idle_when_tracking_is_off():
    status, body = assess([shard(isTracking=False, connected=False, lastMessageAt=None)], NOW, STALE)
    assert (status, body["status"], body["isTracking"]) == (200, "idle", False)
    assert "reason" not in body


def test_ok_when_connected_and_fresh():
    status, body = assess([shard()], NOW, STALE)
    assert (status, body["status"]) == (200, "ok")
    assert body["shards"][0]["ageMs"] == 1_000
    assert body["lastMessageAt"] == NOW - 1_000


def test_failing_d1_writes_are_unhealthy_once_windows_pile_up():
    # One window waiting for the next alarm is a passing hiccup; two mean D1 keeps failing.
    assert assess([shard(pendingWindows=1)], NOW, STALE)[0] == 200
    status, body = assess([shard(pendingWindows=3, lastError="D1 flush: SQLITE_BUSY")], NOW, STALE)
    assert (status, body["status"]) == (503, "storage")
    assert "3 windows waiting" in body["reason"] and "SQLITE_BUSY" in body["reason"]


def test_frames_dropped_as_late_in_the_last_minute_are_degraded():
    status, body = assess([shard(lateLastMinute=42, feedLagMs=14_300, closeDelayMs=10_000)], NOW, STALE)
    assert (status, body["status"]) == (503, "degraded")
    assert body["reason"] == ("42 frame(s) dropped as late in the last minute: the feed lags 14.3s, "
                              "windows wait 10.0s for it beyond FLUSH_GRACE_MS (at most 10s)")
    assert body["shards"][0]["feedLagMs"] == 14_300 and body["shards"][0]["lateLastMinute"] == 42
    # A lag the windows absorb is no concern.
    assert assess([shard(lateLastMinute=0, feedLagMs=7_000, closeDelayMs=7_000)], NOW, STALE)[1]["status"] == "ok"


def test_frames_dropped_as_late_while_starting_are_degraded_too():
    # A new run reconnecting (not an outage yet) while its feed lags beyond the bound.
    stats = shard(startedAt=NOW - 5_000, connected=False, lastMessageAt=None, lateLastMinute=7, feedLagMs=13_300)
    status, body = assess([stats], NOW, STALE)
    assert (status, body["status"]) == (503, "degraded") and "the feed lags 13.3s" in body["reason"]


def test_degraded_ranks_below_storage_and_above_ok():
    late = shard(lateLastMinute=3, feedLagMs=12_000)
    assert assess([shard(), late], NOW, STALE)[1]["status"] == "degraded"
    assert assess([late, shard(shard=1, pendingWindows=3)], NOW, STALE)[1]["status"] == "storage"
    assert assess([late, shard(shard=1, lastMessageAt=NOW - STALE - 1)], NOW, STALE)[1]["status"] == "stale"


def test_stale_after_the_limit():
    status, body = assess([shard(lastMessageAt=NOW - STALE - 1)], NOW, STALE)
    assert (status, body["status"]) == (503, "stale")
    assert "no frame for 30s" in body["reason"]


def test_exactly_at_the_limit_is_still_fresh():
    assert assess([shard(lastMessageAt=NOW - STALE)], NOW, STALE)[0] == 200


def test_frame_from_the_future_counts_as_age_zero():
    status, body = assess([shard(lastMessageAt=NOW + 5_000)], NOW, STALE)
    assert status == 200 and body["shards"][0]["ageMs"] == 0


def test_down_when_disconnected_says_why_and_when_it_retries():
    stats = shard(connected=False, lastMessageAt=None, lastError="socket closed 1006", reconnectAt=NOW + 2_500)
    status, body = assess([stats], NOW, STALE)
    assert (status, body["status"]) == (503, "down")
    assert body["reason"] == "feed disconnected: socket closed 1006 (reconnecting in 2.5s)"


def test_starting_up_is_not_an_outage():
    fresh = shard(startedAt=NOW - 1_000, connected=False, lastMessageAt=None)
    assert assess([fresh], NOW, STALE)[0] == 200
    assert "connecting" in assess([fresh], NOW, STALE)[1]["detail"]
    waiting = shard(startedAt=NOW - 1_000, lastMessageAt=None)
    assert assess([waiting], NOW, STALE)[0] == 200


def test_starting_with_an_error_is_down():
    stats = shard(startedAt=NOW - 1_000, connected=False, lastMessageAt=None, lastError="market list: HTTP 500")
    assert assess([stats], NOW, STALE)[1]["status"] == "down"


def test_connected_without_any_frame_long_after_start_is_stale():
    assert assess([shard(lastMessageAt=None)], NOW, STALE)[1]["status"] == "stale"


def test_worst_shard_wins_and_is_named():
    status, body = assess([shard(), shard(shard=1, connected=False, lastMessageAt=None)], NOW, STALE)
    assert (status, body["status"]) == (503, "down")
    assert body["reason"].startswith("shard 1: feed disconnected")


def test_a_shard_left_idle_while_others_track_is_down():
    verdict = shard_health(shard(isTracking=False), NOW, STALE, tracking=True)
    assert verdict["status"] == "down"


# -- export formatting -------------------------------------------------------------------


def minute(symbol: str, ts: int, **over) -> dict:
    row = {c: 1.5 for c in EXPORT_COLUMNS}
    row.update(symbol=symbol, market_index=0, timestamp=ts, tick_count=7, covered_ms=60_000, windows=4)
    row.update(over)
    return row


def values(row: dict) -> list:
    """A row as the export gets it from D1's raw(): values in EXPORT_COLUMNS order."""
    return [row[c] for c in EXPORT_COLUMNS]


def test_csv_has_a_header_and_one_line_per_row_across_pages():
    fmt = CsvExport()
    first, second = values(minute("ETH", 60_000)), values(minute("B,T\"C", 120_000, twap_mid=None))
    text = fmt.begin() + fmt.page([first]) + fmt.page([second]) + fmt.end()
    assert text.endswith("\r\n")
    records = list(csv.reader(io.StringIO(text, newline="")))
    assert records[0] == list(EXPORT_COLUMNS)
    assert [r[0] for r in records[1:]] == ["ETH", 'B,T"C']
    assert records[2][EXPORT_COLUMNS.index("twap_mid")] == ""
    assert fmt.count == 2


def test_json_export_is_one_valid_document_across_pages():
    fmt = JsonExport()
    pages = [[], [values(minute("A", 1)), values(minute("B", 1))], [values(minute("A", 2))]]
    pieces = [fmt.begin(), *(fmt.page(p) for p in pages), fmt.end()]
    doc = json.loads("".join(pieces))
    assert doc["count"] == 3 and [m["symbol"] for m in doc["minutes"]] == ["A", "B", "A"]
    assert doc["minutes"][0] == minute("A", 1)


def test_empty_exports_are_well_formed():
    fmt = JsonExport()
    assert json.loads(fmt.begin() + fmt.end()) == {"minutes": [], "count": 0}
    fmt = CsvExport()
    assert fmt.begin() + fmt.end() == ",".join(EXPORT_COLUMNS) + "\r\n"


def test_filenames_are_safe():
    assert export_filename(None, 0, MAX_TIMESTAMP_MS, "csv") == "lighter-minutes-all.csv"
    assert export_filename("ETH/USDC", 10, 20, "json") == "lighter-minutes-ETH_USDC-10-20.json"
    assert export_filename("<img src=x>", 0, 20, "csv") == "lighter-minutes-_img_src_x_-to-20.csv"
    assert content_disposition("a.csv") == 'attachment; filename="a.csv"'


def test_cursors():
    assert first_cursor(5) == (5, "")
    assert next_cursor([values(minute("A", 1)), values(minute("B", 9))]) == (9, "B")


# -- answer shapes ---------------------------------------------------------------------


def test_market_row_makes_active_a_boolean():
    assert market_row({"market_index": 3, "symbol": "X", "active": 0}) == {
        "market_index": 3, "symbol": "X", "active": False, "tracked": False}


def test_market_row_says_whether_the_allowlist_tracks_it():
    """LIGHTER_MARKETS narrowed by a deploy: a market it left out is not tracked at once,
    even while D1 still calls it active (until the next refresh)."""
    tracks = lambda symbol: symbol in ("ETH",)  # noqa: E731
    assert market_row({"market_index": 0, "symbol": "ETH", "active": 1}, tracks)["tracked"] is True
    assert market_row({"market_index": 1, "symbol": "BTC", "active": 1}, tracks)["tracked"] is False
    assert market_row({"market_index": 0, "symbol": "ETH", "active": 0}, tracks)["tracked"] is False
    assert market_row({"market_index": 1, "symbol": "BTC", "active": 1})["tracked"] is True  # no allowlist


def test_overview_row_without_data():
    row = {"market_index": 1, "symbol": "X"} | {f"w_{c}": None for c in sql.OVERVIEW_WINDOW_COLUMNS}
    row |= {f"m_{c}": None for c in sql.OVERVIEW_MINUTE_COLUMNS}
    assert overview_row(row, NOW) == {"market_index": 1, "symbol": "X", "window": None, "minute": None, "age_ms": None}


# -- the API's SQL on sqlite3 ------------------------------------------------------------------


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript((ROOT / "schema.sql").read_text())
    markets = [(0, "ETH", 1), (1, "BTC", 1), (2, "OLD", 0)]
    conn.executemany(
        "INSERT INTO lighter_markets (market_index, symbol, active, updated_at) VALUES (?, ?, ?, 0)", markets
    )
    conn.execute(sql.LIGHTER.INSERT_MARKET_SYMBOLS, [json.dumps([[s, i] for i, s, _ in markets])])
    for i, symbol in [(0, "ETH"), (1, "BTC")]:
        for k in range(8):
            ts = 60_000 * 100 + k * 15_000
            snap = minute(symbol, ts, market_index=i, window_ms=15_000, avg_bid=100 + k)
            conn.execute(sql.LIGHTER.UPSERT_WINDOWS, [json.dumps([[snap[c] for c in sql.SNAPSHOT_COLUMNS]])])
        for k in range(3):
            ts = 60_000 * (100 + k)
            row = minute(symbol, ts, market_index=i, avg_bid=200 + k)
            conn.execute(sql.LIGHTER.UPSERT_MINUTES, [json.dumps([[row[c] for c in sql.MINUTE_COLUMNS]])])
    return conn


def rows(conn, statement, *binds) -> list[dict]:
    return [dict(r) for r in conn.execute(statement, binds)]


def plan(conn, statement) -> str:
    return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + statement, [1] * statement.count("?")))


def test_pages_are_newest_first_with_a_symbol_tie_break(db):
    got = rows(db, sql.LIGHTER.API_MINUTES_PAGE, 0, MAX_TIMESTAMP_MS, 4, 0)
    assert [(r["timestamp"], r["symbol"]) for r in got] == [(6_120_000, "BTC"), (6_120_000, "ETH"), (6_060_000, "BTC"), (6_060_000, "ETH")]
    assert list(got[0]) == list(sql.MINUTE_COLUMNS)
    got = rows(db, sql.LIGHTER.API_SNAPSHOTS_PAGE_FOR_SYMBOL, "ETH", 6_015_000, 6_045_000, 10, 1)
    assert [r["timestamp"] for r in got] == [6_030_000, 6_015_000]


def test_overview_is_one_row_per_active_market_with_its_latest_rows(db):
    got = rows(db, sql.LIGHTER.API_OVERVIEW)
    assert [r["symbol"] for r in got] == ["ETH", "BTC"]
    assert got[0]["w_timestamp"] == 6_000_000 + 7 * 15_000 and got[0]["w_avg_bid"] == 107
    assert got[0]["m_timestamp"] == 6_120_000 and got[0]["m_avg_bid"] == 202
    shaped = overview_row(got[0], 6_000_000 + 8 * 15_000 + 2_000)
    assert shaped["age_ms"] == 2_000 and shaped["window"]["avg_bid"] == 107 and shaped["minute"]["windows"] == 4


@pytest.mark.parametrize("page_size", [1, 3, 4, 6, 7])
@pytest.mark.parametrize("span", [60_000, 120_000, 10 * 60_000])
def test_export_keyset_pages_cover_everything_once(db, page_size, span):
    # Two symbols per timestamp: odd page sizes end pages between them; time slices
    # of one, two and ten minutes, walked as api.py's export does.
    (extent,) = rows(db, sql.LIGHTER.API_EXPORT_MINUTES_EXTENT, 0, MAX_TIMESTAMP_MS)
    assert (extent["markets"], extent["oldest"], extent["newest"]) == (2, 6_000_000, 6_120_000)
    # A range before every row: rows begin after it, none ends in it (api.py exports nothing).
    (empty,) = rows(db, sql.LIGHTER.API_EXPORT_MINUTES_EXTENT, 1, 2)
    assert (empty["oldest"], empty["newest"]) == (6_000_000, None)
    seen, cursor, last = [], first_cursor(extent["oldest"]), extent["newest"]
    while True:
        until = cursor[0] + span
        page = [list(r) for r in db.execute(sql.LIGHTER.API_EXPORT_MINUTES_PAGE, (*cursor, last, page_size, until))]
        seen += [(r[2], r[0]) for r in page]
        if len(page) == page_size:
            cursor = next_cursor(page)
        elif until <= last:
            cursor = first_cursor(until)
        else:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 6
    one = rows(db, sql.LIGHTER.API_EXPORT_MINUTES_PAGE_FOR_SYMBOL, "BTC", *first_cursor(6_060_000), 6_120_000, 10)
    assert [r["timestamp"] for r in one] == [6_060_000, 6_120_000]


def test_export_slices_are_a_page_of_rows():
    assert slice_ms(60_000, 1) == 60_000 * PAGE_SIZE
    assert slice_ms(60_000, 600) == 60_000 * (PAGE_SIZE // 600)
    assert slice_ms(60_000, 10 * PAGE_SIZE) == 60_000  # never less than a row's period
    assert slice_ms(3_600_000, 0) == 3_600_000 * PAGE_SIZE


def test_symbol_lookup(db):
    assert rows(db, sql.LIGHTER.API_SYMBOL_EXISTS, "OLD") and not rows(db, sql.LIGHTER.API_SYMBOL_EXISTS, "eth")


@pytest.mark.parametrize("how", ["rename", "reuse"])
def test_a_symbol_keeps_its_rows_when_lighter_renames_its_market_or_reuses_its_id(how):
    """Seeds 5045, 6628: market 22 was 'M22'; Lighter then listed 'M22.B' under id 22 (a
    new market on a delisted one's id, or the same book renamed). The page for 'M22' is
    final history, served and cached as such: it keeps M22's rows, and 'M22.B' shows
    only its own (it used to find both through lighter_markets, and 'M22' nothing)."""
    from tracker.directory import MarketDirectory
    from tracker.markets import Market

    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript((ROOT / "schema.sql").read_text())

    def listing(*markets: Market) -> None:
        for statement, binds in MarketDirectory.save_statements(list(markets), 1, 1000):
            conn.execute(statement, binds)

    def write(symbol: str, ts: int) -> None:
        row = minute(symbol, ts, market_index=22)
        conn.execute(sql.LIGHTER.UPSERT_MINUTES, [json.dumps([[row[c] for c in sql.MINUTE_COLUMNS]])])

    listing(Market(22, "M22", "perp", "active", 2, 4), Market(3, "M3", "perp", "active", 2, 4))
    write("M22", 6_000_000)
    if how == "reuse":
        listing(Market(3, "M3", "perp", "active", 2, 4))  # delisted
    listing(Market(22, "M22.B", "perp", "active", 2, 4), Market(3, "M3", "perp", "active", 2, 4))
    write("M22.B", 6_060_000)

    def page(statement, symbol):
        return [(r["symbol"], r["timestamp"]) for r in rows(conn, statement, symbol, 0, MAX_TIMESTAMP_MS, 10, 0)]

    assert page(sql.LIGHTER.API_MINUTES_PAGE_FOR_SYMBOL, "M22") == [("M22", 6_000_000)]
    assert page(sql.LIGHTER.API_MINUTES_PAGE_FOR_SYMBOL, "M22.B") == [("M22.B", 6_060_000)]
    exported = rows(conn, sql.LIGHTER.API_EXPORT_MINUTES_PAGE_FOR_SYMBOL, "M22", 0, "", MAX_TIMESTAMP_MS, 10)
    assert [(r["symbol"], r["timestamp"]) for r in exported] == [("M22", 6_000_000)]
    assert rows(conn, sql.LIGHTER.API_SYMBOL_EXISTS, "M22") and rows(conn, sql.LIGHTER.API_SYMBOL_EXISTS, "M22.B")


# Whether the API's queries are index-backed is counted, not read off a query plan:
# tests/unit/test_d1_reads.py runs every statement on D1's own SQLite and its counters.


# -- the OpenAPI document ---------------------------------------------------------------


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_document_is_json_and_every_ref_resolves():
    doc = json.loads(json.dumps(DOCUMENT))
    assert doc["openapi"].startswith("3.1")
    for ref in set(_refs(doc)):
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


def test_every_operation_has_an_id_and_responses():
    ids = [op["operationId"] for item in PATHS.values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in PATHS.items():
        for method, op in item.items():
            assert op["responses"], (path, method)
    assert operations()["/api/start"] == {"POST": "start"}
    assert set(operations()) >= {
        "/api/stats", "/api/markets", "/api/minutes", "/api/snapshots", "/api/overview", "/api/export",
        "/api/health", "/api/start", "/api/stop", "/api/openapi.json",
    }


def test_row_schemas_match_the_tables():
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["Minute"]["required"] == list(sql.MINUTE_COLUMNS)
    assert schemas["Snapshot"]["required"] == list(sql.SNAPSHOT_COLUMNS)
