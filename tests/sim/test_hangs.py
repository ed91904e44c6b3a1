"""Issue 18, defect 3: a hang in an outside call must not hold the windows hostage.

A market refresh whose REST call hangs for minutes, a D1 call that hangs, an alert
webhook that hangs: before the fix each held the alarm for as long as it hung, so no
window closed, no ping went out, no reconnect happened, and after 16 windows the
aggregator dropped its oldest open ones (counted in windowsLost, in no lost range).
Now every outside call has a deadline (tracker/ports.py, `Deadlines`) and the slow
steps run beside the alarm, one lane each (tracker/shard.py): windows close on time
whatever REST, D1 or the webhook do. The invariants (tests/sim/invariants.py) are
checked on top of each test's own assertions.
"""

from __future__ import annotations

import json
from dataclasses import replace

import world as sim
from invariants import check
from tracker.shard import STATE_KEY

SYMBOLS = {1: "ETH", 2: "BTC", 3: "SOL"}
WINDOW_MS = sim.WINDOW_MS


def scenario(events, *, shards=1, duration_s=150, seed=1, **config) -> sim.World:
    config.setdefault("outbox_max_windows", 5_760)  # a day: an outage of minutes drops nothing
    plan = sim.make_plan(seed)
    plan = replace(plan, shards=shards, markets=dict(SYMBOLS), duration_ms=duration_s * 1000, events=events,
                   frame_ms=(300, 900), config=replace(plan.config, shards=shards, **config))
    world = sim.World(plan)
    world.run()
    return world


def longest_close_gap(world: sim.World, shard: int = 0) -> int:
    """The longest time (ms) between two window closes of `shard` while it tracked."""
    times = [e[2] for e in world.exchange.trace if e[0] == "flush" and e[1] == shard]
    return max(b - a for a, b in zip(times, times[1:]))


def windows_lost(world: sim.World, shard: int = 0) -> int:
    return json.loads(world.storages[shard].data[STATE_KEY])["totals"]["windows_lost"]


def assert_invariants(world: sim.World) -> None:
    violations = check(world)
    assert not violations, violations[:5]


def test_a_market_list_that_hangs_for_six_minutes_stalls_nothing(monkeypatch):
    """The issue's case: REST hangs for 6 minutes while tracking. The refresh gives up
    at its deadline and tries again later; windows close every 15 s all along, and the
    keepalive pings go on (Lighter drops a connection silent for 2 minutes)."""
    from exchange import SimLighter

    pings: list[int] = []
    real = SimLighter._act

    def act(self, conn, text):
        if '"ping"' in text or '"pong"' in text:  # (a pong to Lighter's own ping keeps it alive as well)
            pings.append(self.loop.now_ms())
        return real(self, conn, text)

    monkeypatch.setattr(SimLighter, "_act", act)
    world = scenario([(40_000, "rest_hang", {"seconds": 360})], market_refresh_ms=30_000, duration_s=480)
    assert longest_close_gap(world) <= WINDOW_MS + 2_000, longest_close_gap(world)
    assert max(b - a for a, b in zip(pings, pings[1:])) < 60_000, pings
    assert windows_lost(world) == 0
    timeouts = [e for e in world.logs if e[4] == "markets_failed" and "timed out" in e[5]]
    assert timeouts, "the refresh never gave up on the hung REST call"
    assert_invariants(world)


def test_a_d1_that_hangs_for_minutes_only_delays_d1():
    """D1 hangs for 5 minutes: windows still close on time into the outbox (durable), the
    feed is still checked, and everything reaches D1 once it answers again."""
    world = scenario([(40_000, "d1_hang", {"seconds": 300})], duration_s=480)
    assert longest_close_gap(world) <= WINDOW_MS + 2_000, longest_close_gap(world)
    assert windows_lost(world) == 0
    assert any(e[4] == "flush_failed" and "timed out" in e[5] for e in world.logs)
    assert_invariants(world)


def test_an_alert_webhook_that_hangs_stalls_nothing():
    """The feed drops; the feed-down alert's post hangs for 10 minutes. The alarm goes on
    (the post is retried after its deadline) and the alerts arrive once it answers."""
    world = scenario([(30_000, "webhook_hang", {"seconds": 600}), (31_000, "drop_all", {})],
                     alert_webhook_url="https://hooks.sim/alert", alert_after_ms=0, duration_s=700)
    assert longest_close_gap(world) <= WINDOW_MS + 2_000, longest_close_gap(world)
    assert windows_lost(world) == 0
    events = [body["event"] for _, body in world.webhook_posts]
    assert "feed_down" in events and "feed_recovered" in events, events
    assert_invariants(world)


