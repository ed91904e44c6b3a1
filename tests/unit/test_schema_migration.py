"""schema.sql and migrations/0003_depth_hours.sql in CPython's sqlite3 (SQLite, as D1).

An existing deployment (tests/fixtures/schema_v1.sql: the schema before depth and
hours) is upgraded by the migration without losing a row, and ends up with the
same columns as a fresh deployment made from schema.sql, which stays re-appliable.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tracker import sql
from tracker.rollup import rollup_hours, rollup_minutes

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schema.sql").read_text()
SCHEMA_V1 = (ROOT / "tests/fixtures/schema_v1.sql").read_text()
# An existing deployment runs every migration once, in order (DEPLOY.md, "Upgrading").
MIGRATIONS = [p.read_text() for p in sorted((ROOT / "migrations").glob("*.sql"))]
MIGRATION = "\n".join(MIGRATIONS)
DEPTH_HOURS_MIGRATION = (ROOT / "migrations" / "0003_depth_hours.sql").read_text()
T0 = 1_778_137_200_000  # a whole hour


def columns(con: sqlite3.Connection, table: str) -> dict[str, tuple]:
    """name -> (type, notnull, default) in column order."""
    return {r[1]: (r[2], r[3], r[4]) for r in con.execute(f"PRAGMA table_info({table})")}


def v1_window(symbol: str, market: int, ts: int) -> tuple:
    # lighter_snapshots' 18 v1 columns, in order
    return (symbol, market, ts, 100.0, 100.2, 0.2, 5, 100.1, 19.98, 0.1, 0.3, 1.5, 2.5, 100.0, 100.2, 100.1, 15_000, 15_000)


def test_migration_upgrades_a_v1_database_without_losing_rows():
    con = sqlite3.connect(":memory:")
    con.executescript(SCHEMA_V1)
    con.executemany(
        "INSERT INTO lighter_snapshots VALUES (" + ",".join("?" * 18) + ")",
        [v1_window("ETH", 0, T0 + i * 15_000) for i in range(4)],
    )
    con.execute(
        "INSERT INTO lighter_minutes VALUES (" + ",".join("?" * 18) + ")",
        v1_window("ETH", 0, T0)[:17] + (4,),
    )
    before = con.execute("SELECT * FROM lighter_snapshots ORDER BY timestamp").fetchall()

    con.executescript(MIGRATION)

    fresh = sqlite3.connect(":memory:")
    fresh.executescript(SCHEMA)
    for table in ("lighter_markets", "lighter_snapshots", "lighter_minutes", "lighter_hours", "tracking_stats"):
        assert columns(con, table) == columns(fresh, table), table
    assert list(columns(con, "lighter_snapshots")) == list(sql.SNAPSHOT_COLUMNS)
    assert list(columns(con, "lighter_minutes")) == list(sql.MINUTE_COLUMNS)
    assert list(columns(con, "lighter_hours")) == list(sql.HOUR_COLUMNS)
    # Old rows are intact; they carry no depth (NULL) and zero samples.
    after = con.execute(f"SELECT {', '.join(sql.SNAPSHOT_COLUMNS)} FROM lighter_snapshots ORDER BY timestamp").fetchall()
    assert [row[:18] for row in after] == before
    assert all(row[18:] == (None,) * 7 + (0,) for row in after)
    # Rows are keyed on (market_index, timestamp) now: a second market with the same
    # symbol gets rows of its own instead of overwriting the first one's.
    twin = v1_window("ETH", 7, T0) + (None,) * 7 + (0,)
    con.execute(sql.LIGHTER.UPSERT_WINDOWS, (json.dumps([twin]),))
    assert con.execute("SELECT COUNT(*) FROM lighter_snapshots WHERE symbol = 'ETH' AND timestamp = ?", (T0,)).fetchone() == (2,)
    con.execute("DELETE FROM lighter_snapshots WHERE market_index = 7")
    indexes = lambda c: sorted(r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))  # noqa: E731
    assert indexes(con) == indexes(fresh)

    # The new Worker's statements run on the upgraded database: a window with depth
    # next to the old ones, the minute re-rolled from both, the hour from the minute.
    new_window = v1_window("ETH", 0, T0 + 60_000) + (1e5, 2e5, 5e5, 6e5, 9e5, 1e6, -1 / 11, 15)
    con.execute(sql.LIGHTER.UPSERT_WINDOWS, (json.dumps([new_window]),))
    con.row_factory = sqlite3.Row
    windows = [dict(r) for r in con.execute(sql.LIGHTER.SELECT_WINDOWS_FOR_ROLLUP, (T0, T0 + 120_000, 1, 0))]
    minutes = rollup_minutes(windows)
    con.execute(sql.LIGHTER.UPSERT_MINUTES, (json.dumps([m.values() for m in minutes]),))
    assert [(m.timestamp, m.depth_samples, m.bid_depth_50) for m in minutes] == [(T0, 0, None), (T0 + 60_000, 15, 5e5)]
    hours = rollup_hours([dict(r) for r in con.execute(f"SELECT {', '.join(sql.MINUTE_COLUMNS)} FROM lighter_minutes")])
    con.execute(sql.LIGHTER.UPSERT_HOURS, (json.dumps([h.values() for h in hours]),))
    (hour,) = [dict(r) for r in con.execute("SELECT * FROM lighter_hours")]
    assert hour["timestamp"] == T0 and hour["windows"] == 5 and hour["tick_count"] == 25
    assert hour["depth_samples"] == 15 and hour["bid_depth_50"] == 5e5 and hour["ask_depth_50"] == 6e5


def test_migration_refuses_to_run_twice_and_changes_nothing_then():
    con = sqlite3.connect(":memory:")
    con.executescript(SCHEMA_V1)
    con.executescript(MIGRATION)
    shape = {t: columns(con, t) for t in ("lighter_snapshots", "lighter_minutes", "lighter_hours")}
    with pytest.raises(sqlite3.OperationalError, match="duplicate column name"):
        con.executescript(DEPTH_HOURS_MIGRATION)
    assert {t: columns(con, t) for t in shape} == shape


def test_schema_is_reappliable_and_keeps_rows():
    con = sqlite3.connect(":memory:")
    con.executescript(SCHEMA)
    row = v1_window("BTC", 1, T0) + (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1 / 7, 3)
    con.execute(sql.LIGHTER.UPSERT_HOURS, (json.dumps([row[:17] + (4,) + row[18:]]),))
    con.executescript(SCHEMA)
    con.executescript(SCHEMA)
    assert con.execute("SELECT COUNT(*), SUM(depth_samples) FROM lighter_hours").fetchone() == (1, 3)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"lighter_markets", "lighter_snapshots", "lighter_minutes", "lighter_hours", "tracking_stats"} <= tables


def test_the_paradex_migration_adds_the_same_tables_as_the_schema_and_may_run_again():
    """migrations/0004_paradex.sql on an upgraded database gives exactly schema.sql's
    Paradex tables, the shapes of Lighter's; applying it again changes nothing."""
    upgraded = sqlite3.connect(":memory:")
    upgraded.executescript(SCHEMA_V1)
    upgraded.executescript(MIGRATION)
    upgraded.executescript(MIGRATIONS[-1])
    fresh = sqlite3.connect(":memory:")
    fresh.executescript(SCHEMA)
    for table in ("paradex_markets", "paradex_snapshots", "paradex_minutes", "paradex_hours", "paradex_tracking_stats"):
        assert columns(upgraded, table) == columns(fresh, table), table
    for paradex, lighter in (("paradex_snapshots", "lighter_snapshots"), ("paradex_minutes", "lighter_minutes"),
                             ("paradex_tracking_stats", "tracking_stats")):
        assert columns(fresh, paradex) == columns(fresh, lighter)
    upgraded.executescript(MIGRATIONS[-1])
    assert columns(upgraded, "paradex_snapshots") == columns(fresh, "paradex_snapshots")
