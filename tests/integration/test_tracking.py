"""The tracker, end to end: the real Worker under wrangler dev against the simulator.

Start tracking, let windows and a minute pass, and check that what landed in D1
equals what the reference model (tests/reference_model.py) computes from the
simulator's own record of every frame it sent. Then break the feed in every way
Lighter can (dropped connection, nonce gap, malformed frames, stall, REST
failure, a restart of wrangler dev) and check that tracking recovers, the
counters say what happened, no row is duplicated and no window is computed from
an invalid book. Finally stop, and check that nothing more is written.

The tests run in file order and share the session's one wrangler dev.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import reference_model as ref

from conftest import wait_until

pytestmark = pytest.mark.timeout(900)

WINDOW_MS = 15_000
STALE_SECONDS = 10  # the session worker runs with STALE_FEED_SECONDS=10


# -- helpers ---------------------------------------------------------------------


def d1_rows(worker, sql: str, *params) -> list[dict]:
    """Read the local D1 database file directly (read-only), bypassing the API."""
    files = [
        p for p in Path(worker.persist_dir).glob("v3/d1/miniflare-D1DatabaseObject/*.sqlite")
        if p.name != "metadata.sqlite"
    ]
    assert len(files) == 1, f"expected one local D1 database, found {files}"
    con = sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def stats(worker) -> dict:
    return worker.get_json("/api/stats")


def active_markets(simulator) -> dict[int, str]:
    books = simulator.get("/api/v1/orderBooks")["order_books"]
    return {b["market_id"]: b["symbol"] for b in books if b["status"] == "active"}


def tracker_connections(simulator) -> list[dict]:
    """The simulator's connections: in this session only the tracker connects to it."""
    return simulator.state()["connections"]


def wait_live(worker, simulator, timeout: float = 90) -> dict:
    n = len(active_markets(simulator))
    return worker.wait_json(
        "/api/stats",
        lambda s: s["isTracking"] and s["connected"] and s["subscribed"] == n and s["validBooks"] == n,
        timeout=timeout,
    )


def wait_flushes(worker, count: int, timeout: float = 60) -> dict:
    """Wait until `count` more windows have been flushed than now."""
    target = stats(worker)["windowsFlushed"] + count
    return worker.wait_json("/api/stats", lambda s: s["windowsFlushed"] >= target, timeout=timeout)


def expected_from_record(simulator) -> tuple[dict, set[tuple[int, int]]]:
    """Reference windows from every frame the simulator sent, and the windows that
    touch a connection's end (their coverage depends on frames in flight then)."""
    records = simulator.get("/_sim/record")
    by_conn: dict[int, list[dict]] = {}
    for r in records:
        by_conn.setdefault(r["conn_id"], []).append(r)
    events: list[ref.Event] = []
    uncertain: set[tuple[int, int]] = set()
    markets = set(active_markets(simulator))
    for conn_id in sorted(by_conn):
        conn_records = by_conn[conn_id]
        events += ref.events_from_sim_record(conn_records)
        last_ts = max(r["timestamp_ms"] for r in conn_records)
        # The tracker drops every book when a connection goes: nothing stands through it.
        events += [ref.Event(m, last_ts, "invalid") for m in markets]
        for m in markets:
            uncertain.add((m, last_ts - last_ts % WINDOW_MS))
    return ref.expected_windows(events, WINDOW_MS), uncertain


def assert_windows_match_reference(worker, simulator) -> int:
    """Every window row in D1 equals the reference's; returns how many were compared."""
    expected, uncertain = expected_from_record(simulator)
    rows = d1_rows(worker, "SELECT * FROM lighter_snapshots ORDER BY timestamp, symbol")
    assert rows, "no window rows in D1"
    compared = 0
    problems = []
    for row in rows:
        key = (row["market_index"], row["timestamp"])
        if key in uncertain:
            continue
        want = expected.get(key)
        if want is None:
            problems.append(f"{key}: written but the reference has no ticks there")
            continue
        diff = ref.row_mismatches(row, want)
        if diff:
            problems.append(f"{key}: {diff}")
        compared += 1
    assert not problems, "\n".join(problems[:20])
    return compared


def assert_no_duplicates(worker) -> None:
    for table in ("lighter_snapshots", "lighter_minutes"):
        dupes = d1_rows(
            worker, f"SELECT symbol, timestamp, COUNT(*) AS n FROM {table} GROUP BY symbol, timestamp HAVING n > 1"
        )
        assert dupes == [], f"duplicate rows in {table}: {dupes}"


