"""What must hold after every simulated run, whatever the seed did: for each
exchange the world ran (Lighter, Paradex or both), on that exchange's own tables.

1. The exchange's limits were never exceeded and its protocol never broken.
   Lighter: no 30009, 30010, 23001, 23003, and no unsubscribe of a market that was
   not subscribed (30002). Paradex: at most 20 new connections a second and 600 a
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
   simulated exchange delivered (to 1e-9 relative); a retried write rewrote identical values.
4. Every minute row equals the rollup (reference model) of its windows; every
   window's minute was rolled; no window was pruned before its minute was rolled.
5. Newly listed markets were subscribed within one refresh period; delisted ones
   unsubscribed (checked by probes during the run).
6. After the final stop: no socket open, the outbox empty, no alarm left, stats
   consistent (windowsLost = the windows of the recorded lost ranges).
7. The tracker never raised out of alarm() and no background task failed.
8. The exchanges never mix: each exchange's tables hold only its own markets
   (Paradex's only those of the kinds tracked) and stats rows of its own shards;
   an exchange the world did not run has empty tables. With an allowlist
   (LIGHTER_MARKETS / PARADEX_MARKETS), no table holds a row of a market outside it
   (the saved market list included), and no such market was ever subscribed (1).
9. Every window row covers at most its own length (0 <= covered_ms <= window_ms).
10. A live feed is never closed as stale: a frame came within STALE_FEED_SECONDS.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import reference_model as ref

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


def reference_windows(trace: list[tuple], read=_lighter_book):
    """Per shard: (market, window start) -> the row the reference expects; the
    windows whose covered time is ambiguous: between a connection's last frame and
    the moment its end was noticed (the tracker cannot know whether a silent book
    stood; it credits time up to each window it closes meanwhile); and the windows
    the reference cannot tell: those of frames of a
    delisted market delivered after the exchange stopped it (the tracker drops them
    once its refresh has seen the delisting, which may come first)."""
    events: dict[int, list] = {}
    unsure: set[tuple[int, int]] = set()
    stopped: set[int] = set()
    ambiguous: set[tuple[int, int]] = set()
    books: dict[tuple[int, int], ref.NaiveBook] = {}
    last_ts: dict[int, int] = {}
    seen: dict[int, set[int]] = {}
    def add(stream: list, shard: int, event: ref.Event) -> None:
        stream.append(event)

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
            if market in stopped:
                unsure.add((market, ts - ts % WINDOW_MS))
            book = books.setdefault((conn, market), ref.NaiveBook())
            if snapshot:
                book.snapshot(bids, asks, nonce)
            else:
                book.update(bids, asks, begin, nonce)
            add(stream, shard, book.top_event(market, ts))
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
    expected = {shard: ref.expected_windows(stream, WINDOW_MS) for shard, stream in events.items()}
    return expected, ambiguous, unsure


def check(world) -> list[str]:
    """The violations of a finished world."""
    v: list[str] = []

    # 7. nothing escaped, and no step failed but for the simulated faults
    v += world.errors[:5]
    v += [f"{entry[4]}: {entry[5]}" for entry in world.logs
          if entry[4] == "step_failed" and "simulated" not in entry[5]][:3]

    for venue in world.venues:
        v += check_venue(world, venue)
    v += check_separation(world)

    # 5. listings
    v += world.probes
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

    expected, ambiguous, unsure = reference_windows(ex.trace, BOOK_READERS[venue.name])
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

    # 4. minutes
    minutes = {(r["market_index"], r["timestamp"]): r for r in d1.rows(f"SELECT * FROM {minutes_table}")}
    by_market: dict[int, list[dict]] = {}
    for (market, _), row in written.items():
        by_market.setdefault(market, []).append(row)
    for market, window_rows in by_market.items():
        for (_, minute), want in ref.expected_minutes(window_rows).items():
            got = minutes.get((market, minute))
            if got is None:
                if not _pruned_minute(world, venue, minute):
                    v.append(f"{say}minute {market}@{minute} never rolled up")
                continue
            diff = ref.row_mismatches(got, want)
            if diff:
                # A window the tracker gave up (recorded lost) can still land in D1 after
                # its minute's last rollup: a batch an evicted instance had in flight
                # (a D1 hang). The minute then holds the windows the tracker kept.
                kept = [r for r in window_rows if r["timestamp"] // 60_000 * 60_000 == minute
                        and not any(in_lost(s, r["timestamp"]) for s in lost)]
                alt = ref.expected_minutes(kept).get((got["symbol"], minute)) if kept else None
                if alt is None or ref.row_mismatches(got, alt):
                    v.append(f"{say}minute {market}@{minute} differs from its windows' rollup: {diff[:3]}")
    v += [line for line in d1.prune_violations if line.startswith(snapshots)][:3]

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
