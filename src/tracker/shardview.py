"""One shard's stats (`ShardStats`), read off its parts.

What /api/stats, the dashboard and the tracking_stats row show of a shard: its
state's totals over the run plus what the live connection counted since it opened
(a connection folds its counters into the totals when it drops), and what the
parts say now. A part a shard does not have (stopped, not resumed yet, nothing
loaded) reads as zero / none.
"""

from __future__ import annotations

from .aggregator import WindowAggregator
from .connection import FeedConnection
from .directory import MarketDirectory
from .feed import BookFeed
from .feedtime import FeedLag, RecentCount
from .rollup import Rollup
from .state import Totals, TrackerState
from .stats import ShardStats


def counted(totals: Totals | None, feed: BookFeed | None, name: str) -> int:
    """A counter over the run: the state's totals plus the live feed's."""
    return (getattr(totals, name) if totals else 0) + (getattr(feed.counters, name) if feed else 0)


def shard_stats(*, shard: int, now: int, state: TrackerState, directory: MarketDirectory | None,
                connection: FeedConnection | None, aggregator: WindowAggregator | None, rollup: Rollup | None,
                outbox_windows: int, lag: FeedLag, recent_late: RecentCount, last_flush: dict,
                last_error: str | None, split_changed: str | None, memory: dict) -> ShardStats:
    totals = state.totals
    feed = connection.feed if connection else None
    window_start = aggregator.current_window_start if aggregator else None

    def count(name: str) -> int:
        return counted(totals, feed, name)

    return ShardStats(
        shard=shard,
        is_tracking=state.tracking,
        markets=len(directory.markets) if directory else 0,
        markets_listed=directory.listed if directory else 0,
        duplicate_symbols=dict(directory.duplicates) if directory else {},
        markets_not_listed=sorted(directory.not_listed) if directory else [],
        markets_added=totals.markets_added,
        markets_removed=totals.markets_removed,
        markets_refreshed_at=directory.refreshed_at if directory else None,
        connected=bool(connection and connection.connected),
        subscribed=len(feed.pacer.subscribed) if feed else 0,
        valid_books=feed.valid_books() if feed else 0,
        waiting_subscriptions=feed.pacer.waiting if feed else 0,
        eta_all_live_seconds=round(feed.pacer.eta_ms() / 1000, 1) if feed else 0.0,
        messages_received=count("messages"),
        last_message_at=feed.last_timestamp if feed else None,
        reconnects=totals.reconnects,
        gaps=count("gaps"),
        malformed=count("malformed"),
        errors=count("errors") + (connection.frame_errors if connection else 0),
        crossed=count("crossed"),
        one_sided=count("one_sided"),
        late_frames=totals.late_frames + (aggregator.late_frames if aggregator else 0),
        late_last_minute=recent_late.observe(now, count("dropped_late")),
        future_frames=count("future_frames"),
        feed_lag_ms=lag.estimate(now),
        close_delay_ms=lag.close_delay(now) if aggregator is not None else 0,
        flush_failures=totals.flush_failures,
        windows_flushed=totals.windows_flushed,
        windows_lost=totals.windows_lost + (len(aggregator.given_up) if aggregator else 0),
        lost_ranges=list(state.lost_ranges),
        rows_written=totals.rows_written,
        pending_windows=outbox_windows,
        alarm_errors=totals.alarm_errors,
        started_at=state.started_at,
        flushed_until=state.flushed_until,
        sealed_until=rollup.sealed_until() if rollup else None,
        written_until=rollup.written_until() if rollup else None,
        last_flush=last_flush,
        reconnect_at=connection.reconnect_at if connection else None,
        last_error=last_error or (connection.last_error if connection else None),
        split_changed=split_changed,
        memory_bytes=memory,
        aggregator={
            "currentSymbols": aggregator.current_markets() if aggregator else 0,
            "windowElapsed": (now - window_start) / 1000 if window_start is not None else 0,
            "windowStart": window_start,
            "openWindows": aggregator.open_windows() if aggregator else 0,
        },
    )
