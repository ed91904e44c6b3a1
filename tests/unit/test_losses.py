"""What a shard could not measure: recorded lost with its range (never silently missing,
never when measured), and late frames said at most once a minute."""

from __future__ import annotations

from tracker.aggregator import WindowAggregator
from tracker.feedtime import FeedLag
from tracker.losses import LATE_LOG_EVERY_MS, LateFrames, record_given_up, record_unmeasured
from tracker.state import TrackerState

W = 15_000
T0 = 1_780_000_005_000  # a window's start


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def __call__(self, level: str, component: str, event: str, message: str) -> None:
        self.lines.append((level, event, message))


def test_a_fresh_instance_records_the_windows_it_did_not_see_and_resumes_after_the_current():
    log = Log()
    state = TrackerState(tracking=True, flushed_until=T0)
    record_unmeasured(state, T0 + 2 * W + 4_000, W, log)  # in the third window since
    assert state.flushed_until == T0 + 3 * W
    assert state.totals.windows_lost == 3 and state.lost_ranges == [{"from": T0, "to": T0 + 3 * W}]
    assert log.lines == [("warn", "windows_lost", "resumed after a restart: 3 window(s) were not measured")]


def test_stamps_ahead_of_our_clock_push_the_resume_a_window_further():
    state = TrackerState(tracking=True, flushed_until=T0, clock_ahead_ms=12_000)
    record_unmeasured(state, T0 + 4_000, W, Log())  # the exchange's stamps are in the next window
    assert state.flushed_until == T0 + 2 * W and state.totals.windows_lost == 2


def test_nothing_is_recorded_lost_when_nothing_was_missed():
    log = Log()
    state = TrackerState(tracking=True, flushed_until=T0 + 2 * W)  # already past the window in progress
    record_unmeasured(state, T0 + W + 1, W, log)
    assert state.flushed_until == T0 + 2 * W and state.totals.windows_lost == 0 and state.lost_ranges == []
    assert log.lines == []


def test_windows_the_aggregator_gave_up_are_recorded_once_each():
    log = Log()
    state = TrackerState(tracking=True)
    aggregator = WindowAggregator(W, T0)
    aggregator.given_up = [T0, T0 + W]
    record_given_up(state, aggregator, W, log)
    assert aggregator.given_up == []
    assert state.lost_ranges == [{"from": T0, "to": T0 + W}, {"from": T0 + W, "to": T0 + 2 * W}]
    assert state.totals.windows_lost == 2
    assert log.lines[0][1] == "windows_lost" and f"gave up 2 open window(s) (from {T0})" in log.lines[0][2]
    record_given_up(state, aggregator, W, log)  # nothing new
    assert state.totals.windows_lost == 2 and len(log.lines) == 1


def test_late_frames_are_said_at_most_once_a_minute_and_only_when_there_are_any():
    log = Log()
    late, lag = LateFrames(log), FeedLag()
    late.report(T0, 0, lag)
    late.report(T0 + 5_000, 3, lag)
    late.report(T0 + 10_000, 5, lag)  # more, but within the minute: not said again
    late.report(T0 + 5_000 + LATE_LOG_EVERY_MS, 9, lag)
    said = [m for _, _, m in log.lines]
    assert len(said) == 2
    assert said[0].startswith("3 frame(s) in the last minute came after their window was written: "
                              "the feed lags unknown, windows wait 10.0s")
    assert said[1].startswith("6 frame(s) in the last minute")  # 9 - 3: the count of about the last minute
