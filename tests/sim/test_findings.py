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
from invariants import check, reference_windows
from tracker import control, sql
from tracker.shard import STATE_KEY

SYMBOLS = {1: "ETH", 2: "BTC", 3: "SOL"}


def scenario(events, *, shards=1, markets=SYMBOLS, duration_s=150, seed=1, timing=sim.Timing(),
             server_ping_ms=None, **config) -> sim.World:
    """`server_ping_ms`: Lighter pings from the server that often (None: as `seed` draws it)."""
    plan = sim.make_plan(seed, timed=False)
    plan = replace(plan, shards=shards, markets=dict(markets), duration_ms=duration_s * 1000, events=events,
                   frame_ms=(300, 900), config=replace(plan.config, shards=shards, **config), timing=timing)
    world = sim.World(plan)
    if server_ping_ms is not None:
        world.exchange.ping_every_ms = server_ping_ms
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


def test_an_allowlist_tracks_its_markets_only_and_reports_a_symbol_not_listed():
    """LIGHTER_MARKETS (issue 19, item 2): only its markets are subscribed, written and
    saved, on every shard, a market listed later is taken only when named, and a named
    symbol the exchange does not list is reported once (with the listed spelling when
    only the case differs), never fatal."""
    world = scenario([(20_000, "list", {"market": 70}), (30_000, "list", {"market": 71})],
                     shards=2, market_refresh_ms=30_000, duration_s=150,
                     market_symbols=("ETH", "SOL", "M71", "NOPE", "btc"))
    assert_invariants(world)  # no subscription, no row, no saved market outside the list
    names = {r["symbol"] for r in world.d1.rows("SELECT DISTINCT symbol FROM lighter_snapshots")}
    assert names == {"ETH", "SOL", "M71"}
    saved = world.d1.rows("SELECT symbol, active FROM lighter_markets ORDER BY market_index")
    assert saved == [{"symbol": "ETH", "active": 1}, {"symbol": "SOL", "active": 1}, {"symbol": "M71", "active": 1}]
    assert 70 not in world.exchange.first_snapshot and 2 not in world.exchange.first_snapshot  # M70, BTC
    # Said by shard 0 at the refresh that noticed, and again when it changed (M71 listed).
    reports = [e for e in world.logs if e[4] == "markets_not_listed"]
    assert [(e[1], e[2]) for e in reports] == [(0, "warn"), (0, "warn")], reports
    assert reports[0][5].endswith("names 3 symbol(s) Lighter does not list, skipped: M71, NOPE, btc (listed: BTC)")
    assert reports[1][5] == "LIGHTER_MARKETS names 2 symbol(s) Lighter does not list, skipped: NOPE, btc (listed: BTC)"
    loaded = next(e[5] for e in world.logs if e[4] == "markets_loaded" and e[1] == 0)
    assert "3 active of 3 listed; LIGHTER_MARKETS keeps 2" in loaded
    stats = [tracker.stats() for _, tracker in world.instances.values()]
    assert all(s.markets_not_listed == ["NOPE", "btc"] for s in stats)


def test_the_rollup_does_not_depend_on_the_saved_market_list():
    """Finding 6: the rollup read windows through lighter_markets.shard; when saving the
    list failed, it found nothing, yet advanced: minutes skipped silently."""
    plan = sim.make_plan(1, timed=False)
    plan = replace(plan, shards=1, markets=dict(SYMBOLS), duration_ms=150_000, events=[], frame_ms=(300, 900),
                   config=replace(plan.config, shards=1))
    world = sim.World(plan)
    real = world.d1.execute_batch
    minutes_while_unsaved = []

    def refuse_market_saves(statements):
        # Refused until the stop; after it the save lands (a stopped shard 0 retries it
        # until it does: the API answers symbols through the saved list).
        stopped = any(end is not None for _, end in world.venues[0].tracking_spans)
        if any("lighter_markets" in text for text, _ in statements) and not stopped:
            assert world.d1.rows("SELECT COUNT(*) AS n FROM lighter_markets")[0]["n"] == 0
            minutes_while_unsaved.append(world.d1.rows("SELECT COUNT(*) AS n FROM lighter_minutes")[0]["n"])
            raise RuntimeError("D1_ERROR: simulated failure of the market list save")
        return real(statements)

    world.d1.execute_batch = refuse_market_saves
    world.run()
    assert max(minutes_while_unsaved) >= len(SYMBOLS)  # rolled while no market list was saved
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

    async def call(shard, action, body=None):
        if shard == 1:
            raise RuntimeError("object reset")
        started.append((shard, action))
        return {"shard": shard, "ok": True}

    results = asyncio.run(control.fan_out("stop", 3, known=[0, 1, 2], call=call))
    assert started == [(0, "stop"), (2, "stop")]
    assert results[1] == {"shard": 1, "failed": "RuntimeError: object reset"}
    # A start whose first step (which split runs where) fails on a shard starts none:
    # that shard might still track under another split. Each shard says so.
    started.clear()
    results = asyncio.run(control.fan_out("start", 3, known=[0, 1, 2], call=call))
    assert [a for _, a in started] == ["release", "release"]
    assert [r["shard"] for r in results] == [0, 1, 2]
    assert all("shard 1: RuntimeError: object reset" in r["failed"] for r in results)


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
    plan = sim.make_plan(1, timed=False)
    # D1 fails across the stop of SHARDS 2: shard 0's alarm drains and rolls up afterwards.
    plan = replace(plan, shards=2, markets=dict(SYMBOLS), duration_ms=150_000, frame_ms=(300, 900),
                   events=[(40_000, "d1_outage", {"seconds": 12}), (45_000, "shards_change", {"shards": 1})],
                   config=replace(plan.config, shards=2))
    world = sim.World(plan)
    world.run()
    assert held, "no start landed inside shard 0's stopped flush: the scenario tests nothing"
    assert_invariants(world)


# =====================================================================================
# Hours (issue 18, defect 1): the partial hour after a stop, and hours whose minutes
# changed after their row was written
# =====================================================================================

MINUTE_MS, HOUR_MS = 60_000, 3_600_000
HOUR = sim.EPOCH_MS - sim.EPOCH_MS % HOUR_MS  # a whole hour near the simulation's epoch


def hours_scenario(events, *, start_ms, duration_s, **config) -> sim.World:
    """A Lighter run (one shard, three markets) whose clock starts at `start_ms`; the
    feed's stale watchdog is slow enough for a `silence` to leave the feed quiet."""
    plan = sim.make_plan(1)
    plan = replace(plan, shards=1, markets=dict(SYMBOLS), duration_ms=duration_s * 1000, events=events,
                   frame_ms=(300, 900), start_ms=start_ms,
                   config=replace(plan.config, shards=1, stale_feed_ms=90_000, **config))
    world = sim.World(plan)
    world.run()
    return world


def stale_hours(world: sim.World, table: str = "lighter_hours", minutes: str = "lighter_minutes") -> list[str]:
    """Every hour row against the rollup of its minutes in D1, and every minute's hour."""
    import reference_model as ref

    rows = world.d1.rows(f"SELECT * FROM {minutes}")
    hours = {(r["symbol"], r["timestamp"]): r for r in world.d1.rows(f"SELECT * FROM {table}")}
    wrong = []
    for key, want in ref.expected_hours(rows).items():
        got = hours.get(key)
        if got is None:
            wrong.append(f"hour {key} missing")
        elif ref.row_mismatches(got, want):
            wrong.append(f"hour {key}: {ref.row_mismatches(got, want)[:2]}")
    return wrong


def rolled_after(world: sim.World, ms: int, event: str = "minutes") -> list[tuple]:
    return [e for e in world.logs if e[0] >= ms and e[4] == event]


def test_a_stop_with_no_new_minute_to_roll_still_writes_the_partial_hour():
    """The feed went quiet 37 s before the stop, 17 s into a minute: the last alarm had
    rolled every minute up to that minute's start (its last window closes up to
    FLUSH_GRACE_MS + MAX_FEED_LAG_MS after its end), so the stop found no minute to
    roll and returned before it wrote the hour: no hour row at all."""
    start = HOUR + 10 * MINUTE_MS
    world = hours_scenario([(160_000, "silence", {"seconds": 60})], start_ms=start, duration_s=197)
    stop = start + 197_000
    assert not rolled_after(world, stop), "the stop rolled a minute: the scenario tests nothing"
    assert world.d1.rows("SELECT COUNT(*) AS n FROM lighter_minutes")[0]["n"] >= len(SYMBOLS)
    assert stale_hours(world) == []
    assert_invariants(world)


