"""The deterministic simulation: the real shard trackers, on virtual time, against a
simulated Lighter, D1 and Durable Object storage, through a fault schedule drawn
from one seed.

    result = run(seed)          # everything below is a function of `seed`
    assert not result.violations, result.replay

What a seed decides: the number of shards and markets, the frame rate, the
retention settings, and a schedule of events at random moments: feed drops
(one shard's or all), nonce gaps, malformed frames, a silent feed, D1 outages,
hangs and slow spells, REST failures, evictions of one object, restarts of all
(wrangler dev restarts, deploys), stop/start cycles (landing inside flushes),
SHARDS changes, markets listed and delisted. Then a final stop, D1 healthy again,
and time for the outbox to drain. `invariants.check` says what must hold.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field

from tracker import control
from tracker.config import Config
from tracker.shard import STATE_KEY, Ports, ShardTracker

from exchange import SimLighter
from cloud import Evicted, Incarnation, SimD1, SimStorage
from vloop import VirtualLoop

WINDOW_MS = 15_000
EPOCH_MS = 1_780_000_000_000


@dataclass
class Plan:
    seed: int
    shards: int
    markets: dict[int, str]
    frame_ms: tuple[int, int]
    duration_ms: int
    config: Config
    events: list[tuple[int, str, dict]]  # (at ms from start, kind, args)


@dataclass
class Result:
    plan: Plan
    world: World
    violations: list[str] = field(default_factory=list)
    replay: str = ""


def make_plan(seed: int) -> Plan:
    rng = random.Random(seed)
    shards = rng.choice((1, 1, 2, 2, 3))
    n = rng.randint(2, 5)
    ids = rng.sample(range(0, 60), n)
    markets = {m: f"M{m}" for m in ids}
    duration = rng.randint(150, 260) * 1000
    config = Config(
        api_url="http://lighter.sim",
        ws_url="ws://lighter.sim/stream?readonly=true",
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


class World:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed * 7919 + 1)
        self.loop = VirtualLoop(EPOCH_MS + self.rng.randint(0, 59_999))
        self.loop.set_exception_handler(self._loop_exception)
        self.config = plan.config
        self.exchange = SimLighter(self.loop, random.Random(plan.seed + 17), plan.markets, plan.frame_ms)
        self.d1 = SimD1(self.loop, random.Random(plan.seed + 23))
        self.storages: dict[int, SimStorage] = {}
        self.instances: dict[int, tuple[Incarnation, ShardTracker]] = {}
        self.incarnations = 0
        self.needs_resume: set[int] = set()
        self.alarm_handles: dict[int, asyncio.TimerHandle] = {}
        self.alarm_running: dict[int, bool] = {}
        self.logs: list[tuple] = []
        self.errors: list[str] = []
        self.tracking = False  # as the world asked (start/stop)
        self.tracking_spans: list[list[int]] = []  # [from, to] of each run
        self.listed_at: dict[int, int] = {}
        self.delisted_at: dict[int, int] = {}
        self.probes: list[str] = []
        self.control_results: list[list[dict]] = []
        self.lost_ranges: dict[int, set[tuple[int, int]]] = {}
        self.loop_end_ms = 0

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
        self.incarnations += 1
        life = Incarnation(self.incarnations)
        storage = self.storage(shard)
        ports = Ports(
            clock=self.loop,
            storage=storage.port(life),
            db=self.d1.port(life),
            sockets=lambda url, on_text, on_open, on_down, shard=shard, life=life: self.exchange.connect(
                shard, on_text, on_open, on_down, lambda: life.alive),
            http=_Http(self, life),
            peers=_Peers(self),
            log=lambda level, component, event, message, shard=shard: self.logs.append(
                (self.loop.now_ms(), shard, level, component, event, message)),
            spawn=self._spawn,
        )
        tracker = ShardTracker(self.config, shard, ports, rng=random.Random(self.plan.seed * 31 + self.incarnations))
        self.instances[shard] = (life, tracker)
        self.needs_resume.add(shard)
        return tracker

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
        for conn in list(self.exchange.conns.values()):
            if conn.shard == shard:
                self.exchange.end(conn, notify=False)
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
        self.exchange.trace.append(("from", shard, boundary))

    async def request(self, shard: int, method: str, *args):
        """A request into the object, as its fetch() handles it."""
        tracker = self.instance(shard)
        life = self.instances[shard][0]
        await asyncio.sleep(self.rng.randint(1, 30) / 1000)
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
                self.errors.append(f"alarm of shard {shard} raised {exc!r}")
                if storage.alarm is None:  # the runtime retries a failed alarm
                    storage.alarm = self.loop.now_ms() + 1_000
            finally:
                if life.alive:
                    self.alarm_running[shard] = False
                self._rearm(shard)

        asyncio.ensure_future(run())

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
        self.exchange.rest_failing_until = 0
        await asyncio.sleep(240)

    async def apply(self, kind: str, args: dict) -> None:
        ex, d1, now = self.exchange, self.d1, self.loop.now_ms()
        if kind == "drop_all":
            ex.drop_all()
        elif kind == "drop_shard":
            ex.drop_shard(args["shard"] % self.config.shards)
        elif kind == "gap":
            ex.gap(args["market"])
        elif kind == "malformed":
            ex.malformed()
        elif kind == "silence":
            ex.silence(args["seconds"])
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
            self.evict(args["shard"] % self.config.shards)
        elif kind == "restart":
            for shard in list(self.instances):
                self.evict(shard)
        elif kind == "stop_start" and self.tracking:
            await self.control("stop")
            await asyncio.sleep(args["pause"])
            await self.control("start")
        elif kind == "stop_in_flush" and self.tracking:
            # Stop exactly while a D1 batch is in flight (the race of the first release).
            fired = asyncio.get_event_loop().create_future()

            def hook(statements) -> None:
                if not fired.done():
                    fired.set_result(None)

            d1.on_batch = hook
            try:
                await asyncio.wait_for(fired, 120)
            except asyncio.TimeoutError:
                self.errors.append("no D1 batch within 120 s while tracking")
            d1.on_batch = None
            await self.control("stop")
            await asyncio.sleep(WINDOW_MS / 1000 + 1)
            await self.control("start")
        elif kind == "shards_change" and self.tracking:
            await self.control("stop")
            for shard in list(self.instances):
                self.evict(shard)  # a deploy with the new setting
            self.config = _with(self.config, shards=args["shards"])
            await asyncio.sleep(WINDOW_MS / 1000 + 1)
            await self.control("start")
        elif kind == "list" and args["market"] not in ex.listing:
            ex.list_market(args["market"], f"M{args['market']}")
            self.listed_at[args["market"]] = now
            self._probe_listed(args["market"], now)
        elif kind == "delist" and args["market"] in ex.books:
            ex.delist_market(args["market"])
            self.delisted_at[args["market"]] = now
            self._probe_delisted(args["market"], now)

    def _tracking_throughout(self, since: int, until: int) -> bool:
        return any(a <= since and (b is None or b >= until) for a, b in self.tracking_spans)

    def _quiet_between(self, since: int, until: int) -> bool:
        """No fault that delays subscriptions (evictions, restarts, REST/D1 trouble) in the span."""
        t0 = self._t0
        noisy = {"evict", "restart", "rest_fail", "d1_outage", "d1_hang", "d1_slow", "shards_change",
                 "stop_start", "stop_in_flush", "drop_all", "drop_shard", "silence"}
        return not any(kind in noisy and since - 130_000 <= t0 + at <= until for at, kind, _ in self.plan.events)

    def _probe_listed(self, market: int, listed: int) -> None:
        deadline = listed + self.config.market_refresh_ms + 20_000

        def probe() -> None:
            if not self._tracking_throughout(listed, deadline) or not self._quiet_between(listed, deadline):
                return
            first = self.exchange.first_snapshot.get(market)
            if first is None or first > deadline:
                self.probes.append(f"market {market} listed at {listed} not subscribed by {deadline}")

        self.loop.at_ms(deadline, probe)

    def _probe_delisted(self, market: int, delisted: int) -> None:
        deadline = delisted + self.config.market_refresh_ms + 20_000

        def probe() -> None:
            if not self._tracking_throughout(delisted, deadline) or not self._quiet_between(delisted, deadline):
                return
            if market in self.exchange.live_subscriptions():
                self.probes.append(f"market {market} delisted at {delisted} still subscribed at {deadline}")

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


def _with(config: Config, **changes) -> Config:
    from dataclasses import replace

    return replace(config, **changes)


class _Http:
    def __init__(self, world: World, life: Incarnation) -> None:
        self.world = world
        self.life = life

    async def get_text(self, url: str) -> tuple[int, str]:
        self.life.check()
        result = await self.world.exchange.get_text(url)
        self.life.check()
        return result

    async def post_json(self, url: str, body: dict) -> int:
        self.life.check()
        await asyncio.sleep(0.01)
        self.life.check()
        return 204


class _Peers:
    def __init__(self, world: World) -> None:
        self.world = world

    async def send_markets(self, shard: int, payload: dict) -> None:
        await self.world.request(shard, "receive_markets", payload)


def run(seed: int) -> Result:
    from invariants import check

    plan = make_plan(seed)
    world = World(plan)
    world.run()
    result = Result(plan, world, replay=f"bash scripts/simulate --seed {seed}")
    result.violations = check(world)
    return result
