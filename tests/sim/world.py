"""The deterministic simulation: the real shard trackers, on virtual time, against a
simulated Lighter and/or Paradex, D1 and Durable Object storage, through a fault
schedule drawn from one seed.

    result = run(seed)          # everything below is a function of `seed`
    assert not result.violations, result.replay

Which exchanges a seed runs (`make_plan`):
    seed % 3 in (0, 1)   Lighter alone (the plans of the first release, unchanged)
    seed % 6 == 2        Paradex alone
    seed % 6 == 5        Paradex and Lighter at once, on one D1, each with its own
                         shards, storage and simulated exchange (one deployment with
                         ENABLED_EXCHANGES=lighter,paradex)

What a seed decides: per exchange the number of shards and markets (Paradex: which
of its listed markets are PERP, and whether PERP_OPTION is tracked too; which
markets are quiet), the frame rate, the retention settings, and a schedule of
events at random moments: feed drops (one shard's or all; Paradex: bursts of
them), gaps, malformed frames, a silent feed, D1 outages, hangs and slow spells,
REST failures, evictions of one object, restarts of all (wrangler dev restarts,
deploys), stop/start cycles (landing inside flushes), SHARDS changes, markets
listed and delisted; Paradex also truncated deltas and frames of other templates.
Then a final stop, D1 healthy again, and time for the outbox to drain.
One seed in four of `run` also limits each exchange to a few symbols (LIGHTER_MARKETS /
PARADEX_MARKETS, `with_allowlist`, drawn apart so the rest of the plan is the same):
some listed at the start, maybe one listed later, maybe one never listed.
`invariants.check` says what must hold.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field, replace

from tracker import control
from tracker.config import Config
from tracker.exchange import by_name
from tracker.shard import STATE_KEY, Ports, ShardTracker

from cloud import Evicted, Incarnation, SimD1, SimStorage
from exchange import SimLighter
from paradex import NEW_MARKETS, OTHERS, PERPS, SPECS, SimParadex, market_id_of
from vloop import VirtualLoop

WINDOW_MS = 15_000
EPOCH_MS = 1_780_000_000_000
LIGHTER_URLS = dict(api_url="http://lighter.sim", ws_url="ws://lighter.sim/stream?readonly=true")
PARADEX_URLS = dict(paradex_api_url=SimParadex.api_url,
                    paradex_ws_url="ws://paradex.sim/v1?sbeSchemaId=1&sbeSchemaVersion=1")

# Events on one exchange (args["ex"]; the plan's own exchange when absent), on both.
VENUE_KINDS = ("drop_all", "drop_shard", "gap", "malformed", "silence", "rest_fail", "evict", "stop_start",
               "list", "delist", "stop_in_flush", "shards_change")
PARADEX_KINDS = ("truncate", "junk", "flap")
GLOBAL_KINDS = ("d1_outage", "d1_hang", "d1_slow", "restart")


@dataclass
class VenuePlan:
    exchange: str  # "lighter" | "paradex"
    shards: int
    markets: dict[int, str]  # every market listed at the start, id -> symbol (Paradex: any asset kind)
    frame_ms: tuple[int, int]
    config: Config  # as this exchange's shards see it (Config.for_exchange)
    extra: dict = field(default_factory=dict)  # Paradex: {"quiet": symbols changing every 8-40 s}


@dataclass
class Plan:
    """The primary exchange's settings (the fields a scenario replaces), the schedule,
    and any other exchange running alongside (`also`)."""

    seed: int
    shards: int
    markets: dict[int, str]
    frame_ms: tuple[int, int]
    duration_ms: int
    config: Config
    events: list[tuple[int, str, dict]]  # (at ms from start, kind, args)
    exchange: str = "lighter"
    extra: dict = field(default_factory=dict)
    also: tuple[VenuePlan, ...] = ()

    def venues(self) -> list[VenuePlan]:
        return [VenuePlan(self.exchange, self.shards, self.markets, self.frame_ms, self.config, self.extra),
                *self.also]


@dataclass
class Result:
    plan: Plan
    world: World
    violations: list[str] = field(default_factory=list)
    replay: str = ""


def make_plan(seed: int) -> Plan:
    if seed % 3 == 2:
        return _paradex_plan(seed, with_lighter=seed % 6 == 5)
    rng = random.Random(seed)
    shards = rng.choice((1, 1, 2, 2, 3))
    n = rng.randint(2, 5)
    ids = rng.sample(range(0, 60), n)
    markets = {m: f"M{m}" for m in ids}
    duration = rng.randint(150, 260) * 1000
    config = Config(
        **LIGHTER_URLS,
        window_ms=WINDOW_MS,
        flush_grace_ms=1_500,
        snapshot_retention_ms=rng.choice((60_000, 3_600_000)),
        minute_retention_ms=rng.choice((3_600_000, 86_400_000)),
        stale_feed_ms=10_000,
        shards=shards,
        alert_after_ms=30_000,
        market_refresh_ms=rng.choice((30_000, 60_000)),
        outbox_max_windows=rng.choice((4, 5_760)),
    )
    kinds = ("drop_all", "drop_shard", "gap", "malformed", "silence", "d1_outage", "d1_hang", "d1_slow",
             "rest_fail", "evict", "restart", "stop_start", "list", "delist", "stop_in_flush", "shards_change")
    events = []
    for _ in range(rng.randint(0, 7)):
        kind = rng.choice(kinds)
        at = rng.randint(8_000, duration - 20_000)
        args: dict = {}
        if kind == "drop_shard" or kind == "evict":
            args["shard"] = rng.randrange(shards)
        elif kind in ("gap", "delist"):
            args["market"] = rng.choice(ids)
        elif kind == "list":
            args["market"] = rng.choice([m for m in range(60, 120)])
        elif kind == "silence":
            args["seconds"] = rng.randint(5, 25)
        elif kind in ("d1_outage", "d1_hang", "rest_fail"):
            args["seconds"] = rng.randint(5, 120)
        elif kind == "d1_slow":
            args["seconds"] = rng.randint(10, 60)
        elif kind == "stop_start":
            args["pause"] = rng.randint(WINDOW_MS // 1000, 40)
        elif kind == "shards_change":
            args["shards"] = rng.choice((1, 2, 3))
        events.append((at, kind, args))
    events.sort(key=lambda e: e[0])
    return Plan(seed, shards, markets, (rng.randint(250, 800), rng.randint(900, 3000)), duration, config, events)


def _paradex_plan(seed: int, with_lighter: bool) -> Plan:
    rng = random.Random(seed)
    duration = rng.randint(150, 260) * 1000
    paradex_shards = rng.choice((1, 1, 2, 2, 3))
    perps = rng.sample(PERPS, rng.randint(2, 5))
    others = rng.sample(OTHERS, rng.randint(1, 3))  # listed, of other asset kinds
    kinds = frozenset({"PERP"}) if rng.random() < 0.75 else frozenset({"PERP", "PERP_OPTION"})
    quiet = frozenset(s for s in perps if rng.random() < 0.15)
    lighter_shards = rng.choice((1, 2, 3)) if with_lighter else 1
    lighter_ids = rng.sample(range(0, 60), rng.randint(2, 4)) if with_lighter else []
    base = Config(
        **LIGHTER_URLS,
        **PARADEX_URLS,
        window_ms=WINDOW_MS,
        flush_grace_ms=1_500,
        snapshot_retention_ms=rng.choice((60_000, 3_600_000)),
        minute_retention_ms=rng.choice((3_600_000, 86_400_000)),
        # Above Paradex's 20 s heartbeat period on idle connections (tracker/paradex.py).
        stale_feed_ms=rng.choice((25_000, 30_000)),
        shards=lighter_shards,
        alert_after_ms=30_000,
        market_refresh_ms=rng.choice((30_000, 60_000)),
        outbox_max_windows=rng.choice((4, 5_760)),
        enabled_exchanges=("lighter", "paradex") if with_lighter else ("paradex",),
        paradex_shards=paradex_shards,
        paradex_asset_kinds=kinds,
        paradex_book_channel=rng.choice(("deltas", "interactive_deltas")),
    )
    listed = perps + others
    tracked = [market_id_of(s) for s in listed if SPECS[s][0] in kinds]
    frame_ms = (rng.randint(250, 800), rng.randint(900, 3000))
    venues = {"paradex": (paradex_shards, tracked)}
    also: tuple[VenuePlan, ...] = ()
    if with_lighter:
        venues["lighter"] = (lighter_shards, lighter_ids)
        also = (VenuePlan("lighter", lighter_shards, {m: f"M{m}" for m in lighter_ids},
                          (rng.randint(250, 800), rng.randint(900, 3000)), base.for_exchange("lighter")),)
    events = []
    every = VENUE_KINDS + GLOBAL_KINDS + PARADEX_KINDS
    for _ in range(rng.randint(0, 8 if with_lighter else 7)):
        kind = rng.choice(every)
        at = rng.randint(8_000, duration - 20_000)
        args: dict = {}
        if kind not in GLOBAL_KINDS:
            args["ex"] = rng.choice(sorted(venues)) if kind in VENUE_KINDS else "paradex"
        shards, ids = venues.get(args.get("ex"), (1, []))
        if kind in ("drop_shard", "evict"):
            args["shard"] = rng.randrange(shards)
        elif kind in ("gap", "truncate"):
            args["market"] = rng.choice(ids)
        elif kind == "delist":
            args["market"] = rng.choice(ids)
            if args["ex"] == "paradex":
                args["how"] = rng.choice(("expire", "remove"))
        elif kind == "list" and args["ex"] == "lighter":
            args["market"] = rng.randrange(60, 120)
        elif kind == "list":
            args["symbol"] = rng.choice(sorted(NEW_MARKETS))
            args["open_in_ms"] = rng.choice((0, 0, rng.randint(5, 40) * 1000))
        elif kind == "silence":
            args["seconds"] = rng.randint(5, 40)
        elif kind in ("d1_outage", "d1_hang", "rest_fail"):
            args["seconds"] = rng.randint(5, 120)
        elif kind == "d1_slow":
            args["seconds"] = rng.randint(10, 60)
        elif kind == "stop_start":
            args["pause"] = rng.randint(WINDOW_MS // 1000, 40)
        elif kind == "shards_change":
            args["shards"] = rng.choice((1, 2, 3))
        elif kind == "flap":
            args["times"] = rng.randint(3, 8)
            args["every_ms"] = rng.randint(200, 3_000)
        events.append((at, kind, args))
    events.sort(key=lambda e: e[0])
    return Plan(seed, paradex_shards, {market_id_of(s): s for s in listed}, frame_ms, duration,
                base.for_exchange("paradex"), events, exchange="paradex", extra={"quiet": quiet}, also=also)


class Venue:
    """One exchange's deployment in the world: its simulated exchange, its shard
    objects (instances, storage, alarms) and what the world asked of it."""

    def __init__(self, world: World, plan: VenuePlan, index: int) -> None:
        self.world = world
        self.plan = plan
        self.name = plan.exchange
        self.spec = by_name(self.name)  # the tracker's Exchange
        self.config = plan.config
        rng = random.Random(world.plan.seed + 17 + 1_000 * index)
        if self.name == "lighter":
            self.ex = SimLighter(world.loop, rng, plan.markets, plan.frame_ms)
        else:
            self.ex = SimParadex(world.loop, rng, list(plan.markets.values()), plan.frame_ms,
                                 tracked_kinds=plan.config.paradex_asset_kinds,
                                 quiet=plan.extra.get("quiet", frozenset()))
        self.ex.stale_ms = plan.config.stale_feed_ms
        self.ex.allowed = frozenset(plan.config.market_symbols) or None
        self.storages: dict[int, SimStorage] = {}
        self.instances: dict[int, tuple[Incarnation, ShardTracker]] = {}
        self.needs_resume: set[int] = set()
        self.alarm_handles: dict[int, asyncio.TimerHandle] = {}
        self.alarm_running: dict[int, bool] = {}
        self.tracking = False  # as the world asked (start/stop)
        self.tracking_spans: list[list[int]] = []  # [from, to] of each run
        self.listed_at: dict[int, int] = {}
        self.delisted_at: dict[int, int] = {}
        self.control_results: list[list[dict]] = []
        self.lost_ranges: dict[int, set[tuple[int, int]]] = {}
        self.max_shards = plan.config.shards

    @property
    def loop(self) -> VirtualLoop:
        return self.world.loop

    def owns(self, statements) -> bool:
        """Whether a D1 batch is this exchange's (its tables)."""
        paradex = any("paradex_" in text for text, _ in statements)
        return paradex == (self.name == "paradex")

    # -- the Durable Object runtime ------------------------------------------------------------

    def storage(self, shard: int) -> SimStorage:
        if shard not in self.storages:
            s = SimStorage()
            s.on_alarm_change = lambda shard=shard: self._rearm(shard)
            s.on_put = lambda entries, shard=shard: self._saw_put(shard, entries)
            self.storages[shard] = s
        return self.storages[shard]

    def instance(self, shard: int) -> ShardTracker:
        if shard in self.instances:
            return self.instances[shard][1]
        world = self.world
        world.incarnations += 1
        life = Incarnation(world.incarnations)
        storage = self.storage(shard)
        ports = Ports(
            clock=self.loop,
            storage=storage.port(life),
            db=world.d1.port(life),
            sockets=lambda url, on_text, on_open, on_down, shard=shard, life=life: self.ex.connect(
                shard, on_text, on_open, on_down, lambda: life.alive, url=url),
            http=_Http(self, life),
            peers=_Peers(self),
            log=lambda level, component, event, message, shard=shard: world.logs.append(
                (self.loop.now_ms(), shard, level, component, event, message, self.name)),
            spawn=world._spawn,
        )
        tracker = ShardTracker(self.config, shard, ports, rng=random.Random(world.plan.seed * 31 + world.incarnations),
                               exchange=self.spec)
        self._watch_closing(tracker, shard)
        self.instances[shard] = (life, tracker)
        self.needs_resume.add(shard)
        return tracker

    def _watch_closing(self, tracker: ShardTracker, shard: int) -> None:
        """Tell the reference when the shard closes windows: the alarm's step closes every
        window ending at or before (the alarm's time - FLUSH_GRACE_MS); a frame stamped
        before that and delivered after is late (Paradex stamps a snapshot with the book's
        last change, which can be long before)."""
        real = tracker._close_windows

        async def close_windows(now: int) -> None:
            if tracker.aggregator is not None:
                self.ex.trace.append(("flush", shard, now - tracker.config.flush_grace_ms))
            await real(now)

        tracker._close_windows = close_windows

    def _saw_put(self, shard: int, entries: dict) -> None:
        raw = entries.get(STATE_KEY)
        if raw:
            for r in json.loads(raw).get("lost_ranges") or []:
                self.lost_ranges.setdefault(shard, set()).add((r["from"], r["to"]))

    def evict(self, shard: int) -> None:
        entry = self.instances.pop(shard, None)
        if entry is None:
            return
        life, _ = entry
        life.alive = False
        for conn in list(self.ex.conns.values()):
            if conn.shard == shard:
                self.ex.end(conn, notify=False)
        self.alarm_running[shard] = False

    def _stored_tracking(self, shard: int) -> bool:
        raw = self.storage(shard).data.get(STATE_KEY)
        return bool(raw and json.loads(raw).get("tracking"))

    def _mark_measuring(self, shard: int, fresh_start: bool) -> None:
        """Tell the reference from when this shard measures: a fresh start measures from
        its window; a resumed object from the window after the one in progress."""
        now = self.loop.now_ms()
        if fresh_start:
            boundary = now - now % WINDOW_MS
        else:
            boundary = now - now % WINDOW_MS + WINDOW_MS
        self.ex.trace.append(("from", shard, boundary))

    async def request(self, shard: int, method: str, *args):
        """A request into the object, as its fetch() handles it."""
        tracker = self.instance(shard)
        life = self.instances[shard][0]
        await asyncio.sleep(self.world.rng.randint(1, 30) / 1000)
        if not life.alive:
            raise RuntimeError("object reset")
        await tracker.ensure_running()
        if method == "start":
            if shard in self.needs_resume and self._stored_tracking(shard):
                self._mark_measuring(shard, fresh_start=False)
            elif not self._stored_tracking(shard):
                self._mark_measuring(shard, fresh_start=True)
            self.needs_resume.discard(shard)
        result = await getattr(tracker, method)(*args)
        return result.to_json() if hasattr(result, "to_json") else result

    def _rearm(self, shard: int) -> None:
        handle = self.alarm_handles.pop(shard, None)
        if handle is not None:
            handle.cancel()
        at = self.storage(shard).alarm
        if at is not None:
            self.alarm_handles[shard] = self.loop.at_ms(max(at, self.loop.now_ms()), self._fire, shard)

    def _fire(self, shard: int) -> None:
        self.alarm_handles.pop(shard, None)
        if self.alarm_running.get(shard):
            self.alarm_handles[shard] = self.loop.call_later(0.05, self._fire, shard)
            return
        storage = self.storage(shard)
        storage.alarm = None
        tracker = self.instance(shard)
        life = self.instances[shard][0]
        if shard in self.needs_resume:
            if self._stored_tracking(shard):
                self._mark_measuring(shard, fresh_start=False)
            self.needs_resume.discard(shard)
        self.alarm_running[shard] = True

        async def run() -> None:
            try:
                await tracker.alarm()
            except Evicted:  # the runtime retries an alarm whose invocation never finished
                if storage.alarm is None:
                    storage.alarm = self.loop.now_ms() + 1_000
            except Exception as exc:  # the tracker promises never to raise from alarm()
                self.world.errors.append(f"{self.name}: alarm of shard {shard} raised {exc!r}")
                if storage.alarm is None:  # the runtime retries a failed alarm
                    storage.alarm = self.loop.now_ms() + 1_000
            finally:
                if life.alive:
                    self.alarm_running[shard] = False
                self._rearm(shard)

        asyncio.ensure_future(run())

    # -- the Worker: start/stop fan-out ----------------------------------------------------------

    async def control(self, action: str) -> None:
        known = set(self.storages)

        async def call(shard: int, method: str) -> dict:
            return await self.request(shard, method)

        results = await control.fan_out(action, self.config.shards, known, call)
        self.control_results.append(results)
        now = self.loop.now_ms()
        if action == "start":
            self.tracking = True
            self.tracking_spans.append([now, None])
        else:
            self.tracking = False
            if self.tracking_spans and self.tracking_spans[-1][1] is None:
                self.tracking_spans[-1][1] = now