def test_a_second_stop_in_the_same_hour_rewrites_the_hour_row_of_the_first():
    """The first stop wrote the partial hour; the second run added minutes to it but
    its stop found nothing new to roll, leaving the first stop's row (fewer windows
    and ticks than its minutes hold) as the hour, for good."""
    start = HOUR + 10 * MINUTE_MS
    world = hours_scenario([(40_000, "stop_start", {"pause": 20}), (160_000, "silence", {"seconds": 60})],
                           start_ms=start, duration_s=197)
    assert not rolled_after(world, start + 197_000), "the stop rolled a minute: the scenario tests nothing"
    assert stale_hours(world) == []
    assert_invariants(world)


def test_minutes_a_previous_run_still_owed_get_their_hour_rewritten():
    """D1 fails across a stop at :58 and a start in the next hour: the stopped run's
    last minutes are rolled later, as a debt, by the new run (tracking, so not
    "final"): their hour never completes inside the debt, and its row was never
    written from them."""
    start = HOUR + 55 * MINUTE_MS
    world = hours_scenario([(100_000, "d1_outage", {"seconds": 250}), (190_000, "stop_start", {"pause": 130})],
                           start_ms=start, duration_s=400)
    hours = {r["timestamp"] for r in world.d1.rows("SELECT DISTINCT timestamp FROM lighter_hours")}
    assert hours == {HOUR, HOUR + HOUR_MS}, hours
    assert stale_hours(world) == []
    assert_invariants(world)


def test_an_hour_whose_row_could_not_be_written_is_not_served_as_final():
    """The hour completes while its row cannot be written (D1 refuses the hour batch
    for 90 s): the minutes are rolled, but the sealed point the API reads must stay
    at the hour's start until its row is in D1, or the history cache would keep a
    page without that hour as final."""
    from tracker import history_cache

    start = HOUR + 58 * MINUTE_MS
    plan = sim.make_plan(1)
    plan = replace(plan, shards=1, markets=dict(SYMBOLS), duration_ms=240_000, events=[], frame_ms=(300, 900),
                   start_ms=start, config=replace(plan.config, shards=1))
    world = sim.World(plan)
    real = world.d1.execute_batch
    refuse_until = HOUR + HOUR_MS + 90_000

    def refuse_hours(statements):
        if world.loop.now_ms() < refuse_until and any("INTO lighter_hours" in text for text, _ in statements):
            raise RuntimeError("D1_ERROR: simulated failure of the hour write")
        return real(statements)

    world.d1.execute_batch = refuse_hours
    seen = []

    def probe() -> None:
        sealed = world.d1.rows(sql.LIGHTER.API_SEALED_UNTIL)[0]["sealed_until"]
        rows = world.d1.rows("SELECT COUNT(*) AS n FROM lighter_hours WHERE timestamp = ?", HOUR)[0]["n"]
        seen.append((sealed, rows))

    world.loop.at_ms(HOUR + HOUR_MS + 60_000, probe)
    world.run()
    (sealed, rows), = seen
    assert rows == 0, "the hour row was written: the scenario tests nothing"
    assert world.d1.rows("SELECT MAX(timestamp) AS t FROM lighter_minutes")[0]["t"] >= HOUR + HOUR_MS - MINUTE_MS
    assert not history_cache.is_final(HOUR, HOUR_MS, sealed), f"sealed at {sealed - HOUR} ms past the hour"
    assert stale_hours(world) == []
    assert_invariants(world)


@pytest.mark.parametrize("seed", [37, 53, 92])
def test_seeds_whose_hours_were_missing_or_stale_after_a_stop(seed):
    """Seeds of the hour-crossing world the first hours rollup failed: 37 (hours never
    written), 53 and 92 (Lighter, Paradex: an earlier stop's row left stale)."""
    assert sim.run(seed).violations == []


# =====================================================================================
# Smaller holes (issue 18, defect 7)
# =====================================================================================


def test_an_outbox_overflow_records_its_lost_range_in_the_transaction_of_the_drop(monkeypatch):
    """D1 is down and the outbox (4 windows) overflows: the drop was stored, then the
    lost range in a second write; an eviction between the two lost the record, and
    the dropped windows were neither in D1 nor recorded lost."""
    import cloud
    from tracker import outbox

    world: sim.World | None = None
    evicted = []
    real = outbox.Outbox.add

    async def add(self, *args, **kwargs):
        dropped = await real(self, *args, **kwargs)
        if dropped and not evicted:  # the instance dies at its next await
            evicted.append([e.start for e in dropped])
            world.venues[0].evict(0)
            raise cloud.Evicted("evicted right after the outbox dropped windows")
        return dropped

    monkeypatch.setattr(outbox.Outbox, "add", add)
    plan = sim.make_plan(1)
    plan = replace(plan, shards=1, markets=dict(SYMBOLS), duration_ms=150_000, frame_ms=(300, 900),
                   events=[(20_000, "d1_outage", {"seconds": 120})],
                   config=replace(plan.config, shards=1, outbox_max_windows=4))
    world = sim.World(plan)
    world.run()
    assert evicted, "the outbox never overflowed: the scenario tests nothing"
    lost = world.lost_ranges.get(0, set())
    assert all(any(a <= start < b for a, b in lost) for start in evicted[0]), (evicted, lost)
    assert_invariants(world)


def test_a_stop_that_finds_d1_down_with_nothing_pending_still_publishes_its_stats():
    """Every market delisted early, the hour written when it completed, the last
    minute rolled seconds before a stop, then D1 fails for a minute: the stop's one
    write (the stats row, is_tracking=0) failed, and with nothing left to flush or
    roll no alarm was set, so the row said is_tracking=1 until the next start
    (holding back the other shards' rollups, which read it). Now the alarm retries
    it, backing off, until D1 takes it, and then sets no alarm."""
    start = HOUR + HOUR_MS - 3 * MINUTE_MS
    stop, restart = start + 305_000, start + 420_000
    plan = sim.make_plan(1)
    plan = replace(plan, shards=1, markets=dict(SYMBOLS), duration_ms=480_000, frame_ms=(300, 900),
                   start_ms=start, config=replace(plan.config, shards=1, market_refresh_ms=90_000),
                   events=[(20_000, "delist", {"market": 1}), (20_000, "delist", {"market": 2}),
                           (20_000, "delist", {"market": 3}), (303_000, "d1_outage", {"seconds": 60}),
                           (305_000, "stop_start", {"pause": 115})])
    world = sim.World(plan)
    seen = []
    world.loop.at_ms(restart - 5_000, lambda: seen.append(
        (world.d1.rows("SELECT is_tracking FROM tracking_stats"), world.storages[0].alarm)))
    world.run()
    assert rolled_after(world, start + 180_000, "hours"), "the hour was not written while tracking"
    assert not [e for e in world.logs if stop - 3_000 <= e[0] < restart and e[4] in ("minutes", "hours")], \
        "the stop left something to roll: the scenario tests nothing"
    failed = [e[0] for e in world.logs if stop <= e[0] < restart and e[4] == "flush_failed"]
    gaps = [round((b - a) / 1000) for a, b in zip(failed, failed[1:])]
    assert gaps == [2, 4, 8, 16, 30][:len(gaps)] and len(gaps) >= 4, gaps  # backing off while D1 is down
    assert seen == [([{"is_tracking": 0}], None)]  # published before the next start; no alarm left
    assert_invariants(world)


# =====================================================================================
# Found by the soak of this branch
# =====================================================================================


def test_a_request_and_an_alarm_loading_the_state_at_once_share_it():
    """Seed 3696: after a restart, an alarm and a request loaded the state at once, each
    its own copy; the rollup part kept the first, the shard went on with the second,
    and shard 1's minutes were never rolled again (no retry alarm either)."""
    assert sim.run(3696).violations == []
    world = scenario([], shards=1, duration_s=40)
    storage = world.storages[0]
    logs = []
    tracker = sim.ShardTracker(world.config, 0, sim.Ports(
        clock=world.loop, storage=storage.port(sim.Incarnation(99)), db=None, sockets=None, http=None,
        peers=None, log=lambda *entry: logs.append(entry), spawn=None))
    storage.on_alarm_change = lambda: None
    storage.on_put = None
    async def both() -> None:  # an alarm and a request on the fresh object, together
        await asyncio.gather(tracker.ready(), tracker.ready())

    loop = asyncio.new_event_loop()
    loop.run_until_complete(both())
    loop.close()
    assert [e[2] for e in logs] == ["state_loaded"]
    assert tracker.rollup.state is tracker.state


