"""A shard's stats read off its parts: a run's counters are the state's totals plus the
live feed's; a part the shard does not have reads as zero; the outbox, lost windows and
the open window are reported as they stand."""

from __future__ import annotations

from tracker.aggregator import WindowAggregator
from tracker.config import Config
from tracker.connection import FeedConnection
from tracker.directory import MarketDirectory
from tracker.exchange import LIGHTER
from tracker.feedtime import FeedLag, RecentCount
from tracker.markets import Market
from tracker.shardview import counted, shard_stats
from tracker.state import Totals, TrackerState

NOW = 1_780_000_005_000  # 5 s into a window


def view(state: TrackerState, **parts):
    defaults = dict(shard=2, now=NOW, state=state, directory=None, connection=None, aggregator=None, rollup=None,
                    outbox_windows=0, lag=FeedLag(), recent_late=RecentCount(), last_flush={}, last_error=None,
                    split_changed=None, memory={})
    return shard_stats(**{**defaults, **parts})


def test_a_shard_with_no_parts_reports_its_saved_state_and_zeros():
    state = TrackerState(tracking=False, started_at=NOW - 60_000, flushed_until=NOW - 5_000)
    state.totals.messages, state.totals.windows_lost, state.totals.alarm_errors = 1_000, 2, 1
    state.lost_ranges = [{"from": 1, "to": 2}]
    stats = view(state, outbox_windows=3, last_error="d1: timeout")
    assert (stats.shard, stats.is_tracking, stats.markets, stats.connected) == (2, False, 0, False)
    assert (stats.messages_received, stats.windows_lost, stats.alarm_errors) == (1_000, 2, 1)
    assert stats.lost_ranges == [{"from": 1, "to": 2}] and stats.lost_ranges is not state.lost_ranges
    assert (stats.pending_windows, stats.last_error, stats.sealed_until) == (3, "d1: timeout", None)
    assert stats.aggregator == {"currentSymbols": 0, "windowElapsed": 0, "windowStart": None, "openWindows": 0}
    assert stats.close_delay_ms == 0 and stats.feed_lag_ms is None


def test_the_live_feeds_counters_add_to_the_runs_and_the_open_window_shows():
    state = TrackerState(tracking=True, started_at=NOW - 60_000)
    state.totals.messages, state.totals.gaps, state.totals.late_frames = 500, 1, 4
    directory = MarketDirectory(0, 1, 60_000)
    directory.apply([Market(0, "ETH", "perp", "active"), Market(1, "BTC", "perp", "active")], as_of=NOW)
    sockets = []

    def factory(url, on_frame, on_open, on_down):
        sockets.append(type("Socket", (), {"open": True, "send": lambda self, t: None,
                                           "close": lambda self, c, r: None})())
        return sockets[-1]

    clock = type("Clock", (), {"now_ms": staticmethod(lambda: NOW)})()
    connection = FeedConnection(Config().ws_url, factory, clock, lambda *a: None, LIGHTER.budget(1), 30_000,
                                wake=lambda at: None, on_drop=lambda feed: None)
    aggregator = WindowAggregator(15_000, NOW - 5_000)
    connection.open([0, 1], aggregator)
    connection.feed.counters.messages, connection.feed.counters.gaps = 20, 2
    stats = view(state, directory=directory, connection=connection, aggregator=aggregator)
    assert (stats.markets, stats.markets_listed) == (2, 2)
    assert (stats.messages_received, stats.gaps, stats.late_frames) == (520, 3, 4)
    assert counted(state.totals, connection.feed, "messages") == 520
    assert counted(None, None, "messages") == 0 and counted(Totals(messages=7), None, "messages") == 7
    assert stats.close_delay_ms > 0  # the lag is not known yet: windows wait the most
    assert stats.aggregator["openWindows"] == aggregator.open_windows()


def test_a_shard_names_a_changed_split_and_its_memory_as_given():
    stats = view(TrackerState(tracking=True), split_changed="tracking under SHARDS=2", memory={"books": 10})
    assert stats.split_changed == "tracking under SHARDS=2" and stats.memory_bytes == {"books": 10}
