"""The flush's bulk upserts, run on SQLite with the real schema: rows land exactly,
and a retried flush rewrites them instead of duplicating them."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path

from tracker import sql
from tracker.aggregator import WindowAggregator
from tracker.rollup import rollup_minutes
from tracker.rows import SLIPPAGE_COLUMNS, MinuteRow, WindowRow

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


def test_rows_closed_before_the_slippage_columns_existed_still_land():
    """An outbox chunk written by the Worker before the slippage columns (26 values a
    row) is flushed by the new one after the upgrade: the missing counts are 0 (not a
    NULL that NOT NULL refuses, which would retry the flush for ever), the slips NULL,
    and its minute weighs them as nothing."""
    conn = database()
    rows = window_rows(markets=1, windows=2)
    old_width = len(sql.SNAPSHOT_COLUMNS) - len(SLIPPAGE_COLUMNS)
    run(conn, sql.bulk(sql.LIGHTER.UPSERT_WINDOWS, [r.values()[:old_width] for r in rows]))
    stored = [dict(r) for r in conn.execute(f"SELECT {', '.join(SLIPPAGE_COLUMNS)} FROM lighter_snapshots")]
    assert len(stored) == 2
    assert all(r[c] == (0 if c.startswith("fill_samples") else None) for r in stored for c in SLIPPAGE_COLUMNS)
    windows = [dict(r) for r in conn.execute(sql.LIGHTER.SELECT_WINDOWS_FOR_ROLLUP, (0, 60_000, 1, 0))]
    (minute,) = rollup_minutes(windows)
    assert (minute.fill_samples_1k, minute.slip_buy_1k, minute.windows) == (0, None, 2)
    run(conn, sql.bulk(sql.LIGHTER.UPSERT_MINUTES, [minute.values()[:old_width]]))
    assert conn.execute("SELECT fill_samples_1m FROM lighter_minutes").fetchone()[0] == 0