def test_an_overflow_whose_write_fails_records_nothing_lost():
    """The overflow's lost range goes on the live state before the outbox's write (seed
    964); when that write fails, the outbox still holds the windows: the range is taken
    back (the next write drops them again, and records them then)."""
    from tracker.outbox import Entry

    world = scenario([], shards=1, duration_s=40)
    tracker = sim.ShardTracker(world.config, 0, sim.Ports(
        clock=world.loop, storage=world.storages[0].port(sim.Incarnation(99)), db=None, sockets=None, http=None,
        peers=None, log=lambda *entry: None, spawn=None))

    class FailingOutbox:
        async def add(self, closed, also):
            also([Entry(15_000, 1, 1)])  # the write that would drop the window...
            raise RuntimeError("storage put failed")  # ...does not happen

    async def stash() -> None:
        await tracker.ready()
        tracker.outbox = FailingOutbox()
        before = (list(tracker.state.lost_ranges), tracker.state.totals.windows_lost)
        with pytest.raises(RuntimeError):
            await tracker._stash(["a closed window"])  # what it is does not matter to this outbox
        assert (tracker.state.lost_ranges, tracker.state.totals.windows_lost) == before

    loop = asyncio.new_event_loop()
    loop.run_until_complete(stash())
    loop.close()


# =====================================================================================
# Paradex (tests/sim/paradex.py), alone and beside Lighter on one D1
# =====================================================================================

from paradex import CONNECTIONS_PER_SECOND, market_id_of  # noqa: E402

BTC, ETH, SOL = "BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"


def paradex_scenario(events, *, shards=1, symbols=(BTC, ETH, SOL), others=("PDEX-USDC", "BTC-USD-PERP-96000-C"),
                     quiet=(), duration_s=150, seed=2, lighter=None, **config) -> sim.World:
    """A Paradex run (`seed` must be a Paradex plan's: seed % 6 == 2); `lighter`: the
    Lighter markets of a deployment running both (shards: config's `lighter_shards`)."""
    plan = sim.make_plan(seed, timed=False)
    assert plan.exchange == "paradex" and not plan.also, f"seed {seed} is not a Paradex-only plan"
    lighter_shards = config.pop("lighter_shards", 1)
    markets = {market_id_of(s): s for s in (*symbols, *others)}
    cfg = replace(plan.config, shards=shards, **config)
    also = ()
    if lighter:  # (both enabled: a shard of an exchange not enabled stops at its alarm)
        cfg = replace(cfg, enabled_exchanges=("lighter", "paradex"))
        also = (sim.VenuePlan("lighter", lighter_shards, dict(lighter), (300, 900),
                              replace(cfg, **sim.LIGHTER_URLS, shards=lighter_shards)),)
    plan = replace(plan, shards=shards, markets=markets, duration_ms=duration_s * 1000, events=events,
                   frame_ms=(300, 900), config=cfg, extra={"quiet": frozenset(quiet)}, also=also)
    world = sim.World(plan)
    world.run()
    return world


def delivered(world, venue="paradex", tag=None):
    """Paradex trace payloads delivered: book frames (tuples) or those tagged `tag`."""
    frames = [e[3] for e in world.venue(venue).ex.trace if e[0] == "frame"]
    return [f for f in frames if (f == tag if tag else isinstance(f, tuple))]


def test_paradex_seq_gaps_and_truncated_deltas_resubscribe_and_the_rows_stay_exact():
    """A skipped seq, and a delta cut short on the way (its seq lost with it): the book
    is dropped, the market unsubscribed and subscribed again on the same connection
    (never a second subscribe of a held channel), a new snapshot rebuilds it."""
    world = paradex_scenario([(30_000, "gap", {"market": market_id_of(ETH)}),
                              (60_000, "truncate", {"market": market_id_of(SOL)})], duration_s=120)
    assert_invariants(world)
    ex = world.exchange
    assert not ex.refusals, ex.refusals
    gaps = [e for e in world.logs if e[4] == "gap"]
    assert {e[5].split("market ")[1].split(":")[0] for e in gaps} == {ETH, SOL}, gaps
    snapshots = [f[0] for f in delivered(world) if f[2]]
    assert snapshots.count(market_id_of(ETH)) == 2 and snapshots.count(market_id_of(SOL)) == 2
    assert delivered(world, tag="truncated")
    assert world.d1.rows("SELECT COUNT(*) AS n FROM paradex_snapshots")[0]["n"] > 0
    assert world.d1.rows("SELECT COUNT(*) AS n FROM lighter_snapshots")[0]["n"] == 0


def test_paradex_lists_only_its_perps_and_follows_listings_and_expiries():
    """Options, spot and futures in GET /markets are not tracked (unless
    PARADEX_ASSET_KINDS names them); a market listed to open later is subscribed once
    open; an expired one and one gone from the list are unsubscribed."""
    world = paradex_scenario([(20_000, "list", {"ex": "paradex", "symbol": "WIF-USD-PERP", "open_in_ms": 25_000}),
                              (25_000, "delist", {"market": market_id_of(ETH), "how": "expire"}),
                              (30_000, "delist", {"market": market_id_of(SOL), "how": "remove"})],
                             market_refresh_ms=30_000, duration_s=150)
    assert_invariants(world)
    saved = {r["symbol"]: r["active"] for r in world.d1.rows("SELECT symbol, active FROM paradex_markets")}
    assert saved == {BTC: 1, ETH: 0, SOL: 0, "WIF-USD-PERP": 1}, saved
    wif = market_id_of("WIF-USD-PERP")
    assert world.exchange.first_snapshot[wif] >= world.listed_at[wif]  # not before it opened
    assert set(world.exchange.live_subscriptions()) == set()  # stopped at the end
    assert "PDEX-USDC" not in {r["symbol"] for r in world.d1.rows("SELECT symbol FROM paradex_snapshots")}

    with_options = paradex_scenario([], paradex_asset_kinds=frozenset({"PERP", "PERP_OPTION"}), duration_s=60)
    assert_invariants(with_options)
    tracked = {r["symbol"] for r in with_options.d1.rows("SELECT DISTINCT symbol FROM paradex_snapshots")}
    assert tracked == {BTC, ETH, SOL, "BTC-USD-PERP-96000-C"}


def test_paradex_and_lighter_at_once_write_their_own_tables_only():
    """One deployment with ENABLED_EXCHANGES=lighter,paradex on one D1: each exchange's
    shards (3 for Paradex, 2 for Lighter, then a PARADEX_SHARDS change to 1) write
    their own tables, stats and market list; faults on one leave the other exact."""
    world = paradex_scenario(
        [(20_000, "drop_all", {"ex": "lighter"}), (30_000, "gap", {"market": market_id_of(BTC)}),
         (45_000, "shards_change", {"ex": "paradex", "shards": 1}), (70_000, "malformed", {"ex": "paradex"}),
         (80_000, "junk", {"ex": "paradex"}), (90_000, "malformed", {"ex": "lighter"})],
        shards=3, lighter={1: "ETH", 2: "BTC", 3: "SOL"}, lighter_shards=2, duration_s=150)
    assert_invariants(world)
    d1 = world.d1
    paradex_ids = {r["market_index"] for r in d1.rows("SELECT DISTINCT market_index FROM paradex_snapshots")}
    lighter_ids = {r["market_index"] for r in d1.rows("SELECT DISTINCT market_index FROM lighter_snapshots")}
    assert paradex_ids == {market_id_of(s) for s in (BTC, ETH, SOL)}
    assert lighter_ids == {1, 2, 3}
    assert {r["shard"] for r in d1.rows("SELECT shard FROM paradex_tracking_stats")} == {0, 1, 2}
    assert {r["shard"] for r in d1.rows("SELECT shard FROM tracking_stats")} == {0, 1}
    assert {r["symbol"] for r in d1.rows("SELECT symbol FROM lighter_markets")} == {"ETH", "BTC", "SOL"}
    for shard in (1, 2):  # beyond the new PARADEX_SHARDS: stopped
        assert json.loads(world.venue("paradex").storages[shard].data[STATE_KEY])["tracking"] is False