def test_the_invariants_catch_an_alarm_that_waits_on_d1(monkeypatch):
    """Invariant 11 can fail: an alarm step that awaits D1 before closing the windows is
    held by a D1 hang (up to the D1 deadline), and the check says so."""
    from tracker import shard

    real = shard.ShardTracker._close_windows

    async def close_after_asking_d1(self, now):
        await self.ports.db.query("SELECT 1")
        await real(self, now)

    monkeypatch.setattr(shard.ShardTracker, "_close_windows", close_after_asking_d1)
    world = scenario([(40_000, "d1_hang", {"seconds": 120})], duration_s=200)
    assert any("alarm of shard 0 took" in v for v in check(world)), check(world)[:5]




def test_a_storage_write_cut_short_never_leaves_a_state_without_its_windows():
    """More keys than one storage call takes are several calls (ports.Storage.put_many,
    as the runtime's port and the simulated storage make them). An eviction between two
    calls must leave chunks that nothing names, never the state saying windows are
    closed without the index that holds them: the outbox writes state and index last,
    and the last call holds the last 128 keys."""
    import asyncio

    import pytest

    from cloud import Evicted, Incarnation, SimStorage
    from tracker.aggregator import ClosedWindow
    from tracker.outbox import INDEX_KEY, Outbox

    class Row:
        def values(self) -> tuple:
            return (1, "ETH", 2.5)

    storage = SimStorage()
    life = Incarnation(1)
    life.tripwire = 3  # evicted at the await that ends the first storage call
    life.on_trip = lambda: setattr(life, "alive", False)
    outbox = Outbox(storage.port(life), max_windows=5_760)
    windows = [ClosedWindow(start=i * WINDOW_MS, rows=[Row()]) for i in range(200)]  # 202 keys
    with pytest.raises(Evicted):
        asyncio.run(outbox.add(windows, lambda dropped: {STATE_KEY: "windows closed"}))
    assert any(key.startswith("outbox/") for key in storage.data), "the write was not cut short"
    assert STATE_KEY not in storage.data and INDEX_KEY not in storage.data


def test_a_market_list_too_big_for_one_d1_transaction_is_saved_whole_through_lost_answers():
    """450 listed markets: their save is 452 statements (an upsert a market, their symbols
    in one, the deactivation), which the runtime sends as two
    D1 transactions (ports.D1_BATCH_STATEMENTS). While D1 loses its answers (the write
    commits, the call fails) the first transaction lands and the second is never sent;
    the save is retried until one succeeds, and the saved list ends up whole and right."""
    from tracker.ports import D1_BATCH_STATEMENTS

    plan = sim.make_plan(1)
    plan = replace(plan, shards=1, markets=dict(SYMBOLS), duration_ms=150_000, frame_ms=(300, 900),
                   events=[(5_000, "d1_lost_answers", {"seconds": 60})],
                   config=replace(plan.config, shards=1, market_refresh_ms=30_000, outbox_max_windows=5_760))
    world = sim.World(plan)
    for m in range(200, 647):  # listed, not active: saved, never subscribed
        world.exchange.listing[m] = {"symbol": f"OLD{m}", "market_id": m, "market_type": "perp",
                                     "status": "inactive", "supported_size_decimals": 4,
                                     "supported_price_decimals": 2}
    transactions = []
    real = world.d1.execute_batch
    world.d1.execute_batch = lambda statements: transactions.append(len(statements)) or real(statements)
    world.run()
    assert D1_BATCH_STATEMENTS in transactions and 452 - D1_BATCH_STATEMENTS in transactions
    assert any(e[4] == "d1_error" and "after the write committed" in e[5] for e in world.logs)
    saved = {r["market_index"]: r["active"] for r in world.d1.rows("SELECT market_index, active FROM lighter_markets")}
    assert saved == {**{m: 1 for m in SYMBOLS}, **{m: 0 for m in range(200, 647)}}
    assert_invariants(world)


