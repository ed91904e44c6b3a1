"""D1's own row counters against the simulated D1's (issue 19, item 1).

The simulation and `python -m bench d1cost` (hence DEPLOY.md's cost figures) count
rows read and written on tools/d1sqlite, D1's SQLite with D1's counters
(tests/sim/cloud.py SimD1). This holds that count to D1's, statement by statement:

1. a short deterministic simulation (two shards, three markets, the retention shortened
   so that windows, minutes and hours are written, rolled up and pruned) is recorded:
   every statement the trackers sent, grouped as they sent them (a batch, a read);
2. the API's statements are added, on the same tables, with the parameters the Worker
   binds (runtime/api.py: pages, exports, their extents, the symbol check ...);
3. the same calls, in the same order, run on a fresh simulated D1 and, through a
   test-only route (`POST /_test/d1meter`, only with the D1_METER var), on the D1 of the
   session's other stack (tests/conftest.py `private_worker`: it never tracks, so nothing
   else writes its database);
4. every statement's `rows_read`, `rows_written`, `changes` and rows returned must be
   the same, and every statement of tracker/sql.py must have been run.
"""

from __future__ import annotations

import json
import sys

import pytest
import requests

import devstack
from conftest import PRIVATE_GROUP

ROOT = devstack.ROOT
for extra in (ROOT / "tests" / "sim", ROOT / "src"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import world as sim  # noqa: E402
from cloud import statement_name  # noqa: E402
from d1record import differences, record, replay_simulated  # noqa: E402
from tracker import export, sql  # noqa: E402
from tracker.config import D1_METER_PATH, Config  # noqa: E402
from tracker.validation import MAX_TIMESTAMP_MS  # noqa: E402

pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group(PRIVATE_GROUP)]

MINUTE_MS, HOUR_MS = 60_000, 3_600_000
MARKETS = {1: "ETH", 2: "BTC", 3: "SOL"}
CALLS_PER_POST = 40
TABLES = [f"{x}_{t}" for x in ("lighter", "paradex") for t in ("markets", "snapshots", "minutes", "hours")] + [
    "tracking_stats", "paradex_tracking_stats"]


def record_simulation() -> list:
    """Every D1 call of a short simulated run (windows, minutes and hours written,
    rolled up and pruned; two shards, so their frontiers are read)."""
    config = Config(**sim.LIGHTER_URLS, window_ms=15_000, flush_grace_ms=1_500, snapshot_retention_ms=3 * MINUTE_MS,
                    minute_retention_ms=HOUR_MS, hour_retention_ms=HOUR_MS, stale_feed_ms=30_000, shards=2,
                    market_refresh_ms=300_000, enabled_exchanges=("lighter",))
    plan = sim.Plan(5, 2, dict(MARKETS), (1_500, 3_000), 80 * MINUTE_MS, config.for_exchange("lighter"), [])
    return record(sim.World(plan))


def api_calls(d1) -> list:
    """The API's statements (and the start/stop fan-out's, runtime/shards.py) on the
    recorded tables, bound as runtime/api.py binds them."""
    s = sql.LIGHTER
    newest = d1.rows("SELECT MAX(timestamp) AS t FROM lighter_minutes")[0]["t"]
    oldest = d1.rows("SELECT MIN(timestamp) AS t FROM lighter_minutes")[0]["t"]
    symbol, page = "BTC", 50
    reads = [
        (s.API_OVERVIEW, []), (s.API_SELECT_MARKETS, []), (s.SELECT_KNOWN_SHARDS, []), (s.API_COUNT_ROWS, []), (s.API_SEALED_UNTIL, []),
        (s.API_SYMBOL_EXISTS, [symbol]), (s.API_SYMBOL_EXISTS, ["NOPE"]), (s.API_ASSET_MARKETS, []),
    ]
    btc = next(i for i, name in MARKETS.items() if name == symbol)
    for statement in s.API_COMPARE.values():  # /api/compare: one market's rows per resolution
        reads += [(statement, [btc, 0, MAX_TIMESTAMP_MS, page]), (statement, [btc, oldest, newest, 1000])]
    for name in ("API_MINUTES_PAGE", "API_HOURS_PAGE", "API_SNAPSHOTS_PAGE"):
        reads += [(getattr(s, name), [0, MAX_TIMESTAMP_MS, page, 0]),
                  (getattr(s, name), [oldest, newest - 10 * MINUTE_MS, page, 5]),
                  (getattr(s, name + "_FOR_SYMBOL"), [symbol, 0, MAX_TIMESTAMP_MS, page, 0]),
                  (getattr(s, name + "_FOR_SYMBOL"), [symbol, oldest, newest, 1000, 0])]
    for unit_ms, extent, all_symbols, one_symbol in (
            (MINUTE_MS, s.API_EXPORT_MINUTES_EXTENT, s.API_EXPORT_MINUTES_PAGE, s.API_EXPORT_MINUTES_PAGE_FOR_SYMBOL),
            (HOUR_MS, s.API_EXPORT_HOURS_EXTENT, s.API_EXPORT_HOURS_PAGE, s.API_EXPORT_HOURS_PAGE_FOR_SYMBOL)):
        reads.append((extent, [0, MAX_TIMESTAMP_MS]))
        cursor = export.first_cursor(oldest)
        span = export.slice_ms(unit_ms, len(MARKETS))
        reads.append((all_symbols, [*cursor, newest, export.PAGE_SIZE, cursor[0] + span]))
        reads.append((all_symbols, [*cursor, newest, 7, cursor[0] + 20 * span]))
        reads.append((one_symbol, [symbol, *cursor, MAX_TIMESTAMP_MS, export.PAGE_SIZE]))
    return [(False, [read]) for read in reads]


def measured(url: str, calls) -> list[dict]:
    metas = []
    for i in range(0, len(calls), CALLS_PER_POST):
        chunk = [{"batch": is_batch, "statements": statements} for is_batch, statements in calls[i:i + CALLS_PER_POST]]
        answer = requests.post(url + D1_METER_PATH, data=json.dumps({"calls": chunk}), timeout=120)
        assert answer.status_code == 200, answer.text[:500]
        metas += answer.json()["metas"]
    return metas


def test_the_route_is_off_without_its_var(worker):
    answer = worker.post(D1_METER_PATH, data=json.dumps({"calls": [{"batch": False, "statements": [["SELECT 1", []]]}]}))
    assert answer.status_code == 404


def test_d1_counts_every_statement_as_the_simulation_does(private_worker):
    calls = record_simulation()
    _, after = replay_simulated(calls)
    calls += api_calls(after)
    expected, _ = replay_simulated(calls)
    try:
        actual = measured(private_worker.url, calls)
    finally:  # the stack's D1 as the other modules on it found it: empty
        measured(private_worker.url, [(True, [(f"DELETE FROM {table}", []) for table in TABLES])])
    names = [statement_name(text) for _, statements in calls for text, _ in statements]
    assert len(actual) == len(expected) == len(names)
    every = {f"LIGHTER.{n}" for n, v in vars(sql.LIGHTER).items() if isinstance(v, str)}
    assert every <= set(names), f"statements of sql.py not run: {sorted(every - set(names))}"
    totals = {k: (sum(m[k] for m in expected), sum(m[k] for m in actual)) for k in ("rows_read", "rows_written")}
    print(f"{len(names)} statements, {len(set(names))} shapes; rows read, written (simulated, D1): {totals}")
    assert differences(names, expected, actual) == []
