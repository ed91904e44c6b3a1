"""What a shard could not measure: recorded with its range, and said.

A window that truly cannot be measured is recorded lost with its range, never
silently missing (and never recorded lost when it was measured): the windows a
fresh instance did not see (`record_unmeasured`), and the open windows the
aggregator gave up while no alarm closed them (`record_given_up`). Both go into
the state the caller's next write saves, the same write that moves
flushed_until past them. Frames that came after their window was written are
not a lost window, but what a window did not get: `LateFrames` says so at most
once a minute, with the feed's lag that explains them.
"""

from __future__ import annotations

from .aggregator import WindowAggregator
from .feedtime import MAX_FEED_LAG_MS, FeedLag, RecentCount
from .ports import Log
from .state import TrackerState

LATE_LOG_EVERY_MS = 60_000


def record_unmeasured(state: TrackerState, now: int, window_ms: int, log: Log) -> None:
    """A fresh instance while tracking is on (eviction, deploy, restart): the windows
    from the last closed one up to the end of the window in progress were not (wholly)
    measured; record them lost, and measure from the next window on."""
    # The window after the one in progress: by the exchange's stamps, which the
    # previous instance saw run this far ahead of our clock (its frames of that
    # window went with it).
    stamps_now = now + state.clock_ahead_ms
    resume_from = stamps_now - stamps_now % window_ms + window_ms
    lost = state.record_lost(state.flushed_until, resume_from, window_ms)
    if lost:
        log("warn", "Aggregator", "windows_lost", f"resumed after a restart: {lost} window(s) were not measured")
    state.flushed_until = max(state.flushed_until, resume_from)


def record_given_up(state: TrackerState, aggregator: WindowAggregator, window_ms: int, log: Log) -> None:
    """Windows the aggregator gave up while alarms stalled (more than MAX_OPEN_WINDOWS
    open) are lost."""
    given_up, aggregator.given_up = aggregator.given_up, []
    for start in given_up:
        state.record_lost(start, start + window_ms, window_ms)
    if given_up:
        log("warn", "Aggregator", "windows_lost",
            f"no alarm closed windows for a while: gave up {len(given_up)} open window(s) "
            f"(from {given_up[0]}), recorded lost")


class LateFrames:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.recent = RecentCount()  # frames dropped as late, over about the last minute
        self._logged_at: int | None = None

    def report(self, now: int, dropped_late: int, lag: FeedLag) -> None:
        """`dropped_late`: the run's count so far. Logged at most once a minute."""
        late = self.recent.observe(now, dropped_late)
        if not late or (self._logged_at is not None and now - self._logged_at < LATE_LOG_EVERY_MS):
            return
        self._logged_at = now
        estimate = lag.estimate(now)
        said = "unknown" if estimate is None else f"{estimate / 1000:.1f}s"
        self.log("warn", "Aggregator", "late_frames",
                 f"{late} frame(s) in the last minute came after their window was written: the feed lags "
                 f"{said}, windows wait {lag.close_delay(now) / 1000:.1f}s for it beyond FLUSH_GRACE_MS "
                 f"(at most {MAX_FEED_LAG_MS / 1000:.0f}s)")
