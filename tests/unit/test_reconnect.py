"""Backoff delays and jitter; the stale-feed watchdog."""

from __future__ import annotations

import random

import pytest

from tracker.reconnect import Backoff, FeedWatchdog


class FixedRandom(random.Random):
    """A Random whose random() is pinned (the jitter's extremes), everything else real."""

    def __init__(self, value: float):
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("base, cap", [(500, 60_000), (250, 30_000), (1, 7), (1_000, 1_000)])
def test_delays_stay_in_the_upper_half_of_a_doubling_ceiling(base, cap):
    backoff = Backoff(base_ms=base, cap_ms=cap, rng=random.Random(42))
    for attempt in range(40):
        ceiling = min(cap, base * 2**attempt)
        delay = backoff.next_delay_ms()
        assert ceiling // 2 <= delay <= ceiling, (attempt, delay)
        assert backoff.attempts == attempt + 1


def test_jitter_extremes():
    low = Backoff(base_ms=500, cap_ms=60_000, rng=FixedRandom(0.0))
    high = Backoff(base_ms=500, cap_ms=60_000, rng=FixedRandom(0.999999999))
    assert [low.next_delay_ms() for _ in range(10)] == [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    assert [high.next_delay_ms() for _ in range(10)] == [499, 999, 1_999, 3_999, 7_999, 15_999, 31_999, 59_999, 59_999, 59_999]


def test_jitter_spreads_delays_across_the_range():
    backoff = Backoff(base_ms=1_000, cap_ms=1_000, rng=random.Random(3))
    delays = [backoff.next_delay_ms() for _ in range(2_000)]
    assert min(delays) >= 500 and max(delays) <= 1_000
    assert min(delays) < 550 and max(delays) > 950  # both ends of the range are reached
    assert len(set(delays)) > 300  # not a handful of fixed values


def test_many_attempts_do_not_overflow_and_reset_starts_over():
    backoff = Backoff(base_ms=500, cap_ms=60_000, rng=FixedRandom(0.5))
    for _ in range(10_000):
        assert backoff.next_delay_ms() <= 60_000
    backoff.reset()
    assert backoff.attempts == 0 and backoff.next_delay_ms() == 375


def test_default_backoff_uses_its_own_randomness():
    delays = {Backoff().next_delay_ms() for _ in range(50)}
    assert all(250 <= d <= 500 for d in delays)


def test_watchdog_goes_stale_only_after_silence():
    dog = FeedWatchdog(stale_ms=30_000)
    dog.reset(message_count=0, now_ms=1_000)
    assert not dog.is_stale(0, 1_000)
    assert not dog.is_stale(0, 30_999)
    assert dog.silent_for_ms(30_999) == 29_999
    assert dog.is_stale(0, 31_000)
    # Any new message restarts the silence clock.
    assert not dog.is_stale(5, 40_000)
    assert dog.silent_for_ms(40_000) == 0
    assert not dog.is_stale(5, 69_999)
    assert dog.is_stale(5, 70_000)
    assert dog.silent_for_ms(69_000) == 29_000


def test_watchdog_first_check_without_reset_starts_the_clock():
    dog = FeedWatchdog(stale_ms=10_000)
    assert not dog.is_stale(0, 50_000)  # first look: the clock starts now
    assert not dog.is_stale(0, 59_999)
    assert dog.is_stale(0, 60_000)


def test_watchdog_counts_movement_not_direction():
    dog = FeedWatchdog(stale_ms=10_000)
    dog.reset(100, 0)
    assert not dog.is_stale(0, 20_000)  # a new connection restarted the counter: that is movement
    assert dog.is_stale(0, 30_000)
    assert dog.silent_for_ms(-5) == 0
