"""What must hold after every simulated run, whatever the seed did: for each
exchange the world ran (Lighter, Paradex or both), on that exchange's own tables.

1. The exchange's limits were never exceeded and its protocol never broken.
   Lighter: no 30009, 30010, 23001, 23003, and no unsubscribe of a market that was
   not subscribed (30002). Both: the deployment's own budget per IP (every shard
   together: Lighter 180 client messages in any 60 s, pings and pongs included, and
   40 subscriptions in flight; Paradex 600 and 20), below the exchange's limits so
   that other clients on the same egress IP and the two clocks' skew have room; and
   no market subscribed on two connections at once; Lighter's own pings (half the
   seeds) answered by a pong within 30 s ("no pong"). Lighter, each shard on its own,
   under the split its run started with (exchange.py): it subscribes only markets of its
   share (id mod SHARDS), each connection holds at most its share of the in-flight
   budget, the shard's client messages over any 60 s stay within its share of the
   per-minute budget and its subscribes and unsubscribes within that share less the 4
   kept for keepalive; a subscribe left unanswered (some seeds) is sent again within
   the ack timeout and a rate window ("subscribe never sent again"). Paradex: at most 20 new connections a second and 600 a
   minute per IP (every shard's), one book channel per market per connection, no
   unsubscribe of a channel not held, no malformed request or channel, no
   subscription to a market of an asset kind not tracked. Both: connections go to
   their own exchange's URL, and a connection is closed as stale only after
   STALE_FEED_SECONDS without any frame (Paradex's heartbeats keep idle ones alive).
2. Every window that received ticks is in D1 exactly once, or lies in a lost range
   the tracker recorded (a row in a lost range, from a write that landed after its
   instance was evicted, must still be exact). A lost range, once saved, stays in
   every later saved state of its run (none is overwritten by a state that never
   knew it); and no window D1 acknowledged writing to a live instance of a
   shard is in that shard's lost ranges (never recorded lost when measured). Not judged: the windows of frames of
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
   consistent (windowsLost = the windows of the recorded lost ranges), and every
   shard's stats row in D1 says it is not tracking.
7. The tracker never raised out of alarm() and no background task failed; no step
   failed but for the simulated faults (outages, and hangs that passed a deadline).
8. The exchanges never mix: each exchange's tables hold only its own markets
   (Paradex's only those of the kinds tracked; *_market_symbols only their symbols) and stats rows of its own shards;
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
   the shortest retention (1 h). An hour row pruned by its own retention is not missed;
   one with minutes in D1 (so rolled) is, whichever its minutes' retention.
12. No alarm invocation takes more than a few seconds (world.ALARM_DUE_MS): it awaits
    only the object's storage; what waits on REST, D1 or the webhook runs beside it.
13. With a delivery delay and clock offset within the bound (the most a frame
    trails the world's clock <= MAX_FEED_LAG_MS), no update is dropped as late: no
    window loses its end (the reference says which updates came after their window
    was closed; frames stamped far in the past on purpose are not judged). A frame
    queued in a backlog is judged by when it arrived, not when it was handled: the
    alarm let in at a breath must not close the windows of the frames queued behind.
14. Health is not ok while frames are being dropped as late: every /api/health
    probe (world.py, every 10 s) within 55 s after a shard dropped an update as late
    says otherwise, unless a start/stop or that shard's eviction came in between.
15. No window row is ever written for a window starting after the world's clock +
    MAX_CLOCK_AHEAD_MS.
16. No saved state has flushed_until beyond the world's clock + MAX_CLOCK_AHEAD_MS
    + one window.
17. The Worker's API (worker.py: requests drawn from the OpenAPI document at random
    moments) never answers 5xx (nor breaks off a streamed body) unless D1 was failing
    or hanging at some moment of the request, and then with a JSON error and a
    requestId (/api/health's documented 503 is a verdict, not a failure); every status
    is one its route documents.
18. Every page of rows the API answered equals what D1 held at that moment (the
    world's own query, run in the instant the API read the page; for an edge cache
    hit, at the answer).
19. A page the API served as final (cacheable, with an ETag) never changes afterwards:
    asked again later it answers the same rows (or a 304), and at the end of the run D1
    still holds exactly those rows. Rows old enough for their table's retention to
    prune them are not judged (the edge cache keeps a page for HISTORY_CACHE_SECONDS).
20. Loss is justified and minimal: every range a shard records lost is one of
    - the windows its instance could not measure after an eviction or restart: recorded
      by the first state of a new instance, while the state before said tracking; from
      where the evicted instance's saved state ended (nothing it had closed) to at most
      one window past the resume, by the exchange's stamps as last saved (the downtime
      plus one window); and how far ahead of our clock a state says the stamps ran
      (`clock_ahead_ms`, what a successor adds) is no more than the stamps the shard
      kept ran past the clock's reading (as in 13: the first frame of each exchange
      second on a connection) in the LAG_SPAN_MS before that save, so a resume skips
      no window its predecessor did not open;
    - a window the outbox's bound pushed out: the outbox held more than
      OUTBOX_MAX_WINDOWS, and no more windows went than took it over the bound;
    - a window given up open: no alarm of the shard had closed it by then, and
      MAX_OPEN_WINDOWS newer ones could have been open (it ended that long before the
      newest stamp the shard may accept).
    (Every dropped window lies in a recorded range: 2.)
21. A renamed market (Lighter: same id and book, another symbol), and a new market
    listed under a delisted one's id, is written under its new symbol once the
    tracker's market refresh can have seen it: every window of it
    stamped from MARKET_REFRESH_SECONDS and 20 s after the rename on, while the
    shards tracked throughout and nothing delayed the refresh (no REST, D1 or instance
    trouble), carries the new symbol, and so does its markets row at the end.
22. Coverage: at every /api/health probe (world.py, at random moments) that says ok
    while the exchange is tracked, every market it tracks is subscribed on a
    connection, or has been on none for less than its pacing bound since it lost its
    subscription or the last disruption (world.Venue.pacing_bound_ms): none is left
    out while health vouches for the feed.
23. Every symbol a market was saved under (*_markets) or written under (its window,
    minute and hour rows) is in *_market_symbols at the end of the run: the API answers
    `symbol` through it (sql.py, `_api_page`), so a symbol missing there is unanswerable.
24. Health says ok when nothing is wrong: no probe calls a shard degraded for frames
    dropped as late when that shard's instance dropped none for the last 100 s (its
    own count, noted at every probe, the probes at most 20 s apart: world.py
    `_check_late_claims`).
25. An exchange a deploy takes out of ENABLED_EXCHANGES while it tracks stops on its
    own: 30 s later (world.DISABLED_STOP_MS) no connection of it is open and no shard's
    saved state says tracking (what it measured is judged by 2-4 as ever); enabled
    again by a later deploy, it is started by /api/start (coverage, 22, from then on).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from decimal import Decimal, InvalidOperation
from itertools import combinations
from typing import NamedTuple

import reference_model as ref

from tracker.feedtime import LAG_SPAN_MS, MAX_CLOCK_AHEAD_MS, MAX_FEED_LAG_MS
from tracker.aggregator import MAX_OPEN_WINDOWS
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
    # (shard, handled at, market, stamp, arrived at) of updates dropped as late: a frame
    # queued in a backlog arrived before it was handled (exchange.py `arrived`)
    late: list[tuple[int, int, int, int, int]]
    # shard -> (our clock as read, how far past it a kept stamp ran), sorted
    ran_ahead: dict[int, list[tuple[int, int]]]


def reference_windows(trace: list[tuple], read=_lighter_book, arrived: dict[int, int] | None = None) -> Reference:
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
    and already closed when they were handled: the frames a lagging feed loses.
    `arrived`: trace index -> when a frame that waited in a backlog arrived."""
    arrived = arrived or {}
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
    conn_shard: dict[int, int] = {}
    latest_conn: dict[int, int] = {}  # shard -> the connection of its latest frame
    relisted: set[int] = set()  # ids Lighter reused for a new market
    unlisted_again: set[tuple[int, int]] = set()  # (shard, market): let go after its id was reused
    clocks: dict[int, list[int]] = {}  # conn -> [exchange second, world clock then, limit]
    measuring: dict[int, list[int]] = {}  # shard -> [measuring from, closed until]
    late: list[tuple[int, int, int, int, int]] = []

    def add(stream: list, shard: int, event: ref.Event) -> None:
        stream.append(event)

    # shard -> (conn, our clock as read) -> the most a kept stamp ran past that reading
    ahead_of: dict[int, dict[tuple[int, int], int]] = {}

    def placed(conn: int, ts: int, at: int, shard: int) -> int:
        clock = clocks.setdefault(conn, [-1, 0, 0])
        if ts // 1000 != clock[0]:
            clock[:] = [ts // 1000, at, at + MAX_CLOCK_AHEAD_MS]
        if ts >= clock[2]:
            return clock[1]
        if ts > clock[1]:
            readings = ahead_of.setdefault(shard, {})
            key = (conn, clock[1])
            readings[key] = max(readings.get(key, 0), ts - clock[1])
        return ts

    for index, entry in enumerate(trace):
        kind, shard = entry[0], entry[1]
        if kind == "delisted":
            stopped.add(entry[2])
            continue
        if kind == "unlisted":
            if entry[2] in relisted:
                # A listing read before the id was reused, applied after it (a refresh
                # slowed by D1): the shard drops the new market's frames until a later
                # refresh adds it again, which the trace does not tell.
                unlisted_again.add((shard, entry[2]))
            if entry[2] in relisted or entry[2] in stopped:
                # Its book went then: its time is credited up to the newest frame's stamp
                # on the shard's connection (tracker/feed.py remove_market). A delisted
                # market's book stood on at the exchange until the delisting, but the
                # tracker knows it only up to that stamp (seed 15175: the exchange's clock
                # 7.8 s behind, the last window cut 970 ms short).
                conn = latest_conn.get(shard)
                if conn in last_ts:
                    add(events.setdefault(shard, []), shard, ref.Event(entry[2], last_ts[conn], "invalid"))
            continue
        if kind == "listed":  # a new market under the id (the old one's frames came long before)
            market = entry[2]
            relisted.add(market)
            stopped.discard(market)
            # The old market's book is gone: the tracker dropped it once its refresh saw
            # the delisting (nothing of it carries over into the new market's windows).
            for shard_seen in sorted({conn_shard[c] for c, markets in seen.items() if market in markets}):
                add(events.setdefault(shard_seen, []), shard_seen, ref.Event(market, entry[3], "invalid"))
            continue
        stream = events.setdefault(shard, [])
        if kind == "frame":
            conn, payload = entry[2], entry[3]
            frame = read(payload)
            if frame is None:
                continue
            market, ts, snapshot, nonce, begin, bids, asks = frame
            ts = placed(conn, ts, entry[4], shard)
            if market in stopped or (shard, market) in unlisted_again:
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
                late.append((shard, entry[4], market, ts, arrived.get(index, entry[4])))
            last_ts[conn] = ts
            seen.setdefault(conn, set()).add(market)
            conn_shard[conn] = shard
            latest_conn[shard] = conn
        elif kind == "end":
            conn, ended = entry[2], entry[3]
            if conn in last_ts:
                for m in sorted(seen.get(conn, ())):
                    add(stream, shard, ref.Event(m, last_ts[conn], "invalid"))
                first = last_ts[conn] - last_ts[conn] % WINDOW_MS
                for start in range(first, ended + 1, WINDOW_MS):
                    ambiguous.update((m, start) for m in seen.get(conn, ()))
        elif kind in ("from", "flush"):  # measuring from / windows closed until (floored to a window)
            if kind == "from":
                # A new instance: its depth samples start again. Nothing an evicted one
                # measured is dropped here: the new instance measures from the window
                # after every window its predecessor had open (frames it kept stamped
                # ahead of our clock included), so none of it lies in what is judged.
                samplers[shard] = ref.SampleClock()
            stream.append(ref.Event(-1, entry[2], "flush"))
            boundary = entry[2] - entry[2] % WINDOW_MS
            since, closed = measuring.get(shard, (0, 0))
            measuring[shard] = [boundary if kind == "from" else since, max(closed, boundary)]
    expected = {shard: ref.expected_windows(stream, WINDOW_MS) for shard, stream in events.items()}
    ran_ahead = {shard: sorted((read_at, ahead) for (_, read_at), ahead in readings.items())
                 for shard, readings in ahead_of.items()}
    return Reference(expected, ambiguous, unsure, late, ran_ahead)


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
    v += check_symbols(world)
    v += check_api(world)

    # 5. listings
    v += world.probes
    # 17. coverage
    v += world.coverage[:3]
    # 23. health says ok when nothing is wrong (no late claim without late frames)
    v += world.late_claims[:3]
    # 24. an exchange a deploy disabled stops on its own
    v += world.toggles[:3]
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

    reference = reference_windows(ex.trace, BOOK_READERS[venue.name], ex.arrived)
    expected, ambiguous, unsure = reference.expected, reference.ambiguous, reference.unsure
    columns = _columns(d1, snapshots)
    written = {(k[1], k[2]): dict(zip(columns, vals)) for k, vals in d1.writes.items() if k[0] == snapshots}
    delisted_last: set[tuple[int, int]] = set()
    for shard_rows in expected.values():
        for market in venue.delisted_at:
            # (Not the windows of a new market listed under its id since: the old one's
            # frames were all stamped by the delisting, by the exchange's clock. The new
            # one's first window is not judged on its covered time either: when the
            # shard let the old market go and took the new one is not in the trace.)
            until = venue.delisted_at[market] + venue.plan.timing.offset_ms if market in venue.relisted_at else 2**62
            starts = [s for (m, s) in shard_rows if m == market and s <= until]
            if starts:
                delisted_last.add((market, max(starts)))
            new_market = [s for (m, s) in shard_rows if m == market and s > until]
            if new_market:
                delisted_last.add((market, min(new_market)))
    for market, listed in venue.relisted_at.items():
        # The window its id was listed again in: a shard that had not seen the delisting
        # (its refreshes failing) let the old book go at the new market's first frame
        # (a nonce gap), not at the listing; neither moment is its to know (seed 16809,
        # whose second delisting of the id is the one `delisted_at` keeps).
        at = listed + venue.plan.timing.offset_ms
        delisted_last.add((market, at - at % WINDOW_MS))
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
    # 20. loss justified and minimal
    v += [f"{say}{line}" for line in check_loss(world, venue, reference.ran_ahead)[:3]]
    # 21. renamed markets
    v += check_renames(world, venue)

    # 6. after the final stop (and 2: a lost range once saved stays recorded)
    v += [f"{say}{line}" for line in venue.forgotten_lost[:3]]
    # Never recorded lost when it was measured: a window D1 acknowledged to a live
    # instance is not in that shard's lost ranges.
    for shard, starts in sorted(venue.acknowledged.items()):
        wrongly = sorted(start for start in starts if in_lost(shard, start))
        if wrongly:
            v.append(f"{say}shard {shard}: window(s) from {wrongly[0]} ({len(wrongly)}) recorded lost, "
                     f"though D1 acknowledged writing them")
    # Other shards read is_tracking from these rows before rolling up: a stopped shard
    # whose row still says it tracks holds their minutes back for good.
    stats_table = TABLES[venue.name][4]
    for row in d1.rows(f"SELECT * FROM {stats_table} WHERE is_tracking != 0"):
        v.append(f"{say}{stats_table} row of shard {row.get('shard')} still says is_tracking after the final stop")
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
        got = hours.get((market, hour))
        if got is None:
            # Minutes of it are in D1, so it was rolled: only its own retention may prune it.
            if hour >= end - config.hour_retention_ms:
                v.append(f"{say}hour {market}@{hour} never rolled up from its minutes, or pruned before "
                         f"HOUR_RETENTION")
            continue
        if hour < end - config.minute_retention_ms:
            continue  # some minutes of it may be pruned: its values are not judged
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
        # Judged by when a frame arrived: one queued behind a backlog (handled later, the
        # alarm let in at a breath) must not be lost either.
        lagged = [(shard, at, m, ts, came) for shard, at, m, ts, came in late if came - ts <= own_lag]
        if lagged:
            shard, at, m, ts, came = lagged[0]
            queued = f", handled {at} after a backlog" if came < at else ""
            v.append(f"{say}{len(lagged)} update(s) dropped as late with a lag of at most {own_lag} ms, within "
                     f"the bound (first: market {m} stamped {ts}, arrived {came}{queued} on shard {shard})")
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
    for shard, dropped_at, market, ts, _ in late:
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
        symbols_table = f"{name}_market_symbols"  # every symbol each market had (schema.sql)
        if venue is None:
            for table in (*tables, symbols_table):
                n = d1.rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
                if n:
                    v.append(f"{table} holds {n} row(s) but the world ran no {name}")
            continue
        own = _own_markets(venue)  # market id -> its symbols
        for table in (markets_table, symbols_table, *data_tables):
            for r in d1.rows(f"SELECT DISTINCT market_index, symbol FROM {table}"):
                if r["symbol"] not in own.get(r["market_index"], ()):
                    v.append(f"{table} holds market {r['market_index']} {r['symbol']!r}, not one of {name}'s")
                    break
        for r in d1.rows(f"SELECT shard FROM {stats_table}"):
            if not 0 <= r["shard"] < venue.max_shards:
                v.append(f"{stats_table} holds shard {r['shard']}: {name} never ran more than {venue.max_shards}")
    return v


def check_symbols(world) -> list[str]:
    """23. Every symbol a market was saved or written under is in *_market_symbols (the
    API answers `symbol` through it): every (market, symbol) of *_markets, and of the
    window, minute and hour rows."""
    v: list[str] = []
    for venue in world.venues:
        markets_table, windows, minutes, hours, _ = TABLES[venue.name]
        for table in (markets_table, windows, minutes, hours):
            missing = world.d1.rows(
                f"SELECT DISTINCT market_index, symbol FROM {table} AS t WHERE NOT EXISTS (SELECT 1 FROM "
                f"{venue.name}_market_symbols AS s WHERE s.symbol = t.symbol AND s.market_index = t.market_index) "
                "LIMIT 1")
            if missing:
                r = missing[0]
                v.append(f"{table} holds market {r['market_index']} as {r['symbol']!r}, which "
                         f"{venue.name}_market_symbols does not: the API cannot answer that symbol")
    return v


def _own_markets(venue) -> dict[int, set[str]]:
    """Every market the exchange ever listed that its shards may track (its allowlist's
    only), with every symbol it was listed under (Lighter renames markets)."""
    ex = venue.ex
    if venue.name == "lighter":
        listed = {m: {e["symbol"]} | ex.symbols_of.get(m, set()) for m, e in ex.listing.items()}
    else:
        kinds = venue.config.paradex_asset_kinds
        from paradex import SPECS

        listed = {m: {s} for m, s in ex.symbols.items() if SPECS[s][0] in kinds}
    own = {m: {s for s in symbols if venue.config.tracks(s)} for m, symbols in listed.items()}
    return {m: symbols for m, symbols in own.items() if symbols}


def _columns(d1, table: str) -> list[str]:
    return [r["name"] for r in d1.rows(f"PRAGMA table_info({table})")]


def _pruned_minute(world, venue, minute: int) -> bool:
    return minute < world.loop_end_ms - venue.config.minute_retention_ms


def check_api(world) -> list[str]:
    """17-19. The Worker's API in the same world (worker.py)."""
    from worker import PAGE_ROUTES, reference_page

    v: list[str] = []
    records = world.worker.records
    end = world.loop_end_ms
    for r in records:
        if r.done is None:
            continue  # still waiting when the run ended
        what = f"API {r.method} {r.url} at {r.at}"
        body = _json_object(r.text)
        # 17. no 5xx but for D1's trouble, and then JSON
        failed = r.status >= 500 and not (r.path == "/api/health" and r.status == 503 and "status" in body)
        if (failed or r.stream_failed) and not r.d1_trouble:
            v.append(f"{what} answered {r.status}{' (its body broke off: ' + r.stream_failed + ')' if r.stream_failed else ''} "
                     f"while D1 was neither failing nor hanging: {r.text[:200]}")
        if failed and not ("error" in body and "requestId" in body):
            v.append(f"{what} answered {r.status} without a JSON error and requestId: {r.text[:200]}")
        if not _documented(r):
            v.append(f"{what} answered {r.status}, not a status its route documents")
        if r.path not in PAGE_ROUTES or r.status not in (200, 304):
            continue
        key = PAGE_ROUTES[r.path]
        rows = body.get(key) if r.status == 200 else None
        if r.purpose == "repeat":
            first = records[r.repeat_of]
            if r.status == 304:
                rows = _json_object(first.text).get(key)  # the client's copy, said to be current
            elif not _prunable(world, r, r.at):
                diff = _rows_differ(rows, _json_object(first.text).get(key))
                if diff:
                    v.append(f"{what}: a page answered as final at {first.at} changed: {diff}")
        # 18. what D1 held at that moment (a cache hit: unless retention may have pruned it since)
        if r.reference is not None and rows is not None:
            hit = r.answer_headers.get("x-cache") == "hit" or r.status == 304
            if not (hit and _prunable(world, r, r.reference_at)):
                diff = _rows_differ(rows, r.reference)
                if diff:
                    v.append(f"{what} ({r.answer_headers.get('x-cache', 'no x-cache')}): the page is not what D1 "
                             f"held at {r.reference_at}: {diff}")
        # 19. final history stays as it was served
        if r.status == 200 and r.final() and not _prunable(world, r, end):
            diff = _rows_differ(rows, reference_page(world, r))
            if diff:
                v.append(f"{what}: served as final, but D1 holds other rows at the end of the run: {diff}")
    return v[:5]


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _rows_differ(got, want) -> str | None:
    """How two pages of rows differ (the columns of `got`), or None."""
    if not isinstance(got, list) or not isinstance(want, list):
        return f"not a page of rows: {str(got)[:80]} / {str(want)[:80]}"
    if len(got) != len(want):
        return f"{len(got)} rows, D1 {len(want)}"
    for a, b in zip(got, want):
        if any(a.get(k) != b.get(k) for k in a):
            changed = [k for k in a if a.get(k) != b.get(k)]
            return f"row {a.get('market_index')}@{a.get('timestamp')}: {changed[:3]} {[a.get(k) for k in changed[:3]]} " \
                   f"vs {[b.get(k) for k in changed[:3]]}"
    return None


def _prunable(world, record, at: int) -> bool:
    """Whether retention may have pruned rows of the page by `at`: its `from` is older
    than the table's retention then (a prune's cutoff is at most its time minus it)."""
    from worker import PAGE_ROUTES

    params = record.params()
    venue = next((v for v in world.venues if v.name == (params.get("exchange") or "lighter").lower()), None)
    if venue is None:
        return False
    retention = {"snapshots": venue.config.snapshot_retention_ms, "minutes": venue.config.minute_retention_ms,
                 "hours": venue.config.hour_retention_ms}[PAGE_ROUTES[record.path]]
    try:
        since = int(params.get("from", 0))
    except ValueError:
        return True
    return since < at - retention


def _documented(record) -> bool:
    """Whether the answer's status is one the OpenAPI document gives its route and
    method (or the router's own: 404 for an unknown route, 405 for a method it does not
    take, 204 for a preflight)."""
    from worker import ROUTES

    methods = ROUTES.get(record.path)
    if methods is None:
        return record.status == 404
    if record.method == "OPTIONS":
        return record.status in (204, 405)
    if record.method not in methods:
        return record.status == 405
    return str(record.status) in methods[record.method]["responses"]


def check_loss(world, venue, ran_ahead: dict[int, list[tuple[int, int]]] | None = None) -> list[str]:
    """20. Every lost range a shard saved is justified (see the module doc), from what
    the world saw it store (Venue.puts) and when its alarms closed windows (the trace);
    and so is every `clock_ahead_ms` it saved, from how far its kept stamps ran ahead
    (`ran_ahead`, from the reference)."""
    v: list[str] = []
    if ran_ahead is not None:
        v += _unjustified_ahead(venue, ran_ahead)
    window_ms = venue.config.window_ms
    bound = venue.config.outbox_max_windows
    closed: dict[int, list[tuple[int, int]]] = {}  # shard -> (at, boundary) of each close
    for entry in venue.ex.trace:
        if entry[0] == "flush":
            closed.setdefault(entry[1], []).append((entry[3], entry[2]))
    shards = sorted({p[1] for p in venue.puts})
    for shard in shards:
        state: dict = {}
        state_life = None
        inherited: dict = {}  # the state the recording instance found: its predecessor's last
        index: set[int] = set()
        added: set[int] = set()
        for at, _, life, state_text, index_text, chunks in (p for p in venue.puts if p[1] == shard):
            added |= chunks
            dropped: set[int] = set()
            if index_text is not None:
                now_index = {e[0] for e in json.loads(index_text)}
                held = index | added
                dropped = held - now_index
                # Only the bound drops from the outbox here (D1's acknowledgement removes
                # entries in writes of their own, without new chunks); fewer than it asks
                # when windows being written to D1 are spared.
                if dropped and added and len(dropped) > len(held) - bound:
                    v.append(f"shard {shard} dropped {len(dropped)} window(s) from an outbox of {len(held)} "
                             f"at {at}: OUTBOX_MAX_WINDOWS {bound} needs {max(0, len(held) - bound)}")
                index, added = now_index, set()
            if state_text is None:
                continue
            new = json.loads(state_text)
            if life != state_life:
                inherited = state
            # Not resumed yet: this instance has not moved what it found (it measured nothing).
            fresh = (state.get("flushed_until") or 0) == (inherited.get("flushed_until") or 0)
            old = {(r["from"], r["to"]) for r in state.get("lost_ranges") or []}
            for a, b in ((r["from"], r["to"]) for r in new.get("lost_ranges") or []):
                if (a, b) in old:
                    continue
                why = _unjustified(a, b, at, inherited if fresh and state_life is not None else None, dropped,
                                   closed.get(shard, []), window_ms)
                if why:
                    v.append(f"shard {shard} recorded [{a}, {b}) lost at {at}: {why}")
            state, state_life = new, life
    return v


def _unjustified_ahead(venue, ran_ahead: dict[int, list[tuple[int, int]]]) -> list[str]:
    """Every `clock_ahead_ms` a shard saved, where it changed (an alarm measured it; a
    state carries the last one on, across a stop and a restart), is at most how far
    past the clock's reading the stamps the shard kept ran in the span before."""
    v: list[str] = []
    said_before: dict[int, int] = {}
    for at, shard, _, state_text, _, _ in venue.puts:
        if state_text is None:
            continue
        said = json.loads(state_text).get("clock_ahead_ms") or 0
        if said == said_before.get(shard, 0):
            continue
        said_before[shard] = said
        readings = ran_ahead.get(shard, [])
        span = readings[bisect_right(readings, (at - LAG_SPAN_MS, 2**62)):bisect_right(readings, (at, 2**62))]
        ran = max((ahead for _, ahead in span), default=0)
        if said > ran:
            v.append(f"shard {shard} saved at {at} that its stamps ran {said} ms ahead of the clock: they ran "
                     f"{ran} ms ahead in the {LAG_SPAN_MS // 1000} s before (a successor would skip windows "
                     f"nobody measured)")
    return v


def _unjustified(a: int, b: int, at: int, before: dict | None, dropped: set[int],
                 closes: list[tuple[int, int]], window_ms: int) -> str | None:
    """None if the range [a, b) recorded at `at` is justified, else why not. `before`:
    the state a new instance found, its predecessor's last (None: the recording instance
    has measured already, or is the shard's first)."""
    single = b - a == window_ms
    if single and a in dropped:
        return None  # pushed out of a full outbox, in the very write that dropped it
    # Given up open: more than MAX_OPEN_WINDOWS windows were open at once (alarms stalled).
    # It can be given up only once a frame stamped MAX_OPEN_WINDOWS - 1 windows past its
    # end came, which the clock reads at most MAX_CLOCK_AHEAD_MS (+ a window) earlier;
    # and no alarm had closed it before then.
    earliest = b + (MAX_OPEN_WINDOWS - 1) * window_ms - MAX_CLOCK_AHEAD_MS - window_ms
    if single and earliest <= at and not any(boundary >= b for when, boundary in closes if when < earliest):
        return None
    if before is not None and before.get("tracking"):
        flushed = before.get("flushed_until") or 0
        ahead = max(0, before.get("clock_ahead_ms") or 0)
        resume = at + ahead
        limit = resume - resume % window_ms + window_ms
        if a < flushed:
            return f"the evicted instance had closed up to {flushed}: measured windows called lost"
        if b > limit:
            return (f"more than the downtime plus one window: the new instance measures from {limit} "
                    f"({(b - limit) // window_ms} window(s) more)")
        return None
    if single:
        return "a single window neither dropped from a full outbox nor left open (an alarm had closed it)"
    return "no eviction or restart before it (the instance recording it had measured already)"


def check_renames(world, venue) -> list[str]:
    """21. Rows of a renamed market carry its new symbol once a refresh has seen it."""
    v: list[str] = []
    markets_table, snapshots = TABLES[venue.name][0], TABLES[venue.name][1]
    for i, (at, market, symbol) in enumerate(venue.renamed):
        seen_by = at + venue.config.market_refresh_ms + 20_000  # a refresh, its hand-over, a window
        if not (world._tracking_throughout(venue, at, seen_by) and world._quiet_between(venue, at, seen_by)):
            continue
        # Until the market's next change of name, if any (by the exchange's stamps, a
        # window or two before it may have either).
        later = [a for a, m, _ in venue.renamed[i + 1:] if m == market]
        until = later[0] - 2 * WINDOW_MS - abs(venue.plan.timing.offset_ms) if later else 2**62
        stale = world.d1.rows(f"SELECT timestamp, symbol FROM {snapshots} WHERE market_index = ? AND timestamp >= ? "
                              "AND timestamp < ? AND symbol != ? ORDER BY timestamp LIMIT 1",
                              market, seen_by, until, symbol)
        if stale:
            v.append(f"market {market} renamed {symbol!r} at {at}: its window at {stale[0]['timestamp']} "
                     f"still says {stale[0]['symbol']!r}")
        listed = world.d1.rows(f"SELECT symbol FROM {markets_table} WHERE market_index = ?", market)
        if listed and listed[0]["symbol"] != symbol and seen_by <= world.loop_end_ms and not later:
            v.append(f"market {market} renamed {symbol!r} at {at}: {markets_table} still says {listed[0]['symbol']!r}")
    return v
