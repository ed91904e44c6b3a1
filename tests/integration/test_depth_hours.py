"""Depth, slippage and hours end to end (issues 11, 20): the real Worker under the
session's wrangler dev.

With the simulator keeping every frame's text (record_frames), the reference
(tests/reference_model.py) replays each connection's books from the frames the
tracker was sent and recomputes every window row, depth and slippage columns
included; D1 must hold the same to 1e-9 relative. Then tracking stops: the minutes and the partial
hour written then must equal the rollup of the windows and minutes beside them,
and /api/hours and /api/export?resolution=hours must serve those hour rows.
"""

from __future__ import annotations

import csv
import io
import time

import pytest
import reference_model as ref

from conftest import wait_until
from simrecord import d1_rows, expected_from_record, next_connection

pytestmark = pytest.mark.timeout(600)

WINDOW_MS = 15_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def active_markets(simulator) -> dict[int, str]:
    books = simulator.get("/api/v1/orderBooks")["order_books"]
    return {b["market_id"]: b["symbol"] for b in books if b["status"] == "active"}


@pytest.fixture(scope="module")
def run(worker, simulator):
    """One tracking run with frames recorded: (first conn id of the run, start ms)."""
    worker.admin_post("/api/stop")
    simulator.control("reset")
    simulator.control("record_frames", on=True)
    first_conn = next_connection(simulator)
    started = int(time.time() * 1000)
    try:
        response = worker.admin_post("/api/start")
        assert response.status_code == 200, response.text
        # Windows are measured from here (a run started inside the window an earlier
        # run's stop closed begins after it: that window belongs to the earlier run).
        yield first_conn, max(started, response.json()["flushedUntil"])
    finally:
        worker.admin_post("/api/stop")
        simulator.control("record_frames", on=False)


def check_window_depth_matches_the_reference_replayed_from_the_frames(worker, simulator, run):
    first_conn, started = run
    markets = active_markets(simulator)
    since = started - started % WINDOW_MS
    # Three closed windows (the minutes and the partial hour are rolled by the stop in
    # the next test: no need to wait for a whole minute here).
    wait_until(
        lambda: len(d1_rows(worker, "SELECT DISTINCT timestamp FROM lighter_snapshots WHERE timestamp >= ?", since)) >= 3,
        timeout=90, interval=1, what="three windows",
    )
    # D1 first, then the record: every frame of a window already in D1 is in the record.
    rows = d1_rows(worker, "SELECT * FROM lighter_snapshots WHERE timestamp >= ? ORDER BY timestamp, symbol", since)
    expected, uncertain = expected_from_record(simulator, first_conn)
    problems, compared, samples = [], 0, 0
    for row in rows:
        key = (row["market_index"], row["timestamp"])
        if key in uncertain:
            continue
        want = expected.get(key)
        if want is None:
            problems.append(f"{key}: written but the reference has no ticks there")
            continue
        assert "bid_depth_50" in want and "slip_sell_1m" in want, "the reference computed depth and slippage"
        problems += [f"{key}: {d}" for d in ref.row_mismatches(row, want, rel=1e-9)]
        compared += 1
        samples += row["depth_samples"]
    assert not problems, "\n".join(problems[:20])
    assert compared >= 2 * len(markets)
    # About one sample per market and second (the simulator ticks every market 20 times a second).
    assert samples >= compared * 10
    assert all(r["bid_depth_100"] >= r["bid_depth_50"] >= r["bid_depth_10"] >= 0 for r in rows)
    # Some depth was seen. (Not necessarily within 10 bps: the simulator's spreads widen
    # the longer it runs, to tens of bps after a few minutes.)
    assert any(r["bid_depth_100"] > 0 or r["ask_depth_100"] > 0 for r in rows)
    assert all(-1 <= r["imbalance_50"] <= 1 for r in rows if r["imbalance_50"] is not None)
    # The simulator's books are thin, middling and deep by market: 1k fills in every
    # sample, 1m in some and not in others, so both were compared.
    assert all(r["fill_samples_1k"] == r["depth_samples"] for r in rows)
    assert any(r["fill_samples_1m"] > 0 for r in rows) and any(r["fill_samples_1m"] < r["depth_samples"] for r in rows)
    assert all(0 <= r["slip_buy_1k"] <= r["slip_buy_10k"] for r in rows if r["fill_samples_10k"] == r["depth_samples"])