class World:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed * 7919 + 1)
        self.loop = VirtualLoop(EPOCH_MS + self.rng.randint(0, 59_999))
        self.loop.set_exception_handler(self._loop_exception)
        self.venues = [Venue(self, p, i) for i, p in enumerate(plan.venues())]
        self.d1 = SimD1(self.loop, random.Random(plan.seed + 23))
        self.incarnations = 0
        self.logs: list[tuple] = []  # (ms, shard, level, component, event, message, exchange)
        self.errors: list[str] = []
        self.probes: list[str] = []
        self.loop_end_ms = 0

    # The primary exchange's (the plan's own), as the scenarios read them.
    exchange = property(lambda self: self.venues[0].ex)
    config = property(lambda self: self.venues[0].config)
    storages = property(lambda self: self.venues[0].storages)
    instances = property(lambda self: self.venues[0].instances)
    tracking = property(lambda self: self.venues[0].tracking)
    tracking_spans = property(lambda self: self.venues[0].tracking_spans)
    listed_at = property(lambda self: self.venues[0].listed_at)
    delisted_at = property(lambda self: self.venues[0].delisted_at)
    lost_ranges = property(lambda self: self.venues[0].lost_ranges)
    control_results = property(lambda self: self.venues[0].control_results)

    def venue(self, name: str | None) -> Venue:
        return next(v for v in self.venues if v.name == name) if name else self.venues[0]

    def _spawn(self, coro, what: str) -> None:
        task = asyncio.ensure_future(coro)

        def done(t: asyncio.Task) -> None:
            exc = t.exception()
            if exc is not None and not isinstance(exc, Evicted):
                self.errors.append(f"background {what} raised {exc!r}")

        task.add_done_callback(done)

    def _loop_exception(self, loop, context) -> None:
        exc = context.get("exception")
        if isinstance(exc, Evicted):
            return
        self.errors.append(f"loop: {context.get('message')} {exc!r}")

    async def control(self, action: str, venues: list[Venue] | None = None) -> None:
        """/api/start or /api/stop: every exchange's shards at once (or those of `venues`)."""
        venues = venues or self.venues
        if len(venues) == 1:
            await venues[0].control(action)
        else:
            await asyncio.gather(*(v.control(action) for v in venues))

    def evict_all(self) -> None:
        for venue in self.venues:
            for shard in list(venue.instances):
                venue.evict(shard)

    # -- the schedule ------------------------------------------------------------------------------

    async def script(self) -> None:
        plan = self.plan
        t0 = self.loop.now_ms()
        await asyncio.sleep(self.rng.randint(500, 3000) / 1000)
        await self.control("start")
        for at, kind, args in plan.events:
            delay = (t0 + at - self.loop.now_ms()) / 1000
            if delay > 0:
                await asyncio.sleep(delay)
            await self.apply(kind, args)
        await asyncio.sleep(max(0, t0 + plan.duration_ms - self.loop.now_ms()) / 1000)
        await self.control("stop")
        # D1 comes back; the outbox drains; nothing else should happen.
        self.d1.failing_until = self.d1.hanging_until = 0
        for venue in self.venues:
            venue.ex.rest_failing_until = 0
            venue.ex.stop_generating()
        await asyncio.sleep(240)

    async def apply(self, kind: str, args: dict) -> None:
        d1, now = self.d1, self.loop.now_ms()
        venue = self.venue(args.get("ex"))
        ex = venue.ex
        if kind == "drop_all":
            ex.drop_all()
        elif kind == "drop_shard":
            ex.drop_shard(args["shard"] % venue.config.shards)
        elif kind == "gap":
            ex.gap(args["market"])
        elif kind == "truncate":
            ex.truncate(args["market"])
        elif kind == "malformed":
            ex.malformed()
        elif kind == "junk":
            ex.junk()
        elif kind == "silence":
            ex.silence(args["seconds"])
        elif kind == "flap":  # a burst of drops: every shard reconnects again and again
            for _ in range(args["times"]):
                ex.drop_all()
                await asyncio.sleep(args["every_ms"] / 1000)
        elif kind == "d1_outage":
            d1.failing_until = now + args["seconds"] * 1000
        elif kind == "d1_hang":
            d1.hanging_until = now + args["seconds"] * 1000
        elif kind == "d1_slow":
            d1.slow_ms = (200, 3000)
            self.loop.call_later(args["seconds"], lambda: setattr(d1, "slow_ms", (1, 30)))
        elif kind == "rest_fail":
            ex.rest_failing_until = now + args["seconds"] * 1000
        elif kind == "evict":
            venue.evict(args["shard"] % venue.config.shards)
        elif kind == "restart":
            self.evict_all()
        elif kind == "stop_start" and venue.tracking:
            await self.control("stop", [venue])
            await asyncio.sleep(args["pause"])
            await self.control("start", [venue])
        elif kind == "stop_in_flush" and venue.tracking:
            # Stop exactly while a D1 batch is in flight (the race of the first release).
            fired = asyncio.get_event_loop().create_future()

            def hook(statements) -> None:
                if not fired.done() and venue.owns(statements):
                    fired.set_result(None)

            d1.on_batch = hook
            try:
                await asyncio.wait_for(fired, 120)
            except asyncio.TimeoutError:
                self.errors.append(f"{venue.name}: no D1 batch within 120 s while tracking")
            d1.on_batch = None
            await self.control("stop", [venue])
            await asyncio.sleep(WINDOW_MS / 1000 + 1)
            await self.control("start", [venue])
        elif kind == "shards_change" and venue.tracking:
            await self.control("stop", [venue])
            self.evict_all()  # a deploy with the new setting restarts every object
            venue.config = replace(venue.config, shards=args["shards"])
            venue.max_shards = max(venue.max_shards, args["shards"])
            await asyncio.sleep(WINDOW_MS / 1000 + 1)
            await self.control("start", [venue])
        elif kind == "list" and venue.name == "lighter" and args["market"] not in ex.listing:
            ex.list_market(args["market"], f"M{args['market']}")
            if venue.config.tracks(f"M{args['market']}"):
                venue.listed_at[args["market"]] = now
                self._probe_listed(venue, args["market"], now)
        elif kind == "list" and venue.name == "paradex" and args["symbol"] not in ex.listing:
            opens = now + args["open_in_ms"]
            m = ex.list_market(args["symbol"], open_at=opens)
            if SPECS[args["symbol"]][0] in venue.config.paradex_asset_kinds and venue.config.tracks(args["symbol"]):
                venue.listed_at[m] = opens
                self._probe_listed(venue, m, opens)
        elif kind == "delist" and args["market"] in ex.books:
            if venue.name == "lighter":
                ex.delist_market(args["market"])
            else:
                ex.delist_market(ex.symbols[args["market"]], args["how"])
            venue.delisted_at[args["market"]] = now
            self._probe_delisted(venue, args["market"], now)

    def _tracking_throughout(self, venue: Venue, since: int, until: int) -> bool:
        return any(a <= since and (b is None or b >= until) for a, b in venue.tracking_spans)

    def _quiet_between(self, venue: Venue, since: int, until: int) -> bool:
        """No fault that delays subscriptions (evictions, restarts, REST/D1 trouble) in the span."""
        t0 = self._t0
        noisy = {"evict", "restart", "rest_fail", "d1_outage", "d1_hang", "d1_slow", "shards_change",
                 "stop_start", "stop_in_flush", "drop_all", "drop_shard", "silence", "flap"}
        return not any(kind in noisy and args.get("ex") in (None, venue.name) and since - 130_000 <= t0 + at <= until
                       for at, kind, args in self.plan.events)

    def _probe_listed(self, venue: Venue, market: int, listed: int) -> None:
        deadline = listed + venue.config.market_refresh_ms + 20_000

        def probe() -> None:
            if not self._tracking_throughout(venue, listed, deadline) or not self._quiet_between(venue, listed, deadline):
                return
            first = venue.ex.first_snapshot.get(market)
            if first is None or first > deadline:
                self.probes.append(f"{venue.name}: market {market} listed at {listed} not subscribed by {deadline}")

        self.loop.at_ms(deadline, probe)

    def _probe_delisted(self, venue: Venue, market: int, delisted: int) -> None:
        deadline = delisted + venue.config.market_refresh_ms + 20_000

        def probe() -> None:
            if not self._tracking_throughout(venue, delisted, deadline) or not self._quiet_between(venue, delisted, deadline):
                return
            if market in venue.ex.live_subscriptions():
                self.probes.append(f"{venue.name}: market {market} delisted at {delisted} still subscribed at {deadline}")

        self.loop.at_ms(deadline, probe)

    def run(self) -> None:
        self._t0 = self.loop.now_ms()
        budget = (self.plan.duration_ms + 900_000) / 1000  # virtual seconds
        try:
            self.loop.run_until_complete(asyncio.wait_for(self.script(), budget))
        except asyncio.TimeoutError:
            self.errors.append(f"the schedule did not finish within {budget:.0f} virtual seconds (stuck)")
        self.loop_end_ms = self.loop.now_ms()
        self.loop.close()