def test_paradex_heartbeats_keep_a_quiet_connection_alive():
    """A shard whose only market changes every 8-40 s: Paradex's HeartbeatEvent (every
    20 s on an idle connection) keeps the stale-feed watchdog (25 s) quiet; a stall
    (no frames, no heartbeats) is noticed and the connection replaced."""
    world = paradex_scenario([], symbols=(BTC,), others=(), quiet=(BTC,), stale_feed_ms=25_000, duration_s=200)
    assert_invariants(world)
    assert len(delivered(world, tag="heartbeat")) >= 3
    assert not world.exchange.early_stale_closes
    assert not [e for e in world.logs if e[4] == "connection_lost"], "a quiet but live feed was declared stale"

    stalled = paradex_scenario([(40_000, "silence", {"seconds": 60})], symbols=(BTC,), others=(), quiet=(BTC,),
                               stale_feed_ms=25_000, duration_s=150)
    assert_invariants(stalled)
    assert any(e[4] == "connection_lost" and "stale" in e[5] for e in stalled.logs)


def test_paradex_reconnect_bursts_stay_under_its_connection_limits():
    """Bursts of drops on 3 shards: every shard reconnects each time, with backoff; at
    no moment more than 20 new connections a second (or 600 a minute) for the IP."""
    world = paradex_scenario([(30_000, "flap", {"times": 8, "every_ms": 250}),
                              (60_000, "flap", {"times": 6, "every_ms": 1_000})],
                             symbols=(BTC, "DOGE-USD-PERP", "HYPE-USD-PERP"), shards=3, duration_s=120)  # one a shard
    assert_invariants(world)
    assert world.exchange.connections_made >= 3 * 5, world.exchange.connections_made
    assert not world.exchange.refusals


def test_the_simulated_paradex_enforces_its_documented_limits():
    """The checks can fail: a 21st connection within a second is refused (and counted),
    and so is a second subscribe to a channel the connection holds."""
    from paradex import SimParadex
    from vloop import VirtualLoop
    import random as _random

    loop = VirtualLoop(sim.EPOCH_MS)
    ex = SimParadex(loop, _random.Random(1), [BTC], (300, 900), tracked_kinds=frozenset({"PERP"}))
    downs, frames = [], []
    sockets = [ex.connect(0, frames.append, lambda: None, downs.append, lambda: True, url="ws://paradex.sim/v1")
               for _ in range(CONNECTIONS_PER_SECOND + 1)]
    loop.run_until_complete(asyncio.sleep(1))
    assert ex.refusals["connections per second"] == 1 and len(downs) == 1 and "429" in downs[0]
    channel = json.dumps({"jsonrpc": "2.0", "method": "subscribe", "params": {"channel": f"order_book.{BTC}.deltas"},
                          "id": 1})
    sockets[0].send(channel)
    sockets[0].send(channel.replace('"id": 1', '"id": 2'))
    loop.run_until_complete(asyncio.sleep(1))
    assert ex.refusals["channel already held"] == 1
    errors = [json.loads(f) for f in frames if isinstance(f, str) and '"error"' in f]
    assert errors and errors[0]["id"] == 2 and "already" in errors[0]["error"]["data"]
    loop.close()


def test_a_tracker_that_resubscribes_a_held_channel_is_caught(monkeypatch):
    """The first release's resubscribe without its unsubscribe, on Paradex: the second
    subscribe of a held channel is an error, counted as a refusal."""
    from tracker import pacing

    def resubscribe(self, market_id):
        self.subscribed.discard(market_id)
        self.in_flight.pop(market_id, None)
        self._enqueue(market_id, resubscribe=False)  # forgets that the exchange holds it

    monkeypatch.setattr(pacing.SubscriptionPacer, "resubscribe", resubscribe)
    world = paradex_scenario([(30_000, "gap", {"market": market_id_of(ETH)})], duration_s=60)
    assert world.exchange.refusals["channel already held"] >= 1
    assert any("channel already held" in v for v in check(world))


def test_a_tracker_that_ignores_paradex_asset_kinds_is_caught(monkeypatch):
    """Options and spot tracked although PARADEX_ASSET_KINDS=PERP: refused subscriptions,
    and rows of untracked markets in paradex_* tables."""
    from tracker import paradex, paradex_markets

    real = paradex_markets.parse_markets
    monkeypatch.setattr(paradex, "parse_markets", lambda payload, kinds, now: real(payload, frozenset(
        ("PERP", "PERP_OPTION", "SPOT", "OPTION", "FUTURE")), now))
    world = paradex_scenario([], duration_s=60)
    violations = check(world)
    assert world.exchange.refusals["untracked kind subscribed"] >= 1
    assert any("paradex_markets holds market" in v for v in violations), violations


def test_a_snapshot_stamped_before_a_reconnect_never_covers_more_than_its_window():
    """A quiet market (SOL) beside a busy one on one connection; the connection drops:
    both books end at the newest frame (BTC's); SOL's new snapshot is stamped with its
    book's last change, seconds earlier. Its mid stands from the drop on (a market's
    clock never runs backwards), not from that change: before the fix [that change,
    the drop) was credited twice and the window covered more than its 15 s."""
    world = paradex_scenario([(40_000, "drop_all", {})], symbols=(BTC, SOL), quiet=(SOL,), seed=14,
                             stale_feed_ms=30_000)
    at = [r["name"] for r in world.d1.rows("PRAGMA table_info(paradex_snapshots)")].index("covered_ms")
    written = [(k, values[at]) for k, values in world.d1.writes.items() if k[0] == "paradex_snapshots"]
    too_long = [(k, covered) for k, covered in written if covered > 15_000]
    assert not too_long, too_long


def test_a_feed_is_never_declared_stale_while_frames_arrive():
    """Seed 108 (Lighter; its plan is the first release's): D1 hangs, a restart, the
    resuming alarm's markets step awaits D1 for 14 s while frames arrive. Before the
    fix its feed step reset the watchdog to the alarm's start time, and the next
    alarm, 82 ms later, closed the live feed as 'no message for 14s'; the check now
    reads the clock when it runs."""
    world = sim.run(108).world
    assert not world.exchange.early_stale_closes, world.exchange.early_stale_closes


def test_one_frame_stamped_an_hour_ahead_blinds_neither_its_market_nor_the_shard():
    """Issue 18, defect 4: one frame one hour ahead spread the previous mid over 16
    future windows, wrote a future row (never pruned, the market's "latest"), and after
    a stop/start moved flushed_until an hour ahead: every frame was then late."""
    hour = 3_600_000
    world = scenario([(30_000, "stamp", {"market": 1, "shift_ms": hour}), (60_000, "stop_start", {"pause": 20})],
                     duration_s=150)
    rows = world.d1.rows("SELECT market_index, timestamp, covered_ms FROM lighter_snapshots")
    assert max(r["timestamp"] for r in rows) < world.loop_end_ms, "a row for a window in the future"
    restarted = world.tracking_spans[-1][0]
    for market in SYMBOLS:
        after = [r for r in rows if r["market_index"] == market and r["timestamp"] >= restarted + 15_000]
        assert len(after) >= 4, f"market {market}: {len(after)} rows after the restart (every frame late?)"
        assert all(r["covered_ms"] > 0 for r in after), f"market {market} covered nothing after the restart"
    state = json.loads(world.storages[0].data[STATE_KEY])
    assert state["flushed_until"] <= world.loop_end_ms
    assert state["totals"]["late_frames"] <= 5
    assert_invariants(world)


def short_windows(world: sim.World, settle_ms: int = 30_000) -> list[tuple]:
    """Windows of the (one) run whose D1 row has fewer ticks than the frames its shard
    received for it, had the window waited for every one: (market, start, got, want).
    The run's first window and those ending within `settle_ms` of the stop are not judged."""
    trace = [e for e in world.exchange.trace if e[0] != "flush"]
    expected = reference_windows(trace).expected
    got = {(r["market_index"], r["timestamp"]): r["tick_count"]
           for r in world.d1.rows("SELECT market_index, timestamp, tick_count FROM lighter_snapshots")}
    (start, stop), = world.tracking_spans
    first = start - start % 15_000 + 15_000
    return [(m, w, got.get((m, w), 0), want["tick_count"])
            for rows in expected.values() for (m, w), want in sorted(rows.items())
            if first <= w and w + 15_000 + settle_ms <= stop and got.get((m, w), 0) < want["tick_count"]]


