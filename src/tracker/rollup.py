"""Roll 15 s window rows up into minute rows, and minute rows up into hour rows, and
keep a shard's history within its retention.

`Rollup` is a shard's part that does it against D1 (`run`, called after each flush):
which minutes may be rolled (every window of them in D1, all shards'), the minutes
and hours themselves, the minutes a previous run still owes, and the prune. It
keeps its frontiers in the shard's `TrackerState` (saved with it).

An hour row is written from the hour's minutes in D1, again whenever a minute of
it changed (a later run in the same hour, a previous run's minutes rolled late),
once no minute of it is still owed (`ripe_hours`); a stop thus always ends with
the partial hour written from all of its minutes.

The arithmetic is pure (`rollup_minutes`, `rollup_hours`, `ripe_hours`): a
rolled-up row is the tick-weighted average of its parts (each part's means
weighted by its tick count), the min/max of their spreads, the last bid/ask of
its newest part, a time-weighted mid weighted by the time each part covered, depth
means weighted by each part's depth samples (parts without samples carry no depth
and weigh nothing), and slippage means at each size weighted by each part's
fill_samples at that size (likewise). Input rows are dicts as D1 returns them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from . import sql
from .rows import DEPTH_MEANS, SLIPPAGE_NAMES, HourRow, MinuteRow, imbalance

if TYPE_CHECKING:
    from .config import Config
    from .outbox import Entry, Outbox
    from .ports import Clock, Database, Log, Statement
    from .state import TrackerState

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
# A rollup catches up at most this much history per run (after a long outage it
# advances hour by hour; nothing is skipped).
ROLLUP_CHUNK_MS = 60 * MINUTE_MS

_WEIGHTED = ("avg_bid", "avg_ask", "avg_spread", "avg_spread_bps", "avg_bid_size", "avg_ask_size")


def rollup_minutes(windows: Iterable[dict]) -> list[MinuteRow]:
    """Window rows -> one MinuteRow per (market, minute); `windows` counts its windows.
    Rows are keyed by market, not symbol: markets sharing a symbol stay apart."""
    return [
        MinuteRow(**_roll(minute, rows), windows=len(rows))
        for (_, minute), rows in _groups(windows, MINUTE_MS)
    ]


def rollup_hours(minutes: Iterable[dict]) -> list[HourRow]:
    """Minute rows -> one HourRow per (market, hour); `windows` sums its minutes' windows."""
    return [
        HourRow(**_roll(hour, rows), windows=sum(r["windows"] for r in rows))
        for (_, hour), rows in _groups(minutes, HOUR_MS)
    ]


def mark_stale(stale: list[list[int]], shards: int, minute_starts: Iterable[int]) -> None:
    """The hours of minutes just (re)written under `shards` need their rows (re)written:
    add each to `stale` ([shards, hour start]) once."""
    for hour in sorted({ms - ms % HOUR_MS for ms in minute_starts}):
        if [shards, hour] not in stale:
            stale.append([shards, hour])


def ripe_hours(stale: list[list[int]], owed: list[tuple[int, int]]) -> list[list[int]]:
    """The stale hours ([shards, hour start]) that no owed minute ([since, until): still
    to be rolled, so still to change) falls in: every minute of them is as final as
    it will be, and their rows can be written. While tracking, an hour ripens when the
    run's minutes pass its end; once stopped, the partial hour ripens with the run's
    last minute (or at once, when no minute was left to roll)."""
    return [h for h in stale if not any(since < h[1] + HOUR_MS and h[1] < until for since, until in owed)]


def _groups(rows: Iterable[dict], period: int) -> list[tuple[tuple[int, int], list[dict]]]:
    groups: dict[tuple[int, int], list[dict]] = {}
    for row in rows:
        if row["tick_count"] > 0:
            start = row["timestamp"] - row["timestamp"] % period
            groups.setdefault((row["market_index"], start), []).append(row)
    return sorted(groups.items())


