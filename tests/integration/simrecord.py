"""What the integration stories share: the local D1 file, and the reference rows
recomputed from a simulator's own record of every frame it sent (Lighter's JSON or
Paradex's SBE bytes: tests/reference_model.py replays both)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import reference_model as ref

WINDOW_MS = 15_000


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


def next_connection(simulator) -> int:
    """Connections are numbered in order: a run's are those from this number on."""
    seen = [c["conn"] for c in simulator.state()["connections"]] + [r["conn_id"] for r in simulator.get("/_sim/record")]
    return max(seen, default=0) + 1


def expected_from_record(simulator, first_conn: int) -> tuple[dict, set[tuple[int, int]]]:
    """Reference windows (depth included: the simulator keeps every frame) from every
    frame the simulator sent on connections from `first_conn` on, and the windows that
    touch a connection's end (their coverage depends on frames in flight then)."""
    by_conn: dict[int, list[dict]] = {}
    for r in simulator.get("/_sim/record"):
        if r["conn_id"] >= first_conn:
            assert {"frame", "frame_b64", "frame_text"} & set(r), "record_frames was on for this run's connections"
            by_conn.setdefault(r["conn_id"], []).append(r)
    events: list[ref.Event] = []
    uncertain: set[tuple[int, int]] = set()
    for conn_id in sorted(by_conn):
        conn_records = by_conn[conn_id]
        events += ref.events_from_sim_record(conn_records)
        last_ts = max(r["timestamp_ms"] for r in conn_records)
        # The tracker drops every book of a connection when it goes: nothing stands
        # through it (another shard's connection and its markets carry on).
        markets = {r["market_id"] for r in conn_records}
        events += [ref.Event(m, last_ts, "invalid") for m in markets]
        uncertain |= {(m, last_ts - last_ts % WINDOW_MS) for m in markets}
    return ref.expected_windows(events, WINDOW_MS), uncertain


def window_mismatches(rows: list[dict], expected: dict, uncertain: set, since: int) -> tuple[int, list[str]]:
    """Compare D1 window rows from `since` on with the reference: (compared, problems)."""
    compared, problems = 0, []
    for row in rows:
        key = (row["market_index"], row["timestamp"])
        if key in uncertain or row["timestamp"] < since:
            continue
        want = expected.get(key)
        if want is None:
            problems.append(f"{key}: written but the reference has no ticks there")
            continue
        diff = ref.row_mismatches(row, want)
        if diff:
            problems.append(f"{key}: {diff}")
        compared += 1
    return compared, problems


def minute_mismatches(windows: list[dict], minutes: list[dict]) -> list[str]:
    """Every minute row equals the rollup of its windows in D1, and every window's minute exists."""
    by_market: dict[int, list[dict]] = {}
    for w in windows:
        by_market.setdefault(w["market_index"], []).append(w)
    want = {}
    for rows in by_market.values():
        want.update({(r["market_index"], minute): r for (_, minute), r in ref.expected_minutes(rows).items()})
    problems = []
    keys = {(m["market_index"], m["timestamp"]) for m in minutes}
    if keys != set(want):
        problems.append(f"minutes {sorted(keys ^ set(want))[:10]} differ from the windows' minutes")
    for row in minutes:
        key = (row["market_index"], row["timestamp"])
        if key in want:
            diff = ref.row_mismatches(row, want[key])
            if diff:
                problems.append(f"minute {key}: {diff}")
    return problems