# -- the story -------------------------------------------------------------------------


def test_start_tracks_every_market_into_windows_and_minutes(worker, simulator):
    worker.admin_post("/api/stop")
    simulator.control("reset")
    started = int(time.time() * 1000)
    response = worker.admin_post("/api/start")
    assert response.status_code == 200, response.text
    assert response.json()["isTracking"] is True

    live = wait_live(worker, simulator)
    markets = active_markets(simulator)
    assert live["markets"] == len(markets)

    # Three windows, and a minute rolled for every market: up to ~60 s plus the
    # closing window's grace after the first minute boundary.
    # (Other test modules may have written rows before: count this run's only.)
    wait_until(
        lambda: len(d1_rows(worker, "SELECT DISTINCT timestamp FROM lighter_snapshots WHERE timestamp >= ?", started)) >= 3
        and len(d1_rows(worker, "SELECT DISTINCT symbol FROM lighter_minutes WHERE timestamp >= ?",
                        started - started % 60_000)) == len(markets),
        timeout=150, interval=2, what="three windows and a minute row for every market",
    )
    symbols = {r["symbol"] for r in d1_rows(worker, "SELECT DISTINCT symbol FROM lighter_snapshots")}
    assert symbols == set(markets.values())

    compared = assert_windows_match_reference(worker, simulator)
    assert compared >= 2 * len(markets)

    # Minute rows are the tick-weighted rollup of the windows stored beside them.
    windows = d1_rows(worker, "SELECT * FROM lighter_snapshots")
    want = ref.expected_minutes(windows)
    minutes = d1_rows(worker, "SELECT * FROM lighter_minutes")
    for row in minutes:
        diff = ref.row_mismatches(row, want[(row["symbol"], row["timestamp"])])
        assert not diff, f"minute {row['symbol']} {row['timestamp']}: {diff}"
    # Windows are aligned to the exchange's 15 s boundaries, minutes to 60 s.
    assert all(r["timestamp"] % WINDOW_MS == 0 for r in windows)
    assert all(r["timestamp"] % 60_000 == 0 for r in minutes)

    s = stats(worker)
    assert s["messagesReceived"] > 0 and s["gaps"] == 0 and s["malformed"] == 0
    assert s["flushFailures"] == 0 and s["lateFrames"] == 0
    # tracking_stats holds one row per shard, rewritten at every flush.
    stat_rows = d1_rows(worker, "SELECT * FROM tracking_stats ORDER BY shard")
    assert [r["shard"] for r in stat_rows] == list(range(len(s["shards"])))
    assert all(r["is_tracking"] == 1 and r["connected"] == 1 for r in stat_rows), stat_rows
    assert sum(r["markets"] for r in stat_rows) == len(markets)


def test_nonce_gap_drops_the_book_and_resubscribes(worker, simulator):
    market = min(active_markets(simulator))
    before = stats(worker)
    simulator.control("gap", market_id=market)
    after = worker.wait_json("/api/stats", lambda s: s["gaps"] > before["gaps"], timeout=30)
    assert after["gaps"] == before["gaps"] + 1
    # A fresh snapshot for that market arrives on the same connection...
    conn = next(c["conn"] for c in tracker_connections(simulator) if c["open"] and market in c["subscriptions"])

    def resubscribed() -> bool:
        records = simulator.get(f"/_sim/record?market_id={market}&conn={conn}")
        gap_at = max(i for i, r in enumerate(records) if not r["valid"])
        return any(r["type"] == "subscribed/order_book" for r in records[gap_at:])

    wait_until(resubscribed, timeout=30, what="a new snapshot after the gap")
    wait_live(worker, simulator)
    # ...and after the next flush, no window contains ticks from the invalid book.
    wait_flushes(worker, 1)
    assert_windows_match_reference(worker, simulator)
    assert stats(worker)["reconnects"] == before["reconnects"]


def test_malformed_frames_are_counted_and_skipped(worker, simulator):
    before = stats(worker)
    for kind in ("not_json", "bad_body", "wrong_types"):
        simulator.control("malformed", kind=kind, count=2)
    after = worker.wait_json("/api/stats", lambda s: s["malformed"] >= before["malformed"] + 6, timeout=30)
    assert after["connected"] and after["reconnects"] == before["reconnects"]
    worker.wait_json("/api/stats", lambda s: s["messagesReceived"] > after["messagesReceived"] + 20, timeout=30)


