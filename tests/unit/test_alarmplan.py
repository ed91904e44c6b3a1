"""The alarm plan: the earliest thing due wins, D1's owed work comes at its own pace
(busy, backing off, draining, rolling), never closer than MIN_AHEAD_MS; and the
writer writes the alarm only when it moves."""

from __future__ import annotations

import asyncio

import pytest

from tracker.alarmplan import (
    DRAIN_EVERY_MS,
    MIN_AHEAD_MS,
    RETRY_BASE_MS,
    RETRY_CAP_MS,
    ROLLUP_RETRY_MS,
    AlarmPlan,
    AlarmWriter,
    next_window_close,
    retry_backoff,
)

NOW = 1_000_005_000  # a multiple of 15 s


def test_nothing_due_means_no_alarm():
    assert AlarmPlan(NOW).at() is None


def test_the_earliest_due_time_wins():
    plan = AlarmPlan(NOW, window_close_at=NOW + 9_000, feed_due=NOW + 4_000, markets_due=NOW + 60_000)
    assert plan.at() == NOW + 4_000
    assert AlarmPlan(NOW, window_close_at=NOW + 9_000, save_ahead=True).at() == NOW + MIN_AHEAD_MS


def test_an_alarm_is_never_set_in_the_past_or_closer_than_the_minimum():
    assert AlarmPlan(NOW, feed_due=NOW - 5_000).at() == NOW + MIN_AHEAD_MS
    assert AlarmPlan(NOW, feed_due=NOW + MIN_AHEAD_MS + 1).at() == NOW + MIN_AHEAD_MS + 1


def test_d1_work_is_due_only_when_owed():
    assert AlarmPlan(NOW, outbox_windows=3, d1_failures=2).at() is None
    assert AlarmPlan(NOW, d1_owed=True, outbox_windows=3).at() == NOW + DRAIN_EVERY_MS


@pytest.mark.parametrize("plan, after", [
    # a busy lane sets the alarm again when it ends; this one is for an eviction meanwhile
    (dict(d1_busy=True, d1_deadline_ms=35_000, d1_failures=3, outbox_windows=2), 35_000),
    (dict(d1_failures=1, outbox_windows=2), RETRY_BASE_MS),  # backing off beats draining
    (dict(d1_failures=3, rollup_pending=True), 4 * RETRY_BASE_MS),
    (dict(outbox_windows=2, rollup_pending=True), DRAIN_EVERY_MS),
    (dict(rollup_pending=True), ROLLUP_RETRY_MS),
    (dict(), RETRY_BASE_MS),  # only a stopped shard's stats row
])
def test_what_d1_owes_comes_at_its_pace(plan, after):
    assert AlarmPlan(NOW, d1_owed=True, **plan).at() == NOW + after
    # a sooner window close still comes first
    assert AlarmPlan(NOW, d1_owed=True, window_close_at=NOW + 100, **plan).at() == NOW + 100


def test_the_backoff_doubles_up_to_its_cap():
    assert [retry_backoff(n) for n in range(7)] == [2_000, 2_000, 4_000, 8_000, 16_000, RETRY_CAP_MS, RETRY_CAP_MS]
    assert retry_backoff(10_000) == RETRY_CAP_MS


def test_the_next_window_closes_after_the_one_closed_last_not_after_now():
    window = 15_000
    # closed up to NOW: the window [NOW, NOW + 15 s) closes 15 s + the wait later
    assert next_window_close(NOW, window, 2_000, 0) == NOW + window + 2_000
    # closed mid-window (a stop, a resume): that window's end counts
    assert next_window_close(NOW + 4_000, window, 2_000, 0) == NOW + window + 2_000
    # a close held back for a backlog: not again before its recheck
    assert next_window_close(NOW, window, 2_000, NOW + 30_000) == NOW + 30_000


class Storage:
    def __init__(self, fail: bool = False) -> None:
        self.writes: list = []
        self.fail = fail

    async def set_alarm(self, at: int) -> None:
        self.writes.append(at)
        if self.fail:
            raise OSError("storage refused")

    async def delete_alarm(self) -> None:
        self.writes.append("delete")


def test_the_writer_skips_a_write_that_leaves_the_alarm_as_it_is():
    async def scenario():
        storage = Storage()
        writer = AlarmWriter(storage)
        for at in (NOW, NOW, None, None, NOW):
            await writer.write(at)
        writer.forget()  # the runtime ran the alarm: written again even if the same
        await writer.write(NOW)
        return storage.writes

    assert asyncio.run(scenario()) == [NOW, "delete", NOW, NOW]


def test_a_failed_write_leaves_the_alarm_unknown_so_the_next_one_writes():
    async def scenario():
        storage = Storage(fail=True)
        writer = AlarmWriter(storage)
        with pytest.raises(OSError):
            await writer.write(NOW)
        storage.fail = False
        await writer.write(NOW)
        return storage.writes

    assert asyncio.run(scenario()) == [NOW, NOW]
