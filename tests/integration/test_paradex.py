"""Lighter and Paradex tracked at once by the real Worker under wrangler dev, against
the two simulators, with faults on both (issue 14).

What only the real runtime shows: Paradex's binary SBE frames arriving through
workerd's WebSocket into Python (ArrayBuffer -> bytes), its JSON-RPC subscribes, the
ParadexTracker objects with their own alarms, and both exchanges' batches landing in
one D1, each in its own tables. Every Paradex window row must equal the reference
recomputed from the Paradex simulator's record (tests/reference_model.py decodes its
SBE bytes with its own naive decoder); Lighter's rows of the same run stay exact;
nothing of one exchange lands in the other's tables. Fault schedules beyond these run
in the deterministic simulation (tests/sim).
"""

from __future__ import annotations

import pytest

from conftest import wait_until
from simrecord import d1_rows, expected_from_record, minute_mismatches, next_connection, window_mismatches
from tracker.paradex_markets import market_index_of

pytestmark = pytest.mark.timeout(600)

WINDOW_MS = 15_000
TABLES = {"lighter": ("lighter_markets", "lighter_snapshots", "lighter_minutes", "lighter_hours", "tracking_stats"),
          "paradex": ("paradex_markets", "paradex_snapshots", "paradex_minutes", "paradex_hours",
                      "paradex_tracking_stats")}


def lighter_markets(simulator) -> dict[int, str]:
    books = simulator.get("/api/v1/orderBooks")["order_books"]
    return {b["market_id"]: b["symbol"] for b in books if b["status"] == "active"}


def paradex_perps(paradex_simulator) -> dict[int, str]:
    """The PERPs the tracker follows (PARADEX_ASSET_KINDS=PERP): options and spot are listed too."""
    results = paradex_simulator.get("/v1/markets")["results"]
    assert {r["asset_kind"] for r in results} > {"PERP"}, "the simulator lists other kinds to filter out"
    return {market_index_of(r["symbol"]): r["symbol"] for r in results if r["asset_kind"] == "PERP"}


def exchange_stats(worker, exchange: str) -> dict:
    return worker.get_json(f"/api/stats?exchange={exchange}")


def wait_live(worker, exchange: str, n: int, timeout: float = 90) -> dict:
    return worker.wait_json(
        f"/api/stats?exchange={exchange}",
        lambda s: s["isTracking"] and s["connected"] and s["subscribed"] == n and s["validBooks"] == n,
        timeout=timeout,
    )


