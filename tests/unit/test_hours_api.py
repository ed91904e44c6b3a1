"""GET /api/hours and /api/export?resolution=hours, pure parts: parameters, SQL plans on
sqlite3 against schema.sql, export pieces and the OpenAPI document (the routing table)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tracker.openapi import DOCUMENT, PATHS, operations
from tracker import sql
from tracker.export import JsonExport, export_filename, make_format
from tracker.validation import MAX_TIMESTAMP_MS, ValidationError, parse_export_query

ROOT = Path(__file__).resolve().parents[2]
H = 3_600_000


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript((ROOT / "schema.sql").read_text())
    rows = []
    for k in range(3):
        for market, symbol in ((0, "ETH"), (1, "BTC")):
            values = dict.fromkeys(sql.HOUR_COLUMNS, 1.0)
            values |= {"symbol": symbol, "market_index": market, "timestamp": k * H, "tick_count": 10,
                       "covered_ms": 5, "windows": 240, "depth_samples": 3600, "imbalance_50": None}
            rows.append([values[c] for c in sql.HOUR_COLUMNS])
    conn.execute(sql.LIGHTER.UPSERT_HOURS, (json.dumps(rows),))
    conn.executemany("INSERT INTO lighter_markets (market_index, symbol, updated_at) VALUES (?, ?, 0)", [(0, "ETH"), (1, "BTC")])
    conn.execute(sql.LIGHTER.INSERT_MARKET_SYMBOLS, (json.dumps([["ETH", 0], ["BTC", 1]]),))
    return conn


def test_hours_pages_are_newest_first(db):
    got = [dict(r) for r in db.execute(sql.LIGHTER.API_HOURS_PAGE, (0, MAX_TIMESTAMP_MS, 3, 0))]
    assert [(r["timestamp"], r["symbol"]) for r in got] == [(2 * H, "BTC"), (2 * H, "ETH"), (H, "BTC")]
    assert list(got[0]) == list(sql.HOUR_COLUMNS)
    got = [dict(r) for r in db.execute(sql.LIGHTER.API_HOURS_PAGE_FOR_SYMBOL, ("ETH", H, 2 * H, 10, 1))]
    assert [r["timestamp"] for r in got] == [H]
    export = [list(r) for r in db.execute(sql.LIGHTER.API_EXPORT_HOURS_PAGE_FOR_SYMBOL, ("BTC", 0, "", MAX_TIMESTAMP_MS, 10))]
    assert [r[2] for r in export] == [0, H, 2 * H]


def test_export_resolution_parameter():
    assert parse_export_query("").resolution == "minutes"
    assert parse_export_query("resolution=hours&format=json").resolution == "hours"
    assert parse_export_query("resolution=HOURS").resolution == "hours"
    with pytest.raises(ValidationError, match="resolution must be one of minutes, hours") as caught:
        parse_export_query("resolution=days")
    assert caught.value.status == 400


def test_hour_export_documents():
    fmt = make_format("json", "hours")
    assert isinstance(fmt, JsonExport)
    text = fmt.begin() + fmt.page([["ETH"] + [0] * (len(sql.HOUR_COLUMNS) - 1)]) + fmt.end()
    doc = json.loads(text)
    assert doc["count"] == 1 and list(doc["hours"][0]) == list(sql.HOUR_COLUMNS)
    minutes = make_format("json")
    assert json.loads(minutes.begin() + minutes.end()) == {"minutes": [], "count": 0}
    assert export_filename("ETH/USDC", 0, MAX_TIMESTAMP_MS, "csv", "hours") == "lighter-hours-ETH_USDC.csv"
    assert export_filename(None, 5, MAX_TIMESTAMP_MS, "json") == "lighter-minutes-all-5.json"


def test_openapi_routes_hours_like_minutes():
    assert operations()["/api/hours"] == {"GET": "hours"}
    assert PATHS["/api/hours"]["get"]["parameters"] == PATHS["/api/minutes"]["get"]["parameters"]
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["Hour"]["required"] == list(sql.HOUR_COLUMNS)
    assert schemas["Hour"]["properties"]["bid_depth_50"]["type"] == ["number", "null"]
    assert schemas["Hour"]["properties"]["depth_samples"]["type"] == "integer"
    assert schemas["Snapshot"]["properties"]["imbalance_50"]["type"] == ["number", "null"]
    export_params = [p["$ref"].rsplit("/", 1)[1] for p in PATHS["/api/export"]["get"]["parameters"]]
    assert "resolution" in export_params
    assert DOCUMENT["components"]["parameters"]["resolution"]["schema"]["enum"] == ["minutes", "hours"]