def _roll(start: int, rows: list[dict]) -> dict:
    rows.sort(key=lambda r: r["timestamp"])
    ticks = sum(r["tick_count"] for r in rows)
    means = {f: sum(r[f] * r["tick_count"] for r in rows) / ticks for f in _WEIGHTED}
    covered = sum(r["covered_ms"] for r in rows if r["twap_mid"] is not None)
    twap = (
        sum(r["twap_mid"] * r["covered_ms"] for r in rows if r["twap_mid"] is not None) / covered
        if covered
        else None
    )
    # Rows written before the depth columns existed have depth_samples 0 (or, read
    # from an old table, no such key) and NULL depth: they weigh nothing here.
    sampled = [r for r in rows if (r.get("depth_samples") or 0) > 0]
    samples = sum(r["depth_samples"] for r in sampled)
    depth = {
        f: sum(r[f] * r["depth_samples"] for r in sampled) / samples if samples else None for f in DEPTH_MEANS
    }
    slippage = {}
    for name in SLIPPAGE_NAMES:
        count = f"fill_samples_{name}"
        # Rows from before the slippage columns existed: 0 (or no key) and NULL, weigh nothing.
        filled = [r for r in rows if (r.get(count) or 0) > 0]
        n = sum(r[count] for r in filled)
        for column in (f"slip_buy_{name}", f"slip_sell_{name}"):
            slippage[column] = sum(r[column] * r[count] for r in filled) / n if n else None
        slippage[count] = n
    last = rows[-1]
    return {
        "symbol": last["symbol"],
        "market_index": last["market_index"],
        "timestamp": start,
        "avg_bid": means["avg_bid"],
        "avg_ask": means["avg_ask"],
        "avg_spread": means["avg_spread"],
        "tick_count": ticks,
        "avg_mid": (means["avg_bid"] + means["avg_ask"]) / 2,
        "avg_spread_bps": means["avg_spread_bps"],
        "min_spread": min(r["min_spread"] for r in rows),
        "max_spread": max(r["max_spread"] for r in rows),
        "avg_bid_size": means["avg_bid_size"],
        "avg_ask_size": means["avg_ask_size"],
        "last_bid": last["last_bid"],
        "last_ask": last["last_ask"],
        "twap_mid": twap,
        "covered_ms": covered,
        **depth,
        "imbalance_50": imbalance(depth["bid_depth_50"], depth["ask_depth_50"]),
        "depth_samples": samples,
        **slippage,
    }


def _floor_hour(ms: int) -> int:
    return ms - ms % HOUR_MS


