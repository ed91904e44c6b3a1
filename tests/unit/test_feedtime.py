"""The exchange's clock against ours (tracker/feedtime.py, and its use in the feed):
stamps too far ahead are placed at our clock, the feed's lag is sampled once per
exchange second, and windows wait for it up to a bound."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from tracker.aggregator import WindowAggregator
from tracker.feed import BookFeed
from tracker.feedtime import (LAG_SPAN_MS, MAX_BACKLOG_WAIT_MS, MAX_CLOCK_AHEAD_MS, MAX_FEED_LAG_MS, MIN_LAG_SAMPLES,
                              FeedLag, RecentCount, close_boundary, queue_start)
from tracker.pacing import SubscriptionPacer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

T0 = 1_778_138_580_000  # a multiple of 15 s
HOUR = 3_600_000
CONNECTED = '{"type":"connected","session_id":"s1"}'


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now
        self.reads = 0

    def now_ms(self) -> int:
        self.reads += 1
        return self.now


def feed_with_clock(clock: Clock, markets=(0,), flushed_until=T0):
    logs = []
    agg = WindowAggregator(15_000, flushed_until)
    feed = BookFeed(list(markets), agg, SubscriptionPacer(), log=lambda *a: logs.append(a), clock=clock)
    feed.on_frame(CONNECTED)
    return feed, agg, logs


def snapshot(m, ts, nonce, bid="100.00", ask="101.00"):
    return ref.book_frame(m, ts_ms=ts, nonce=nonce, bids=[(bid, "1.0000")], asks=[(ask, "2.0000")], snapshot=True)


def update(m, ts, begin, nonce, bids=(), asks=()):
    return ref.book_frame(m, ts_ms=ts, nonce=nonce, begin_nonce=begin, bids=bids, asks=asks)


def rows(closed):
    return {(r.market_index, r.timestamp): dataclasses.asdict(r) for w in closed for r in w.rows}


# -- stamps too far ahead ------------------------------------------------------------------


def test_a_frame_stamped_an_hour_ahead_is_placed_at_our_clock_and_the_book_stays_whole():
    clock = Clock(T0 + 1_000)
    feed, agg, logs = feed_with_clock(clock)
    feed.on_frame(snapshot(0, T0 + 900, 10))
    clock.now = T0 + 5_200
    feed.on_frame(update(0, T0 + 5_000 + HOUR, 10, 11, bids=[("100.50", "1.0000")]))  # the wild stamp
    clock.now = T0 + 9_100
    feed.on_frame(update(0, T0 + 9_000, 11, 12, asks=[("100.80", "1.0000")]))  # the chain goes on
    assert feed.books[0].valid and feed.counters.gaps == 0
    assert feed.counters.future_frames == 1
    assert feed.last_timestamp == T0 + 9_000
    closed = agg.close_all(T0 + 15_000, {0: "ETH"})
    assert [w.start for w in closed] == [T0], "a window an hour ahead was opened"
    row = rows(closed)[(0, T0)]
    # The wild frame counts as a tick placed at our clock (T0 + 5.2 s): its mid stands from there.
    assert row["tick_count"] == 3
    assert row["covered_ms"] == 15_000 - 900
    want = (100.5 * (5_200 - 900) + 100.75 * (9_000 - 5_200) + 100.65 * (15_000 - 9_000)) / (15_000 - 900)
    assert abs(row["twap_mid"] - want) < 1e-9
    assert agg.flushed_until == T0 + 15_000
    assert [entry[2] for entry in logs].count("clock_ahead") == 1
    assert "stamped 3599.8s ahead" in next(e[3] for e in logs if e[2] == "clock_ahead")


def test_stamps_within_the_bound_are_kept_and_one_clock_read_per_exchange_second():
    clock = Clock(T0)
    feed, agg, _ = feed_with_clock(clock)
    feed.on_frame(snapshot(0, T0 + MAX_CLOCK_AHEAD_MS - 1, 10))  # just inside: kept
    nonce = 10
    for i in range(1, 20):  # 19 frames within the same exchange second
        feed.on_frame(update(0, T0 + MAX_CLOCK_AHEAD_MS - 1, nonce, nonce + 1, bids=[("100.00", f"{i}.0000")]))
        nonce += 1
    assert clock.reads == 1
    assert feed.counters.future_frames == 0 and feed.last_timestamp == T0 + MAX_CLOCK_AHEAD_MS - 1
    feed.on_frame(update(0, T0 + MAX_CLOCK_AHEAD_MS, nonce, nonce + 1))  # a new second, at the bound
    assert clock.reads == 2 and feed.counters.future_frames == 1 and feed.last_timestamp == T0


def test_a_clamped_stamp_is_not_where_the_queued_frames_begin():
    """Seed 19151: in a backlog our clock runs ahead of the queued frames' stamps, so a
    frame stamped a day ahead, placed at our clock, must not tell the alarm's close
    (feedtime.close_boundary) that the queue begins there: the stamp as sent it keeps is
    the newest unclamped one."""
    clock = Clock(T0 + 21_500)  # handled 21.5 s after the frames were stamped
    feed, agg, _ = feed_with_clock(clock)
    feed.on_frame(snapshot(0, T0 + 100, 10))
    feed.on_frame(update(0, T0 + 24 * HOUR, 10, 11, bids=[("100.50", "1.0000")]))  # the same second's reading
    assert feed.counters.future_frames == 1
    assert feed.last_timestamp == T0 + 21_500  # placed at our clock
    assert feed.last_unclamped_stamp == T0 + 100  # where the frames queued behind it begin
    assert queue_start(feed.last_unclamped_stamp, feed.last_timestamp, T0) == T0 + 100
    # An alarm let in at a breath now holds the window the queued frames fall in.
    boundary = close_boundary(T0 + 21_500, 3_000, 1_500, True, T0 + 100)
    assert boundary == T0 + 100 - 1_500 < T0 + 15_000
    feed.on_frame(update(0, T0 + 700, 11, 12, asks=[("100.80", "1.0000")]))
    assert feed.last_unclamped_stamp == feed.last_timestamp == T0 + 700


def test_an_exchange_clock_steadily_too_far_ahead_does_not_hold_every_close_after_a_breath():
    """Every frame of a clock 40 s ahead is clamped: the newest unclamped stamp, if any,
    lies in windows closed long ago, so holding for it protects nothing (the queued
    frames will be placed at our clock too) and would delay every close after a breath
    by MAX_BACKLOG_WAIT_MS (the review of dea58b8)."""
    clock = Clock(T0 + 500)
    feed, agg, _ = feed_with_clock(clock)
    feed.on_frame(snapshot(0, T0 + 400, 10))  # before the clock ran ahead
    nonce = 10
    for i in range(1, 121):  # two minutes, every frame 40 s ahead
        clock.now = T0 + 500 + i * 1_000
        feed.on_frame(update(0, clock.now + 40_000, nonce, nonce + 1, bids=[("100.00", f"{i}.0000")]))
        nonce += 1
    assert feed.counters.future_frames == 120 and feed.last_unclamped_stamp == T0 + 400
    now, wait, grace = clock.now + 300, 3_000, 1_500
    closed_until = now - wait - wait  # the alarms have kept closing windows
    start = queue_start(feed.last_unclamped_stamp, feed.last_timestamp, closed_until)
    assert start == feed.last_timestamp == clock.now
    assert close_boundary(now, wait, grace, True, start) == now - wait
    # Read as before the review, the stale unclamped stamp held the close the most a backlog may.
    assert close_boundary(now, wait, grace, True, feed.last_unclamped_stamp) == now - wait - MAX_BACKLOG_WAIT_MS


def test_an_exchange_clock_far_ahead_loses_nothing_its_frames_follow_our_clock():
    clock = Clock(T0)
    feed, agg, logs = feed_with_clock(clock)
    ahead = 60_000
    feed.on_frame(snapshot(0, T0 + ahead, 10))
    nonce = 10
    for step in range(1, 30):  # one frame a second for 29 s
        clock.now = T0 + step * 1_000
        feed.on_frame(update(0, clock.now + ahead, nonce, nonce + 1, bids=[("100.00", f"{step}.0000")]))
        nonce += 1
    closed = agg.close_until(T0 + 30_000, {0: "ETH"})
    got = rows(closed)
    assert sorted(got) == [(0, T0), (0, T0 + 15_000)]
    assert got[(0, T0)]["tick_count"] == 15 and got[(0, T0 + 15_000)]["tick_count"] == 15
    assert feed.counters.future_frames == 30
    assert [e[2] for e in logs].count("clock_ahead") == 1  # rate-limited: once a minute


def test_the_pure_feed_without_a_clock_bounds_nothing():
    feed = BookFeed([0], WindowAggregator(15_000, T0), SubscriptionPacer())
    feed.on_frame(CONNECTED)
    feed.on_frame(snapshot(0, T0 + HOUR, 10))
    assert feed.last_timestamp == T0 + HOUR and feed.counters.future_frames == 0


# -- the lag -----------------------------------------------------------------------------------


def test_the_lag_is_sampled_from_updates_once_a_second_and_snapshots_are_not_samples():
    clock = Clock(T0 + 4_000)
    feed, _, _ = feed_with_clock(clock)
    feed.on_frame(snapshot(0, T0 - 40_000, 10))  # a book's last change, long ago (Paradex)
    assert feed.lag.estimate(clock.now) is None
    feed.on_frame(update(0, T0 + 1_000, 10, 11))
    feed.on_frame(update(0, T0 + 1_500, 11, 12))  # same second: no sample
    assert feed.lag.estimate(clock.now) == 3_000


def test_the_lag_is_a_high_quantile_of_the_last_minute_bounded_for_closing():
    lag = FeedLag()
    for i in range(60):
        lag.add(T0 + i * 1_000, 2_000 + (i % 10) * 100)  # 2.0-2.9 s
    assert lag.estimate(T0 + 59_000) == 2_900
    lag.add(T0 + 59_500, HOUR)  # one stray frame stamped an hour ago
    assert lag.estimate(T0 + 59_500) == 2_900, "one stray sample moved the estimate"
    assert lag.close_delay(T0 + 59_500) == 2_900
    assert lag.estimate(T0 + 59_000 + LAG_SPAN_MS) == HOUR  # the rest aged out: it is all there is
    assert lag.estimate(T0 + 60_000 + LAG_SPAN_MS) is None
    ahead = FeedLag()
    for i in range(MIN_LAG_SAMPLES):
        ahead.add(T0 + i * 1_000, -20_000)  # the exchange's clock ahead: nothing to wait for
    assert ahead.estimate(T0 + 10_000) == -20_000 and ahead.close_delay(T0 + 10_000) == 0
    assert ahead.ahead(T0 + 10_000) == 0  # that far ahead, stamps are placed at our clock
    beyond = FeedLag()
    for i in range(MIN_LAG_SAMPLES):
        beyond.add(T0 + i * 1_000, 25_000)
    assert beyond.close_delay(T0 + 10_000) == MAX_FEED_LAG_MS


def test_until_the_lag_is_known_windows_wait_the_most():
    lag = FeedLag()
    assert lag.close_delay(T0) == MAX_FEED_LAG_MS  # no sample: a start, a feed down
    for i in range(MIN_LAG_SAMPLES - 1):
        lag.add(T0 + i * 1_000, 300)
    assert lag.estimate(T0 + 10_000) == 300 and lag.close_delay(T0 + 10_000) == MAX_FEED_LAG_MS
    lag.add(T0 + 10_000, 300)
    assert lag.close_delay(T0 + 10_000) == 300


def test_recent_count_counts_about_the_last_minute():
    recent = RecentCount()
    assert recent.observe(T0, 7) == 0  # what came before the first look is not judged
    assert recent.observe(T0 + 1_000, 9) == 2
    assert recent.observe(T0 + 15_000, 9) == 2
    assert recent.observe(T0 + 30_000, 12) == 5
    assert recent.observe(T0 + 61_000, 12) == 5  # baseline: the newest look a minute old (T0)
    assert recent.observe(T0 + 76_000, 12) == 3  # ... now T0 + 15 s: the first growth aged out
    assert recent.observe(T0 + 91_000, 12) == 0
    assert recent.observe(T0 + 92_000, 1) == 0  # a new run: totals start again
    assert recent.observe(T0 + 93_000, 4) == 3


def test_how_far_ahead_the_kept_stamps_ran():
    lag = FeedLag()
    assert lag.ahead(T0) == 0
    for i in range(20):
        lag.kept_ahead(T0 + i * 1_000, 13_000 + (i % 3) * 100)  # an exchange clock 13 s ahead
    assert lag.ahead(T0 + 21_000) == 13_200
    assert lag.ahead(T0 + 18_000 + LAG_SPAN_MS) == 13_100  # the older readings left the span
    assert lag.ahead(T0 + 19_000 + LAG_SPAN_MS) == 0


def test_a_stamp_kept_at_the_bound_counts_as_ahead_though_its_second_s_first_frame_was_placed():
    """Seed 1595 (Paradex's clock 15.5 s ahead): each second's first frame is placed at
    our clock, but a snapshot stamped with its book's last change, 14.9 s ahead, is
    kept and opens a window that far ahead; an instance resumed after this one must
    measure from the window after it. The lag samples (first frames) said 0."""
    clock = Clock(T0 + 1_000)
    feed, agg, _ = feed_with_clock(clock, markets=(0, 1))
    feed.on_frame(update(0, T0 + 1_000 + 15_500, 9, 10))  # a second's first frame: placed
    feed.on_frame(snapshot(1, T0 + 1_000 + 14_900, 20))  # the same second: kept
    assert feed.counters.future_frames == 1
    assert feed.lag.ahead(clock.now) == 0  # the second is not over: not counted yet
    clock.now = T0 + 2_000
    feed.on_frame(update(0, T0 + 2_000 + 15_500, 10, 11))  # the next second: the last one counts
    assert feed.lag.ahead(clock.now) == 14_900
    clock.now = T0 + 2_000 + LAG_SPAN_MS
    assert feed.lag.ahead(clock.now) == 0  # a minute later


def test_the_last_second_of_a_connection_counts_and_a_new_high_is_reported_once_known():
    reported = []
    lag = FeedLag(on_ahead=lambda: reported.append(lag.known_ahead))
    clock = Clock(T0)
    feed = BookFeed([0], WindowAggregator(15_000, T0), SubscriptionPacer(), clock=clock, lag=lag)
    feed.on_frame(CONNECTED)
    feed.on_frame(snapshot(0, T0 + 9_000, 10))
    assert reported == []
    feed.end_reading()  # the connection ends (FeedConnection._drop)
    assert lag.ahead(T0) == 9_000 and reported == [9_000]
    feed.end_reading()
    assert reported == [9_000]
    clock.now = T0 + 1_000
    feed.on_frame(update(0, T0 + 10_000, 10, 11))  # as far ahead as before, not further
    feed.end_reading()
    assert reported == [9_000]


def test_stamps_behind_our_clock_are_not_ahead_and_the_pure_feed_counts_nothing():
    clock = Clock(T0 + 5_000)
    feed, _, _ = feed_with_clock(clock)
    feed.on_frame(snapshot(0, T0 + 4_000, 10))
    feed.on_frame(update(0, T0 + 4_500, 10, 11))
    feed.end_reading()
    assert feed.lag.ahead(clock.now) == 0
    pure = BookFeed([0], WindowAggregator(15_000, T0), SubscriptionPacer())
    pure.on_frame(CONNECTED)
    pure.on_frame(snapshot(0, T0 + HOUR, 10))
    pure.end_reading()
    assert pure.lag.ahead(T0) == 0
