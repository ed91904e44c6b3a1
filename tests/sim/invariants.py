"""What must hold after every simulated run, whatever the seed did.

1. Lighter's limits were never exceeded: no 30009, 30010, 23001, 23003, and no
   unsubscribe of a market that was not subscribed (30002).
2. Every window that received ticks is in D1 exactly once, or lies in a lost range
   the tracker recorded (a row in a lost range, from a write that landed after its
   instance was evicted, must still be exact).
3. Every D1 window row equals the reference model recomputed from the frames the
   simulated Lighter delivered (to 1e-9 relative); a retried write rewrote identical values.
4. Every minute row equals the rollup (reference model) of its windows; every
   window's minute was rolled; no window was pruned before its minute was rolled.
5. Newly listed markets were subscribed within one refresh period; delisted ones
   unsubscribed (checked by probes during the run).
6. After the final stop: no socket open, the outbox empty, no alarm left, stats
   consistent (windowsLost = the windows of the recorded lost ranges).
7. The tracker never raised out of alarm() and no background task failed.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import reference_model as ref

from tracker.outbox import INDEX_KEY
from tracker.shard import STATE_KEY

WINDOW_MS = 15_000
FORBIDDEN_CODES = (30009, 30010, 23001, 23003, 30002)


def _book_frame(text: str):
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


def reference_windows(trace: list[tuple]) -> tuple[dict[int, dict[tuple[int, int], dict]], set[tuple[int, int]]]:
    """Per shard: (market, window start) -> the row the reference expects; and the
    windows whose covered time is ambiguous: between a connection's last frame and
    the moment its end was noticed (the tracker cannot know whether a silent book
    stood; it credits time up to each window it closes meanwhile)."""
    events: dict[int, list] = {}
    ambiguous: set[tuple[int, int]] = set()
    books: dict[tuple[int, int], ref.NaiveBook] = {}
    last_ts: dict[int, int] = {}
    seen: dict[int, set[int]] = {}
    for entry in trace:
        kind, shard = entry[0], entry[1]
        stream = events.setdefault(shard, [])
        if kind == "frame":
            conn, text = entry[2], entry[3]
            frame = _book_frame(text)
            if frame is None:
                continue
            market, ts, snapshot, nonce, begin, bids, asks = frame
            book = books.setdefault((conn, market), ref.NaiveBook())
            if snapshot:
                book.snapshot(bids, asks, nonce)
            else:
                book.update(bids, asks, begin, nonce)
            stream.append(book.top_event(market, ts))
            last_ts[conn] = ts
            seen.setdefault(conn, set()).add(market)
        elif kind == "end":
            conn, ended = entry[2], entry[3]
            if conn in last_ts:
                stream.extend(ref.Event(m, last_ts[conn], "invalid") for m in sorted(seen.get(conn, ())))
                first = last_ts[conn] - last_ts[conn] % WINDOW_MS
                for start in range(first, ended + 1, WINDOW_MS):
                    ambiguous.update((m, start) for m in seen.get(conn, ()))
        elif kind == "from":
            stream.append(ref.Event(-1, entry[2], "flush"))
    return {shard: ref.expected_windows(stream, WINDOW_MS) for shard, stream in events.items()}, ambiguous


def check(world) -> list[str]:
    v: list[str] = []
    ex, d1 = world.exchange, world.d1

    # 7. nothing escaped, and no step failed but for the simulated faults
    v += world.errors[:5]
    v += [f"{entry[4]}: {entry[5]}" for entry in world.logs
          if entry[4] == "step_failed" and "simulated" not in entry[5]][:3]

    # 1. limits
    for code in FORBIDDEN_CODES:
        if ex.errors_sent[code]:
            v.append(f"Lighter answered {code} {ex.errors_sent[code]} time(s)")

    # 2-3. windows
    lost: dict[int, list[tuple[int, int]]] = {s: sorted(r) for s, r in world.lost_ranges.items()}

    def in_lost(shard: int, start: int) -> bool:
        return any(a <= start < b for a, b in lost.get(shard, ()))

    expected, ambiguous = reference_windows(ex.trace)
    rows = {(r["market_index"], r["timestamp"]): r for r in d1.rows("SELECT * FROM lighter_snapshots")}
    written = {(k[1], k[2]): dict(zip(_columns(d1, "lighter_snapshots"), vals))
               for k, vals in d1.writes.items() if len(k) == 3 and k[0] == "lighter_snapshots"}
    delisted_last: set[tuple[int, int]] = set()
    for shard_rows in expected.values():
        for market in world.delisted_at:
            starts = [s for (m, s) in shard_rows if m == market]
            if starts:
                delisted_last.add((market, max(starts)))
    owner: dict[tuple[int, int], int] = {}
    for shard, windows in expected.items():
        for key, want in windows.items():
            owner[key] = shard
            got = written.get(key)
            if in_lost(shard, key[1]) and got is None:
                continue
            # A window recorded lost may still be in D1: a batch an evicted instance
            # had in flight can land after its successor gave the window up (the
            # report errs on the side of loss); such a row must still be exact.
            if got is None:
                v.append(f"window {key} of shard {shard} had ticks but is neither in D1 nor recorded lost")
                continue
            if key in delisted_last or key in ambiguous:
                want = {k: x for k, x in want.items() if k not in ("twap_mid", "covered_ms")}
            diff = ref.row_mismatches(got, want)
            if diff:
                v.append(f"window {key} differs from the reference: {diff[:3]}")
    for key in written:
        if key not in owner:
            v.append(f"window {key} in D1 but the reference has no ticks there")
    v += d1.rewrites_differing[:3]

    # 4. minutes
    minutes = {(r["market_index"], r["timestamp"]): r for r in d1.rows("SELECT * FROM lighter_minutes")}
    by_market: dict[int, list[dict]] = {}
    for (market, _), row in written.items():
        by_market.setdefault(market, []).append(row)
    for market, window_rows in by_market.items():
        for (_, minute), want in ref.expected_minutes(window_rows).items():
            got = minutes.get((market, minute))
            if got is None:
                if not _pruned_minute(world, minute):
                    v.append(f"minute {market}@{minute} never rolled up")
                continue
            diff = ref.row_mismatches(got, want)
            if diff:
                v.append(f"minute {market}@{minute} differs from its windows' rollup: {diff[:3]}")
    v += d1.prune_violations[:3]

    # 5. listings
    v += world.probes

    # 6. after the final stop
    if ex.conns:
        v.append(f"{len(ex.conns)} connection(s) still open after stop")
    for shard, storage in world.storages.items():
        index = json.loads(storage.data.get(INDEX_KEY) or "[]")
        if index:
            v.append(f"shard {shard}: {len(index)} window(s) still in the outbox after D1 recovered")
        if storage.alarm is not None:
            v.append(f"shard {shard}: an alarm is still set after stop and drain")
        state = json.loads(storage.data.get(STATE_KEY) or "{}")
        ranges = state.get("lost_ranges") or []
        if len(ranges) < 100:
            counted = sum((r["to"] - r["from"]) // WINDOW_MS for r in ranges)
            reported = (state.get("totals") or {}).get("windows_lost", 0)
            if counted != reported:
                v.append(f"shard {shard}: windowsLost {reported} but its lost ranges hold {counted} windows")
    return v


def _columns(d1, table: str) -> list[str]:
    return [r["name"] for r in d1.rows(f"PRAGMA table_info({table})")]


def _pruned_minute(world, minute: int) -> bool:
    return minute < world.loop_end_ms - world.config.minute_retention_ms
