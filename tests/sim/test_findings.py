"""Each finding of the orchestration review, as a scenario of the deterministic
simulation (or a unit test where no time passes). Every one of these failed on the
first release's design; the simulation's invariants (tests/sim/invariants.py) are
checked on top of each test's own assertions.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

import world as sim
from invariants import check
from tracker import control, sql
from tracker.shard import STATE_KEY

SYMBOLS = {1: "ETH", 2: "BTC", 3: "SOL"}


def scenario(events, *, shards=1, markets=SYMBOLS, duration_s=150, seed=1, **config) -> sim.World:
    plan = sim.make_plan(seed)
    plan = replace(plan, shards=shards, markets=dict(markets), duration_ms=duration_s * 1000, events=events,
                   frame_ms=(300, 900), config=replace(plan.config, shards=shards, **config))
    world = sim.World(plan)
    world.run()
    return world


def assert_invariants(world: sim.World) -> None:
    violations = check(world)
    assert not violations, violations[:5]


def test_stop_while_an_alarm_awaits_its_d1_batch_loses_and_doubles_nothing():
    """Finding 1: stop() arriving while the alarm's flush awaits D1 appended the partial
    window and flushed it; the alarm then cleared the stop's window unwritten."""
    world = scenario([(40_000, "d1_slow", {"seconds": 60}), (50_000, "stop_in_flush", {})])
    assert_invariants(world)
    assert world.d1.rewrites_differing == []


def test_windows_closed_during_an_outage_are_written_after_stop_and_after_an_eviction():
    """Finding 2: after stop a failed write was retried once, and pending windows lived
    only in memory: an eviction lost them uncounted."""
    world = scenario([(30_000, "d1_outage", {"seconds": 200}), (60_000, "evict", {"shard": 0})], duration_s=120)
    assert_invariants(world)  # every window with ticks is in D1 or recorded lost, outbox empty
    written = world.d1.rows("SELECT COUNT(*) AS n FROM lighter_snapshots")[0]["n"]
    assert written > 0


def test_one_minute_retention_never_prunes_a_window_before_its_minute_is_rolled():
    """Finding 3: the prune ran in the flush batch, before the rollup read the windows."""
    world = scenario([(20_000, "d1_outage", {"seconds": 90})], snapshot_retention_ms=60_000, duration_s=200)
    assert world.d1.prune_violations == []
    assert world.d1.pruned, "retention of one minute pruned nothing: the scenario tests nothing"
    assert_invariants(world)


def test_markets_listed_and_delisted_while_tracking_are_followed():
    """Finding 4: the market list was read only when empty."""
    world = scenario([(20_000, "list", {"market": 70}), (25_000, "delist", {"market": 2})],
                     market_refresh_ms=30_000, duration_s=150)
    assert_invariants(world)
    assert world.exchange.first_snapshot[70] <= world._t0 + 20_000 + 30_000 + 5_000
    assert 2 not in world.exchange.live_subscriptions()
    logged = [e[4] for e in world.logs]
    assert "market_listed" in logged and "market_delisted" in logged


def test_markets_sharing_a_symbol_get_rows_of_their_own_and_are_reported():
    """Finding 5: rows were keyed by symbol, so two markets could overwrite each other."""
    world = scenario([], markets={1: "ETH", 2: "ETH", 3: "SOL"}, duration_s=60)
    assert_invariants(world)
    per_market = world.d1.rows("SELECT market_index, COUNT(*) AS n FROM lighter_snapshots GROUP BY market_index")
    assert {r["market_index"] for r in per_market} == {1, 2, 3}
    assert any(e[4] == "duplicate_symbols" and "ETH" in e[5] for e in world.logs)


def test_the_rollup_does_not_depend_on_the_saved_market_list():
    """Finding 6: the rollup read windows through lighter_markets.shard; when saving the
    list failed, it found nothing, yet advanced: minutes skipped silently."""
    plan = sim.make_plan(1)
    plan = replace(plan, shards=1, markets=dict(SYMBOLS), duration_ms=150_000, events=[], frame_ms=(300, 900),
                   config=replace(plan.config, shards=1))
    world = sim.World(plan)
    real = world.d1.execute_batch

    def refuse_market_saves(statements):
        if any("lighter_markets" in text for text, _ in statements):
            raise RuntimeError("D1_ERROR: simulated failure of the market list save")
        return real(statements)

    world.d1.execute_batch = refuse_market_saves
    world.run()
    assert world.d1.rows("SELECT COUNT(*) AS n FROM lighter_markets")[0]["n"] == 0
    assert world.d1.rows("SELECT COUNT(*) AS n FROM lighter_minutes")[0]["n"] >= len(SYMBOLS)
    assert_invariants(world)


def test_a_step_that_raises_is_logged_counted_and_the_alarm_goes_on(monkeypatch):
    """Finding 7: exceptions escaped the alarm (push_stats, _save were unguarded)."""
    from tracker import shard

    calls = {"n": 0}
    real = shard.ShardTracker._alert

    async def flaky(self, now):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise ValueError("a bug in a step")
        await real(self, now)

    monkeypatch.setattr(shard.ShardTracker, "_alert", flaky)
    world = scenario([], duration_s=120)
    assert world.errors == []  # nothing escaped alarm()
    failed = [e for e in world.logs if e[4] == "step_failed"]
    assert failed and "a bug in a step" in failed[0][5]
    state = json.loads(world.storages[0].data[STATE_KEY])
    assert state["totals"]["alarm_errors"] >= 1
    assert world.d1.rows("SELECT COUNT(*) AS n FROM lighter_snapshots")[0]["n"] > 0  # windows kept flowing


