"""What must hold after every simulated run, whatever the seed did: for each
exchange the world ran (Lighter, Paradex or both), on that exchange's own tables.

1. The exchange's limits were never exceeded and its protocol never broken.
   Lighter: no 30009, 30010, 23001, 23003, and no unsubscribe of a market that was
   not subscribed (30002). Both: the deployment's own budget per IP (every shard
   together: Lighter 180 client messages in any 60 s, pings and pongs included, and
   40 subscriptions in flight; Paradex 600 and 20), below the exchange's limits so
   that other clients on the same egress IP and the two clocks' skew have room; and
   no market subscribed on two connections at once; Lighter's own pings (half the
   seeds) answered by a pong within 30 s ("no pong"). Paradex: at most 20 new connections a second and 600 a
   minute per IP (every shard's), one book channel per market per connection, no
   unsubscribe of a channel not held, no malformed request or channel, no
   subscription to a market of an asset kind not tracked. Both: connections go to
   their own exchange's URL, and a connection is closed as stale only after
   STALE_FEED_SECONDS without any frame (Paradex's heartbeats keep idle ones alive).
2. Every window that received ticks is in D1 exactly once, or lies in a lost range
   the tracker recorded (a row in a lost range, from a write that landed after its
   instance was evicted, must still be exact). Not judged: the windows of frames of
   a delisted market that were on their way when the exchange stopped it (the
   tracker drops them if its refresh saw the delisting first).
3. Every D1 window row equals the reference model recomputed from the frames the
   simulated exchange delivered (to 1e-9 relative), its depth and slippage columns
   included; a retried write rewrote identical values.
4. Every minute row equals the rollup (reference model) of its windows; every
   window's minute was rolled; no window was pruned before its minute was rolled. (A
   window recorded lost that landed after its minute's rollup - a batch given up at
   its deadline or left by an evicted instance, committing late - may be missing
   from the minute, and a minute of nothing but such windows may be missing.)
5. Newly listed markets were subscribed within one refresh period; delisted ones
   unsubscribed (checked by probes during the run).
6. After the final stop: no socket open, the outbox empty, no alarm left, stats
   consistent (windowsLost = the windows of the recorded lost ranges).
7. The tracker never raised out of alarm() and no background task failed; no step
   failed but for the simulated faults (outages, and hangs that passed a deadline).
8. The exchanges never mix: each exchange's tables hold only its own markets
   (Paradex's only those of the kinds tracked) and stats rows of its own shards;
   an exchange the world did not run has empty tables. With an allowlist
   (LIGHTER_MARKETS / PARADEX_MARKETS), no table holds a row of a market outside it
   (the saved market list included), and no such market was ever subscribed (1).
9. Every window row covers at most its own length (0 <= covered_ms <= window_ms).
10. A live feed is never closed as stale: a frame came within STALE_FEED_SECONDS.
11. Every hour row equals the rollup (reference model) of its minutes in D1, and
   every minute's hour was rolled, the partial hour after the final stop included.
   Judged on the hours whose minutes were all retained: those starting at or after
   the end of the run minus MINUTE_RETENTION, which no minute prune could reach
   (each prune's cutoff is at most its own time minus the retention). That is sound
   without keeping pruned minutes, and today it is every hour: no run is as long as
   the shortest retention (1 h). An hour row pruned by its own retention is not missed.
12. No alarm invocation takes more than a few seconds (world.ALARM_DUE_MS): it awaits
    only the object's storage; what waits on REST, D1 or the webhook runs beside it.
13. With a delivery delay and clock offset within the bound (the most a frame
    trails the world's clock <= MAX_FEED_LAG_MS), no update is dropped as late: no
    window loses its end (the reference says which updates came after their window
    was closed; frames stamped far in the past on purpose are not judged).
14. Health is not ok while frames are being dropped as late: every /api/health
    probe (world.py, every 10 s) within 55 s after a shard dropped an update as late
    says otherwise, unless a start/stop or that shard's eviction came in between.
15. No window row is ever written for a window starting after the world's clock +
    MAX_CLOCK_AHEAD_MS.
16. No saved state has flushed_until beyond the world's clock + MAX_CLOCK_AHEAD_MS
    + one window.
17. Coverage: at every /api/health probe (world.py, at random moments) that says ok
    while the exchange is tracked, every market it tracks is subscribed on a
    connection, or has been on none for less than its pacing bound since it lost its
    subscription or the last disruption (world.Venue.pacing_bound_ms): none is left
    out while health vouches for the feed.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from itertools import combinations
from typing import NamedTuple

import reference_model as ref

from tracker.feedtime import MAX_CLOCK_AHEAD_MS, MAX_FEED_LAG_MS
from tracker.outbox import INDEX_KEY
from tracker.shard import STATE_KEY

WINDOW_MS = 15_000
FORBIDDEN_CODES = (30009, 30010, 23001, 23003, 30002)
# Each exchange's tables: markets, windows, minutes, hours, stats.
TABLES = {
    "lighter": ("lighter_markets", "lighter_snapshots", "lighter_minutes", "lighter_hours", "tracking_stats"),
    "paradex": ("paradex_markets", "paradex_snapshots", "paradex_minutes", "paradex_hours", "paradex_tracking_stats"),
}


def _lighter_book(text):
    """(market, ts, snapshot?, nonce, begin_nonce, bids, asks) of a Lighter book frame, or None."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("type") not in ("subscribed/order_book", "update/order_book"):
        return None
    try:
        market = int(msg["channel"].split(":")[1])
        book = msg["order_book"]
        bids = [(Decimal(level["price"]), Decimal(level["size"])) for level in book["bids"]]
        asks = [(Decimal(level["price"]), Decimal(level["size"])) for level in book["asks"]]
        if any(p <= 0 or s < 0 for p, s in bids + asks):
            return None
        return market, int(msg["timestamp"]), msg["type"] == "subscribed/order_book", int(book["nonce"]), int(book["begin_nonce"]), bids, asks
    except (KeyError, ValueError, TypeError, IndexError, InvalidOperation):
        return None


