"""TrackerState: JSON persistence round trip, tolerance of other versions, record_lost."""

from __future__ import annotations

import json

import pytest

from tracker.state import Totals, TrackerState


def test_fresh_state_from_nothing():
    for text in (None, ""):
        state = TrackerState.from_json(text)
        assert state == TrackerState()
        assert not state.tracking and state.started_at is None and state.flushed_until == 0
        assert state.totals == Totals() and state.lost_ranges == []


def test_round_trip_keeps_everything():
    state = TrackerState(
        tracking=True,
        started_at=1_778_138_580_123,
        flushed_until=1_778_138_595_000,
        minutes_rolled_until=1_778_138_580_000,
        rollup_debts=[[3, 1_778_138_400_000, 1_778_138_460_000]],
        stale_hours=[[3, 1_778_137_200_000]],
        totals=Totals(messages=10**12, reconnects=3, gaps=2, malformed=1, late_frames=4, errors=5,
                      crossed=6, one_sided=7, flush_failures=8, windows_flushed=9, windows_lost=10, rows_written=11),
        lost_ranges=[{"from": 1, "to": 2}],
    )
    text = state.to_json()
    assert isinstance(json.loads(text), dict)
    again = TrackerState.from_json(text)
    assert again == state
    assert again.to_json() == text
    assert isinstance(again.totals, Totals)


def test_unknown_fields_from_a_newer_version_are_ignored_and_missing_ones_default():
    text = json.dumps({
        "tracking": True,
        "flushed_until": 15_000,
        "future_field": {"x": 1},
        "totals": {"messages": 7, "future_counter": 99},
    })
    state = TrackerState.from_json(text)
    assert state.tracking and state.flushed_until == 15_000
    assert state.totals == Totals(messages=7)
    assert state.minutes_rolled_until == 0 and state.lost_ranges == []


def test_state_without_totals():
    assert TrackerState.from_json('{"tracking": true}').totals == Totals()


def test_record_lost_counts_whole_windows_and_keeps_recent_ranges():
    state = TrackerState()
    assert state.record_lost(30_000, 90_000, 15_000) == 4
    assert state.totals.windows_lost == 4
    assert state.lost_ranges == [{"from": 30_000, "to": 90_000}]
    assert state.record_lost(90_000, 90_000, 15_000) == 0  # nothing lost
    assert state.record_lost(90_000, 60_000, 15_000) == 0  # clock went backwards
    assert state.totals.windows_lost == 4 and len(state.lost_ranges) == 1
    assert state.record_lost(0, 44_999, 15_000) == 2  # partial windows are not counted
    assert state.totals.windows_lost == 6


@pytest.mark.parametrize("keep", [1, 5, 20])
def test_record_lost_keeps_only_the_newest_ranges(keep):
    state = TrackerState()
    for i in range(30):
        state.record_lost(i * 100_000, i * 100_000 + 15_000, 15_000, keep=keep)
    assert len(state.lost_ranges) == keep
    assert state.lost_ranges[-1] == {"from": 29 * 100_000, "to": 29 * 100_000 + 15_000}
    assert state.lost_ranges[0]["from"] == (30 - keep) * 100_000
    assert state.totals.windows_lost == 30
    again = TrackerState.from_json(state.to_json())
    assert again.lost_ranges == state.lost_ranges and again.totals.windows_lost == 30


def test_a_dropped_connections_feed_counters_add_into_the_runs_totals() -> None:
    from tracker.feed import FeedCounters

    totals = Totals(messages=5, gaps=1, reconnects=2)
    counters = FeedCounters(messages=10, gaps=2, malformed=3, errors=4, crossed=5, one_sided=6,
                            future_frames=7, dropped_late=8, snapshots=9, updates=1, skipped=2)
    totals.add(counters)
    totals.add(counters)
    # every counter both name adds up; the feed's own (snapshots, updates, skipped) stay out
    assert totals == Totals(messages=25, gaps=5, malformed=6, errors=8, crossed=10, one_sided=12,
                            future_frames=14, dropped_late=16, reconnects=2)
def test_unrecord_lost_takes_back_only_the_ranges_just_recorded():
    state = TrackerState()
    state.record_lost(0, 15_000, 15_000)
    state.record_lost(15_000, 30_000, 15_000)
    mine = [state.lost_ranges[-1]]
    state.record_lost(30_000, 45_000, 15_000)  # recorded meanwhile by someone else
    state.unrecord_lost(mine, 15_000)
    assert state.lost_ranges == [{"from": 0, "to": 15_000}, {"from": 30_000, "to": 45_000}]
    assert state.totals.windows_lost == 2
    state.unrecord_lost(mine, 15_000)  # taken back once only
    assert state.totals.windows_lost == 2