@pytest.mark.parametrize("timing", [
    sim.Timing(delay_ms=(6_000, 6_200)),  # a steady delivery delay beyond the grace
    sim.Timing(delay_ms=(200, 8_000)),  # a jittered one
    sim.Timing(offset_ms=-7_000),  # the exchange's clock behind ours
    sim.Timing(offset_ms=-4_000, delay_ms=(3_000, 5_000)),  # both, within the bound together
    sim.Timing(offset_ms=8_000),  # ahead, within the bound for stamps
    sim.Timing(offset_ms=40_000),  # ahead beyond it: placed at our clock
], ids=["delay", "jitter", "behind", "behind+delay", "ahead", "far-ahead"])
def test_a_steady_lag_or_clock_offset_within_the_bound_loses_no_window_end(timing):
    """Issue 18, defect 6: windows closed at our clock minus 1.5 s but are placed by
    the exchange's stamps: with a delay or an exchange clock behind ours by more than
    the grace, the end of every window was dropped (counted only in lateFrames)."""
    world = scenario([], duration_s=150, timing=timing)
    assert short_windows(world) == []
    assert_invariants(world)
    assert not [b for _, _, _, b in world.health if b["status"] == "degraded"], "degraded for a lag it absorbs"


def test_a_lag_beyond_the_bound_is_reported_and_health_says_degraded():
    """Issue 18, defect 6: with a delay above 16.5 s nothing was written while health
    said ok."""
    world = scenario([], duration_s=150, timing=sim.Timing(delay_ms=(20_000, 20_500)), stale_feed_ms=30_000)
    assert_invariants(world)
    late = [(at, body) for at, _, status, body in world.health if at >= world._t0 + 60_000]
    assert late and all(body["status"] == "degraded" for _, body in late), [b["status"] for _, b in late]
    assert all(status == 503 for at, _, status, _ in world.health if at >= world._t0 + 60_000)
    shard = late[-1][1]["shards"][0]
    assert "late" in late[-1][1]["reason"] and shard["feedLagMs"] >= 20_000


def test_windows_the_aggregator_gives_up_while_alarms_stall_are_recorded_lost_with_their_range():
    """Issue 18, defect 3 (the aggregator's part): alarms held for minutes left more than
    MAX_OPEN_WINDOWS windows open; the oldest were dropped, counted in windowsLost but
    with no lost range. (A D1 hang held the alarm then; since the alarm awaits only
    storage, the runtime itself holding the object's alarms is what still can.) The
    server pings: the tracker's pongs, sent from the frame handler, keep the connection
    past Lighter's 2 idle minutes while no alarm sends the tracker's own pings."""
    world = scenario([(30_000, "alarms_held", {"seconds": 330})], duration_s=420, server_ping_ms=30_000)
    assert any(e[4] == "windows_lost" and "gave up" in e[5] for e in world.logs), "no window was given up"
    assert_invariants(world)


@pytest.mark.parametrize("seed", [276, 958])
def test_an_object_resumed_while_the_exchange_clock_runs_ahead_measures_after_its_stamps(seed):
    """Seeds 276 and 958 (Lighter, exchange clock 13 s ahead, a restart / an eviction):
    the resumed object measured from the window after the one in progress by OUR clock,
    but its evicted predecessor had already received frames stamped in that window: it
    was written with part of its ticks and not recorded lost. The state now keeps how
    far ahead the stamps ran, and a resume measures from the window after theirs."""
    assert sim.run(seed).violations == []


def test_health_is_not_ok_while_a_new_run_reconnects_and_drops_frames_as_late():
    """Seed 722 (Paradex, a delivery delay of 13 s, beyond the bound): right after a
    stop/start the connection dropped, and health said ok ("starting: connecting")
    while the frames still arriving were dropped as late. Degraded wins over ok now."""
    assert sim.run(722).violations == []


def test_the_alarm_follows_the_close_point_a_lagging_feed_needs():
    """Issue 18, defect 6: windows close FLUSH_GRACE_MS + the feed's lag after they end,
    and the alarm is set for that moment (not for the grace alone, which would leave
    each window to the next alarm, a whole window later)."""
    world = scenario([], duration_s=120, timing=sim.Timing(delay_ms=(6_000, 6_200)))
    closed_until, waited = 0, []
    for entry in world.exchange.trace:
        if entry[0] == "flush":
            boundary, at = entry[2] - entry[2] % 15_000, entry[3]
            if boundary > closed_until:
                waited.append(at - boundary)  # how long after its end the newest window closed
                closed_until = boundary
    steady = waited[2:]  # the first closes wait the most: the lag is not known yet
    assert len(steady) >= 4 and all(1_500 + 6_000 <= w <= 1_500 + 6_200 + 500 for w in steady), waited


def test_a_socket_the_tracker_closed_sends_no_late_close_notice():
    """Seed 1031 (Paradex delayed 19 s, a burst of drops): the stale watchdog closed a
    connection whose server-side end was still queued behind the delay; the simulated
    exchange then delivered that end to the tracker's NEW connection, which was torn
    down without being closed, and two sockets fed one shard. The runtime's socket
    unhooks its handlers when the tracker closes it (runtime/feed_socket.py); so does
    the simulated one now."""
    assert sim.run(1031).violations == []


def test_a_save_racing_an_outbox_overflow_keeps_the_lost_range():
    """Seed 964 (D1 hung for 12 minutes, outbox bound 4, three shards): the overflow's
    lost range was stored with the outbox write that dropped the window, but put on the
    shard's state only once that write returned; a save in between (the flush, given up
    at its deadline) stored the state without it. An eviction then would have left a
    dropped window in no recorded range; the loss invariant (20) saw the range vanish
    and come back as new."""
    assert sim.run(964).violations == []


def test_a_page_without_a_limit_is_checked_against_the_documented_default():
    """Seed 949: /api/snapshots?offset=1 answered DEFAULT_LIMIT (60) rows, as the OpenAPI
    document says; the world's own reference of the page assumed 100, and called the
    page short once D1 held more than 60 rows."""
    assert sim.run(949).violations == []


def test_a_market_renamed_then_its_id_reused_is_judged_by_each_name_in_turn():
    """Seed 160: Lighter renamed market 11 'M11.NEW', later delisted it and listed a new
    market 'M11.B' under id 11; the rename invariant (21) expected 'M11.NEW' to the end."""
    assert sim.run(160).violations == []


def test_a_listing_read_before_an_id_was_reused_and_applied_after_is_not_judged_against_the_tracker():
    """Seed 1425: D1 hung while market 24 was delisted and a new market listed under its
    id; shard 0 applied a listing read before the reuse (its refresh waited for D1's
    deadline), let the new market go and dropped its frames until a later refresh. The
    reference judged those frames; it now leaves the market's windows on that shard
    unjudged from then on (the trace cannot tell when the shard takes it back)."""
    assert sim.run(1425).violations == []


def test_a_frame_an_evicted_instance_held_open_ahead_is_not_counted_by_its_successor():
    """Seed 1595 (Paradex's clock 15.5 s ahead, a restart): the instance that went had
    kept a snapshot stamped 14.9 s ahead (its second's first frame was placed at our
    clock), in a window it never closed, and saved that its stamps ran 0 ms ahead (the
    lag samples, first frames, said so); its successor measured that window from its
    own first frame and wrote it 1.5 s of covered time short, nothing recorded lost.
    The feed now measures how far ahead the stamps it keeps run (FeedLag.kept_ahead):
    the successor records that window lost and measures from the next."""
    assert sim.run(1595).violations == []


@pytest.mark.parametrize("seed", [427, 6665])
def test_a_successor_measures_from_after_the_windows_its_predecessor_opened_ahead(seed):
    """Seed 427 (Lighter's clock ~14.6 s ahead, a re-split's restart 11 s into the run):
    the first instance died before an alarm saved how far ahead its stamps ran, so its
    successor resumed a window early and wrote it short of covered time. A new high is
    now saved at once (an alarm). Seed 6665 (Paradex's clock at the bound, a restart):
    as 1595, its windows 425 ms short."""
    assert sim.run(seed).violations == []


@pytest.mark.parametrize("seed", [3399, 3991, 4224])
def test_a_reused_id_leaves_the_old_market_s_last_window_and_the_new_one_s_first_unjudged_in_covered_time(seed):
    """Seeds 3399, 3991, 4224 (Lighter reused an id, its clock behind ours): the window the
    invariants leave unjudged in covered time after a delisting was the newest of the id,
    which may be the new market's; the old market's last window was judged against a
    book the shard had let go. Now the old market's last window (stamped by the
    delisting) and the new market's first are both left unjudged in covered time."""
    assert sim.run(seed).violations == []


def test_a_reused_id_s_new_market_let_go_on_a_stale_listing_is_credited_up_to_its_newest_frame():
    """Seed 3628: the shard held its subscription through the delisting (its refresh was
    slowed by D1) and took the new market's frames, then applied a stale listing and let
    it go; the reference credited its book's time past that, to the window's end."""
    assert sim.run(3628).violations == []