def test_a_failing_shard_is_reported_not_a_failure_of_the_whole_call():
    """Finding 8 (a): gather without return_exceptions made /api/start a 500 after the
    other shards had started."""
    started = []

    async def call(shard, action):
        if shard == 1:
            raise RuntimeError("object reset")
        started.append((shard, action))
        return {"shard": shard, "ok": True}

    results = asyncio.run(control.fan_out("start", 3, known=[0, 1, 2], call=call))
    assert started == [(0, "start"), (2, "start")]
    assert results[1] == {"shard": 1, "failed": "RuntimeError: object reset"}


def test_objects_beyond_a_lowered_shards_are_stopped():
    """Finding 8 (b): lowering SHARDS left objects tracking that /api/stop could not reach."""
    assert control.targets("stop", 2, known=[0, 1, 2, 3]) == [(0, "stop"), (1, "stop"), (2, "stop"), (3, "stop")]
    assert control.targets("start", 2, known=[0, 3]) == [(0, "start"), (1, "start"), (3, "stop")]
    world = scenario([(30_000, "shards_change", {"shards": 1})], shards=3, duration_s=90)
    assert_invariants(world)
    for shard in (1, 2):
        assert json.loads(world.storages[shard].data[STATE_KEY])["tracking"] is False


def test_a_shard_resumed_by_its_alarm_keeps_the_identity_it_saved():
    """Finding 9: the shard number came only from ctx.id.name, which an alarm-woken
    instance may lack: a resumed shard 2 would act as shard 0."""
    world = scenario([], shards=3, duration_s=40)
    storage = world.storages[2]
    tracker = sim.ShardTracker(world.config, 0, sim.Ports(  # the name is gone: hint 0
        clock=world.loop, storage=storage.port(sim.Incarnation(99)), db=None, sockets=None, http=None,
        peers=None, log=lambda *a: None, spawn=None))
    loop = asyncio.new_event_loop()
    storage.on_alarm_change = lambda: None
    storage.on_put = None
    loop.run_until_complete(tracker.ready())
    loop.close()
    assert tracker.shard == 2 and tracker.stats().shard == 2


def test_one_rest_read_of_the_market_list_per_refresh_for_the_whole_deployment():
    """Finding 10: every shard read Lighter's REST at start and resume (60 requests a
    minute per IP): shard 0 reads it and hands it over."""
    world = scenario([(40_000, "restart", {})], shards=4, market_refresh_ms=30_000, duration_s=150,
                     markets={i: f"M{i}" for i in range(8)})
    assert_invariants(world)
    refreshes = 150_000 // 30_000
    assert world.exchange.rest_calls <= refreshes + 3, world.exchange.rest_calls  # not x4 shards
    assert any(e[4] == "markets_loaded" and e[1] == 3 for e in world.logs)


@pytest.mark.parametrize("during", [sql.LIGHTER.UPSERT_WINDOWS, sql.LIGHTER.SELECT_OTHERS_FRONTIERS, sql.LIGHTER.SELECT_WINDOWS_FOR_ROLLUP],
                         ids=["outbox-drain", "frontiers", "own-roll"])
def test_a_start_while_a_stopped_shard_still_rolls_up_leaves_the_new_runs_minute_open(monkeypatch, during):
    """Seed 5200: after a stop with D1 failing, a stopped shard's alarm drained its outbox
    and rolled up its run's last minutes (stopped: the partial minute is final); the
    start of the next run (a new SHARDS) landed while that flush awaited D1. The new
    run's first minute was then marked rolled with only the old run's windows of it,
    and never rolled again with the windows the new run wrote into it: the stale
    `final` rolled it (start while the outbox drained, or while the rollup read the
    frontiers, the seed's case), or the old run's frontier was written over the new
    run's (start while the old run's minutes were rolled). Here shard 0's stopped
    flush awaits `during` until the start has run."""
    import cloud

    world: sim.World | None = None
    held = []

    def hold(real):
        async def call(self, *args):
            text = args[0] if isinstance(args[0], str) else args[0][0][0]  # a query, or a batch's first
            shard_0 = world.instances.get(0, (None,))[0]
            if (not held and world.config.shards == 1 and not world.tracking and self.life is shard_0
                    and world.loop.now_ms() >= world.d1.failing_until and text.startswith(during[:60])):
                held.append(text)
                while not world.tracking:  # this call stays in flight until the start has run
                    await asyncio.sleep(0.05)
            return await real(self, *args)
        return call

    monkeypatch.setattr(cloud.SimD1Port, "query", hold(cloud.SimD1Port.query))
    monkeypatch.setattr(cloud.SimD1Port, "batch", hold(cloud.SimD1Port.batch))
    plan = sim.make_plan(1)
    # D1 fails across the stop of SHARDS 2: shard 0's alarm drains and rolls up afterwards.
    plan = replace(plan, shards=2, markets=dict(SYMBOLS), duration_ms=150_000, frame_ms=(300, 900),
                   events=[(40_000, "d1_outage", {"seconds": 12}), (45_000, "shards_change", {"shards": 1})],
                   config=replace(plan.config, shards=2))
    world = sim.World(plan)
    world.run()
    assert held, "no start landed inside shard 0's stopped flush: the scenario tests nothing"
    assert_invariants(world)
