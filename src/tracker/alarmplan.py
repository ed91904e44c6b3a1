"""When a shard's one alarm fires next, and writing it only when it moves.

A Durable Object has one alarm, and the shard's is its only scheduler: whatever is
due (a window to close, the feed's next ping or paced send, a market refresh, D1
work owed) must be at or after the alarm. `AlarmPlan` is what the shard knows now;
`AlarmPlan.at()` is a pure function of it, the earliest due time (None: nothing is
due, no alarm). `AlarmWriter` sets it in storage, skipping a write that would
leave it as this instance's last write left it: object storage bills a row written
per setAlarm (Free plan: 100,000 a day).
"""

from __future__ import annotations

from dataclasses import dataclass

from .ports import Storage

# While the outbox holds a backlog and D1 answers, drain it this often.
DRAIN_EVERY_MS = 1_000
# After a failed D1 write, retry after 2 s, 4 s, ... at most 30 s.
RETRY_BASE_MS, RETRY_CAP_MS = 2_000, 30_000
# Stopped with the last minutes waiting for another shard: look again this often.
ROLLUP_RETRY_MS = 5_000
# An alarm is never set closer than this to now.
MIN_AHEAD_MS = 50


def next_window_close(closed_until: int, window_ms: int, close_wait: int, recheck_at: int) -> int:
    """When the oldest window not closed yet closes: its end + `close_wait` (the grace
    and the feed's lag), or at `recheck_at` if a close was held back for a backlog.
    Counted from what is closed (`closed_until`), not from now: a lane that
    reschedules just after a window's close point, before the alarm closed it, must
    not push that window's close a whole window later."""
    oldest_end = closed_until - closed_until % window_ms + window_ms
    return max(oldest_end + close_wait, recheck_at)


def retry_backoff(failures: int) -> int:
    """How long after `failures` D1 batches failed in a row to try again."""
    return min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** min(max(failures, 1) - 1, 10))


@dataclass(frozen=True)
class AlarmPlan:
    now: int
    # While tracking (None / False otherwise):
    window_close_at: int | None = None  # `next_window_close`
    save_ahead: bool = False  # the feed's stamps ran further ahead than saved: close (and save) now
    feed_due: int | None = None  # the connection's own: a reconnect, a ping, a paced send
    markets_due: int | None = None  # the next market refresh (None while that lane is busy)
    # D1, tracking or not:
    d1_owed: bool = False  # windows in the outbox, minutes to roll, a stopped shard's rows
    d1_busy: bool = False  # the d1 lane is under way: it sets the alarm again when it ends
    d1_deadline_ms: int = 0  # a D1 call ends by then at the latest
    d1_failures: int = 0  # D1 batches failed in a row
    outbox_windows: int = 0
    rollup_pending: bool = False

    def at(self) -> int | None:
        now = self.now
        due = [self.window_close_at, now if self.save_ahead else None, self.feed_due, self.markets_due]
        if self.d1_owed:
            if self.d1_busy:
                # Should this instance be evicted before the lane ends, an alarm must still
                # come for what D1 owes (seed 500): by then the lane's call has passed its
                # deadline at the latest.
                due.append(now + self.d1_deadline_ms)
            elif self.d1_failures:  # D1 refused the last batch: back off, whatever is owed
                due.append(now + retry_backoff(self.d1_failures))
            elif self.outbox_windows:
                due.append(now + DRAIN_EVERY_MS)
            elif self.rollup_pending:
                due.append(now + ROLLUP_RETRY_MS)
            else:  # a stopped shard's stats row
                due.append(now + retry_backoff(self.d1_failures))
        times = [d for d in due if d is not None]
        return max(min(times), now + MIN_AHEAD_MS) if times else None


# The alarm as this instance last wrote it is not known.
_UNKNOWN = object()


class AlarmWriter:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        # An int, None (deleted) or _UNKNOWN: as this instance's last write (the last one
        # issued: storage applies them in order) leaves it. A failed write leaves it unknown.
        self._at: object = _UNKNOWN

    def forget(self) -> None:
        """The alarm is no longer as last written (the runtime consumed it to run it)."""
        self._at = _UNKNOWN

    async def write(self, at: int | None) -> None:
        """Set the alarm (None: delete it), unless this instance's own last write left it
        so: a lane that ends wanting the alarm where it is writes nothing."""
        if at == self._at:
            return
        self._at = at
        try:
            if at is None:
                await self._storage.delete_alarm()
            else:
                await self._storage.set_alarm(at)
        except BaseException:
            self._at = _UNKNOWN
            raise