def check_stop_rolls_minutes_and_the_partial_hour_from_what_is_stored(worker, simulator, run):
    _, started = run
    response = worker.admin_post("/api/stop")
    assert response.status_code == 200 and response.json()["isTracking"] is False
    first_minute = started - started % MINUTE_MS
    first_hour = started - started % HOUR_MS
    windows = d1_rows(worker, "SELECT * FROM lighter_snapshots WHERE timestamp >= ?", first_minute)
    want_minutes = ref.expected_minutes(windows)
    minutes = d1_rows(worker, "SELECT * FROM lighter_minutes WHERE timestamp >= ?", first_minute)
    assert {(m["symbol"], m["timestamp"]) for m in minutes} == set(want_minutes)
    for row in minutes:
        diff = ref.row_mismatches(row, want_minutes[(row["symbol"], row["timestamp"])])
        assert not diff, f"minute {row['symbol']} {row['timestamp']}: {diff}"
    assert sum(m["depth_samples"] for m in minutes) == sum(w["depth_samples"] for w in windows) > 0
    assert sum(m["fill_samples_1m"] for m in minutes) == sum(w["fill_samples_1m"] for w in windows) > 0

    # The hours this run touched, rolled from every minute stored in them.
    all_minutes = d1_rows(worker, "SELECT * FROM lighter_minutes WHERE timestamp >= ?", first_hour)
    want_hours = ref.expected_hours(all_minutes)
    hours = d1_rows(worker, "SELECT * FROM lighter_hours WHERE timestamp >= ? ORDER BY timestamp, symbol", first_hour)
    assert {(h["symbol"], h["timestamp"]) for h in hours} == set(want_hours)
    assert {h["symbol"] for h in hours} == set(active_markets(simulator).values())
    for row in hours:
        diff = ref.row_mismatches(row, want_hours[(row["symbol"], row["timestamp"])])
        assert not diff, f"hour {row['symbol']} {row['timestamp']}: {diff}"
        assert row["timestamp"] % HOUR_MS == 0 and row["depth_samples"] > 0 and row["bid_depth_50"] is not None


def check_hours_api_serves_the_hour_rows(worker, simulator, run):
    _, started = run
    hour = started - started % HOUR_MS
    stored = d1_rows(worker, "SELECT * FROM lighter_hours WHERE timestamp = ? ORDER BY symbol", hour)
    assert stored
    symbol = stored[0]["symbol"]
    page = worker.get_json(f"/api/hours?symbol={symbol}&from={hour}&to={hour}")
    assert page["count"] == 1 and page["limit"] == 60 and page["offset"] == 0
    assert ref.row_mismatches(page["hours"][0], stored[0], rel=0) == []

    everything = worker.get_json(f"/api/hours?from={hour}&to={hour}&limit=1000")
    assert sorted(r["symbol"] for r in everything["hours"]) == [r["symbol"] for r in stored]

    for query, status in (("limit=0", 400), ("bogus=1", 400), ("symbol=NOPE", 404)):
        r = worker.get(f"/api/hours?{query}")
        assert r.status_code == status and "error" in r.json(), query
    assert worker.get_json("/api/hours?from=5&to=4")["count"] == 0  # an empty range, not an error

    r = worker.get(f"/api/export?resolution=hours&format=csv&from={hour}&to={hour}")
    assert r.status_code == 200, r.text
    assert "lighter-hours-all-" in r.headers["content-disposition"]
    records = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(rec["symbol"] for rec in records) == [row["symbol"] for row in stored]
    by_symbol = {rec["symbol"]: rec for rec in records}
    for row in stored:
        assert float(by_symbol[row["symbol"]]["bid_depth_50"]) == pytest.approx(row["bid_depth_50"], rel=1e-12)
        assert int(by_symbol[row["symbol"]]["depth_samples"]) == row["depth_samples"]
        assert float(by_symbol[row["symbol"]]["slip_sell_1k"]) == pytest.approx(row["slip_sell_1k"], rel=1e-12)
        cell = by_symbol[row["symbol"]]["slip_buy_1m"]  # NULL (1m never filled): an empty field
        assert cell == "" if row["slip_buy_1m"] is None else float(cell) == pytest.approx(row["slip_buy_1m"], rel=1e-12)
        assert int(by_symbol[row["symbol"]]["fill_samples_1m"]) == row["fill_samples_1m"]
    doc = worker.get_json(f"/api/export?resolution=hours&format=json&symbol={symbol}&from={hour}&to={hour}")
    assert doc["count"] == 1 and doc["hours"][0]["timestamp"] == hour
    r = worker.get("/api/export?resolution=days")
    assert r.status_code == 400 and "resolution" in r.json()["error"]


def test_depth_and_hours_over_one_run(worker, simulator, run):
    """The checks build on each other (windows, then the stop's rollups, then the API
    over them): one function keeps them in order on whichever pytest worker runs it."""
    for check in (check_window_depth_matches_the_reference_replayed_from_the_frames, check_stop_rolls_minutes_and_the_partial_hour_from_what_is_stored, check_hours_api_serves_the_hour_rows):
        check(worker, simulator, run)