def test_a_stop_right_after_a_start_leaves_a_stats_row_saying_stopped():
    """Seed 342: a start publishes its stats row (is_tracking=1) without the shard
    noting what it sent; a stop 87 ms later, with nothing else moved, found its row
    equal to the last one it remembered sending (the previous stop's) and wrote none,
    so D1 kept is_tracking=1 for good (and other shards' rollups waited on it)."""
    assert sim.run(342).violations == []
# =====================================================================================
# SHARDS changed while tracking (issue 18, defect 2), the send history (defect 5)
# =====================================================================================

MANY = {i: f"M{i}" for i in range(12)}


def splits(world: sim.World, venue: str | None = None) -> dict[int, tuple[bool, int]]:
    """Each shard object's stored (tracking, SHARDS of its run)."""
    out = {}
    for shard, storage in sorted(world.venue(venue).storages.items()):
        state = json.loads(storage.data.get(STATE_KEY) or "{}")
        out[shard] = (bool(state.get("tracking")), state.get("shards"))
    return out


@pytest.mark.parametrize("then_start", [False, True], ids=["deploy", "deploy+start"])
def test_lowering_shards_while_tracking_leaves_no_market_untracked(then_start):
    """Issue 18, defect 2: SHARDS lowered 3 -> 2 by a deploy while tracking. The objects
    resumed under the old split; /api/start answered alreadyTracking on shards 0 and 1
    and stopped shard 2: the markets with id = 2 mod 3 were left out, health ok, nothing
    recorded lost. Now a deploy alone keeps the old split running whole (health says
    why), and /api/start re-splits: the old split stops, the new one starts after its
    last windows, counting its sends."""
    events = [(30_000, "redeploy", {"shards": 2})] + ([(45_000, "api_start", {})] if then_start else [])
    world = scenario(events, shards=3, markets=MANY, duration_s=240)
    assert_invariants(world)
    assert splits(world) == ({0: (False, 2), 1: (False, 2), 2: (False, 3)} if then_start
                             else {0: (False, 3), 1: (False, 3), 2: (False, 3)})  # after the final stop
    until = 45_000 if then_start else 200_000
    said = [(status, body.get("reason")) for at, _, status, body in world.health if 31_000 < at - world._t0 < until]
    assert all(status == 503 for status, _ in said), said  # never ok while the split is not the configured one
    if not then_start:
        assert ("shard 0: tracking under SHARDS=3, but SHARDS is 2 now: POST /api/start again to re-split "
                "(or /api/stop, then /api/start)") in {reason for _, reason in said}, said
    tracked = {r["market_index"] for r in world.d1.rows(
        "SELECT DISTINCT market_index FROM lighter_snapshots WHERE timestamp >= ?", world._t0 + 120_000)}
    assert tracked == set(MANY)


@pytest.mark.parametrize("then_start", [False, True], ids=["deploy", "deploy+start"])
def test_raising_shards_while_tracking_puts_no_market_on_two_connections(then_start):
    """Issue 18, defect 2: SHARDS raised 2 -> 3 by a deploy while tracking. /api/start
    started shard 2 under the new split beside shards 0 and 1 still on the old one: markets
    on two connections, their window rows overwritten by either shard, and budgets adding
    up to 90 + 90 + 60 messages a minute. Now a deploy alone keeps the old split (health
    says why) and /api/start re-splits."""
    events = [(30_000, "redeploy", {"shards": 3})] + ([(45_000, "api_start", {})] if then_start else [])
    world = scenario(events, shards=2, markets=MANY, duration_s=240)
    assert_invariants(world)
    if then_start:
        assert splits(world) == {0: (False, 3), 1: (False, 3), 2: (False, 3)}
    else:
        assert {s: v for s, v in splits(world).items() if s < 2} == {0: (False, 2), 1: (False, 2)}
        assert 2 not in world.storages or json.loads(world.storages[2].data.get(STATE_KEY) or "{}").get("started_at") is None
        said = [(status, body.get("reason")) for at, _, status, body in world.health if 31_000 < at - world._t0 < 200_000]
        assert all(status == 503 for status, _ in said), said  # never ok while the split is not the configured one
        assert any("tracking under SHARDS=2, but SHARDS is 3 now: POST /api/start again to re-split" in reason
                   for _, reason in said), said


def test_raising_shards_with_many_markets_keeps_the_per_ip_budget():
    """Issue 18, defect 2: the old split's shards and the new one's count their sends
    apart: after a change, all of them together must still keep the deployment's 180
    messages a minute (and Lighter's 200)."""
    markets = {i: f"M{i}" for i in range(150)}
    world = scenario([(20_000, "redeploy", {"shards": 3}), (22_000, "api_start", {})], shards=2,
                     markets=markets, duration_s=150)
    assert_invariants(world)
    assert world.exchange.most_per_minute <= 180, world.exchange.most_per_minute


def test_an_eviction_inside_a_subscribe_burst_sends_no_second_burst():
    """Issue 18, defect 5: the send history was saved only at alarms: an eviction within
    a window of a subscribe burst (150 markets, 9 s after the start) made the new
    instance send a whole share again (121 x 30009). The history is now saved before a
    burst goes out."""
    markets = {i: f"M{i}" for i in range(150)}
    world = scenario([(10_000, "evict", {"shard": 0})], markets=markets, duration_s=100)
    assert_invariants(world)
    assert world.exchange.most_per_minute <= 180, world.exchange.most_per_minute