def test_dropped_connection_is_reconnected(worker, simulator):
    before = stats(worker)
    simulator.control("close", code=1011, reason="simulated server restart")
    worker.wait_json("/api/stats", lambda s: s["reconnects"] > before["reconnects"], timeout=60)
    wait_live(worker, simulator, timeout=60)
    assert "closed by server (code 1011" in (stats(worker)["lastError"] or "")


def test_stalled_feed_is_detected_and_reconnected(worker, simulator):
    before = stats(worker)
    simulator.control("stall", seconds=STALE_SECONDS + 30)
    # Staleness is checked at each alarm (every 15 s), so allow stale + 2 windows.
    s = worker.wait_json(
        "/api/stats", lambda s: s["reconnects"] > before["reconnects"], timeout=STALE_SECONDS + 45
    )
    assert "feed stale" in (s["lastError"] or "")
    wait_live(worker, simulator, timeout=60)


def test_market_list_failure_on_start_recovers(worker, simulator):
    worker.admin_post("/api/stop")
    simulator.control("rest_fail", status=500, count=1)
    assert worker.admin_post("/api/start").status_code == 200
    wait_live(worker, simulator)
    assert "HTTP 500" in (stats(worker)["lastError"] or "") or "market list" in worker.log_text()
    wait_flushes(worker, 1)


def test_restart_of_wrangler_dev_resumes_tracking_by_itself(worker, simulator):
    wait_flushes(worker, 1)
    before_rows = d1_rows(worker, "SELECT MAX(timestamp) AS t FROM lighter_snapshots")[0]["t"]
    worker.restart()
    # No request reaches the Worker: only the persisted alarm can bring tracking back.
    wait_until(
        lambda: d1_rows(worker, "SELECT MAX(timestamp) AS t FROM lighter_snapshots")[0]["t"] > before_rows + WINDOW_MS,
        timeout=120, interval=2, what="new windows after the restart, with no request made",
    )
    s = wait_live(worker, simulator)
    assert s["isTracking"] and s["windowsLost"] >= 1 and s["lostRanges"]
    assert "resum" in worker.log_text()


def test_failed_d1_write_is_retried_not_dropped(worker, simulator):
    """Lock the local D1 database file for a whole window: a real write failure."""
    wait_live(worker, simulator)
    before = stats(worker)
    files = [p for p in Path(worker.persist_dir).glob("v3/d1/miniflare-D1DatabaseObject/*.sqlite") if p.name != "metadata.sqlite"]
    lock = sqlite3.connect(files[0], timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        failing = worker.wait_json(
            "/api/stats", lambda s: s["flushFailures"] > before["flushFailures"] and s["pendingWindows"] > 0,
            timeout=45,
        )
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert "D1" in (failing["lastError"] or "")
    # The next alarm writes the kept windows: nothing pending, and no window missing.
    worker.wait_json("/api/stats", lambda s: s["pendingWindows"] == 0, timeout=45)
    starts = sorted({r["timestamp"] for r in d1_rows(
        worker, "SELECT DISTINCT timestamp FROM lighter_snapshots WHERE timestamp >= ?",
        failing["flushedUntil"] - 2 * WINDOW_MS,
    )})
    assert starts == list(range(starts[0], starts[-1] + WINDOW_MS, WINDOW_MS)), starts
    assert "will retry" in worker.log_text()


def test_values_still_match_and_nothing_is_duplicated(worker, simulator):
    wait_flushes(worker, 1)
    assert_windows_match_reference(worker, simulator)
    assert_no_duplicates(worker)


def test_stop_closes_the_socket_and_writes_nothing_more(worker, simulator):
    response = worker.admin_post("/api/stop")
    assert response.status_code == 200 and response.json()["isTracking"] is False
    wait_until(
        lambda: not any(c["open"] for c in tracker_connections(simulator)),
        timeout=15, what="the tracker's socket to close",
    )
    count = d1_rows(worker, "SELECT COUNT(*) AS n FROM lighter_snapshots")[0]["n"]
    time.sleep((WINDOW_MS + 3_000) / 1000)
    assert d1_rows(worker, "SELECT COUNT(*) AS n FROM lighter_snapshots")[0]["n"] == count
    s = stats(worker)
    assert s["isTracking"] is False and s["connected"] is False
    assert d1_rows(worker, "SELECT is_tracking FROM tracking_stats")[0]["is_tracking"] == 0
    assert_no_duplicates(worker)
