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


# =====================================================================================
# Paradex (tests/sim/paradex.py), alone and beside Lighter on one D1
# =====================================================================================

from paradex import CONNECTIONS_PER_SECOND, market_id_of  # noqa: E402

BTC, ETH, SOL = "BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"


def paradex_scenario(events, *, shards=1, symbols=(BTC, ETH, SOL), others=("PDEX-USDC", "BTC-USD-PERP-96000-C"),
                     quiet=(), duration_s=150, seed=2, lighter=None, **config) -> sim.World:
    """A Paradex run (`seed` must be a Paradex plan's: seed % 6 == 2); `lighter`: the
    Lighter markets of a deployment running both (shards: config's `lighter_shards`)."""
    plan = sim.make_plan(seed)
    assert plan.exchange == "paradex" and not plan.also, f"seed {seed} is not a Paradex-only plan"
    lighter_shards = config.pop("lighter_shards", 1)
    markets = {market_id_of(s): s for s in (*symbols, *others)}
    cfg = replace(plan.config, shards=shards, **config)
    also = ()
    if lighter:
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
