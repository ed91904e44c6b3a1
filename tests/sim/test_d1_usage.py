"""The simulated D1 counts what D1's SQLite counts without the simulation's own
bookkeeping (cloud.py's triggers note every window row a batch touches): rows read,
rows written and changes, statement by statement, over a recorded run that writes,
rolls up and prunes windows and minutes. (tests/integration/test_d1_counts.py holds the
same count to D1's under wrangler dev.)"""

from __future__ import annotations

import world as sim
from cloud import statement_name
from d1record import differences, record, replay_plain, replay_simulated
from tracker.config import Config

MINUTE_MS = 60_000


def test_the_simulated_d1_counts_as_d1s_sqlite_does():
    config = Config(**sim.LIGHTER_URLS, window_ms=15_000, flush_grace_ms=1_500, snapshot_retention_ms=2 * MINUTE_MS,
                    minute_retention_ms=10 * MINUTE_MS, stale_feed_ms=30_000, shards=2, market_refresh_ms=300_000,
                    enabled_exchanges=("lighter",))
    plan = sim.Plan(7, 2, {1: "ETH", 2: "BTC"}, (1_500, 3_000), 15 * MINUTE_MS, config.for_exchange("lighter"), [])
    calls = record(sim.World(plan))
    names = [statement_name(text) for _, statements in calls for text, _ in statements]
    assert {"LIGHTER.UPSERT_WINDOWS", "LIGHTER.PRUNE_WINDOWS", "LIGHTER.UPSERT_MINUTES"} <= set(names)
    simulated, _ = replay_simulated(calls)
    assert differences(names, replay_plain(calls), simulated) == []
