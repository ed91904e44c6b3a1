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

`with_platform_faults` adds the platform's own faults to every seed's schedule, from a
generator of their own (the schedules of the first releases stay as they were): hangs
of any length (REST, D1, the alert webhook, a hand-over), D1 answers lost after the
write committed, an eviction at any await; the runtime's alarm semantics (retries with
backoff, the 15-minute wall limit) are the world's own (`Venue._fire`).

What a seed decides: when in the hour the world starts (half the seeds cross an hour
boundary, `_start_ms`); per exchange the number of shards and markets (Paradex: which
of its listed markets are PERP, and whether PERP_OPTION is tracked too; which
markets are quiet), the frame rate, the retention settings, and a schedule of
events at random moments: feed drops (one shard's or all; Paradex: bursts of
them), gaps, malformed frames, a silent feed, D1 outages, hangs and slow spells,
REST failures, evictions of one object, restarts of all (wrangler dev restarts,
deploys), stop/start cycles (landing inside flushes), SHARDS changes (stop, change,
start; or a deploy with the new value while tracking, `redeploy`, maybe followed by
an /api/start, `api_start`), markets listed and delisted; Paradex also truncated deltas and frames of other templates.
Then a final stop, D1 healthy again, and time for the outbox to drain.
One seed in four of `run` also limits each exchange to a few symbols (LIGHTER_MARKETS /
PARADEX_MARKETS, `with_allowlist`, drawn apart so the rest of the plan is the same):
some listed at the start, maybe one listed later, maybe one never listed.
Symbols and ids that change (`with_renames`, drawn apart too; Lighter without an
allowlist): one seed in five renames a market mid-run, one in six lists a new market
under a delisted one's id. Lighter's keepalive is the exchange's own (exchange.py):
connections idle for 2 minutes are closed, and two seeds in three ping from the
server and close a connection whose pong does not come.
`invariants.check` says what must hold.

