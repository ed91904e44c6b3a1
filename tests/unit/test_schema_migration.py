"""migrations/ in D1's own SQLite (tools/d1sqlite), fast: what
tests/integration/test_migrations.py shows under wrangler, plus what the rebuild costs.

Every earlier release's database (tests/fixtures/releases) ends, after every migration
in order, with schema.sql's tables, columns, keys and indexes and every row; the new
Worker's statements then run on it; schema.sql stays re-appliable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from d1sqlite import D1Sqlite
from schema_shape import shape
from tracker import sql
from tracker.rollup import rollup_hours, rollup_minutes

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schema.sql").read_text()
V1 = (ROOT / "tests/fixtures/schema_v1.sql").read_text()
RELEASES = ROOT / "tests/fixtures/releases"
UPGRADES = [(RELEASES / f).read_text() for f in ("0002_market_index_key.sql", "0003_depth_hours.sql", "0004_paradex.sql")]
MIGRATIONS = [p.read_text() for p in sorted((ROOT / "migrations").glob("*.sql"))]
STARTS = {"empty": [], "release 1": [V1], "after 0002": [V1, *UPGRADES[:1]], "after 0003": [V1, *UPGRADES[:2]],
          "after 0004": [V1, *UPGRADES], "today's schema.sql": [SCHEMA]}
T0 = 1_778_137_200_000  # a whole hour


def db_of(*scripts: str) -> D1Sqlite:
    db = D1Sqlite()
    for text in scripts:
        db.script(text)
    return db


def columns(db: D1Sqlite, table: str) -> list[str]:
    return [r["name"] for r in db.run(f"PRAGMA table_info({table})").rows]


def v1_window(symbol: str, market: int, ts: int) -> tuple:
    # lighter_snapshots' 18 v1 columns, in order
    return (symbol, market, ts, 100.0, 100.2, 0.2, 5, 100.1, 19.98, 0.1, 0.3, 1.5, 2.5, 100.0, 100.2, 100.1, 15_000, 15_000)


@pytest.mark.parametrize("start", list(STARTS))
def test_every_starting_point_ends_as_schema_sql(start):
    db = db_of(*STARTS[start], *MIGRATIONS)
    assert shape(lambda q: db.run(q).rows) == shape(lambda q: db_of(SCHEMA).run(q).rows)
    assert columns(db, "lighter_snapshots") == list(sql.SNAPSHOT_COLUMNS)
    assert columns(db, "lighter_minutes") == list(sql.MINUTE_COLUMNS) == columns(db, "paradex_hours")


def test_a_release_1_database_keeps_its_rows_and_runs_the_new_statements():
    db = db_of(V1)
    for i in range(4):
        db.run("INSERT INTO lighter_snapshots VALUES (" + ",".join("?" * 18) + ")", v1_window("ETH", 0, T0 + i * 15_000))
    db.run("INSERT INTO lighter_minutes VALUES (" + ",".join("?" * 18) + ")", v1_window("ETH", 0, T0)[:17] + (4,))
    before = db.run("SELECT * FROM lighter_snapshots ORDER BY timestamp").rows
    for text in MIGRATIONS:
        db.script(text)
    after = db.run(f"SELECT {', '.join(sql.SNAPSHOT_COLUMNS)} FROM lighter_snapshots ORDER BY timestamp").rows
    assert [{k: r[k] for k in before[0]} for r in after] == before
    assert all((r["bid_depth_50"], r["depth_samples"]) == (None, 0) for r in after)
    # Keyed on (market_index, timestamp): a second market with the same symbol has rows of its own.
    twin = v1_window("ETH", 7, T0) + (None,) * 7 + (0,)
    db.run(sql.LIGHTER.UPSERT_WINDOWS, (json.dumps([twin]),))
    assert db.run("SELECT COUNT(*) AS n FROM lighter_snapshots WHERE symbol = 'ETH' AND timestamp = ?", (T0,)).rows == [{"n": 2}]
    db.run("DELETE FROM lighter_snapshots WHERE market_index = 7")
    # The new Worker's statements on the upgraded database: a window with depth beside the
    # old ones, the minutes rolled from both, the hour from the minutes.
    new_window = v1_window("ETH", 0, T0 + 60_000) + (1e5, 2e5, 5e5, 6e5, 9e5, 1e6, -1 / 11, 15)
    db.run(sql.LIGHTER.UPSERT_WINDOWS, (json.dumps([new_window]),))
    minutes = rollup_minutes(db.run(sql.LIGHTER.SELECT_WINDOWS_FOR_ROLLUP, (T0, T0 + 120_000, 1, 0)).rows)
    db.run(sql.LIGHTER.UPSERT_MINUTES, (json.dumps([m.values() for m in minutes]),))
    assert [(m.timestamp, m.depth_samples, m.bid_depth_50) for m in minutes] == [(T0, 0, None), (T0 + 60_000, 15, 5e5)]
    hours = rollup_hours(db.run(sql.LIGHTER.SELECT_MINUTES_FOR_ROLLUP, (T0, T0 + 3_600_000, 1, 0)).rows)
    db.run(sql.LIGHTER.UPSERT_HOURS, (json.dumps([h.values() for h in hours]),))
    (hour,) = db.run("SELECT * FROM lighter_hours").rows
    assert hour["timestamp"] == T0 and hour["windows"] == 5 and hour["tick_count"] == 25
    assert hour["depth_samples"] == 15 and hour["bid_depth_50"] == 5e5


def _rebuild_written(rows_per_table: int) -> tuple[int, int]:
    """(rows put in, rows written by migrations/0002) on a database of release 4."""
    db = db_of(V1, *UPGRADES)
    rows = 0
    for table, period in (("lighter_snapshots", 15_000), ("lighter_minutes", 60_000), ("lighter_hours", 3_600_000)):
        n = len(columns(db, table))
        for k in range(rows_per_table):
            values = v1_window(f"M{k % 5}", k % 5, T0 + (k // 5) * period)[:17] + (4,) + (None,) * 7 + (0,)
            db.run(f"INSERT INTO {table} VALUES ({','.join('?' * n)})", values[:n])
            rows += 1
    written = 0
    for text in MIGRATIONS[1].split(";\n"):
        if any(line.strip() and not line.strip().startswith("--") for line in text.splitlines()):
            written += db.run(text + ";").rows_written
    return rows, written


def test_the_rebuild_writes_each_row_once():
    """DEPLOY.md's upgrade cost: 0002 writes every window, minute and hour row once (D1's
    count), beside a fixed few for the schema itself (sqlite_master's rows, which D1's
    counter counts too; dropping the old tables is not counted)."""
    _, fixed = _rebuild_written(0)
    rows, written = _rebuild_written(100)
    assert written - fixed == rows
    assert fixed < 100


def test_schema_is_reappliable_and_keeps_rows():
    db = db_of(SCHEMA)
    row = v1_window("BTC", 1, T0) + (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1 / 7, 3)
    db.run(sql.LIGHTER.UPSERT_HOURS, (json.dumps([row[:17] + (4,) + row[18:]]),))
    db.script(SCHEMA)
    db.script(SCHEMA)
    assert db.run("SELECT COUNT(*) AS n, SUM(depth_samples) AS s FROM lighter_hours").rows == [{"n": 1, "s": 3}]
