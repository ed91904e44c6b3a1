"""The d1 lane's work: the outbox into D1, then the rollup and retention.

A few batches an alarm (BATCHES_PER_ALARM) drain a backlog without holding the
lane for long; each batch carries the shard's stats row when its frontier moved
(`stats_rows`, tracker/frontier.py). A batch D1 refuses stays in the outbox (it
is retried at the next alarm, after a backoff: tracker/alarmplan.py), is counted
(`flushFailures`) and said once here, and the rollup waits for a flush that
succeeds. The counters go into the state, saved here with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .frontier import StatsFrontier
from .outbox import Outbox
from .ports import Clock, Database, Log
from .rollup import Rollup
from .state import TrackerState

# Flush batches per alarm while draining a backlog.
BATCHES_PER_ALARM = 5


class Flusher:
    def __init__(self, outbox: Outbox, db: Database, clock: Clock, log: Log, frontier: StatsFrontier,
                 stats_rows: Callable[[int, list], list[tuple]], save: Callable[[], Awaitable[None]],
                 on_error: Callable[[str], None]) -> None:
        self.outbox, self.db, self.clock, self.log = outbox, db, clock, log
        self.frontier = frontier
        self.stats_rows = stats_rows  # the stats row for a batch, as of its start and the outbox after it
        self.save = save  # the state into storage (skipped when unchanged)
        self.on_error = on_error  # the shard's last error, for its stats
        self.last_flush: dict = {}  # the newest batch that wrote windows: at, rows, windows, ms

    async def run(self, state: TrackerState, rollup: Rollup, final: bool) -> None:
        """Drain, then (unless D1 refused) roll up and prune; `final`: a stop's last
        flush (the partial minute and hour too)."""
        if not await self._drain(state):
            await self.save()
            return  # D1 is failing: the rollup waits for the next flush that succeeds
        try:
            # It saves the state, the counters of the drain with it (one write, not two).
            await rollup.run(final)
        except Exception as exc:
            self.frontier.forget()  # the prune batch may have carried the stats row
            state.totals.flush_failures += 1
            self.on_error(f"D1 rollup: {exc}")
            self.log("error", "Aggregator", "rollup_failed", f"minute rollup failed, will retry: {exc}")
        await self.save()  # a rollup that stopped short of its save (nothing, if it saved this)

    async def _drain(self, state: TrackerState) -> bool:
        """Up to BATCHES_PER_ALARM batches; False when D1 refused one."""
        for _ in range(BATCHES_PER_ALARM):
            started = self.clock.now_ms()
            stopped = not state.tracking  # the stats row below is a stopped shard's (a stop() meanwhile: one write more)
            result = await self.outbox.flush(self.db, extra=lambda remaining: self.stats_rows(started, remaining))
            if result.error:
                self.frontier.forget()  # the row the batch carried is not in D1
                state.totals.flush_failures += 1
                self.on_error(f"D1 flush: {result.error}")
                self.log("error", "Aggregator", "flush_failed",
                         f"flush of {self.outbox.windows} window(s) failed, will retry: {result.error}")
                return False
            if stopped:
                state.stats_unpublished = False
            state.totals.windows_flushed += result.windows
            state.totals.rows_written += result.rows_written
            elapsed = self.clock.now_ms() - started
            if result.windows:
                self.last_flush = {"at": started, "rows": result.rows, "windows": result.windows, "ms": elapsed}
                self.log("info", "Aggregator", "flush",
                         f"flushing {result.markets} symbols: {result.rows} rows in {result.windows} window(s), {elapsed} ms")
            if not self.outbox.windows:
                break
        return True
