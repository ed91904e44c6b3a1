"""The flush's bulk upserts, run on SQLite with the real schema: rows land exactly,
and a retried flush rewrites them instead of duplicating them."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path

from tracker import sql
from tracker.aggregator import WindowAggregator
from tracker.rollup import rollup_minutes
from tracker.rows import MinuteRow, WindowRow

ROOT = Path(__file__).resolve().parents[2]


def database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript((ROOT / "schema.sql").read_text())
    return conn


def window_rows(markets: int = 3, windows: int = 4) -> list:
    agg = WindowAggregator(15_000)
    for t in range(0, windows * 15_000, 250):
        for m in range(markets):
            bid = 100.0 + m + (t % 7_000) / 1_000
            agg.add_tick(m, t, bid, 1.5, bid + 0.01 * (1 + t % 3), 2.5)
    closed = agg.close_until(windows * 15_000 + 1, {m: f"M{m}/USDC" for m in range(markets)})
    return [row for window in closed for row in window.rows]


def run(conn: sqlite3.Connection, statements) -> None:
    for statement, params in statements:
        conn.execute(statement, params)


def test_row_fields_are_the_table_columns_in_order():
    assert [f.name for f in fields(WindowRow)] == list(sql.SNAPSHOT_COLUMNS)
    assert [f.name for f in fields(MinuteRow)] == list(sql.MINUTE_COLUMNS)


def test_bulk_snapshot_upsert_writes_every_value_exactly():
    conn = database()
    rows = window_rows()
    run(conn, sql.bulk(sql.LIGHTER.UPSERT_WINDOWS, [r.values() for r in rows]))
    stored = conn.execute(
        f"SELECT {', '.join(sql.SNAPSHOT_COLUMNS)} FROM lighter_snapshots ORDER BY timestamp, symbol"
    ).fetchall()
    want = sorted((r.values() for r in rows), key=lambda v: (v[2], v[0]))
    assert [tuple(s) for s in stored] == want


def test_a_retried_flush_never_duplicates_and_keeps_the_newest_values():
    conn = database()
    rows = window_rows()
    statements = sql.bulk(sql.LIGHTER.UPSERT_WINDOWS, [r.values() for r in rows])
    run(conn, statements)
    run(conn, statements)  # the same flush again, as after a lost D1 acknowledgement
    assert conn.execute("SELECT COUNT(*) FROM lighter_snapshots").fetchone()[0] == len(rows)
    changed = rows[0].values()[:3] + (999.0,) + rows[0].values()[4:]
    run(conn, sql.bulk(sql.LIGHTER.UPSERT_WINDOWS, [changed]))
    assert conn.execute("SELECT COUNT(*) FROM lighter_snapshots").fetchone()[0] == len(rows)
    assert conn.execute(
        "SELECT avg_bid FROM lighter_snapshots WHERE symbol = ? AND timestamp = ?", (changed[0], changed[2])
    ).fetchone()[0] == 999.0


def test_bulk_statements_are_chunked_and_minutes_roll_through_the_same_path():
    rows = window_rows(markets=sql.BULK_ROWS // 2 + 1, windows=4)
    statements = sql.bulk(sql.LIGHTER.UPSERT_WINDOWS, [r.values() for r in rows])
    assert len(statements) == -(-len(rows) // sql.BULK_ROWS) >= 2
    conn = database()
    run(conn, statements)
    stored = [dict(r) for r in conn.execute("SELECT * FROM lighter_snapshots")]
    minutes = rollup_minutes(stored)
    run(conn, sql.bulk(sql.LIGHTER.UPSERT_MINUTES, [m.values() for m in minutes]))
    assert tuple(conn.execute("SELECT COUNT(*), SUM(windows) FROM lighter_minutes").fetchone()) == (len(minutes), len(rows))