def _ceil_minute(ms: int) -> int:
    return -(-ms // MINUTE_MS) * MINUTE_MS


def _owe(debts: list[list[int]], shards: int, since: int, until: int) -> None:
    """Add minutes [since, until) owed under `shards`, merged with what is owed already."""
    for debt in debts:
        if debt[0] == shards and since <= debt[2] and debt[1] <= until:
            debt[1], debt[2] = min(debt[1], since), max(debt[2], until)
            return
    debts.append([shards, since, until])


class Rollup:
    """One shard's minutes and hours from its windows in D1, and its retention.

    A minute is rolled up only once every window of it is in D1: below this shard's
    outbox AND below every other shard's (after a SHARDS change one market's minute
    can hold windows written by two shards; `tracking_stats` says how far each
    shard's windows are in D1). A window is pruned only below the minutes every
    shard has rolled. A previous run's minutes still owed (its outbox drained after
    a new start) are rolled with that run's split of markets. An hour's row is
    (re)written from its minutes in D1 after any minute of it was, once none of its
    minutes is still owed (`stale_hours` in the state, `ripe_hours`).

    The shard supplies what it owns: the state (saved by `save`), the outbox, the
    run's SHARDS (`shards`) and its stats row (`stats_rows(now, remaining)`: the row, or
    none when nothing it reports moved), written in the prune batch so other shards
    read the frontiers this run just moved.
    """

    def __init__(self, state: TrackerState, outbox: Outbox, db: Database, clock: Clock, log: Log,
                 statements: sql.Statements, config: Config, shard: int, shards: Callable[[], int],
                 save: Callable[[], Awaitable[None]],
                 stats_rows: Callable[[int, list[Entry]], list[Statement]]) -> None:
        self.state = state
        self.outbox = outbox
        self.db = db
        self.clock = clock
        self.log = log
        self.sql = statements
        self.config = config
        self.shard = shard
        self.shards = shards
        self.save = save
        self.stats_rows = stats_rows

    # -- a run's frontiers -------------------------------------------------------------

    def start_run(self, measured_from: int) -> None:
        """A new run measures windows from `measured_from` (its first window's start).
        The previous run's last minutes, if not rolled yet (its outbox may still
        drain), stay owed and are rolled with that run's split of markets; the new
        run rolls from its first minute. Call before the state takes the new run's
        SHARDS and start."""
        state = self.state
        if state.started_at is not None and state.minutes_rolled_until < _ceil_minute(state.flushed_until):
            _owe(state.rollup_debts, state.shards, state.minutes_rolled_until, _ceil_minute(state.flushed_until))
        state.minutes_rolled_until = measured_from - measured_from % MINUTE_MS

    @property
    def pending(self) -> bool:
        """Stopped, and the last (partial) minute is not rolled up yet (another shard's
        windows of it are not all in D1), or an hour row not rewritten yet."""
        state = self.state
        if state.tracking or state.started_at is None:
            return False
        return (bool(state.rollup_debts or state.stale_hours)
                or state.minutes_rolled_until < _ceil_minute(state.flushed_until))

    def sealed_until(self) -> int:
        """History ending at or before this is final in D1: windows written, their
        minutes rolled (this run's and any still owed by a previous run), and the
        hours of those minutes written (an hour whose minutes are all rolled but whose
        row is not rewritten yet, after a failed write, holds it back)."""
        state = self.state
        unwritten = [hour for _, hour in ripe_hours(state.stale_hours, self._owed())]
        return min([self.written_until(), state.minutes_rolled_until] + [d[1] for d in state.rollup_debts]
                   + unwritten)

    def _owed(self) -> list[tuple[int, int]]:
        """Minutes this shard may still roll (so still change): the current run's from
        its frontier on (up to the end of its last window once stopped), and the
        minutes previous runs still owe."""
        state = self.state
        owed = [(since, until) for _, since, until in state.rollup_debts]
        if state.tracking:
            owed.append((state.minutes_rolled_until, 2**62))
        elif state.minutes_rolled_until < _ceil_minute(state.flushed_until):
            owed.append((state.minutes_rolled_until, _ceil_minute(state.flushed_until)))
        return owed

    def written_until(self, entries: list[Entry] | None = None) -> int:
        """Every window before this is in D1 (or was never measured)."""
        flushed = self.state.flushed_until
        if entries is None:
            oldest = self.outbox.oldest
        else:  # the outbox as it will be after a flush: those entries, and any being added
            starts = ([entries[0].start] if entries else []) + self.outbox.staging
            oldest = min(starts) if starts else None
        return flushed if oldest is None else min(oldest, flushed)

    # -- rolling up ----------------------------------------------------------------------

    async def run(self, final: bool) -> None:
        """Minutes from windows that are in D1, then retention. `final`: the caller
        flushed after a stop (the partial minute is all there will be). Raises on a
        D1 failure: what was not rolled is rolled at the next run."""
        state = self.state
        db = self.db
        # A start() can begin the next run while this rollup awaits D1 (a stopped run's
        # last flush, its `final` included): what it worked out from the old run is then
        # stale, and written into the new run's state it would mark the new run's first
        # minute rolled before that run's windows of it exist (seed 5200). Overtaken so,
        # it stops at once and records nothing: start() made the old run's unrolled
        # minutes a debt, rolled later (a minute's upsert only ever gains windows).
        run = state.started_at
        others = (await db.query(self.sql.SELECT_OTHERS_FRONTIERS, self.shard) or [{}])[0]
        if state.started_at != run:
            return
        # Every window before `limit` is in D1, all shards'. Stopped with an empty
        # outbox, this shard writes no more windows: it sets no limit of its own.
        producing = state.tracking or self.outbox.windows
        limit = self.written_until() if producing else 2**62
        if others.get("written") is not None:
            limit = min(limit, others["written"])
        frontier = min(limit - limit % MINUTE_MS, _ceil_minute(state.flushed_until))
        for debt in list(state.rollup_debts):  # [shards, since, until]
            debt_until = debt[2] if limit >= debt[2] else frontier
            rolled = await self._roll_minutes(debt[0], debt[1], debt_until)
            if state.started_at != run:
                return
            debt[1] = rolled
            if debt[1] >= debt[2]:
                state.rollup_debts.remove(debt)
        until = frontier
        # `final` as the caller saw it: a start() since (while the outbox drained) voids it.
        if final and not state.tracking and not self.outbox.windows and limit >= state.flushed_until:
            until = _ceil_minute(state.flushed_until)  # stopped: the partial minute is all there will be
        rolled = await self._roll_minutes(self.shards(), state.minutes_rolled_until, until)
        if state.started_at != run:
            return
        state.minutes_rolled_until = rolled
        await self._roll_hours()
        await self.save()
        await self._prune(others.get("sealed"))

    async def _prune(self, others_sealed: int | None) -> None:
        now = self.clock.now_ms()
        windows_before = min(now - self.config.snapshot_retention_ms, self.sealed_until(),
                             # Never a window of this minute or the last: a run starting now
                             # measures from the last window on, and its minute's rollup
                             # reads every window of it from D1.
                             now - now % MINUTE_MS - MINUTE_MS)
        if others_sealed is not None:
            windows_before = min(windows_before, others_sealed)
        shards = self.shards()
        metas = await self.db.batch([
            (self.sql.PRUNE_WINDOWS, (windows_before, shards, self.shard)),
            # A minute is kept until its hour is rolled (the hour holding the frontier).
            (self.sql.PRUNE_MINUTES, (min(now - self.config.minute_retention_ms, _floor_hour(self.sealed_until())),
                                      shards, self.shard)),
            (self.sql.PRUNE_HOURS, (now - self.config.hour_retention_ms, shards, self.shard)),
            # The stats row again if minutes moved its frontiers: other shards read them.
            *self.stats_rows(now, self.outbox.entries),
        ])
        pruned = [int(m.get("changes") or 0) for m in metas[:3]]
        if any(pruned):
            self.log("info", "Aggregator", "pruned",
                     f"cleaned {pruned[0]} window, {pruned[1]} minute and {pruned[2]} hour rows past retention")

    async def _roll_minutes(self, shards: int, since: int, until: int) -> int:
        """Roll [since, until) of this shard's markets (by `shards`), at most
        ROLLUP_CHUNK_MS per call; returns how far it got."""
        until = min(until, since + ROLLUP_CHUNK_MS)
        if until <= since:
            return since
        db = self.db
        windows = await db.query(self.sql.SELECT_WINDOWS_FOR_ROLLUP, since, until, shards, self.shard)
        minutes = rollup_minutes(windows)
        if minutes:
            await db.batch(sql.bulk(self.sql.UPSERT_MINUTES, [m.values() for m in minutes]))
            # Their hours' rows are rewritten once no minute of them is owed any more
            # (`_roll_hours`), even if this shard or run never rolls another minute.
            mark_stale(self.state.stale_hours, shards, (m.timestamp for m in minutes))
            self.log("info", "Aggregator", "minutes",
                     f"minute averages: {len(minutes)} rows for {len({m.timestamp for m in minutes})} minute(s)")
        return until

    async def _roll_hours(self) -> None:
        """(Re)write every stale hour whose minutes are all rolled, from its minutes in
        D1 (every shard's, by the split the minutes were rolled with). A failure
        raises: the hours stay stale, and are written at the next run."""
        ripe = ripe_hours(self.state.stale_hours, self._owed())
        hours = []
        for shards, start in ripe:
            rows = await self.db.query(self.sql.SELECT_MINUTES_FOR_ROLLUP, start, start + HOUR_MS, shards, self.shard)
            hours += rollup_hours(rows)
        if hours:
            await self.db.batch(sql.bulk(self.sql.UPSERT_HOURS, [h.values() for h in hours]))
            self.log("info", "Aggregator", "hours", f"hour averages: {len(hours)} rows for {len(ripe)} hour(s)")
        for hour in ripe:
            self.state.stale_hours.remove(hour)