class _Http:
    def __init__(self, venue: Venue, life: Incarnation) -> None:
        self.venue = venue
        self.life = life

    async def get_text(self, url: str) -> tuple[int, str]:
        self.life.check()
        result = await self.venue.ex.get_text(url)
        self.life.check()
        return result

    async def post_json(self, url: str, body: dict) -> int:
        self.life.check()
        await asyncio.sleep(0.01)
        self.life.check()
        return 204


class _Peers:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    async def send_markets(self, shard: int, payload: dict) -> None:
        await self.venue.request(shard, "receive_markets", payload)


ALLOWLIST_ONE_SEED_IN = 4
NEVER_LISTED = "NOT-LISTED"


def with_allowlist(plan: Plan) -> Plan:
    """One seed in four of `run` tracks only some symbols of each exchange
    (Config.market_symbols), drawn from a generator of its own: every other draw of the
    plan stays what it was, and make_plan (what scenarios build on, with markets of
    their own) never has one. The salt keeps the seeds tests pin (1, 2, 14, 37, 53, 92,
    108, 3696) as they were."""
    rng = random.Random(plan.seed * 104_729 + 12)
    if rng.randrange(ALLOWLIST_ONE_SEED_IN):
        return plan

    def narrowed(venue: VenuePlan) -> Config:
        listed = sorted(venue.markets.values())
        later = sorted({f"M{a['market']}" if "market" in a else a["symbol"] for _, kind, a in plan.events
                        if kind == "list" and a.get("ex", plan.exchange) == venue.exchange})
        chosen = rng.sample(listed, rng.randint(1, max(1, len(listed) - 1)))
        if later and rng.random() < 0.5:
            chosen.append(rng.choice(later))
        if rng.random() < 0.5:
            chosen.append(NEVER_LISTED)
        return replace(venue.config, market_symbols=tuple(chosen))

    also = tuple(replace(v, config=narrowed(v)) for v in plan.also)
    return replace(plan, config=narrowed(plan.venues()[0]), also=also)


def run(seed: int) -> Result:
    from invariants import check

    plan = with_allowlist(make_plan(seed))
    world = World(plan)
    world.run()
    result = Result(plan, world, replay=f"bash scripts/simulate --seed {seed}")
    result.violations = check(world)
    return result
