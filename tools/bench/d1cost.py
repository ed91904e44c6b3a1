"""D1 rows read and written, counted the way D1 bills them (python -m bench d1cost).

Two parts, both on D1's own SQLite with D1's row counters (tools/d1sqlite):

1. Steady state: the deterministic simulation (tests/sim: the real shard trackers on
   virtual time, no faults) tracks N markets; after a warm-up long enough for every
   table to be pruned, the counts of one whole hour are divided by markets x windows.
   Rows written per market and window do not depend on how long the rows are kept
   (at steady state each row is written once and deleted once), so the retention is
   shortened to reach the steady state in a few virtual hours: 5 minutes of
   windows, an hour of minutes, an hour of hours. Per shard, the stats row, and the
   tracker objects' own use: alarm invocations (Durable Object requests) and the rows
   their SQLite-backed storage bills. Three Lighter runs: many markets on several
   shards, the guide's Free-plan deployment (--free-markets on one shard) and one
   market alone; and Paradex's.
2. Per API call: the tables filled as the default retention keeps them (an hour of
   windows, a day of minutes, 90 days of hours for every market), then each route's
   statements once, and the tracker's per-alarm statements on that full database.

Prints a table; --json writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "tests", ROOT / "tests" / "sim", ROOT / "src", ROOT / "tools"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from tracker import sql  # noqa: E402
from tracker.config import Config  # noqa: E402
from tracker.validation import MAX_TIMESTAMP_MS  # noqa: E402

HOUR_MS = 3_600_000
WINDOW_MS = 15_000


def steady_state(exchange: str, markets: int, shards: int, seed: int = 1) -> dict:
    """One hour at steady state: rows read and written, per market and window."""
    import world as sim
    from cloud import Usage
    from paradex import PERPS, market_id_of

    base = Config(**sim.LIGHTER_URLS, **sim.PARADEX_URLS, window_ms=WINDOW_MS, flush_grace_ms=1_500,
                  snapshot_retention_ms=5 * 60_000, minute_retention_ms=HOUR_MS, hour_retention_ms=HOUR_MS,
                  stale_feed_ms=30_000, shards=shards, paradex_shards=shards, market_refresh_ms=300_000,
                  enabled_exchanges=(exchange,))
    if exchange == "lighter":
        listed = {m: f"M{m}" for m in range(markets)}
    else:
        symbols = (PERPS * (markets // len(PERPS) + 1))[:markets]
        if len(set(symbols)) < markets:
            raise SystemExit(f"the Paradex simulator lists {len(PERPS)} PERPs: --paradex-markets at most that")
        listed = {market_id_of(s): s for s in symbols}
    plan = sim.Plan(seed, shards, listed, (1_500, 3_000), 4 * HOUR_MS, base.for_exchange(exchange), [],
                    exchange=exchange)
    world = sim.World(plan)
    warm_up = 2 * HOUR_MS + 20 * 60_000  # every table pruned at least once before the hour counted
    marks: dict[str, dict] = {}

    def objects() -> tuple[Usage, int]:
        """Durable Object storage use and alarm invocations so far, every shard."""
        total, alarms = Usage(), 0
        for storage in world.storages.values():
            total.statements += storage.usage.statements
            total.rows_read += storage.usage.rows_read
            total.rows_written += storage.usage.rows_written
            alarms += storage.alarms_fired
        return total, alarms

    async def script() -> None:
        await world.control("start")
        await asyncio.sleep(warm_up / 1000)
        start = world.loop.now_ms()
        marks["before"] = {k: replace(v) for k, v in world.d1.usage.items()}
        marks["objects_before"] = objects()
        await asyncio.sleep(HOUR_MS / 1000)
        marks["after"] = {k: replace(v) for k, v in world.d1.usage.items()}
        marks["objects_after"] = objects()
        marks["span"] = world.loop.now_ms() - start
        await world.control("stop")

    world.script = script
    world.run()
    if world.errors:
        raise SystemExit(f"the simulation failed: {world.errors[:3]}")
    before, after = marks["before"], marks["after"]
    per_statement = {}
    for name, used in after.items():
        was = before.get(name, Usage())
        delta = Usage(used.statements - was.statements, used.rows_read - was.rows_read,
                      used.rows_written - was.rows_written)
        if delta.statements:
            per_statement[name] = delta
    windows = marks["span"] // WINDOW_MS
    market_windows = markets * windows
    written = sum(u.rows_written for u in per_statement.values())
    read = sum(u.rows_read for u in per_statement.values())
    stats_written = sum(u.rows_written for n, u in per_statement.items() if n.endswith("UPSERT_STATS"))
    (storage_before, alarms_before), (storage_after, alarms_after) = marks["objects_before"], marks["objects_after"]
    shard_windows = shards * windows
    return {
        "exchange": exchange, "markets": markets, "shards": shards, "windows": windows,
        "rows_written_per_market_window": written / market_windows,
        "rows_read_per_market_window": read / market_windows,
        "market_rows_written_per_market_window": (written - stats_written) / market_windows,
        "stats_rows_written_per_shard_window": stats_written / shard_windows,
        # The tracker objects themselves (tests/sim/cloud.py SimStorage): alarm invocations
        # (each a Durable Object request) and their SQLite-backed storage's rows.
        "alarms_per_shard_window": (alarms_after - alarms_before) / shard_windows,
        "storage_rows_written_per_shard_window": (storage_after.rows_written - storage_before.rows_written) / shard_windows,
        "storage_rows_read_per_shard_window": (storage_after.rows_read - storage_before.rows_read) / shard_windows,
        "statements": {n: asdict(u) for n, u in sorted(per_statement.items())},
    }


def per_call(markets: int) -> dict:
    """Rows read by each API statement (and the tracker's routine ones) on tables as
    full as the default retention keeps them."""
    from d1sqlite import D1Sqlite

    db = D1Sqlite()
    db.script((ROOT / "schema.sql").read_text())
    s = sql.LIGHTER
    now = 1_795_000_000_000 - 1_795_000_000_000 % HOUR_MS

    def row(m: int, ts: int, parts: int) -> list:
        return [f"M{m}", m, ts, 100.0, 100.2, 0.2, 40, 100.1, 19.98, 0.1, 0.3, 1.5, 2.5, 100.0, 100.2, 100.1,
                15_000, parts, 1e5, 2e5, 5e5, 6e5, 9e5, 1e6, -0.09, 15]

    for statement, period, count, parts in ((s.UPSERT_WINDOWS, WINDOW_MS, 240, 15_000), (s.UPSERT_MINUTES, 60_000, 1440, 4),
                                            (s.UPSERT_HOURS, HOUR_MS, 2160, 240)):
        rows = [row(m, now - (k + 1) * period, parts) for m in range(markets) for k in range(count)]
        for i in range(0, len(rows), sql.BULK_ROWS):
            db.run(statement, (json.dumps(rows[i:i + sql.BULK_ROWS]),))
    for m in range(markets):
        db.run(s.UPSERT_MARKET, (m, f"M{m}", "perp", "active", 1, 2, 4, 0, now, f"M{m}"))
    db.run(s.INSERT_MARKET_SYMBOLS, (json.dumps([[f"M{m}", m] for m in range(markets)]),))
    db.run(s.UPSERT_STATS, (0, 1, markets, 1, 1000, now, 0, 0, 0, 0, 0, 240, 0, now, now - HOUR_MS, now, now - 60_000, 0, 0, now))
    day, page = 86_400_000, 100
    calls = {
        "GET /api/overview": [(s.API_OVERVIEW, ())],
        "GET /api/markets": [(s.API_SELECT_MARKETS, ())],
        "GET /api/stats (row counts)": [(s.API_COUNT_ROWS, ())],
        f"GET /api/minutes?symbol=M7&limit={page}": [(s.API_MINUTES_PAGE_FOR_SYMBOL, ("M7", 0, MAX_TIMESTAMP_MS, page, 0)),
                                                    (s.API_SYMBOL_EXISTS, ("M7",))],
        "GET /api/minutes?symbol=M7&limit=1000 (the price chart)": [
            (s.API_MINUTES_PAGE_FOR_SYMBOL, ("M7", 0, MAX_TIMESTAMP_MS, 1000, 0)), (s.API_SYMBOL_EXISTS, ("M7",))],
        f"GET /api/minutes?limit={page} (every symbol)": [(s.API_MINUTES_PAGE, (0, MAX_TIMESTAMP_MS, page, 0))],
        f"GET /api/snapshots?limit={page} (every symbol)": [(s.API_SNAPSHOTS_PAGE, (0, MAX_TIMESTAMP_MS, page, 0))],
        f"GET /api/hours?symbol=M7&limit={page}": [(s.API_HOURS_PAGE_FOR_SYMBOL, ("M7", 0, MAX_TIMESTAMP_MS, page, 0)),
                                                  (s.API_SYMBOL_EXISTS, ("M7",))],
        "sealed point (history cache), per bounded page": [(s.API_SEALED_UNTIL, ())],
    }
    out: dict[str, dict] = {}
    for name, statements in calls.items():
        read = returned = 0
        for text, binds in statements:
            result = db.run(text, binds)
            read += result.rows_read
            returned += len(result.rows)
        out[name] = {"rows_read": read, "rows": returned}
    # A whole export of a day of minutes, every symbol, paged as the Worker pages it.
    from tracker import export

    (extent,) = db.run(s.API_EXPORT_MINUTES_EXTENT, (now - day, MAX_TIMESTAMP_MS)).rows
    read = extent_read = db.run(s.API_EXPORT_MINUTES_EXTENT, (now - day, MAX_TIMESTAMP_MS)).rows_read
    cursor, last = export.first_cursor(extent["oldest"]), extent["newest"]
    span, pages, exported = export.slice_ms(60_000, extent["markets"]), 0, 0
    while True:
        until = cursor[0] + span
        result = db.run(s.API_EXPORT_MINUTES_PAGE, (*cursor, last, export.PAGE_SIZE, until))
        pages, exported, read = pages + 1, exported + len(result.rows), read + result.rows_read
        if len(result.rows) == export.PAGE_SIZE:
            cursor = export.next_cursor([list(r.values()) for r in result.rows])
        elif until <= last:
            cursor = export.first_cursor(until)
        else:
            break
    out["GET /api/export (a day of minutes, every symbol)"] = {"rows_read": read, "rows": exported, "pages": pages,
                                                               "extent_rows_read": extent_read}
    tracker = {
        "SELECT_WINDOWS_FOR_ROLLUP (a minute, 1 shard)": (s.SELECT_WINDOWS_FOR_ROLLUP, (now - 120_000, now - 60_000, 1, 0)),
        "SELECT_MINUTES_FOR_ROLLUP (an hour, 1 shard)": (s.SELECT_MINUTES_FOR_ROLLUP, (now - HOUR_MS, now, 1, 0)),
        "PRUNE_WINDOWS (one window each)": (s.PRUNE_WINDOWS, (now - 239 * WINDOW_MS, 1, 0)),
        "PRUNE_MINUTES (one minute each)": (s.PRUNE_MINUTES, (now - 1439 * 60_000, 1, 0)),
        "PRUNE_HOURS (nothing due)": (s.PRUNE_HOURS, (now - 2160 * HOUR_MS, 1, 0)),
        "SELECT_OTHERS_FRONTIERS": (s.SELECT_OTHERS_FRONTIERS, (0,)),
        "SELECT_ACTIVE_MARKETS": (s.SELECT_ACTIVE_MARKETS, ()),
        "DEACTIVATE_MISSING_MARKETS (nothing missing)": (s.DEACTIVATE_MISSING_MARKETS, (now, json.dumps(list(range(markets))))),
    }
    routine = {}
    for name, (text, binds) in tracker.items():
        result = db.run(text, binds)
        routine[name] = {"rows_read": result.rows_read, "rows_written": result.rows_written, "rows": len(result.rows)}
    table_rows = markets * (240 + 1440 + 2160)
    return {"markets": markets, "table_rows": table_rows, "api": out, "tracker": routine}


def _print(steady: list[dict], calls: dict) -> None:
    print("\nD1 rows at steady state (one hour counted after the warm-up), D1's own counters")
    print(f"{'exchange':9s} {'markets':>7s} {'shards':>6s} {'written/market/window':>22s} "
          f"{'of which data rows':>19s} {'stats rows/shard/window':>24s} {'read/market/window':>19s}")
    for r in steady:
        print(f"{r['exchange']:9s} {r['markets']:7d} {r['shards']:6d} {r['rows_written_per_market_window']:22.3f} "
              f"{r['market_rows_written_per_market_window']:19.3f} {r['stats_rows_written_per_shard_window']:24.3f} "
              f"{r['rows_read_per_market_window']:19.1f}")
    print("\nThe tracker objects, per shard and window: alarm invocations (Durable Object requests),"
          "\nrows of their SQLite-backed storage (a row a key put or deleted and a setAlarm; a row a key read)")
    print(f"{'exchange':9s} {'markets':>7s} {'shards':>6s} {'alarms':>8s} {'storage written':>16s} {'storage read':>13s}")
    for r in steady:
        print(f"{r['exchange']:9s} {r['markets']:7d} {r['shards']:6d} {r['alarms_per_shard_window']:8.3f} "
              f"{r['storage_rows_written_per_shard_window']:16.3f} {r['storage_rows_read_per_shard_window']:13.3f}")
    for r in steady:
        print(f"\n  {r['exchange']}, {r['markets']} markets, {r['shards']} shard(s), {r['windows']} windows: per statement")
        for name, u in r["statements"].items():
            print(f"    {name:42s} {u['statements']:6d} runs {u['rows_written']:8d} written {u['rows_read']:9d} read")
    print(f"\nRows read per call, {calls['markets']} markets at the default retention ({calls['table_rows']:,} rows)")
    for name, r in calls["api"].items():
        extra = f", {r['pages']} pages" if "pages" in r else ""
        print(f"  {name:58s} {r['rows_read']:9,d} read for {r['rows']:,} rows{extra}")
    print("  the tracker, per run:")
    for name, r in calls["tracker"].items():
        print(f"  {name:58s} {r['rows_read']:9,d} read, {r['rows_written']:,} written")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench d1cost", description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=20, help="Lighter markets in the steady-state run")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--free-markets", type=int, default=6,
                    help="Lighter markets of the one-shard run (DEPLOY.md's Free-plan deployment)")
    ap.add_argument("--paradex-markets", type=int, default=0, help="0: as many PERPs as the simulator lists")
    ap.add_argument("--api-markets", type=int, default=200, help="markets in the per-call part")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    from paradex import PERPS

    steady = [steady_state("lighter", args.markets, args.shards),
              steady_state("lighter", args.free_markets, 1),
              steady_state("lighter", 1, 1),
              steady_state("paradex", args.paradex_markets or len(PERPS), 1)]
    calls = per_call(args.api_markets)
    _print(steady, calls)
    print(f"\n({time.monotonic() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"steady": steady, "per_call": calls}, indent=1) + "\n")
    return 0