Time (`_with_timing`, drawn from a generator of its own so the rest of a plan is as
before): about half the exchanges get a clock offset (ahead up to 40 s, behind up to
16 s) or a delivery delay (steady or jittered, from under FLUSH_GRACE_MS to 20 s,
beyond the 16.5 s where a window's every frame arrives after it closed), and a
quarter get single frames stamped far in the future or the past (`stamp` events:
20 s to a day). While the schedule runs, the world asks /api/health's question at
random moments, HEALTH_EVERY_MS apart (`health`), as the Worker would from the
shards' stats, and checks the coverage it vouches for (`coverage`) and that it calls
no shard late without late frames (`late_claims`).

Scale (`with_scale`): one Lighter seed in eighty runs 100-300 markets on 4-16 shards,
where each shard's share of the budget binds (the simulated Lighter holds every shard
to its share: exchange.py); one in 400 a single shard of 260-320 markets, whose
windows take two outbox chunks, with D1 down and an eviction to read them back (none
in the suite's 0..299: seed 1458 is pinned). One Lighter seed in three leaves a
subscribe unanswered now and then (exchange.py `unanswered_p`). One seed in three of those running both exchanges has a
deploy take one out of ENABLED_EXCHANGES while it tracks, and maybe enable it again
(`with_exchange_toggles`).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field, replace

from tracker import control, health
from tracker.config import Config
from tracker.exchange import by_name
from tracker.feedtime import MAX_CLOCK_AHEAD_MS
from tracker.outbox import INDEX_KEY, PREFIX as OUTBOX_PREFIX
from tracker.markets import shard_of
from tracker.pacing import ACK_TIMEOUT_MS, RATE_WINDOW_MS
from tracker.shard import STATE_KEY, Ports, ShardTracker
from tracker.sql import SNAPSHOT_COLUMNS

from cloud import Evicted, Incarnation, SimD1, SimStorage, answered
from exchange import SimLighter
from paradex import NEW_MARKETS, OTHERS, PERPS, SPECS, SimParadex, market_id_of
from vloop import VirtualLoop
from worker import SimWorker

WINDOW_MS = 15_000
_TIMESTAMP = SNAPSHOT_COLUMNS.index("timestamp")  # in a window row as the outbox stores it
HOUR_MS = 3_600_000
EPOCH_MS = 1_780_000_000_000  # 26 min 40 s into an hour
HEALTH_EVERY_MS = (5_000, 15_000)
# A shard's late-frame count must have stood still this long, probed at least this
# often, before health calling it late is false (its last minute: LAG_SPAN_MS, checked
# at every alarm and probe).
LATE_CLAIM_MS, LATE_CLAIM_GAP_MS = 100_000, 20_000
# A shard of an exchange a deploy disabled stops on its own by then: at its next alarm
# (a window at most after the restart), plus the stop's last flush.
DISABLED_STOP_MS = 30_000  # the world asks /api/health's question this often (drawn) while tracking
LIGHTER_URLS = dict(api_url="http://lighter.sim", ws_url="ws://lighter.sim/stream?readonly=true")
PARADEX_URLS = dict(paradex_api_url=SimParadex.api_url,
                    paradex_ws_url="ws://paradex.sim/v1?sbeSchemaId=1&sbeSchemaVersion=1")

# The runtime's alarms (developers.cloudflare.com/durable-objects/api/alarms/ and
# workers/platform/limits/#duration): retries after a failure, the wall-time limit of
# one invocation; and how long the tracker's alarm may take (it awaits only storage).
ALARM_RETRY_MS, ALARM_RETRIES = 2_000, 6
ALARM_WALL_MS = 15 * 60_000
ALARM_DUE_MS = 5_000

# Events on one exchange (args["ex"]; the plan's own exchange when absent), on both.
VENUE_KINDS = ("drop_all", "drop_shard", "gap", "malformed", "silence", "rest_fail", "evict", "stop_start",
               "list", "delist", "stop_in_flush", "shards_change")
PARADEX_KINDS = ("truncate", "junk", "flap")
GLOBAL_KINDS = ("d1_outage", "d1_hang", "d1_slow", "restart")
# Events that never touch a subscription (D1, the webhook, a frame's stamp): every other
# one may, and the coverage check (World._check_coverage) counts its pacing bound from it.
QUIET_KINDS = ("d1_outage", "d1_hang", "d1_slow", "d1_lost_answers", "webhook_hang", "stamp")


@dataclass(frozen=True)
class Timing:
    """The exchange's clock against the world's, and how long its frames take."""

    offset_ms: int = 0  # its clock minus the world's: > 0 ahead, < 0 behind
    delay_ms: tuple[int, int] = (5, 400)  # each frame's delivery delay, drawn in this range


@dataclass
class VenuePlan:
    exchange: str  # "lighter" | "paradex"
    shards: int
    markets: dict[int, str]  # every market listed at the start, id -> symbol (Paradex: any asset kind)
    frame_ms: tuple[int, int]
    config: Config  # as this exchange's shards see it (Config.for_exchange)
    extra: dict = field(default_factory=dict)  # Paradex: {"quiet": symbols changing every 8-40 s}
    timing: Timing = Timing()


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
    # When the world's clock starts (ms); None: within a minute of EPOCH_MS.
    start_ms: int | None = None
    timing: Timing = Timing()

    def venues(self) -> list[VenuePlan]:
        return [VenuePlan(self.exchange, self.shards, self.markets, self.frame_ms, self.config, self.extra,
                          self.timing), *self.also]


@dataclass
class Result:
    plan: Plan
    world: World
    violations: list[str] = field(default_factory=list)
    replay: str = ""


def make_plan(seed: int, timed: bool = True) -> Plan:
    """The seed's plan; `timed=False`: without its exchanges' clock offsets, delivery
    delays and wild stamps (a scenario that sets its own)."""
    plan = _paradex_plan(seed, with_lighter=seed % 6 == 5) if seed % 3 == 2 else _lighter_plan(seed)
    plan = replace(plan, start_ms=_start_ms(seed, plan.duration_ms))
    return _with_timing(plan) if timed else plan


def _start_ms(seed: int, duration_ms: int) -> int | None:
    """Half the seeds start shortly before an hour boundary, which then falls anywhere
    from their first seconds to a minute after their final stop (so hours complete
    while tracking, and stops leave partial hours on either side of a boundary); the
    other half start within a minute of EPOCH_MS, mid-hour, as the first release's
    plans did. Drawn apart from the plan, which stays as it was."""
    rng = random.Random(seed * 7_927 + 36)
    if rng.random() < 0.5:
        return None
    boundary = EPOCH_MS - EPOCH_MS % HOUR_MS + HOUR_MS
    return boundary - rng.randint(5_000, duration_ms + 60_000)


def _lighter_plan(seed: int) -> Plan:
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


# The platform as it is (issue 18): hangs of any length, from seconds to many minutes
# (REST, D1, the alert webhook, the hand-over to another shard), D1 answers lost after
# the write committed, an eviction at any await.
PLATFORM_KINDS = ("rest_hang", "d1_hang", "webhook_hang", "peer_hang", "d1_lost_answers", "evict_at_await")
WEBHOOK_URL = "https://hooks.sim/alert"


def with_platform_faults(plan: Plan) -> Plan:
    """`plan` with the platform's faults added, drawn from a generator of their own so
    that the schedule `make_plan` drew stays what it was for every seed; and for half
    the seeds an alert webhook (whose posts can then hang)."""
    rng = random.Random(plan.seed * 1_000_003 + 11)
    shards = {v.exchange: v.shards for v in plan.venues()}
    events = []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        kind = rng.choice(PLATFORM_KINDS)
        at = rng.randint(8_000, plan.duration_ms - 20_000)
        args: dict = {}
        if kind in ("rest_hang", "peer_hang", "evict_at_await"):
            args["ex"] = rng.choice(sorted(shards))
        if kind == "evict_at_await":
            args["shard"] = rng.randrange(shards[args["ex"]])
            args["awaits"] = rng.randint(1, 60)
        elif kind == "d1_lost_answers":
            args["seconds"] = rng.randint(5, 120)
        else:
            args["seconds"] = rng.choice((rng.randint(2, 60), rng.randint(60, 900)))
        events.append((at, kind, args))
    if rng.random() < 0.5:
        plan = replace(plan, config=replace(plan.config, alert_webhook_url=WEBHOOK_URL),
                       also=tuple(replace(v, config=replace(v.config, alert_webhook_url=WEBHOOK_URL))
                                  for v in plan.also))
    return replace(plan, events=sorted(plan.events + events, key=lambda e: e[0]))
def with_scale(plan: Plan) -> Plan:
    """One Lighter seed in eighty: production's scale, short of the per-connection cap:
    100-300 markets on 4-16 shards (slow frames, so the seed stays cheap), where the
    per-IP budget (180 a minute split 16 ways: 11 each, 4 of them kept for keepalive)
    and in-flight slots (40: 2 each) bind, a subscribe burst takes minutes, and every
    reconnect, eviction and re-split must stay inside them. Drawn apart, so the rest
    of a seed's plan is what it was."""
    rng = random.Random(plan.seed * 3_571 + 41)
    if plan.exchange != "lighter" or plan.also:
        return plan
    draw = rng.random()
    if 1 / 80 <= draw < 1 / 80 + BIG_SHARD_ONE_IN:
        return _with_big_shard(plan, rng)
    if draw >= 1 / 80:
        return plan
    shards = rng.choice((4, 8, 12, 16))
    ids = sorted(rng.sample(range(120, 2_000), rng.randint(100, 300)))
    duration = min(plan.duration_ms, 150_000)  # short: the cost is in the rows, markets x time
    events = [(at, kind, {**args, "market": rng.choice(ids)} if kind in ("gap", "delist", "stamp") else args)
              for at, kind, args in plan.events if at <= duration - 20_000]
    return replace(plan, shards=shards, markets={m: f"M{m}" for m in ids}, frame_ms=(8_000, 20_000),
                   duration_ms=duration, config=replace(plan.config, shards=shards),
                   events=sorted(events, key=lambda e: e[0]))


# Of the Lighter seeds that are not scale seeds, this share has one shard carry more
# markets than the outbox stores in one chunk (tracker/outbox.py CHUNK_ROWS: 250 rows).
BIG_SHARD_ONE_IN = 1 / 400


def _with_big_shard(plan: Plan, rng: random.Random) -> Plan:
    """One shard with 260-320 markets (under Lighter's 500 a connection): its every
    window holds more rows than one outbox chunk, so each is stored in two. Short and
    with slow frames (the cost is markets x time); time enough for the subscribe burst
    (176 a minute) and a few windows after it, which D1 refuses for a while and an
    eviction leaves in storage."""
    ids = sorted(rng.sample(range(120, 2_000), rng.randint(260, 320)))
    duration = 150_000
    events = [(at, kind, {**args, "market": rng.choice(ids)} if kind in ("gap", "delist", "stamp") else args)
              for at, kind, args in plan.events if at <= duration - 20_000 and kind != "shards_change"]
    # D1 down once the burst is through, then an eviction: the windows waiting in the
    # outbox are read back from their chunks by the next instance.
    outage = rng.randint(100_000, 110_000)
    events += [(outage, "d1_outage", {"seconds": 40}), (outage + rng.randint(20_000, 30_000), "evict", {"shard": 0})]
    return replace(plan, shards=1, markets={m: f"M{m}" for m in ids}, frame_ms=(6_000, 14_000),
                   duration_ms=duration, config=replace(plan.config, shards=1),
                   events=sorted(events, key=lambda e: e[0]))


def with_reshards(plan: Plan) -> Plan:
    """One seed in six: SHARDS (PARADEX_SHARDS) changed by a deploy while tracking
    (`redeploy`: every object restarts, the old split runs on), then for most of them
    an /api/start (`api_start`: the re-split), and for half of those a REST hang over
    the re-split and an eviction right after it. Drawn from a generator of their own,
    so the rest of a seed's plan is what it was."""
    rng = random.Random(plan.seed * 15_485_863 + 29)
    if rng.random() >= 1 / 6:
        return plan
    venue = rng.choice(plan.venues())
    at = rng.randint(8_000, plan.duration_ms - 30_000)
    events = [(at, "redeploy", {"ex": venue.exchange,
                                "shards": rng.choice([n for n in (1, 2, 3, 4) if n != venue.shards])})]
    if rng.random() < 0.75:
        start = min(at + rng.randint(1_000, 40_000), plan.duration_ms - 21_000)
        events.append((start, "api_start", {"ex": venue.exchange}))
        if rng.random() < 0.5:
            # The exchange's REST hangs over the re-split, and a shard of both splits is
            # evicted before the new split's market list reached it: its successor
            # resumes from the list the old split saved (only its new share may stay).
            shards = min(venue.shards, events[0][2]["shards"])
            events.append((start - 500, "rest_hang", {"ex": venue.exchange, "seconds": rng.randint(5, 30)}))
            events.append((start + rng.randint(500, 4_000), "evict", {"ex": venue.exchange,
                                                                      "shard": rng.randrange(shards)}))
    return replace(plan, events=sorted(plan.events + events, key=lambda e: e[0]))


def _with_timing(plan: Plan) -> Plan:
    """Some seeds' exchanges get a clock offset or a delivery delay, and some single
    frames stamped far off (`stamp` events). Drawn from their own generator, so the
    rest of a seed's plan is what it was before timing existed."""
    rng = random.Random(plan.seed * 104_729 + 3)
    venues, events = [], list(plan.events)
    for venue in plan.venues():
        timing = _timing(rng) if rng.random() < 0.45 else Timing()
        config = venue.config
        if timing.delay_ms[1] > 4_000:  # frames take long: the watchdog waits longer (the default)
            config = replace(config, stale_feed_ms=max(config.stale_feed_ms, 30_000))
        venues.append(replace(venue, timing=timing, config=config))
        if rng.random() < 0.25:
            for _ in range(rng.randint(1, 2)):
                ahead = rng.random() < 0.6
                shift = rng.choice((20_000, 60_000, 3_600_000, 86_400_000) if ahead else (20_000, 600_000, 3_600_000))
                events.append((rng.randint(8_000, plan.duration_ms - 20_000), "stamp",
                               {"ex": venue.exchange, "market": rng.choice(sorted(venue.markets)),
                                "shift_ms": shift if ahead else -shift}))
    events.sort(key=lambda e: e[0])
    primary, *also = venues
    return replace(plan, timing=primary.timing, config=primary.config, also=tuple(also), events=events)


def _timing(rng: random.Random) -> Timing:
    """An exchange clock ahead or behind, a delivery delay steady or jittered: from under
    FLUSH_GRACE_MS to beyond MAX_FEED_LAG_MS (and beyond 16.5 s) and MAX_CLOCK_AHEAD_MS."""
    kind = rng.choice(("delay", "jitter", "behind", "ahead", "behind+delay"))
    if kind == "delay":
        d = rng.choice((rng.randint(500, 3_000), rng.randint(3_000, 10_000), rng.randint(10_000, 20_000)))
        return Timing(delay_ms=(d, d + rng.randint(0, 300)))
    if kind == "jitter":
        lo = rng.randint(5, 3_000)
        return Timing(delay_ms=(lo, lo + rng.randint(1_000, 17_000)))
    if kind == "behind":
        return Timing(offset_ms=-rng.randint(500, 16_000))
    if kind == "ahead":
        return Timing(offset_ms=rng.randint(500, 40_000))
    d = rng.randint(500, 6_000)
    return Timing(offset_ms=-rng.randint(500, 8_000), delay_ms=(d, d + 300))


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
        self.ex.clock_offset_ms = plan.timing.offset_ms
        self.ex.delay_ms = plan.timing.delay_ms
        self.ex.allowed = frozenset(plan.config.market_symbols) or None
        self.ex.budget_per_minute = self.spec.budget_per_minute
        self.ex.budget_in_flight = self.spec.budget_in_flight
        if self.name == "lighter":
            # Server pings for two seeds in three, drawn apart so the rest stays as it was.
            keepalive = random.Random(world.plan.seed * 7_919 + 5 + index)
            self.ex.rng_keepalive = keepalive
            self.ex.ping_every_ms = keepalive.choice((None, keepalive.randint(20, 90) * 1000,
                                                      keepalive.randint(20, 90) * 1000))
            # A host that held the alarms back (alarms_held_until) is no fault of the tracker's.
            self.ex.keepalive_excused = lambda conn: self.alarms_held_until > conn.client_ms
            self.ex.alarms_held_since = lambda ms: self.alarms_held_until > ms
            self.ex.split_of = self.split_of
            # One seed in three: a subscribe left unanswered now and then (drawn apart).
            unanswered = random.Random(world.plan.seed * 7_919 + 77 + index)
            self.ex.rng_unanswered = unanswered
            self.ex.unanswered_p = unanswered.choice((0.0, 0.0, 0.0, 0.0, 0.1, 0.25))
        self.storages: dict[int, SimStorage] = {}
        self.instances: dict[int, tuple[Incarnation, ShardTracker]] = {}
        self.needs_resume: set[int] = set()
        self.alarm_handles: dict[int, asyncio.TimerHandle] = {}
        self.alarm_running: dict[int, bool] = {}
        self.alarms_held_until = 0  # an overloaded host: alarms due before then fire then
        self.alarms_at_breath = 0  # alarm invocations that got in while frames were queued (a backlog)
        self.alarm_retries: dict[int, int] = {}  # failed invocations in a row (the runtime's backoff)
        self.tracking = False  # as the world asked (start/stop)
        self.tracking_spans: list[list[int]] = []  # [from, to] of each run
        self.listed_at: dict[int, int] = {}
        self.delisted_at: dict[int, int] = {}
        self.control_results: list[list[dict]] = []
        self.lost_ranges: dict[int, set[tuple[int, int]]] = {}
        self.max_shards = plan.config.shards
        self.peer_hanging_until = 0  # a hand-over to one of these shards waits until then
        self.life_changes: list[tuple[int, int]] = []  # (at, shard): an instance created or evicted
        self.renamed: list[tuple[int, int, str]] = []  # (at, market, new symbol): Lighter renamed it
        self.relisted_at: dict[int, int] = {}  # a delisted market's id, listed again for a new market
        self.control_calls: list[int] = []  # when each start/stop began
        self.beyond_reach: list[str] = []  # states saved with flushed_until beyond the clock's reach
        # Every storage call that wrote the state, the outbox index or outbox chunks:
        # (at, shard, incarnation, state text, index text, window starts of the chunks).
        self.puts: list[tuple[int, int, int, str | None, str | None, set[int]]] = []
        # shard -> (its run's started_at, the lost ranges its last saved state held)
        self.saved_lost: dict[int, tuple[int | None, set[tuple[int, int]]]] = {}
        self.forgotten_lost: list[str] = []  # lost ranges a later save of the same run no longer held
        self.acknowledged: dict[int, set[int]] = {}  # shard -> window starts D1 acknowledged to a live instance
        self.disruptions: list[int] = []  # when events of the schedule that may touch subscriptions came
        self.disabled_at: list[int] = []  # when a deploy took it out of ENABLED_EXCHANGES while tracking

    @property
    def loop(self) -> VirtualLoop:
        return self.world.loop

    @property
    def enabled(self) -> bool:
        """In ENABLED_EXCHANGES as the deployment runs now (a deploy may change it)."""
        return self.name in self.config.enabled_exchanges

    def covered_markets(self) -> list[int]:
        """The markets coverage is judged on: listed from the start and still listed, of
        a kind tracked, in the allowlist (if any)."""
        config = self.config
        if self.name == "lighter":
            listed = {m: e["symbol"] for m, e in self.ex.listing.items() if e["status"] == "active"}
        else:
            listed = {m: self.ex.symbols[m] for m in self.ex.tracked()}
        return sorted(m for m, symbol in listed.items()
                      if m in self.plan.markets and m not in self.delisted_at and config.tracks(symbol))

    def pacing_bound_ms(self) -> int:
        """How long after a disruption the tracker may take to have every market
        subscribed again: the history of the rate window it must wait out, the most
        markets one shard subscribes (an unsubscribe and a subscribe each, at its share
        of the budget, or at its share of subscriptions in flight, each answered after
        a round trip), an unanswered subscribe's timeout, and a reconnect's backoff."""
        shards = self.config.shards
        budget = self.spec.budget(shards)
        per_shard = Counter(shard_of(m, shards) for m in self.covered_markets())
        most = min(max(per_shard.values(), default=0), self.spec.max_subscriptions)
        round_trip = 500 + 2 * self.plan.timing.delay_ms[1]
        subscribing = max(2 * most * 60_000 // budget.subscribes_per_minute,
                          -(-most // budget.in_flight) * round_trip)
        return RATE_WINDOW_MS + subscribing + ACK_TIMEOUT_MS + 30_000

    def split_of(self, shard: int) -> int | None:
        """The split (SHARDS) the shard's live instance runs: the one its run started
        with, the configured one before a run; None while no instance of it has loaded
        its state. (The exchange works its share out from it, not the tracker's Budget.)"""
        entry = self.instances.get(shard)
        state = entry[1].state if entry is not None else None
        if state is None:
            return None
        return state.shards if state.started_at is not None else self.config.shards

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
        db = world.d1.port(life)
        db.on_answered = lambda statements, shard=shard: self._acknowledged(shard, statements)
        ports = Ports(
            clock=self.loop,
            storage=storage.port(life),
            db=db,
            sockets=lambda url, on_text, on_open, on_down, shard=shard, life=life: _alive(life) and self.ex.connect(
                shard, on_text, on_open, on_down, lambda: life.alive, url=url),
            http=_Http(self, life),
            peers=_Peers(self, life),
            # An evicted instance runs no code: what its task does after a wait it was
            # woken from (a lane's end, a timeout) reaches no socket and no log.
            log=lambda level, component, event, message, shard=shard, life=life: life.alive and self._logged(
                shard, level, component, event, message),
            spawn=world._spawn,
        )
        tracker = ShardTracker(self.config, shard, ports, rng=random.Random(world.plan.seed * 31 + world.incarnations),
                               exchange=self.spec)
        self.life_changes.append((self.loop.now_ms(), shard))
        self._watch_closing(tracker, shard)
        self.instances[shard] = (life, tracker)
        self.needs_resume.add(shard)
        return tracker

    def _acknowledged(self, shard: int, statements) -> None:
        """A live instance of `shard` heard D1 commit these: the windows they wrote were
        measured and are in D1, so never to be recorded lost (invariant 2)."""
        upsert = self.spec.sql.UPSERT_WINDOWS
        for text, params in statements:
            if text == upsert:
                self.acknowledged.setdefault(shard, set()).update(row[_TIMESTAMP] for row in json.loads(params[0]))

    def _watch_closing(self, tracker: ShardTracker, shard: int) -> None:
        """Tell the reference when the shard closes windows, and until where: the
        boundary the alarm's step really hands its aggregator (the alarm's time minus
        FLUSH_GRACE_MS and the feed's lag, as the shard judges it); a frame stamped
        before that and delivered after is late (Paradex stamps a snapshot with the
        book's last change, which can be long before)."""
        real = tracker._close_windows
        trace = self.ex.trace

        async def close_windows(now: int) -> None:
            aggregator = tracker.aggregator
            if aggregator is not None:
                def close_until(boundary_ms: int, symbols):
                    trace.append(("flush", shard, boundary_ms, self.loop.now_ms()))
                    return type(aggregator).close_until(aggregator, boundary_ms, symbols)

                aggregator.close_until = close_until
            await real(now)

        tracker._close_windows = close_windows

    def _logged(self, shard: int, level: str, component: str, event: str, message: str) -> None:
        now = self.loop.now_ms()
        self.world.logs.append((now, shard, level, component, event, message, self.name))
        if event == "market_delisted":  # "market {id} {symbol} delisted: ..." (tracker/marketlist.py)
            self.ex.trace.append(("unlisted", shard, int(message.split()[1]), now))
            if hasattr(self.ex, "let_go_ms"):
                self.ex.let_go_ms[(shard, int(message.split()[1]))] = now

    def _saw_put(self, shard: int, entries: dict) -> None:
        self._log_put(shard, entries)
        raw = entries.get(STATE_KEY)
        if raw:
            state = json.loads(raw)
            ranges = {(r["from"], r["to"]) for r in state.get("lost_ranges") or []}
            self.lost_ranges.setdefault(shard, set()).update(ranges)
            # A run only ever adds lost ranges (start() clears them; the state keeps the
            # newest 100): one that a later save of the same run no longer holds was
            # recorded, then overwritten by a state that never knew it.
            run, before = self.saved_lost.get(shard, (None, set()))
            if state.get("started_at") == run and len(ranges) < 100 and before - ranges:
                self.forgotten_lost.append(f"shard {shard}: lost range(s) {sorted(before - ranges)[:2]} saved, "
                                           f"then dropped by a later save of the same run")
            self.saved_lost[shard] = (state.get("started_at"), ranges)
            # Nothing the tracker accepts is stamped beyond MAX_CLOCK_AHEAD_MS: what it
            # closes ends at most a window after that.
            now = self.loop.now_ms()
            if state.get("flushed_until", 0) > now + MAX_CLOCK_AHEAD_MS + WINDOW_MS:
                self.beyond_reach.append(f"shard {shard} saved flushed_until {state['flushed_until']} at {now}, "
                                         f"{(state['flushed_until'] - now) / 1000:.0f}s ahead of the clock")

    def _log_put(self, shard: int, entries: dict) -> None:
        chunks = {int(key[len(OUTBOX_PREFIX):].split("/")[0]) for key in entries if key.startswith(OUTBOX_PREFIX)}
        if STATE_KEY in entries or INDEX_KEY in entries or chunks:
            life = self.instances[shard][0].number if shard in self.instances else -1
            self.puts.append((self.loop.now_ms(), shard, life, entries.get(STATE_KEY), entries.get(INDEX_KEY), chunks))

    def evict(self, shard: int) -> None:
        entry = self.instances.pop(shard, None)
        if entry is None:
            return
        life, _ = entry
        life.alive = False
        self.life_changes.append((self.loop.now_ms(), shard))
        for conn in list(self.ex.conns.values()):
            if conn.shard == shard:
                self.ex.end(conn, notify=False)
        self.alarm_running[shard] = False

    def _stored_tracking(self, shard: int) -> bool:
        raw = self.storage(shard).data.get(STATE_KEY)
        return bool(raw and json.loads(raw).get("tracking"))

    def _mark_measuring(self, shard: int, fresh_start: bool, after: int = 0) -> None:
        """Tell the reference from when this shard measures: a fresh start measures from
        its window; a resumed object from the window after the one in progress (by the
        exchange's stamps, as far ahead as its previous instance last saw them); either
        not before the end of what its previous run closed (a stop closes windows up to
        the newest stamp, ahead of the clock when the exchange's clock is)."""
        now = self.loop.now_ms()
        raw = self.storage(shard).data.get(STATE_KEY)
        stored = json.loads(raw) if raw else {}
        if fresh_start:
            boundary = now - now % WINDOW_MS
        else:  # the window in progress by the stamps, as far ahead as its last instance saw them
            stamps_now = now + (stored.get("clock_ahead_ms") or 0)
            boundary = stamps_now - stamps_now % WINDOW_MS + WINDOW_MS
        # (`after`: a re-split's hand-over, the newest window end the old split closed)
        boundary = max(boundary, stored.get("flushed_until") or 0, after)
        self.ex.trace.append(("from", shard, boundary))

    async def request(self, shard: int, method: str, *args):
        """A request into the object, as its fetch() handles it."""
        tracker = self.instance(shard)
        life = self.instances[shard][0]
        await asyncio.sleep(self.world.rng.randint(1, 30) / 1000)
        busy = self.ex.busy_until.get(shard, 0) - self.loop.now_ms()
        if busy > 0:  # a backlog: in at its first breath, or once the socket runs dry
            await asyncio.sleep((busy + 1) / 1000)
        if not life.alive:
            raise RuntimeError("object reset")
        try:
            await tracker.ensure_running()
            if method == "start":
                if shard in self.needs_resume and self._stored_tracking(shard):
                    self._mark_measuring(shard, fresh_start=False)
                elif not self._stored_tracking(shard):
                    self._mark_measuring(shard, fresh_start=True, after=int((args[0] or {}).get("after") or 0) if args else 0)
                self.needs_resume.discard(shard)
            result = await getattr(tracker, method)(*args)
        except Evicted:  # the caller sees the request fail
            raise RuntimeError("object reset (evicted during the request)") from None
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
        if self.loop.now_ms() < self.alarms_held_until:
            self.alarm_handles[shard] = self.loop.at_ms(self.alarms_held_until, self._fire, shard)
            return
        busy_until = self.ex.busy_until.get(shard, 0)
        if self.loop.now_ms() < busy_until:  # a backlog: in at its first breath, or once the socket runs dry
            self.alarm_handles[shard] = self.loop.at_ms(busy_until + 1, self._fire, shard)
            return
        storage = self.storage(shard)
        storage.alarm = None
        storage.alarms_fired += 1  # an alarm invocation: a Durable Object request
        if any(conn.shard == shard and conn.queue for conn in self.ex.conns.values()):
            self.alarms_at_breath += 1  # let in at a breath, frames still queued behind it
        tracker = self.instance(shard)
        life = self.instances[shard][0]
        if shard in self.needs_resume:
            if self._stored_tracking(shard):
                self._mark_measuring(shard, fresh_start=False)
            self.needs_resume.discard(shard)
        self.alarm_running[shard] = True
        started = self.loop.now_ms()

        def overrun() -> None:
            # The platform ends an alarm invocation after 15 minutes of wall time: the
            # handler stops where it stands (here: the instance is reset).
            if life.alive and self.alarm_running.get(shard):
                self.world.alarm_overruns.append(f"{self.name}: alarm of shard {shard} terminated after "
                                                 f"{ALARM_WALL_MS // 60_000} min")
                self.evict(shard)

        wall = self.loop.call_later(ALARM_WALL_MS / 1000, overrun)

        async def run() -> None:
            failed = False
            try:
                await tracker.alarm()
            except Evicted:  # an invocation that never finished counts as failed
                failed = True
            except Exception as exc:  # the tracker promises never to raise from alarm()
                self.world.errors.append(f"{self.name}: alarm of shard {shard} raised {exc!r}")
                failed = True
            finally:
                wall.cancel()
                took = self.loop.now_ms() - started
                if took > ALARM_DUE_MS and life.alive:
                    self.world.alarm_overruns.append(f"{self.name}: alarm of shard {shard} took {took} ms")
                if life.alive:
                    self.alarm_running[shard] = False
                self._retry(shard, failed)
                self._rearm(shard)

        asyncio.ensure_future(run())

    def _retry(self, shard: int, failed: bool) -> None:
        """The runtime's alarm retries: a failed invocation is run again after 2 s, 4 s,
        8 s, ... at most 6 times, unless the handler set an alarm of its own before it
        failed (that alarm stands instead). developers.cloudflare.com/durable-objects/
        api/alarms/ ("retried ... using exponential backoff starting at a 2 second delay
        from the first failure with up to 6 retries"); cloudflare-docs PR 15685 (a
        setAlarm() early in a handler that later throws suppresses the retries)."""
        storage = self.storage(shard)
        if not failed:
            self.alarm_retries[shard] = 0
            return
        retries = self.alarm_retries.get(shard, 0)
        if storage.alarm is None and retries < ALARM_RETRIES:
            storage.alarm = self.loop.now_ms() + ALARM_RETRY_MS * 2**retries
            self.alarm_retries[shard] = retries + 1

    # -- the Worker: start/stop fan-out ----------------------------------------------------------

    async def control(self, action: str) -> None:
        self.control_calls.append(self.loop.now_ms())
        known = set(self.storages)
        if action == "stop":
            # Tracking ends when the stop is sent, not when its answer comes (a stop waits
            # for its last flush, which a hanging D1 can hold up to the D1 deadline, twice).
            self._end_span()

        async def call(shard: int, method: str, body: dict | None = None) -> dict:
            if method == "release":
                return await self.request(shard, method, body["shards"])
            return await self.request(shard, method, *([body] if body is not None else []))

        # A disabled exchange: only the shards it has are stopped, none is created (the
        # Worker asks those its stats table knows: tracker/routes.py control_shards).
        shards = self.config.shards if self.enabled else 0
        results = await control.fan_out(action, shards, known, call)
        methods = dict(control.targets(action, shards, known))
        for _ in range(3):  # whoever called /api/start|stop calls again when a shard failed
            failed = [i for i, r in enumerate(results) if "failed" in r]
            if not failed:
                break
            await asyncio.sleep(1)
            if action == "start":  # the whole start again (its first step decides what starts)
                results = await control.fan_out(action, shards, known, call)
                continue
            for i in failed:
                shard = results[i]["shard"]
                try:
                    results[i] = await self.request(shard, methods.get(shard, "stop"))
                except RuntimeError as exc:
                    results[i] = {"shard": shard, "failed": str(exc)}
        self.control_results.append(results)
        if action == "start":
            if not self.tracking:
                self.tracking_spans.append([self.loop.now_ms(), None])
            self.tracking = True
        else:
            self._end_span()

    def _end_span(self) -> None:
        self.tracking = False
        if self.tracking_spans and self.tracking_spans[-1][1] is None:
            self.tracking_spans[-1][1] = self.loop.now_ms()


class World:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed * 7919 + 1)
        start = EPOCH_MS + self.rng.randint(0, 59_999)
        self.loop = VirtualLoop(start if plan.start_ms is None else plan.start_ms)
        self.loop.set_exception_handler(self._loop_exception)
        self.venues = [Venue(self, p, i) for i, p in enumerate(plan.venues())]
        self.d1 = SimD1(self.loop, random.Random(plan.seed + 23))
        self.incarnations = 0
        self.logs: list[tuple] = []  # (ms, shard, level, component, event, message, exchange)
        self.errors: list[str] = []
        self.probes: list[str] = []
        self.loop_end_ms = 0
        self.webhook_hanging_until = 0  # ALERT_WEBHOOK_URL's answers wait until then
        self.alarm_overruns: list[str] = []  # alarm invocations that took too long
        self.webhook_posts: list[tuple[int, dict]] = []  # (ms, body) of every post answered
        # (at, exchange, HTTP status, body): /api/health's verdict over each exchange's
        # live shard objects, every HEALTH_EVERY_MS while the schedule runs.
        self.health: list[tuple[int, str, int, dict]] = []
        self.worker = SimWorker(self)  # the Worker: the API's routes in this world (worker.py)
        self.coverage: list[str] = []  # markets left out while health said ok (`_check_coverage`)
        # (venue, shard) -> [(at, (instance, run), dropped_late total)] at each probe, and
        # the probes that called a shard late without a late frame (`_check_late_claims`).
        self.late_notes: dict[tuple[str, int], list[tuple[int, tuple, int]]] = {}
        self.late_claims: list[str] = []
        self.toggles: list[str] = []  # exchanges a deploy disabled that went on tracking

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

    def _spawn(self, coro, what: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)

        def done(t: asyncio.Task) -> None:
            exc = None if t.cancelled() else t.exception()
            if exc is not None and not isinstance(exc, Evicted):
                self.errors.append(f"background {what} raised {exc!r}")

        task.add_done_callback(done)
        return task

    def _loop_exception(self, loop, context) -> None:
        exc = context.get("exception")
        if isinstance(exc, Evicted):
            return
        self.errors.append(f"loop: {context.get('message')} {exc!r}")

    async def control(self, action: str, venues: list[Venue] | None = None) -> None:
        """/api/start or /api/stop: every exchange's shards at once (or those of `venues`)."""
        venues = venues or self.venues
        if action == "start":  # /api/start starts the enabled exchanges (a disabled one: 400)
            venues = [v for v in venues if v.enabled]
            if not venues:
                return
        if self.worker.drives_control:  # through the API's control path (one seed in three)
            return await self.worker.control(action, venues)
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
        # Requests to the Worker's API at random moments, until well into the drain.
        self.worker.begin(until_ms=t0 + plan.duration_ms + 180_000)
        probe = asyncio.ensure_future(self._probe_health())
        for at, kind, args in plan.events:
            delay = (t0 + at - self.loop.now_ms()) / 1000
            if delay > 0:
                await asyncio.sleep(delay)
            await self.apply(kind, args)
        await asyncio.sleep(max(0, t0 + plan.duration_ms - self.loop.now_ms()) / 1000)
        probe.cancel()
        await self.control("stop")
        # D1 comes back; the outbox drains; nothing else should happen.
        self.d1.failing_until = self.d1.hanging_until = 0
        self.webhook_hanging_until = self.d1.losing_answers_until = 0
        for venue in self.venues:
            venue.ex.rest_failing_until = venue.ex.rest_hanging_until = venue.peer_hanging_until = 0
            venue.ex.stop_generating()
        await asyncio.sleep(240)

    async def _probe_health(self) -> None:
        """GET /api/health, as the Worker answers it from the shards' stats (only the
        objects alive now: asking a missing one would create it), at random moments
        (HEALTH_EVERY_MS apart, drawn from a generator of its own); and at each, the
        coverage the answer vouches for (`_check_coverage`)."""
        rng = random.Random(self.plan.seed * 7_919 + 5)
        while True:
            await asyncio.sleep(rng.randint(*HEALTH_EVERY_MS) / 1000)
            now = self.loop.now_ms()
            for venue in self.venues:
                if not venue.enabled:  # /api/health answers for the enabled exchanges
                    continue
                per_shard = [tracker.stats().to_json() for shard, (_, tracker) in sorted(venue.instances.items())
                             if shard < venue.config.shards and tracker.state is not None]
                # A shard with no instance now (evicted, not woken yet, or never started)
                # would be created by the real /api/health and answer before any resume:
                # as its stored state says, not connected.
                per_shard += [{"shard": shard, "isTracking": venue._stored_tracking(shard), "connected": False}
                              for shard in range(venue.config.shards)
                              if venue.tracking and shard not in venue.instances]
                if per_shard:
                    status, body = health.assess(per_shard, now, venue.config.stale_feed_ms)
                    self.health.append((now, venue.name, status, body))
                    self._check_coverage(venue, now, body)
                    self._check_late_claims(venue, now, body)

    def _check_disabled_stopped(self, venue: Venue, since: int) -> None:
        """DISABLED_STOP_MS after a deploy took the exchange out of ENABLED_EXCHANGES, while
        it stayed out: its shards have stopped on their own (no connection open, every
        saved state not tracking), unless the host held their alarms back."""
        if venue.enabled or venue.alarms_held_until > since:
            return
        tracking = [shard for shard in sorted(venue.storages) if venue._stored_tracking(shard)]
        if venue.ex.conns or tracking:
            self.toggles.append(f"{venue.name}: disabled by a deploy at {since}, still tracking "
                                f"{DISABLED_STOP_MS // 1000} s later (shards {tracking} say tracking, "
                                f"{len(venue.ex.conns)} connection(s) open)")

    def _check_late_claims(self, venue: Venue, now: int, body: dict) -> None:
        """Health says ok when nothing is wrong: a shard is called degraded for frames
        dropped as late only if its instance dropped one (its feed's own count) within
        about the last minute. Every probe notes each live instance's count; a claim is
        false when the count stood still from a probe LATE_CLAIM_MS ago or more until now,
        with probes of that instance no further apart than LATE_CLAIM_GAP_MS meanwhile (so
        its last-minute count had checkpoints: tracker/feedtime.py RecentCount)."""
        for shard, (_, tracker) in sorted(venue.instances.items()):
            if tracker.state is None:
                continue
            notes = self.late_notes.setdefault((venue.name, shard), [])
            total = tracker._count("dropped_late")
            key = (id(tracker), tracker.state.started_at)
            if notes and notes[-1][1] != key:
                notes.clear()
            notes.append((now, key, total))
            verdict = next((v for v in body["shards"] if v["shard"] == shard), None)
            if verdict is None or "dropped as late" not in (verdict.get("reason") or ""):
                continue
            steady = [at for at, _, n in notes if n == total]
            since = [at for at, _, _ in notes if at >= steady[0]]
            if now - steady[0] >= LATE_CLAIM_MS and all(b - a <= LATE_CLAIM_GAP_MS for a, b in zip(since, since[1:])):
                self.late_claims.append(
                    f"{venue.name}: health said shard {shard} {verdict['status']} at {now} ({verdict['reason'][:60]}), "
                    f"but it dropped no frame as late since {steady[0]} or before")
                return

    def _check_coverage(self, venue: Venue, now: int, body: dict) -> None:
        """Coverage: while the exchange is tracked and /api/health says ok, every market
        it tracks (those listed from the start, still listed, in its allowlist and asset
        kinds) is subscribed on a connection, or has been on none for less than its
        pacing bound (`Venue.pacing_bound_ms`) since it lost its subscription or since
        the last disruption (an event of the schedule, a start or stop, an object created
        or evicted, the end of a hold on its alarms). (Never on two connections at once:
        the simulated exchange checks that at every subscribe.) Health that is not ok
        says the tracker knows."""
        if not venue.tracking or body["status"] != "ok":
            return
        bound = venue.pacing_bound_ms()
        # (A host holding the exchange's alarms disrupts until the hold ends: no
        # reconnect or resubscribe runs before; seed 780, a subscribe left unanswered
        # right after a 314 s hold.)
        disrupted = max([self._t0, *venue.control_calls, *venue.disruptions,
                         *(at for at, _ in venue.life_changes), min(venue.alarms_held_until, now)])
        for m in venue.covered_markets():
            since = venue.ex.unheld_since(m, self._t0)
            if since is not None and now - max(since, disrupted) > bound:
                self.coverage.append(
                    f"{venue.name}: market {m} subscribed on no connection since {since} "
                    f"({(now - since) / 1000:.0f} s, pacing bound {bound / 1000:.0f} s) while health said ok at {now}")
                return

    async def apply(self, kind: str, args: dict) -> None:
        d1, now = self.d1, self.loop.now_ms()
        venue = self.venue(args.get("ex"))
        ex = venue.ex
        if kind not in QUIET_KINDS:  # (any venue's: a deploy or a restart restarts both)
            for v in self.venues:
                v.disruptions.append(now)
        if kind == "drop_all":
            ex.drop_all()
        elif kind == "drop_shard":
            ex.drop_shard(args["shard"] % venue.config.shards)
        elif kind == "gap":
            ex.gap(args["market"])
        elif kind == "stamp":  # the market's next book frame is stamped far off (a clock fault)
            ex.shift_next[args["market"]] = args["shift_ms"]
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
        elif kind == "rest_hang":
            ex.rest_hanging_until = now + args["seconds"] * 1000
        elif kind == "webhook_hang":
            self.webhook_hanging_until = now + args["seconds"] * 1000
        elif kind == "peer_hang":
            venue.peer_hanging_until = now + args["seconds"] * 1000
        elif kind == "d1_lost_answers":
            d1.losing_answers_until = now + args["seconds"] * 1000
        elif kind == "backlog":  # the shard's object handles nothing until then: its frames queue
            shard = args["shard"] % venue.config.shards
            ex.busy_until[shard] = max(ex.busy_until.get(shard, 0), now + args["ms"])  # (overlapping: the longer)
            ex.breath_ms[shard] = args.get("breath_ms", 1)
        elif kind == "alarms_held":  # the runtime runs none of the exchange's alarms until then
            venue.alarms_held_until = now + args["seconds"] * 1000
        elif kind == "evict_at_await":
            shard = args["shard"] % venue.config.shards
            entry = venue.instances.get(shard)
            if entry is not None:
                entry[0].tripwire = args["awaits"]
                entry[0].on_trip = lambda: venue.evict(shard)
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
            # (Alarms held by an overloaded host write nothing until they run again.)
            within = 120 + max(0, venue.alarms_held_until - self.loop.now_ms()) / 1000
            try:
                await asyncio.wait_for(fired, within)
            except asyncio.TimeoutError:
                self.errors.append(f"{venue.name}: no D1 batch within {within:.0f} s while tracking")
            d1.on_batch = None
            await self.control("stop", [venue])
            await asyncio.sleep(WINDOW_MS / 1000 + 1)
            await self.control("start", [venue])
        elif kind == "redeploy":
            # A deploy with a new SHARDS (PARADEX_SHARDS) while tracking: every object of
            # the deployment restarts and the new value applies; nobody calls start or stop.
            self.evict_all()
            venue.config = replace(venue.config, shards=args["shards"])
            venue.max_shards = max(venue.max_shards, args["shards"])
        elif kind == "api_start" and venue.tracking:  # /api/start again while tracking
            await self.control("start", [venue])
        elif kind == "deploy_exchanges":
            # A deploy with another ENABLED_EXCHANGES while tracking: every object
            # restarts; nobody calls start or stop. A disabled exchange's shards must stop
            # on their own (by DISABLED_STOP_MS); an exchange enabled again waits for
            # /api/start (`start_all`).
            self.evict_all()
            for v in self.venues:
                v.config = replace(v.config, enabled_exchanges=tuple(args["enabled"]))
                if not v.enabled and v.tracking:
                    v._end_span()  # the deployment tracks it no more
                    v.disabled_at.append(now)
                    self.loop.at_ms(now + DISABLED_STOP_MS, self._check_disabled_stopped, v, now)
        elif kind == "start_all":  # the operator's /api/start of every enabled exchange
            await self.control("start")
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
        elif kind == "relist" and venue.name == "lighter" and args["market"] not in ex.books:
            ex.list_market(args["market"], args["symbol"])  # an id reused: a new market
            venue.relisted_at[args["market"]] = now
            venue.renamed.append((now, args["market"], args["symbol"]))
            venue.listed_at[args["market"]] = now
            self._probe_listed(venue, args["market"], now)
        elif kind == "rename" and venue.name == "lighter" and args["market"] in ex.books:
            ex.rename_market(args["market"], args["symbol"])
            venue.renamed.append((now, args["market"], args["symbol"]))
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
        """No fault that delays subscriptions (evictions, restarts, REST/D1 trouble, held
        alarms) in the span."""
        t0 = self._t0
        noisy = {"evict", "restart", "rest_fail", "d1_outage", "d1_hang", "d1_slow", "shards_change",
                 "stop_start", "stop_in_flush", "drop_all", "drop_shard", "silence", "flap",
                 "rest_hang", "peer_hang", "d1_lost_answers", "evict_at_await", "redeploy", "api_start", "backlog",
                 "deploy_exchanges", "start_all"}
        # A host holding the exchange's alarms back holds its market refreshes back too,
        # for as long as the hold lasts.
        held = any(kind == "alarms_held" and args.get("ex") in (None, venue.name)
                   and t0 + at <= until and t0 + at + args["seconds"] * 1000 >= since - 130_000
                   for at, kind, args in self.plan.events)
        return not held and not any(
            kind in noisy and (args.get("ex") in (None, venue.name) or kind in ("redeploy", "deploy_exchanges"))  # (a deploy restarts all)
            and since - 130_000 <= t0 + at <= until
            for at, kind, args in self.plan.events)

    def _probe_listed(self, venue: Venue, market: int, listed: int) -> None:
        # A delivery delay holds the connected frame and the snapshot back (twice).
        deadline = listed + venue.config.market_refresh_ms + 20_000 + 2 * venue.plan.timing.delay_ms[1]

        def probe() -> None:
            if not self._tracking_throughout(venue, listed, deadline) or not self._quiet_between(venue, listed, deadline):
                return
            first = venue.ex.first_snapshot.get(market)
            # Delisted again before the deadline: the listing may have lasted less than a
            # refresh period (seed 6636: 14 s between two refreshes 30 s apart), so no
            # refresh had to see it. The delisting's own probe judges what follows.
            gone = venue.delisted_at.get(market)
            if gone is not None and listed < gone <= deadline:
                return
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


def _alive(life: Incarnation) -> bool:
    life.check()
    return True


class _Http:
    def __init__(self, venue: Venue, life: Incarnation) -> None:
        self.venue = venue
        self.life = life

    async def get_text(self, url: str) -> tuple[int, str]:
        self.life.check()
        return await answered(self.life, self.venue.ex.get_text(url))

    async def post_json(self, url: str, body: dict) -> int:
        self.life.check()
        return await answered(self.life, self._post(body))

    async def _post(self, body: dict) -> int:
        world = self.venue.world
        delay = 10 + max(0, world.webhook_hanging_until - world.loop.now_ms())
        await asyncio.sleep(delay / 1000)
        world.webhook_posts.append((world.loop.now_ms(), body))
        return 204


class _Peers:
    def __init__(self, venue: Venue, life: Incarnation) -> None:
        self.venue = venue
        self.life = life  # the caller's

    async def send_markets(self, shard: int, payload: dict) -> None:
        self.life.check()
        await answered(self.life, self._send(shard, payload))

    async def _send(self, shard: int, payload: dict) -> None:
        hang = self.venue.peer_hanging_until - self.venue.loop.now_ms()
        if hang > 0:
            await asyncio.sleep(hang / 1000)
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


RENAME_ONE_SEED_IN = 5
REUSE_ONE_SEED_IN = 6


def with_renames(plan: Plan) -> Plan:
    """Symbols and ids that change, on Lighter, drawn from a generator of their own, so
    the rest of the plan stays what it was; not where an allowlist names symbols (a
    rename there is a listing or a delisting). One seed in five renames a market
    mid-run (its id and book stay, its listing says another symbol: the tracker's next
    market refresh sees it); one in six delists a market and, once the tracker must
    have let it go, lists a new market under its id (another symbol, a new book whose
    nonces start again)."""
    rng = random.Random(plan.seed * 104_729 + 29)
    events = list(plan.events)
    for venue in plan.venues():
        if venue.exchange != "lighter" or venue.config.market_symbols:
            continue
        if not rng.randrange(RENAME_ONE_SEED_IN):
            market = rng.choice(sorted(venue.markets))
            events.append((rng.randint(8_000, plan.duration_ms // 2), "rename",
                           {"ex": "lighter", "market": market, "symbol": f"{venue.markets[market]}.NEW"}))
        if not rng.randrange(REUSE_ONE_SEED_IN):
            market = rng.choice(sorted(venue.markets))
            at = rng.randint(8_000, plan.duration_ms // 3)
            # After the delisting's probe (a refresh and 20 s): the old market is gone.
            again = at + venue.config.market_refresh_ms + rng.randint(30_000, 60_000)
            if again < plan.duration_ms - 20_000:
                events.append((at, "delist", {"ex": "lighter", "market": market}))
                events.append((again, "relist", {"ex": "lighter", "market": market,
                                                 "symbol": f"{venue.markets[market]}.B"}))
    return replace(plan, events=sorted(events, key=lambda e: e[0]))


TOGGLE_ONE_SEED_IN = 3


def with_exchange_toggles(plan: Plan) -> Plan:
    """One seed in three of those running both exchanges: a deploy takes one of them out
    of ENABLED_EXCHANGES while it tracks (`deploy_exchanges`: every object restarts;
    the disabled exchange's shards must stop on their own), and for most a later deploy
    enables it again, followed by the operator's /api/start (`start_all`). Drawn from a
    generator of their own, so the rest of a seed's plan is what it was."""
    rng = random.Random(plan.seed * 15_485_863 + 71)
    if len(plan.venues()) < 2 or rng.randrange(TOGGLE_ONE_SEED_IN):
        return plan
    both = tuple(sorted(v.exchange for v in plan.venues()))
    off = rng.choice(both)
    at = rng.randint(15_000, plan.duration_ms - 60_000)
    events = [(at, "deploy_exchanges", {"enabled": tuple(x for x in both if x != off)})]
    again = at + rng.randint(DISABLED_STOP_MS + 5_000, 80_000)
    if rng.random() < 0.7 and again < plan.duration_ms - 40_000:
        events += [(again, "deploy_exchanges", {"enabled": both}),
                   (again + rng.randint(1_000, 15_000), "start_all", {})]
    return replace(plan, events=sorted(plan.events + events, key=lambda e: e[0]))


def plan_of(seed: int) -> Plan:
    """The whole plan `run` runs for a seed."""
    return with_backlogs(with_exchange_toggles(with_renames(with_reshards(with_allowlist(with_scale(
        with_alarm_stall(with_platform_faults(make_plan(seed)))))))))


# One seed in this many has backlogs (issue 18, defect 8).
BACKLOG_ONE_IN = 4


def with_backlogs(plan: Plan) -> Plan:
    """For one seed in BACKLOG_ONE_IN: its shards breathe every 1-8 frames (production:
    every 256, bursts here are small) and 1-4 times one shard's object handles nothing
    for 3-20 s, so frames queue in its socket and are then handled back to back, its
    alarm and requests getting in at the breaths (of 1 ms, or 5-10 ms: a busy host;
    tests/sim/exchange.py `busy_until`): no window may close before the queued frames
    are handled (invariant 13 judges a queued frame by when it arrived). Drawn apart,
    so the rest of the plan is what it was."""
    rng = random.Random(plan.seed * 7_368_787 + 13)
    if rng.randrange(BACKLOG_ONE_IN):
        return plan
    every = rng.choice((1, 1, 2, 4, 8))
    venues = plan.venues()
    events = []
    for _ in range(rng.randint(1, 4)):
        venue = rng.choice(venues)
        events.append((rng.randint(8_000, plan.duration_ms - 20_000), "backlog",
                       {"ex": venue.exchange, "shard": rng.randrange(venue.shards), "ms": rng.randint(3_000, 20_000),
                        "breath_ms": rng.choice((1, 1, 5, 10))}))
    return replace(plan, config=replace(plan.config, breathe_every_frames=every),
                   also=tuple(replace(v, config=replace(v.config, breathe_every_frames=every)) for v in plan.also),
                   events=sorted(plan.events + events, key=lambda e: e[0]))
# One seed in this many has an overloaded host hold an exchange's alarms for longer
# than the aggregator keeps windows open (aggregator.MAX_OPEN_WINDOWS: 4 minutes), so
# windows are given up and must be recorded lost (mutant given_up_window_not_recorded).
ALARM_STALL_ONE_IN = 25


def with_alarm_stall(plan: Plan) -> Plan:
    """For one seed in ALARM_STALL_ONE_IN: one exchange's alarms held for 250-330 s
    early in the run (which is made long enough for it), from a generator of its own
    so that the rest of the plan stays what it was."""
    rng = random.Random(plan.seed * 1_000_033 + 29)
    if rng.randrange(ALARM_STALL_ONE_IN):
        return plan
    exchange = rng.choice([v.exchange for v in plan.venues()])
    at, seconds = rng.randint(8_000, 40_000), rng.randint(250, 330)
    duration = max(plan.duration_ms, at + seconds * 1000 + 30_000)
    events = sorted(plan.events + [(at, "alarms_held", {"seconds": seconds, "ex": exchange})], key=lambda e: e[0])
    return replace(plan, events=events, duration_ms=duration)


def run(seed: int) -> Result:
    from invariants import check

    plan = plan_of(seed)
    world = World(plan)
    world.run()
    result = Result(plan, world, replay=f"bash scripts/simulate --seed {seed}")
    result.violations = check(world)
    return result