def test_lighter_and_paradex_at_once_with_faults_on_both(worker, simulator, paradex_simulator):
    lighter, paradex = lighter_markets(simulator), paradex_perps(paradex_simulator)
    worker.admin_post("/api/stop")
    first = {}
    for name, sim in (("lighter", simulator), ("paradex", paradex_simulator)):
        sim.control("reset")
        sim.control("record_frames", on=True)
        first[name] = next_connection(sim)

    # One start, both exchanges (ENABLED_EXCHANGES=lighter,paradex in the session).
    response = worker.admin_post("/api/start")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] and set(body["exchanges"]) == {"lighter", "paradex"}
    assert all(body["exchanges"][name]["isTracking"] for name in ("lighter", "paradex"))
    since = {name: body["exchanges"][name]["flushedUntil"] for name in ("lighter", "paradex")}
    live = wait_live(worker, "paradex", len(paradex))
    wait_live(worker, "lighter", len(lighter))
    assert live["markets"] == len(paradex)  # options and spot filtered out
    markets_table = d1_rows(worker, "SELECT market_index, symbol, market_type, active FROM paradex_markets")
    assert {r["symbol"] for r in markets_table if r["active"]} >= set(paradex.values())
    assert {r["market_index"] for r in markets_table if r["symbol"] in paradex.values()} == set(paradex)

    # Faults on both. Paradex: a lost DELTA (seq gap), a seq skip, malformed, truncated
    # and unknown-template frames, valid frames with a longer root block and group
    # stride, then a dropped connection. Lighter: a nonce gap and malformed frames.
    btc = next(m for m, s in paradex.items() if s == "BTC-USD-PERP")
    before = exchange_stats(worker, "paradex")
    paradex_simulator.control("gap", market="BTC-USD-PERP", mode="drop")
    paradex_simulator.control("gap", market="ETH-USD-PERP", mode="skip")
    for kind in ("truncated", "short", "bad_group", "wrong_schema", "not_json"):
        paradex_simulator.control("malformed", kind=kind, count=1)
    paradex_simulator.control("malformed", kind="unknown_template", count=2)
    paradex_simulator.control("sbe_layout", block_length=97, group_stride=24, count=10)
    simulator.control("gap", market_id=min(lighter))
    simulator.control("malformed", kind="not_json", count=2)
    after = worker.wait_json(
        "/api/stats?exchange=paradex",
        lambda s: s["gaps"] >= before["gaps"] + 2 and s["malformed"] >= before["malformed"] + 5, timeout=45)
    assert after["reconnects"] == before["reconnects"]  # a gap costs one book, not the connection
    wait_live(worker, "paradex", len(paradex))  # resubscribed on the same connection
    paradex_simulator.control("close", code=1011, reason="simulated server restart")
    worker.wait_json("/api/stats?exchange=paradex", lambda s: s["reconnects"] > before["reconnects"], timeout=60)
    wait_live(worker, "paradex", len(paradex))
    wait_live(worker, "lighter", len(lighter))

    # Two more windows on both, then stop both: the partial window and minute are flushed.
    target = {name: exchange_stats(worker, name)["windowsFlushed"] + 2 for name in ("lighter", "paradex")}
    for name in ("lighter", "paradex"):
        worker.wait_json(f"/api/stats?exchange={name}", lambda s, n=name: s["windowsFlushed"] >= target[n], timeout=60)
    stopped = worker.admin_post("/api/stop").json()
    assert not stopped["exchanges"]["paradex"]["isTracking"] and not stopped["exchanges"]["lighter"]["isTracking"]
    for name in ("lighter", "paradex"):
        worker.wait_json(f"/api/stats?exchange={name}", lambda s: s["pendingWindows"] == 0, timeout=30)

    # Every Paradex window of this run equals the reference from the simulator's record.
    for name, sim, markets in (("paradex", paradex_simulator, paradex), ("lighter", simulator, lighter)):
        _, windows_table, minutes_table, _, stats_table = TABLES[name]
        expected, uncertain = expected_from_record(sim, first[name])
        rows = d1_rows(worker, f"SELECT * FROM {windows_table} ORDER BY timestamp, symbol")
        compared, problems = window_mismatches(rows, expected, uncertain, since[name])
        if problems:
            conns = {}
            for r in sim.get("/_sim/record"):
                if r["conn_id"] >= first[name]:
                    c = conns.setdefault(r["conn_id"], [set(), r["timestamp_ms"], 0])
                    c[0].add(r["market_id"]); c[2] = r["timestamp_ms"]
            problems.append(f"since {since[name]}; connections: {conns}")
        assert not problems, f"{name}:\n" + "\n".join(problems[:20])
        assert compared >= len(markets), (name, compared)  # every market, in a window no connection's end touches
        # Slippage was compared, filled and not (the simulator's books: thin, middling and deep).
        assert all(r["fill_samples_1k"] == r["depth_samples"] for r in rows if r["timestamp"] >= since[name])
        assert any(r["fill_samples_1m"] for r in rows) and any(r["fill_samples_1m"] < r["depth_samples"] for r in rows)
        problems = minute_mismatches(rows, d1_rows(worker, f"SELECT * FROM {minutes_table}"))
        assert not problems, f"{name}:\n" + "\n".join(problems[:20])
        assert all(r["is_tracking"] == 0 for r in d1_rows(worker, f"SELECT is_tracking FROM {stats_table}"))
    ticks = d1_rows(worker, "SELECT SUM(tick_count) AS n FROM paradex_snapshots WHERE market_index = ?", btc)[0]["n"]
    assert ticks and ticks > 0

    # Nothing of one exchange in the other's tables, nothing twice.
    for table in ("snapshots", "minutes"):
        lighter_symbols = {r["symbol"] for r in d1_rows(worker, f"SELECT DISTINCT symbol FROM lighter_{table}")}
        paradex_symbols = {r["symbol"] for r in d1_rows(worker, f"SELECT DISTINCT symbol FROM paradex_{table}")}
        assert paradex_symbols <= set(paradex.values()) and not (lighter_symbols & set(paradex.values()))
        dupes = d1_rows(worker, f"SELECT market_index, timestamp, COUNT(*) AS n FROM paradex_{table} "
                                "GROUP BY market_index, timestamp HAVING n > 1")
        assert not dupes
    assert not {r["symbol"] for r in d1_rows(worker, "SELECT symbol FROM lighter_markets")} & set(paradex.values())

    # The API answers Paradex's rows by ?exchange=paradex, and Lighter's as before.
    page = worker.get_json("/api/snapshots?exchange=paradex&symbol=BTC-USD-PERP&limit=1000")
    assert page["count"] == len(d1_rows(worker, "SELECT 1 FROM paradex_snapshots WHERE symbol = 'BTC-USD-PERP'"))
    assert worker.get("/api/minutes?symbol=BTC-USD-PERP").status_code == 404  # a Paradex symbol is not Lighter's
    assert worker.get_json("/api/markets?exchange=paradex")["count"] >= len(paradex)
    wait_until(lambda: not any(c["open"] for c in paradex_simulator.state()["connections"]),
               timeout=15, what="the Paradex sockets to close")
    # The server's protocol pings (every 5 s in this session) were answered by the
    # runtime: pongs came, and no connection was closed for want of one.
    state = paradex_simulator.state()
    assert state["pongs_received"] >= 3 and state["no_pong_closes"] == 0, state
    for sim in (simulator, paradex_simulator):
        sim.control("record_frames", on=False)
