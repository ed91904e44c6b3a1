"""Every routine statement is index-backed, counted: run on D1's own SQLite with D1's row
counters (tools/d1sqlite), over tables as full as a day of 30 markets, each reads a
number of rows bounded by what it returns and by the number of markets, never the
table. (Replaces reading EXPLAIN QUERY PLAN: D1 bills what is counted.)"""

from __future__ import annotations

import json

import pytest

from d1sqlite import D1Sqlite
from tracker import sql
from tracker.validation import MAX_TIMESTAMP_MS

MARKETS = 30
HOUR = 3_600_000
NOW = 1_795_000_000_000 - 1_795_000_000_000 % HOUR
S = sql.LIGHTER


@pytest.fixture(scope="module")
def db() -> D1Sqlite:
    db = D1Sqlite()
    db.script(open(sql.__file__.replace("src/tracker/sql.py", "schema.sql")).read())

    def row(m: int, ts: int, parts: int) -> list:
        return [f"M{m}", m, ts, 1.0, 2.0, 1.0, 5, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.5, 15_000, parts,
                1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 3]

    for statement, period, count in ((S.UPSERT_WINDOWS, 15_000, 240), (S.UPSERT_MINUTES, 60_000, 1440),
                                     (S.UPSERT_HOURS, HOUR, 48)):
        rows = [row(m, NOW - (k + 1) * period, 4) for m in range(MARKETS) for k in range(count)]
        for i in range(0, len(rows), sql.BULK_ROWS):
            db.run(statement, (json.dumps(rows[i:i + sql.BULK_ROWS]),))
    for m in range(MARKETS):
        db.run(S.UPSERT_MARKET, (m, f"M{m}", "perp", "active", 1, 2, 4, 0, NOW, f"M{m}"))
    db.run(S.INSERT_MARKET_SYMBOLS, (json.dumps([[f"M{m}", m] for m in range(MARKETS)]),))
    return db


CASES = [
    # (statement, binds, most rows read per row returned, most per market)
    ("API_MINUTES_PAGE_FOR_SYMBOL", ("M7", 0, MAX_TIMESTAMP_MS, 100, 0), 3, 0),
    ("API_HOURS_PAGE_FOR_SYMBOL", ("M7", 0, MAX_TIMESTAMP_MS, 10, 0), 3, 0),
    ("API_SNAPSHOTS_PAGE_FOR_SYMBOL", ("M7", 0, MAX_TIMESTAMP_MS, 50, 0), 3, 0),
    ("API_MINUTES_PAGE", (0, MAX_TIMESTAMP_MS, 20, 0), 0, 2 * 20 + 10),
    ("API_SNAPSHOTS_PAGE", (0, MAX_TIMESTAMP_MS, 20, 0), 0, 2 * 20 + 10),
    ("API_OVERVIEW", (), 0, 6),
    ("API_EXPORT_MINUTES_PAGE", (NOW - 86_400_000, "", MAX_TIMESTAMP_MS, 2000, NOW - 86_400_000 + 60 * 60_000), 3, 10),
    ("API_EXPORT_MINUTES_PAGE_FOR_SYMBOL", ("M7", 0, "", MAX_TIMESTAMP_MS, 2000), 3, 0),
    ("API_EXPORT_MINUTES_EXTENT", (0, MAX_TIMESTAMP_MS), 0, 10),
    ("SELECT_WINDOWS_FOR_ROLLUP", (NOW - 120_000, NOW - 60_000, 2, 0), 3, 10),
    ("SELECT_MINUTES_FOR_ROLLUP", (NOW - HOUR, NOW, 1, 0), 3, 10),
    ("PRUNE_WINDOWS", (NOW - 239 * 15_000, 1, 0), 0, 20),
    ("PRUNE_MINUTES", (NOW - 1439 * 60_000, 1, 0), 0, 10),
    ("PRUNE_HOURS", (NOW - 47 * HOUR, 1, 0), 0, 10),
]


@pytest.mark.parametrize("name, binds, per_row, per_market", CASES, ids=[c[0] for c in CASES])
def test_routine_statements_read_what_they_return_not_the_table(db, name, binds, per_row, per_market):
    result = db.run(getattr(S, name), binds)
    returned = len(result.rows) + result.changes
    assert result.rows_read <= per_row * returned + per_market * MARKETS + 5, (name, result.rows_read, returned)
    table = 240 if "SNAPSHOTS" in name or "WINDOWS" in name else 48 if "HOURS" in name else 1440
    assert result.rows_read < MARKETS * table / 2 or returned > MARKETS * table / 4, "it reads the table, not a part"


def test_a_whole_table_scan_is_what_these_bounds_catch(db):
    """A statement without the key (the first release's prune) reads every row: caught."""
    result = db.run("SELECT COUNT(*) AS n FROM lighter_minutes WHERE timestamp < ?", (NOW - 1439 * 60_000,))
    assert result.rows_read > 0.9 * MARKETS * 1440


@pytest.mark.parametrize("resolution", sorted(sql.COMPARE_TABLES))
def test_the_compare_route_reads_one_market_along_its_key(db, resolution):
    """GET /api/compare (tracker/compare.py): a market's part reads what it returns; the page
    start (with an offset) walks each market's key as far as the offset, no further."""
    part = db.run(S.API_COMPARE[resolution], (7, 0, MAX_TIMESTAMP_MS, 20))
    assert len(part.rows) == 20 and part.rows_read <= 20 + 2, part.rows_read
    # Paradex's tables are empty here: the Lighter market's walk is all there is.
    start = db.run(sql.COMPARE_PAGE_START[resolution], (7, 3, 0, MAX_TIMESTAMP_MS, 30))
    assert start.rows and start.rows_read <= 4 * 31, start.rows_read


def test_the_asset_map_reads_one_row_per_market(db):
    result = db.run(S.API_ASSET_MARKETS, ())
    assert len(result.rows) == MARKETS and result.rows_read <= MARKETS + 2