def _value(mantissa: int) -> Decimal:
    """A Paradex int64 mantissa as its value: mantissa x 10^-8 (SBE, constant exponent)."""
    return Decimal(mantissa).scaleb(-8)


def _paradex_book(payload):
    """The same of a Paradex book frame as the simulator sent it: a DELTA continues the
    book when its seq is the previous frame's + 1 (begin_nonce = seq - 1)."""
    if not isinstance(payload, tuple):
        return None  # heartbeats, acks, errors, other templates, malformed frames
    market, ts, snapshot, seq, bids, asks = payload
    return (market, ts, snapshot, seq, seq - 1,
            [(_value(p), _value(s)) for p, s in bids], [(_value(p), _value(s)) for p, s in asks])


BOOK_READERS = {"lighter": _lighter_book, "paradex": _paradex_book}


class Reference(NamedTuple):
    expected: dict[int, dict]  # shard -> (market, window start) -> the row
    ambiguous: set[tuple[int, int]]  # (market, window start): covered time not judged
    unsure: set[tuple[int, int]]  # (market, window start): not judged at all
    late: list[tuple[int, int, int, int]]  # (shard, arrival, market, stamp) of updates dropped as late


def reference_windows(trace: list[tuple], read=_lighter_book) -> Reference:
    """Per shard: (market, window start) -> the row the reference expects; the
    windows whose covered time is ambiguous: between a connection's last frame and
    the moment its end was noticed (the tracker cannot know whether a silent book
    stood; it credits time up to each window it closes meanwhile); and the windows
    the reference cannot tell: those of frames of a
    delisted market delivered after the exchange stopped it (the tracker drops them
    once its refresh has seen the delisting, which may come first).

    A frame stamped MAX_CLOCK_AHEAD_MS or more after the world's clock, as read when
    its exchange second began on its connection (the first book frame of each
    second), is placed at that reading (tracker/feedtime.py).

    `late`: the updates (not snapshots: Paradex stamps those with the book's last
    change) after which the book had a top, stamped in a window the shard had measured
    and already closed when they arrived: the frames a lagging feed loses."""
    events: dict[int, list] = {}
    unsure: set[tuple[int, int]] = set()
    stopped: set[int] = set()
    ambiguous: set[tuple[int, int]] = set()
    books: dict[tuple[int, int], ref.NaiveBook] = {}
    # Per shard, the sampling rule: depths and slippages are worked out (exactly, so
    # slowly) only for the ticks the replay samples.
    samplers: dict[int, ref.SampleClock] = {}
    last_ts: dict[int, int] = {}
    seen: dict[int, set[int]] = {}
    clocks: dict[int, list[int]] = {}  # conn -> [exchange second, world clock then, limit]
    measuring: dict[int, list[int]] = {}  # shard -> [measuring from, closed until]
    late: list[tuple[int, int, int, int]] = []

    def add(stream: list, shard: int, event: ref.Event) -> None:
        stream.append(event)

    def placed(conn: int, ts: int, at: int) -> int:
        clock = clocks.setdefault(conn, [-1, 0, 0])
        if ts // 1000 != clock[0]:
            clock[:] = [ts // 1000, at, at + MAX_CLOCK_AHEAD_MS]
        return clock[1] if ts >= clock[2] else ts

    for entry in trace:
        kind, shard = entry[0], entry[1]
        if kind == "delisted":
            stopped.add(entry[2])
            continue
        stream = events.setdefault(shard, [])
        if kind == "frame":
            conn, payload = entry[2], entry[3]
            frame = read(payload)
            if frame is None:
                continue
            market, ts, snapshot, nonce, begin, bids, asks = frame
            ts = placed(conn, ts, entry[4])
            if market in stopped:
                unsure.add((market, ts - ts % WINDOW_MS))
            book = books.setdefault((conn, market), ref.NaiveBook())
            if snapshot:
                book.snapshot(bids, asks, nonce)
            else:
                book.update(bids, asks, begin, nonce)
            event = book.top_event(market, ts, clock=samplers.setdefault(shard, ref.SampleClock()))
            add(stream, shard, event)
            since, closed = measuring.get(shard, (0, 0))
            if event.kind == "tick" and not snapshot and since <= ts < closed:
                late.append((shard, entry[4], market, ts))
            last_ts[conn] = ts
            seen.setdefault(conn, set()).add(market)
        elif kind == "end":
            conn, ended = entry[2], entry[3]
            if conn in last_ts:
                for m in sorted(seen.get(conn, ())):
                    add(stream, shard, ref.Event(m, last_ts[conn], "invalid"))
                first = last_ts[conn] - last_ts[conn] % WINDOW_MS
                for start in range(first, ended + 1, WINDOW_MS):
                    ambiguous.update((m, start) for m in seen.get(conn, ()))
        elif kind in ("from", "flush"):  # measuring from / windows closed until (floored to a window)
            stream.append(ref.Event(-1, entry[2], "flush"))
            boundary = entry[2] - entry[2] % WINDOW_MS
            since, closed = measuring.get(shard, (0, 0))
            measuring[shard] = [boundary if kind == "from" else since, max(closed, boundary)]
    expected = {shard: ref.expected_windows(stream, WINDOW_MS) for shard, stream in events.items()}
    return Reference(expected, ambiguous, unsure, late)


def check(world) -> list[str]:
    """The violations of a finished world."""
    v: list[str] = []

    # 7. nothing escaped, and no step failed but for the simulated faults
    v += world.errors[:5]
    # 12. the alarm is never held: it awaits only storage, whatever REST, D1 or the webhook do
    v += world.alarm_overruns[:3]
    # (a call that passed its deadline: only the simulated hangs make one)
    v += [f"{entry[4]}: {entry[5]}" for entry in world.logs
          if entry[4] == "step_failed" and "simulated" not in entry[5] and "timed out" not in entry[5]][:3]

    for venue in world.venues:
        v += check_venue(world, venue)
    v += check_separation(world)

    # 5. listings
    v += world.probes
    # 17. coverage
    v += world.coverage[:3]
    return v


def check_venue(world, venue) -> list[str]:
    v: list[str] = []
    ex, d1 = venue.ex, world.d1
    _, snapshots, minutes_table, _, _ = TABLES[venue.name]
    say = "" if venue.name == "lighter" else f"{venue.name}: "

    # 1. limits and protocol
    for code in FORBIDDEN_CODES if venue.name == "lighter" else ():
        if ex.errors_sent[code]:
            v.append(f"Lighter answered {code} {ex.errors_sent[code]} time(s)")
    for kind, n in sorted(ex.refusals.items()):
        v.append(f"{venue.name}: {kind}: {n} time(s)")
    v += ex.violations[:3]
    # A live feed is never closed as stale (a frame came within STALE_FEED_SECONDS).
    v += [f"{say}{line}" for line in ex.early_stale_closes[:3]]

    # 2-3. windows
    lost: dict[int, list[tuple[int, int]]] = {s: sorted(r) for s, r in venue.lost_ranges.items()}

    def in_lost(shard: int, start: int) -> bool:
        return any(a <= start < b for a, b in lost.get(shard, ()))

    reference = reference_windows(ex.trace, BOOK_READERS[venue.name])
    expected, ambiguous, unsure = reference.expected, reference.ambiguous, reference.unsure
    columns = _columns(d1, snapshots)
    written = {(k[1], k[2]): dict(zip(columns, vals)) for k, vals in d1.writes.items() if k[0] == snapshots}
    delisted_last: set[tuple[int, int]] = set()
    for shard_rows in expected.values():
        for market in venue.delisted_at:
            starts = [s for (m, s) in shard_rows if m == market]
            if starts:
                delisted_last.add((market, max(starts)))
    owner: dict[tuple[int, int], int] = {}
    for shard, windows in expected.items():
        for key, want in windows.items():
            owner[key] = shard
            if key in unsure:
                continue
            got = written.get(key)
            if in_lost(shard, key[1]) and got is None:
                continue
            # A window recorded lost may still be in D1: a batch an evicted instance
            # had in flight can land after its successor gave the window up (the
            # report errs on the side of loss); such a row must still be exact.
            if got is None:
                v.append(f"{say}window {key} of shard {shard} had ticks but is neither in D1 nor recorded lost")
                continue
            if key in delisted_last or key in ambiguous:
                want = {k: x for k, x in want.items() if k not in ("twap_mid", "covered_ms")}
            diff = ref.row_mismatches(got, want)
            if diff:
                v.append(f"{say}window {key} differs from the reference: {diff[:3]}")
    for key, row in written.items():
        if key not in owner:
            v.append(f"{say}window {key} in D1 but the reference has no ticks there")
        # 9. a window covers at most its own length
        if not 0 <= row["covered_ms"] <= row["window_ms"]:
            v.append(f"{say}window {key} covers {row['covered_ms']} ms of {row['window_ms']}")
    v += [f"{say}{line}" for line in d1.rewrites_differing if f"'{snapshots}'" in line][:3]

    # 11-14. the exchange's clock against ours
    v += check_timing(world, venue, reference.late)

    # 4. minutes
    minutes = {(r["market_index"], r["timestamp"]): r for r in d1.rows(f"SELECT * FROM {minutes_table}")}
    by_market: dict[int, list[dict]] = {}
    for (market, _), row in written.items():
        by_market.setdefault(market, []).append(row)
    for market, window_rows in by_market.items():
        for (_, minute), want in ref.expected_minutes(window_rows).items():
            got = minutes.get((market, minute))
            if got is None:
                # (a minute whose every window the tracker gave up, all landing after its
                # last rollup, may be missing: see below)
                given_up = all(any(in_lost(s, r["timestamp"]) for s in lost) for r in window_rows
                               if r["timestamp"] // 60_000 * 60_000 == minute)
                if not _pruned_minute(world, venue, minute) and not given_up:
                    v.append(f"{say}minute {market}@{minute} never rolled up")
                continue
            diff = ref.row_mismatches(got, want)
            if diff:
                # A window the tracker gave up (recorded lost) can still land in D1 after
                # its minute's last rollup: a batch an evicted instance had in flight, or
                # one given up at its deadline (a D1 hang), commits late. The minute then
                # holds the windows the tracker kept and those of the given-up ones that
                # had landed by its rollup: any of them.
                rows = [r for r in window_rows if r["timestamp"] // 60_000 * 60_000 == minute]
                kept = [r for r in rows if not any(in_lost(s, r["timestamp"]) for s in lost)]
                landed = [r for r in rows if r not in kept]
                if not any(ref.row_mismatches(got, alt) == []
                           for alt in (ref.expected_minutes(kept + list(some)).get((got["symbol"], minute))
                                       for n in range(len(landed)) for some in combinations(landed, n))
                           if alt is not None):
                    v.append(f"{say}minute {market}@{minute} differs from its windows' rollup: {diff[:3]}")
    v += [line for line in d1.prune_violations if line.startswith(snapshots)][:3]

    # 11. hours
    v += check_hours(world, venue, say)

    # 6. after the final stop
    if ex.conns:
        v.append(f"{say}{len(ex.conns)} connection(s) still open after stop")
    for shard, storage in venue.storages.items():
        index = json.loads(storage.data.get(INDEX_KEY) or "[]")
        if index:
            v.append(f"{say}shard {shard}: {len(index)} window(s) still in the outbox after D1 recovered")
        if storage.alarm is not None:
            v.append(f"{say}shard {shard}: an alarm is still set after stop and drain")
        state = json.loads(storage.data.get(STATE_KEY) or "{}")
        ranges = state.get("lost_ranges") or []
        if len(ranges) < 100:
            counted = sum((r["to"] - r["from"]) // WINDOW_MS for r in ranges)
            reported = (state.get("totals") or {}).get("windows_lost", 0)
            if counted != reported:
                v.append(f"{say}shard {shard}: windowsLost {reported} but its lost ranges hold {counted} windows")
    return v


def check_hours(world, venue, say: str = "") -> list[str]:
    """11. Every hour row is the rollup of its minutes in D1; every minute's hour is there."""
    v: list[str] = []
    _, _, minutes_table, hours_table, _ = TABLES[venue.name]
    d1, end, config = world.d1, world.loop_end_ms, venue.config
    hours = {(r["market_index"], r["timestamp"]): r for r in d1.rows(f"SELECT * FROM {hours_table}")}
    minutes: dict[int, list[dict]] = {}
    for row in d1.rows(f"SELECT * FROM {minutes_table}"):
        minutes.setdefault(row["market_index"], []).append(row)
    expected = {(market, hour): want for market, rows in minutes.items()
                for (_, hour), want in ref.expected_hours(rows).items()}
    for (market, hour), want in sorted(expected.items()):
        if hour < end - config.minute_retention_ms:
            continue  # some minutes of it may be pruned
        got = hours.get((market, hour))
        if got is None:
            if hour >= end - config.hour_retention_ms:
                v.append(f"{say}hour {market}@{hour} never rolled up from its minutes")
            continue
        diff = ref.row_mismatches(got, want)
        if diff:
            v.append(f"{say}hour {market}@{hour} differs from its minutes' rollup: {diff[:3]}")
    for market, hour in sorted(hours.keys() - expected.keys()):
        if hour >= end - config.minute_retention_ms:
            v.append(f"{say}hour {market}@{hour} in D1 but it has no minutes")
    return v[:5]
def check_timing(world, venue, late: list[tuple[int, int, int, int]]) -> list[str]:
    """13. With a steady lag within the bound no window loses its end; 14. health is not
    ok while frames are being dropped as late; 15. no window row starts beyond the clock
    + MAX_CLOCK_AHEAD_MS when written; 16. flushed_until never exceeds the clock +
    MAX_CLOCK_AHEAD_MS + a window."""
    v: list[str] = []
    say = "" if venue.name == "lighter" else f"{venue.name}: "
    timing = venue.plan.timing
    own_lag = timing.delay_ms[1] - timing.offset_ms  # the most a frame of this exchange trails our clock
    if own_lag <= MAX_FEED_LAG_MS:
        # Not judged: a frame stamped far in the past on purpose (a `stamp` event).
        lagged = [(shard, at, m, ts) for shard, at, m, ts in late if at - ts <= own_lag]
        if lagged:
            shard, at, m, ts = lagged[0]
            v.append(f"{say}{len(lagged)} update(s) dropped as late with a lag of at most {own_lag} ms, within "
                     f"the bound (first: market {m} stamped {ts}, arrived {at} on shard {shard})")
    d1_lines = [line for line in world.d1.future_rows if line.startswith(TABLES[venue.name][1])]
    v += [f"{say}{line}" for line in d1_lines[:3]]
    v += [f"{say}{line}" for line in venue.beyond_reach[:3]]
    v += [f"{say}{line}" for line in _healthy_while_dropping(world, venue, late)[:3]]
    return v


# Health counts frames dropped as late over about the last minute (tracker/feedtime.py
# RecentCount): every probe this soon after a drop must say so.
LATE_HEALTH_MS = 55_000


def _healthy_while_dropping(world, venue, late) -> list[str]:
    """Probes that said ok (or idle) within LATE_HEALTH_MS after the shard that got a
    late frame dropped it, while the same instance ran the same run."""
    out: list[str] = []
    probes = [(at, status, body) for at, name, status, body in world.health if name == venue.name]
    controls = venue.control_calls + [t for span in venue.tracking_spans for t in span if t is not None]
    # When each shard itself stopped or started: a stop's answer can come well after
    # the shard stopped (it waits for its last flush).
    own_controls = [(e[0], e[1]) for e in world.logs
                    if e[6] == venue.name and e[4] in ("tracking_stopped", "tracking_started")]
    for shard, dropped_at, market, ts in late:
        for at, status, body in probes:
            if not dropped_at < at <= dropped_at + LATE_HEALTH_MS:
                continue
            if any(dropped_at <= t <= at for t in controls) or \
                    any(dropped_at <= t <= at and s == shard for t, s in own_controls):
                break  # a start or stop since: a new run counts afresh
            if any(dropped_at <= t <= at and s == shard for t, s in venue.life_changes):
                break  # the instance that dropped it is gone
            if status == 200 and any(s["shard"] == shard for s in body.get("shards", [])):
                out.append(f"health said {body['status']} at {at}, after shard {shard} dropped an update of "
                           f"market {market} stamped {ts} as late at {dropped_at}")
                break
    return out


def check_separation(world) -> list[str]:
    """8. Each exchange's tables hold its own markets and shards, nothing of the other's."""
    v: list[str] = []
    d1 = world.d1
    venues = {venue.name: venue for venue in world.venues}
    for name, tables in TABLES.items():
        venue = venues.get(name)
        markets_table, *data_tables, stats_table = tables
        if venue is None:
            for table in tables:
                n = d1.rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
                if n:
                    v.append(f"{table} holds {n} row(s) but the world ran no {name}")
            continue
        own = _own_markets(venue)  # market id -> symbol
        for table in (markets_table, *data_tables):
            for r in d1.rows(f"SELECT DISTINCT market_index, symbol FROM {table}"):
                if own.get(r["market_index"]) != r["symbol"]:
                    v.append(f"{table} holds market {r['market_index']} {r['symbol']!r}, not one of {name}'s")
                    break
        for r in d1.rows(f"SELECT shard FROM {stats_table}"):
            if not 0 <= r["shard"] < venue.max_shards:
                v.append(f"{stats_table} holds shard {r['shard']}: {name} never ran more than {venue.max_shards}")
    return v


def _own_markets(venue) -> dict[int, str]:
    """Every market the exchange ever listed that its shards may track (its allowlist's only)."""
    ex = venue.ex
    if venue.name == "lighter":
        listed = {m: e["symbol"] for m, e in ex.listing.items()}
    else:
        kinds = venue.config.paradex_asset_kinds
        from paradex import SPECS

        listed = {m: s for m, s in ex.symbols.items() if SPECS[s][0] in kinds}
    return {m: s for m, s in listed.items() if venue.config.tracks(s)}


def _columns(d1, table: str) -> list[str]:
    return [r["name"] for r in d1.rows(f"PRAGMA table_info({table})")]


def _pruned_minute(world, venue, minute: int) -> bool:
    return minute < world.loop_end_ms - venue.config.minute_retention_ms
