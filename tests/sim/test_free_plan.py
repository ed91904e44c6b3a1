"""What a small deployment costs, counted in the simulation (issue 19 item 2: the Free
plan's daily limits). The guide's Free-plan table takes its figures from `python -m bench
d1cost`; these tests hold the design choices behind them."""

from __future__ import annotations

from dataclasses import replace

import world as sim
from invariants import check

SYMBOLS = {1: "ETH", 2: "BTC"}


def scenario(*, shards: int, markets=SYMBOLS, duration_s: int = 400, seed: int = 3) -> sim.World:
    plan = sim.make_plan(seed, timed=False)
    plan = replace(plan, shards=shards, markets=dict(markets), duration_ms=duration_s * 1000, events=[],
                   frame_ms=(300, 900), config=replace(plan.config, shards=shards))
    world = sim.World(plan)
    world.run()
    violations = check(world)
    assert not violations, violations[:5]
    return world


def stats_rows_written(world: sim.World) -> int:
    return world.d1.usage["LIGHTER.UPSERT_STATS"].rows_written


def test_one_shard_rewrites_its_stats_row_once_a_minute_not_every_window():
    """With SHARDS=1 no other shard reads this shard's flush frontier from D1: the row
    goes when what the API reads from it moves (a start, a stop, the minute rolled), about
    once a minute, not at every flush (1.25 rows a window cost a one-market deployment
    more than its market did)."""
    world = scenario(shards=1)
    minutes, windows = 400 / 60, 400 / 15
    written = stats_rows_written(world)
    # a row a minute, and the start's, the stop's and its last minute's
    assert written <= minutes + 5 < windows / 2, f"{written} stats rows in {minutes:.1f} minutes"
    final = world.d1.rows("SELECT is_tracking, flushed_until, sealed_until, windows_flushed FROM tracking_stats")
    assert len(final) == 1 and final[0]["is_tracking"] == 0, final
    # After the stop the row is exact: every window flushed, every minute rolled.
    assert final[0]["sealed_until"] >= final[0]["flushed_until"] > 0, final


def test_several_shards_still_publish_their_frontier_at_every_flush():
    """Each shard's rollup waits for the others' windows (`written_until`): with two
    shards the row goes at every flush, or minutes would wait for one another."""
    world = scenario(shards=2, markets={1: "ETH", 2: "BTC", 3: "SOL", 4: "DOGE"})
    windows = 400 / 15
    assert stats_rows_written(world) >= 2 * (windows - 4)


def test_a_shard_writes_few_rows_of_object_storage_a_window():
    """SQLite-backed Durable Object storage bills a row written per key put or deleted
    and per setAlarm, and the Free plan allows 100,000 a day: a shard's 5,760 windows a
    day get about 17 rows each at most. The outbox costs 5 a window (its chunk, its index
    twice, the state in the same write, the chunk's deletion); an alarm re-sets the alarm
    once as a safety net and once for what is due, and saves the state once: a lane that
    ends wanting the alarm where it already is, or a save of the state as it already is
    in storage, writes nothing."""
    world = scenario(shards=1, duration_s=600)
    windows = 600 / 15
    storage = world.storages[0]
    per_window = storage.usage.rows_written / windows
    alarms = storage.alarms_fired / windows
    assert per_window <= 6 + 3 * alarms, f"{per_window:.1f} rows written a window, {alarms:.2f} alarms a window"