@pytest.mark.parametrize("bug, says", [
    ("sends_not_saved_before_a_burst", "over the deployment's message budget"),
    ("start_without_release", "market on two connections"),
    ("old_split_kept_on_start", "subscribed on no connection"),
    ("every_shard_takes_the_whole_budget", "over the deployment's message budget"),
])
def test_the_reshard_invariants_catch_a_planted_bug(monkeypatch, bug, says):
    """The budget over every 60 s at the exchange (every shard, pongs included), one
    connection per market and coverage while health says ok: each catches the bug it
    exists for (defect 5's history saved only at alarms; defect 2's /api/start starting
    a new split beside the old one, or keeping the old split and dropping its extra shard)."""
    from tracker import shard as shard_module

    if bug == "sends_not_saved_before_a_burst":
        from tracker import sendstore

        monkeypatch.setattr(sendstore.SendStore, "persist",
                            lambda self: self.connection().saved(self.connection().held_seq))
        events, shards, markets = [(10_000, "evict", {"shard": 0})], 1, {i: f"M{i}" for i in range(150)}
    elif bug == "every_shard_takes_the_whole_budget":
        from tracker import pacing

        monkeypatch.setattr(pacing.Budget, "share", classmethod(
            lambda cls, shards, per_minute=pacing.DEFAULT_MAX_PER_MINUTE, in_flight=pacing.DEFAULT_MAX_IN_FLIGHT:
            cls(per_minute=per_minute, in_flight=in_flight // shards)))
        events, shards, markets = [], 3, {i: f"M{i}" for i in range(210)}
    elif bug == "start_without_release":
        async def start(shards, known, call):  # the first release: start everyone as it is
            return await control._gather([(s, a, None) for s, a in control.targets("start", shards, known)], call)

        monkeypatch.setattr(control, "_start", start)
        events, shards, markets = [(30_000, "redeploy", {"shards": 3}), (45_000, "api_start", {})], 2, MANY
    else:
        real_release = shard_module.ShardTracker.release

        async def release(self, shards):  # only the shards beyond the new SHARDS stop
            return await real_release(self, shards if self.shard >= shards else self.state.shards)

        async def start(self, handover=None):  # and the others answer alreadyTracking
            if self.state is not None and self.state.tracking:
                return {"ok": True, "alreadyTracking": True, **self.stats().to_json()}
            return await real_start(self, handover)

        real_start = shard_module.ShardTracker.start
        monkeypatch.setattr(shard_module.ShardTracker, "release", release)
        monkeypatch.setattr(shard_module.ShardTracker, "start", start)
        monkeypatch.setattr(shard_module.ShardTracker, "_split_changed_message", lambda self: None)
        events, shards, markets = [(30_000, "redeploy", {"shards": 2}), (45_000, "api_start", {})], 3, MANY
    world = scenario(events, shards=shards, markets=markets, duration_s=240 if shards > 1 else 100) if events else \
        scenario(events, shards=shards, markets=markets, duration_s=75)
    violations = check(world)
    assert any(says in line for line in violations), violations[:5]


def test_a_start_hands_the_old_splits_last_window_and_sends_to_the_new_one():
    """Issue 18, defect 2, the hand-over itself: every shard is released first; the new
    split starts after the newest window the old one closed, each shard counting the old
    split's sends but its own (its object counts those)."""
    calls = []
    old = {0: (True, 3, 1_000, [10, 40]), 1: (True, 3, 1_015, [20]), 2: (True, 3, 990, [30, 50])}

    async def call(shard, action, body=None):
        calls.append((shard, action, body))
        if action == "release":
            tracking, shards, flushed, sent = old[shard]
            moved = tracking and shards != body["shards"]
            return {"shard": shard, "tracking": tracking and not moved, "shards": shards,
                    "flushedUntil": flushed, "sent": sent}
        return {"shard": shard, "ok": True}

    results = asyncio.run(control.fan_out("start", 2, known=[0, 1, 2], call=call))
    assert calls[:3] == [(s, "release", {"shards": 2}) for s in (0, 1, 2)]
    assert calls[3:] == [(0, "start", {"after": 1_015, "sent": [20, 30, 50]}),
                         (1, "start", {"after": 1_015, "sent": [10, 30, 40, 50]})]
    assert [r["shard"] for r in results] == [0, 1, 2]
    # Nothing changed: no hand-over (each shard's own history and last window suffice).
    calls.clear()
    old.update({0: (True, 2, 1_000, [10]), 1: (True, 2, 1_015, [20]), 2: (False, 3, 500, [])})
    asyncio.run(control.fan_out("start", 2, known=[0, 1], call=call))
    assert calls == [(0, "release", {"shards": 2}), (1, "release", {"shards": 2}), (0, "start", None), (1, "start", None)]


def test_a_run_split_beyond_what_the_budget_splits_still_loads():
    """SHARDS is now at most 36: an object whose run started under a larger split (before
    the bound) loads with the configured split's share and says so, instead of failing
    at every request and alarm until someone stops it."""
    world = scenario([], shards=2, duration_s=40)
    storage = world.storages[1]
    state = json.loads(storage.data[STATE_KEY])
    storage.data[STATE_KEY] = json.dumps({**state, "shards": 50, "tracking": True})
    logged = []
    tracker = sim.ShardTracker(world.config, 1, sim.Ports(
        clock=world.loop, storage=storage.port(sim.Incarnation(99)), db=None, sockets=None, http=None,
        peers=None, log=lambda *a: logged.append(a), spawn=None))
    loop = asyncio.new_event_loop()
    storage.on_alarm_change = lambda: None
    storage.on_put = None
    loop.run_until_complete(tracker.ready())
    loop.close()
    assert tracker.connection.budget == tracker.exchange.budget(2)
    assert tracker.stats().split_changed.startswith("tracking under SHARDS=50, but SHARDS is 2 now")
    assert any(a[2] == "resharding" and "at most 36 shards, not 50" in a[3] for a in logged), logged


def test_a_shard_stopped_right_after_a_resplit_publishes_that_it_stopped():
    """Seed 1133: SHARDS 1 -> 4 while tracking, re-split by /api/start: shard 0 stopped
    (old split) and started (new split, no market of its own) within one window, then
    the final stop's stats row looked like the one the release's stop had sent, so it
    was not sent again: D1 kept shard 0 tracking (the start's own row said so), and
    shard 1 never rolled its last minute up. (Seed 1133's plan, its re-split as drawn then.)"""
    plan = sim.with_allowlist(sim.with_scale(sim.with_platform_faults(sim.make_plan(1133))))
    plan = replace(plan, events=sorted(plan.events + [(163_331, "redeploy", {"ex": "lighter", "shards": 4}),
                                                      (181_000, "api_start", {"ex": "lighter"})], key=lambda e: e[0]))
    world = sim.World(plan)
    world.run()
    assert_invariants(world)


@pytest.mark.parametrize("seed", [261, 786])
def test_a_re_split_while_d1_is_down_releases_the_old_splits_shards(seed):
    """Seeds 261, 786 (/api/start through the API after a deploy changed SHARDS, D1 down):
    the release asked only the shards D1's stats table listed (none: D1 was down), so the
    old split's shards beyond the new SHARDS kept tracking: markets on two connections.
    A released shard's split now names the others to release."""
    assert sim.run(seed).violations == []


def test_a_shard_without_an_instance_counts_at_a_health_probe():
    """Seed 306 (the host held alarms 282 s, shard 1 evicted meanwhile): the world's health
    probe skipped the shard that had no instance and called health ok while its markets
    were on no connection; the real /api/health creates the object, which answers not
    connected."""
    assert sim.run(306).violations == []


@pytest.mark.parametrize("seed", [2221, 2783, 2910])
def test_a_host_holding_alarms_holds_the_market_refresh_back_too(seed):
    """Seed 2221 (the host held Lighter's alarms 307 s; market 55 delisted, then its id
    reused as 'M55.B'), 2783 (Paradex's alarms held 323 s, a market expired), 2910 (a rename): the
    market refresh runs in the alarm, so no change could be seen while the hold lasted;
    the delisting and rename checks (5, 21) now leave a span with held alarms unjudged,
    as they do one with REST or D1 trouble."""
    assert sim.run(seed).violations == []


@pytest.mark.parametrize("seed", [8746, 16472])
def test_a_stop_with_d1_down_reaches_a_shard_a_deploy_left_beyond_shards(seed):
    """Seed 8746 (SHARDS lowered 2 -> 1 by a deploy alone, then /api/stop while D1 hung;
    16472 the same for Paradex): the Worker's stop knew no shard beyond SHARDS (its stats table did not answer), so
    shard 1 kept tracking, its socket open and its alarm set. A stopped shard now names
    the split it ran under, and the stop reaches that split's other shards."""
    assert sim.run(seed).violations == []


def test_a_delisted_market_s_book_is_judged_up_to_where_the_tracker_let_it_go():
    """Seed 15175 (the exchange's clock 7.8 s behind ours, a market delisted): the shard
    let the market go when its refresh saw the delisting, crediting its book up to the
    newest stamp on its connection (tracker/feed.py remove_market), 970 ms before the
    window's end; the reference let the book stand to the delisting. The reference now
    ends a delisted market's book where the tracker can know it ended."""
    assert sim.run(15175).violations == []


def test_an_id_listed_again_leaves_its_listing_window_unjudged_in_covered_time():
    """Seed 16809 (Lighter reused an id while D1 was down: shard 1 never saw the first
    delisting): the shard let the old book go at the new market's first frame, 977 ms
    after the listing the reference cut it at. The window of the listing is left
    unjudged in covered time, as the new market's first window already was."""
    assert sim.run(16809).violations == []


def test_a_market_delisted_again_before_a_refresh_could_see_it_listed_is_not_judged_unsubscribed():
    """Seed 6636: Lighter reused market 53's id ('M53.B') and delisted it again 14 s later,
    between two of the tracker's market refreshes (30 s apart): no refresh could see it
    listed. The listing probe (5) still expected its subscription."""
    assert sim.run(6636).violations == []


@pytest.mark.parametrize("seed", [5045, 6628, 16266])
def test_a_page_served_as_final_for_a_symbol_stays_final_when_its_id_is_reused(seed):
    """Seeds 5045, 6628: Lighter delisted market 22 (26) and listed a new market 'M22.B'
    under its id. /api/minutes?symbol=M22 had found its rows through *_markets, whose row
    for the id now says 'M22.B': the page served as final for M22 lost its row (and a
    page for 'M22.B' would have shown M22's prices). Seed 16266 (soak): the same with
    /api/snapshots?symbol=M29."""
    assert sim.run(seed).violations == []


@pytest.mark.parametrize("seed", [178, 326])
def test_a_market_list_d1_refused_until_the_stop_is_saved_after_it(seed):
    """Seed 178 (invariant 23): D1 was down when the refresh found 'M21.B' listed under
    market 21's old id, and stayed down until after the stop; shard 0 saved the listing
    again only at refreshes, which a stopped shard does not do. M21.B's rows reached D1
    (the outbox retries), its market row and symbol never did: the API could not answer
    'M21.B', and lighter_markets still named the id 'M21'. Seed 326 (Paradex): the same
    with a restart between the refresh and the stop: the listing owed to D1 was only in
    the memory of the instance that went."""
    assert sim.run(seed).violations == []


def _backlog_scenario() -> sim.World:
    """Issue 18, defect 8: twice the shard's object handles nothing for 12-18 s (a burst
    ahead of it), then its queued frames back to back, a breath after every frame; its
    alarms get in at the first breaths, with nearly the whole queue still behind them."""
    return scenario([(30_000, "backlog", {"shard": 0, "ms": 12_000}), (80_000, "backlog", {"shard": 0, "ms": 18_000})],
                    breathe_every_frames=1)


def test_an_alarm_let_in_at_a_breath_closes_no_window_of_the_frames_queued_behind_it():
    world = _backlog_scenario()
    assert world.venue("lighter").alarms_at_breath >= 2
    assert_invariants(world)  # 13: no frame dropped as late, judged by when it arrived


def test_the_alarm_at_a_breath_closing_by_its_clock_alone_is_caught(monkeypatch):
    """The first breath (branch h8-saturation, not shipped) closed by the alarm's clock."""
    from tracker import shard

    real = shard.close_boundary
    monkeypatch.setattr(shard, "close_boundary", lambda now, wait, grace, backlogged, newest: real(
        now, wait, grace, False, newest))
    assert any("after a backlog" in line for line in check(_backlog_scenario()))


@pytest.mark.parametrize("seed", [225, 443])
def test_seeds_whose_backlogs_overlap(seed):
    """A backlog drawn inside another extends it (the world once shortened it, letting
    the alarm in between breaths)."""
    assert sim.run(seed).violations == []


def test_a_close_held_by_a_backlog_is_tried_again_a_second_later_not_at_every_breath():
    """A close held back by a backlog left the oldest window's close point in the past,
    so the shard armed its alarm 50 ms ahead, again and again: through a long drain an
    alarm at every breath (each a billed Durable Object request and a storage write)
    until the feed's lag estimate caught up. 40 markets (~65 frames a second), 18 s of
    frames queued, a breath after every frame taking 10 ms (a busy host): the queue drains
    at ~100 frames a second, for ~35 s."""
    markets = {m: f"M{m}" for m in range(1, 41)}
    world = scenario([(60_000, "backlog", {"shard": 0, "ms": 18_000, "breath_ms": 10})], markets=markets,
                     duration_s=120, breathe_every_frames=1)
    assert_invariants(world)
    assert 1 <= world.venue("lighter").alarms_at_breath <= 20  # (82 when every breath let one in)


def test_a_deploy_that_disables_an_exchange_stops_its_shards():
    """ENABLED_EXCHANGES changed by a deploy while both exchanges track (lighter,paradex ->
    lighter): nothing calls /api/stop. The runtime's glue (runtime/durable_object.py)
    stopped a disabled exchange's shard before handing the alarm to the tracker, so the
    simulation, which runs the tracker alone, saw Paradex's shards resume and track on
    for good (this test failed). The stop now lives in ShardTracker.alarm, beside the
    alarm (its last flush waits on D1), where the world checks it (invariant 25).
    Enabled again by a later deploy, the exchange waits for /api/start, which starts it."""
    plan = sim.make_plan(5, timed=False)
    events = [(40_000, "deploy_exchanges", {"enabled": ("lighter",)}),
              (110_000, "deploy_exchanges", {"enabled": ("lighter", "paradex")}),
              (115_000, "start_all", {})]
    world = sim.World(replace(plan, events=events, duration_ms=180_000))
    world.run()
    paradex = world.venue("paradex")
    assert paradex.tracking_spans[0][1] is not None and len(paradex.tracking_spans) == 2, paradex.tracking_spans
    stopped = [e for e in world.logs if e[6] == "paradex" and e[4] == "tracking_stopped"]
    assert any(40_000 < e[0] - world._t0 < 40_000 + sim.DISABLED_STOP_MS for e in stopped), stopped
    assert_invariants(world)


def test_coverage_counts_a_hold_on_the_alarms_as_a_disruption_until_it_ends():
    """Seed 780 (the host held Lighter's alarms 314 s, the server closed the idle
    connection meanwhile; the first subscribe after the reconnect left unanswered): the
    coverage check counted the pacing bound from the hold's start, so the market, 30 s
    into its ack timeout, looked left out for 156 s. A hold disrupts until it ends."""
    assert sim.run(780).violations == []


def test_an_alarm_at_a_breath_before_a_new_connection_s_first_book_frame_closes_nothing_early():
    """Seed 10262 (Paradex, a backlog on a shard that had just started again): the alarm
    let in at a breath after the new connection's subscribe answer, before its first
    book frame, closed windows by the clock alone (no newest stamp to hold them by);
    the frames queued behind it, stamped 138.1-142.9 s, were dropped as late. With no
    book frame handled yet, a breath now holds windows as long as a backlog may."""
    assert sim.run(10262).violations == []


def test_a_timed_out_subscribe_is_not_held_back_by_later_resubscribes():
    """Seed 13894 (a scale seed: 16 shards, 7 subscribes a minute each): a subscribe left
    unanswered timed out and was put first in line, then three nonce gaps put their
    markets first in line ahead of it; it was still not sent again 107 s later.
    Resubscribes now wait in turn, oldest first, ahead of new subscribes."""
    assert sim.run(13894).violations == []


def test_a_subscribe_in_flight_when_the_shard_lets_its_market_go_may_be_forgotten():
    """Seed 5331 (D1 and the peers hung, Lighter reused id 20): shard 2's refresh, from a
    stale market list, let market 20 go while its subscribe was in flight and
    unanswered; the pacer forgets such a subscribe (it drops it on an answer that never
    came), and the exchange's check took that for a subscribe never sent again."""
    assert sim.run(5331).violations == []


def test_a_timed_out_subscribe_waits_its_turn_on_a_small_share():
    """Seed 14995 (16 shards, 7 subscribes a minute each): seven nonce gaps in 16 s on a
    shard of 10 markets queued seven resubscribes, two messages each, ahead of a
    subscribe that timed out after them; it was sent again in its turn, later than the
    exchange's check allowed (the ack timeout and one rate window). The check now allows
    the turn the shard's share gives it."""
    assert sim.run(14995).violations == []


# Open (issue 18, defect 8): found by the final soak, not yet understood.
def test_frames_queued_behind_a_long_backlog_are_not_dropped_as_late():
    """Seed 19151 (a backlog on shard 1, the two exchanges at once): 13 updates stamped
    from 191.5 s, arrived within 744 ms, were handled 21.5 s later and dropped as late.
    Lighter stamped a frame a day ahead in the backlog; placed at our clock, it became
    the newest stamp the breath's rule held windows to, closing the window the queued
    updates fall in. The rule now reads the newest unclamped stamp (feedtime.queue_start)."""
    assert sim.run(19151).violations == []


@pytest.mark.xfail(strict=True, reason="open: an instance evicted 571 ms after a frame stamped 10.9 s ahead, "
                                       "before that was saved; its successor measured the window it had opened")
def test_an_eviction_right_after_a_stamp_ahead_leaves_the_successor_a_whole_window():
    """Seed 22403 (found past the final soak's 20,000 seeds; fails on dea58b8 too). Paradex
    stamps an empty update 10.9 s ahead of our clock (the world's `stamp` fault; within
    MAX_CLOCK_AHEAD_MS, so kept): it opens window 1780000050000 of market 42245694898372 on
    shard 0's first instance, which is evicted 571 ms later, before any alarm saved the
    new `clock_ahead_ms`. The successor measures from 1780000050000 and writes that window
    without the predecessor's tick, which the reference counts (avg_spread 0.002571
    against 0.002533). This is the race tracker/feedtime.py FeedLag names as open ("an
    instance that goes between such a frame's second and that save ... leaves its
    successor a window it measured in part"); the world's evictions now reach it."""
    assert sim.run(22403).violations == []


@pytest.mark.xfail(strict=True, reason="open: an instance evicted 309 ms after a frame stamped 14,999 ms ahead, "
                                       "before that was saved; its successor measured the window it had opened")
def test_an_eviction_right_after_a_stamp_at_the_bound_leaves_the_successor_a_whole_window():
    """Seed 23916 (found past the final soak's 20,000 seeds), the same race as 22403 on
    Lighter: its clock runs about 15 s ahead; a frame of market 22 stamped 14,999 ms ahead
    (kept) opens window 1780000155000, and shard 0's instance is evicted 309 ms later,
    before the new high was saved; the successor measures from 1780000155000. It passes
    on dea58b8 only because the eviction (after 55 awaits) lands elsewhere there: the
    breath rule's one different answer in this seed moves it."""
    assert sim.run(23916).violations == []