def test_start_and_stop_answer_in_time_while_d1_hangs(monkeypatch):
    """/api/start and /api/stop wait on every shard, and the Worker's request must answer
    within 30 s: a shard answers within ANSWER_WITHIN_MS whatever D1 does. A stop while D1
    hangs used to wait for the lane's flush and then its own (35 s deadline each); the
    last flush now goes on in the d1 lane and everything reaches D1 once it answers."""
    from tracker.shard import ANSWER_WITHIN_MS

    took: list[tuple[str, int]] = []
    real = sim.Venue.control

    async def timed(self, action):
        began = self.loop.now_ms()
        await real(self, action)
        took.append((action, self.loop.now_ms() - began))

    monkeypatch.setattr(sim.Venue, "control", timed)
    world = scenario([(40_000, "d1_hang", {"seconds": 600}), (60_000, "stop_start", {"pause": 20})], duration_s=120)
    assert [a for a, _ in took] == ["start", "stop", "start", "stop"], took
    assert all(ms <= ANSWER_WITHIN_MS + 1_000 for _, ms in took), took
    assert_invariants(world)



def lone_shard(**config):
    """One shard object on simulated storage and D1, on a virtual loop (no world):
    (loop, tracker, storage, d1, life)."""
    import random

    from cloud import Incarnation, SimD1, SimStorage
    from tracker.ports import no_log
    from vloop import VirtualLoop

    loop = VirtualLoop(sim.EPOCH_MS)
    d1, storage, life = SimD1(loop, random.Random(1)), SimStorage(), Incarnation(1)
    storage.on_alarm_change = lambda: None
    plan = sim.make_plan(1)
    ports = sim.Ports(clock=loop, storage=storage.port(life), db=d1.port(life), sockets=None, http=None,
                      peers=None, log=no_log, spawn=lambda coro, what: loop.create_task(coro))
    tracker = sim.ShardTracker(replace(plan.config, shards=1, **config), 0, ports)
    return loop, tracker, storage, d1, life


def finish(loop) -> None:
    """Cancel what still runs (a lane waiting on a hung D1) and close the loop."""
    import asyncio

    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


def closed(start: int):
    from tracker.aggregator import ClosedWindow

    class Row:
        def values(self) -> tuple:
            return (1, "ETH", 2.5)

    return ClosedWindow(start=start, rows=[Row()])


def test_a_busy_d1_lane_with_windows_owed_keeps_an_alarm_set():
    """Seed 500: a stopped shard's flush runs in the d1 lane; the alarm that started it,
    finding the lane busy, set no alarm (the lane would, when it ended). D1 hung; the
    instance was evicted while the lane waited: nothing woke the object again and its
    outbox never drained. A busy lane with D1 work owed leaves an alarm for when its
    call must have ended."""
    from tracker.ports import Deadlines

    loop, tracker, storage, d1, _ = lone_shard()
    d1.hanging_until = sim.EPOCH_MS + 3_600_000

    async def scenario() -> int | None:
        await tracker.ready()
        await tracker._stash([closed(sim.EPOCH_MS - WINDOW_MS)])  # stopped, one window owed
        tracker.lanes.start("d1", tracker._flush, True)
        await tracker._schedule()  # as the stopped alarm does, the lane waiting on D1
        return storage.alarm

    alarm = loop.run_until_complete(scenario())
    finish(loop)
    assert alarm is not None and alarm <= sim.EPOCH_MS + Deadlines().d1_ms


def test_windows_dropped_by_the_outbox_are_recorded_lost_in_the_write_that_drops_them():
    """Seed 732 (issue 18, defect 7): the outbox overflowed (D1 hung) and the window it
    dropped was recorded lost in a second storage write; an eviction at the await
    between the two lost the record: a window with ticks neither in D1 nor in a lost
    range. The lost range now goes in the very write that drops the window."""
    from cloud import Evicted

    loop, tracker, storage, _, life = lone_shard(outbox_max_windows=1)

    async def scenario() -> None:
        await tracker.ready()
        await tracker._stash([closed(sim.EPOCH_MS)])
        life.tripwire = 3  # evicted at the await that ends the next storage write
        life.on_trip = lambda: setattr(life, "alive", False)
        await tracker._stash([closed(sim.EPOCH_MS + WINDOW_MS)])  # pushes the first one out

    try:
        loop.run_until_complete(scenario())
    except Evicted:
        pass
    finish(loop)
    assert not life.alive, "the eviction did not happen: the test tests nothing"
    state = json.loads(storage.data[STATE_KEY])
    assert {"from": sim.EPOCH_MS, "to": sim.EPOCH_MS + WINDOW_MS} in state["lost_ranges"], state["lost_ranges"]
