"""WindowAggregator against the naive reference (tests/reference_model.expected_windows)."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tracker import aggregator as aggregator_module
from tracker.aggregator import MAX_OPEN_WINDOWS, WindowAggregator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

T0 = 1_778_138_580_000  # a multiple of every window length used here
SYMBOLS = {0: "ETH", 1: "BTC", 4095: "ETH-T", 50000: "FUTURE/USDC"}
MARKETS = sorted(SYMBOLS) + [7]  # 7 has no symbol: rows name it "7"


class Driver:
    """Feeds the aggregator and records the same events for the reference."""

    def __init__(self, window_ms: int, flushed_until: int = 0):
        self.agg = WindowAggregator(window_ms, flushed_until=flushed_until)
        self.window_ms = window_ms
        self.events: list[ref.Event] = []
        self.closed: list = []

    def tick(self, market, ts, bid, bid_size, ask, ask_size):
        self.agg.add_tick(market, ts, bid, bid_size, ask, ask_size)
        self.events.append(ref.Event(market, ts, "tick", bid, bid_size, ask, ask_size))

    def invalid(self, market, ts):
        self.agg.invalidate(market, ts)
        self.events.append(ref.Event(market, ts, "invalid"))

    def close_until(self, boundary):
        flushed_before = self.agg.flushed_until
        closed = self.agg.close_until(boundary, SYMBOLS)
        self.events.append(ref.Event(0, boundary, "flush"))
        floor = boundary - boundary % self.window_ms
        assert self.agg.flushed_until == max(flushed_before, floor)
        for window in closed:
            assert window.start + self.window_ms <= floor
        self._take(closed)
        return closed

    def close_all(self, now):
        closed = self.agg.close_all(now, SYMBOLS)
        self._take(closed)
        assert self.agg.open_windows() == 0 and self.agg.current_window_start is None
        return closed

    def _take(self, closed):
        starts = [w.start for w in closed]
        assert starts == sorted(starts), "windows must close oldest first"
        for window in closed:
            for row in window.rows:
                assert row.timestamp == window.start
                assert row.window_ms == self.window_ms
                assert row.symbol == SYMBOLS.get(row.market_index, str(row.market_index))
        self.closed.extend(closed)

    def rows(self) -> dict[tuple[int, int], dict]:
        out = {}
        for window in self.closed:
            for row in window.rows:
                key = (row.market_index, row.timestamp)
                assert key not in out, f"window {key} emitted twice"
                out[key] = dataclasses.asdict(row)
        return out

    def check(self, *, close_at=None, flushed_until=0):
        got = self.rows()
        expected = ref.replay(self.events, self.window_ms, flushed_until=flushed_until, close_at=close_at)
        assert sorted(got) == sorted(expected.windows)
        for key, row in expected.windows.items():
            assert ref.row_mismatches(got[key], row) == [], key
        assert self.agg.late_frames == expected.late_ticks
        return got


def test_example_by_hand_through_the_reference():
    d = Driver(15_000)
    d.tick(0, T0 + 1_000, 99.0, 2.0, 101.0, 4.0)
    d.tick(0, T0 + 5_000, 100.0, 6.0, 104.0, 8.0)
    d.tick(1, T0 + 14_999, 10.0, 1.0, 10.5, 1.0)
    d.tick(1, T0 + 15_000, 10.0, 1.0, 11.0, 1.0)  # exactly on the boundary: next window
    assert d.agg.current_window_start == T0 + 15_000
    d.close_until(T0 + 15_000)
    rows = d.rows()
    first = rows[(0, T0)]
    assert first["tick_count"] == 2 and first["avg_mid"] == pytest.approx(101.0)
    assert first["covered_ms"] == 14_000
    assert first["twap_mid"] == pytest.approx((100 * 4_000 + 102 * 10_000) / 14_000)
    assert rows[(1, T0)]["covered_ms"] == 1 and rows[(1, T0)]["twap_mid"] == pytest.approx(10.25)
    assert (1, T0 + 15_000) not in rows  # still open
    d.close_all(T0 + 20_000)
    d.check(close_at=T0 + 20_000)
    assert d.rows()[(1, T0 + 15_000)]["covered_ms"] == 5_000


def test_invalidation_before_the_market_ticks_in_a_window_still_covers_that_window():
    """The top of book standing until an invalidation in the next window counts there,
    even when the market's first tick in that window comes after the invalidation."""
    d = Driver(15_000)
    d.tick(0, T0 + 10_000, 99.0, 1.0, 101.0, 1.0)  # mid 100
    d.invalid(0, T0 + 20_000)  # the book goes one-sided: 100 stood 15 s..20 s
    d.tick(0, T0 + 25_000, 199.0, 1.0, 201.0, 1.0)  # mid 200 from 25 s
    d.close_all(T0 + 30_000)
    row = d.check(close_at=T0 + 30_000)[(0, T0 + 15_000)]
    assert row["covered_ms"] == 10_000
    assert row["twap_mid"] == pytest.approx(150.0)


def test_a_tick_stamped_before_the_invalidation_that_ended_its_market_credits_nothing_twice():
    """Paradex stamps a snapshot with its book's last change, which can precede the
    frame that ended the previous book (a reconnect ends every book at the newest frame
    of any market). The old mid's time is credited up to that end; the new mid stands
    from there, not from its earlier stamp: covered_ms never exceeds the window."""
    d = Driver(15_000)
    d.tick(0, T0 + 1_000, 99.0, 1.0, 101.0, 1.0)  # mid 100 from 1 s
    d.invalid(0, T0 + 9_000)  # the connection drops at another market's newest frame
    d.tick(0, T0 + 4_000, 199.0, 1.0, 201.0, 1.0)  # the new snapshot, stamped 4 s: mid 200 from 9 s
    d.close_all(T0 + 15_000)
    row = d.check(close_at=T0 + 15_000)[(0, T0)]
    assert row["covered_ms"] == 14_000  # 1..9 s at 100, 9..15 s at 200
    assert row["twap_mid"] == pytest.approx((100 * 8_000 + 200 * 6_000) / 14_000)


def test_invalidation_in_a_window_nobody_has_ticked_in_yet():
    d = Driver(1_000)
    d.tick(0, T0 + 500, 9.0, 1.0, 11.0, 1.0)
    d.invalid(0, T0 + 2_300)  # no window for 2 s..3 s exists yet
    d.tick(0, T0 + 2_600, 19.0, 1.0, 21.0, 1.0)
    d.close_all(T0 + 3_000)
    row = d.check(close_at=T0 + 3_000)[(0, T0 + 2_000)]
    assert row["covered_ms"] == 300 + 400
    assert row["twap_mid"] == pytest.approx((10 * 300 + 20 * 400) / 700)


def test_multiple_windows_closed_at_once_and_late_frames():
    d = Driver(1_000)
    for i in range(3):
        d.tick(0, T0 + i * 1_000 + 100, 10.0 + i, 1.0, 12.0 + i, 1.0)  # mids 11, 12, 13
    closed = d.close_until(T0 + 3_999)  # floors to +3000: windows 0, 1, 2 at once
    assert [w.start for w in closed] == [T0, T0 + 1_000, T0 + 2_000]
    assert d.agg.open_windows() == 0 and d.agg.flushed_until == T0 + 3_000
    # Late: stamped in windows already written; counted, never merged.
    d.tick(0, T0 + 2_999, 50.0, 1.0, 52.0, 1.0)
    d.tick(1, T0 + 100, 50.0, 1.0, 52.0, 1.0)
    assert d.agg.late_frames == 2 and d.agg.open_windows() == 0
    assert d.close_until(T0 + 3_000) == []  # nothing new to close
    d.tick(0, T0 + 3_100, 13.0, 1.0, 15.0, 1.0)  # mid 14
    d.tick(0, T0 + 4_100, 14.0, 1.0, 16.0, 1.0)
    d.close_all(T0 + 4_500)
    rows = d.check(close_at=T0 + 4_500)
    assert [k for k in rows if k[0] == 1] == []
    assert rows[(0, T0 + 2_000)]["tick_count"] == 1 and rows[(0, T0 + 2_000)]["last_bid"] == 12.0
    assert rows[(0, T0 + 3_000)]["tick_count"] == 1
    # The late tick's mid (51) stands from the flush at +3000 until the next tick at +3100.
    assert rows[(0, T0 + 3_000)]["twap_mid"] == pytest.approx((51 * 100 + 14 * 900) / 1_000)


def test_close_all_cuts_the_partial_window_at_now():
    d = Driver(15_000)
    d.tick(0, T0 + 1_000, 1.0, 1.0, 3.0, 1.0)
    d.tick(0, T0 + 16_000, 3.0, 1.0, 5.0, 1.0)
    d.close_all(T0 + 20_000)
    rows = d.check(close_at=T0 + 20_000)
    assert rows[(0, T0)]["covered_ms"] == 14_000
    assert rows[(0, T0 + 15_000)]["covered_ms"] == 1_000 + 4_000
    assert d.agg.flushed_until == T0 + 30_000  # the partial window is written: later frames are late


def test_close_all_before_the_window_starts_covers_nothing_of_it():
    d = Driver(15_000)
    d.tick(0, T0 + 16_000, 3.0, 1.0, 5.0, 1.0)  # the exchange clock runs ahead of ours
    d.close_all(T0 + 14_000)
    row = d.check(close_at=T0 + 14_000)[(0, T0 + 15_000)]
    assert row["covered_ms"] == 0 and row["twap_mid"] is None and row["tick_count"] == 1


def test_initial_flushed_until_makes_older_frames_late():
    d = Driver(15_000, flushed_until=T0 + 15_000)
    d.tick(0, T0 + 14_000, 1.0, 1.0, 3.0, 1.0)
    d.tick(0, T0 + 15_000, 3.0, 1.0, 5.0, 1.0)
    d.close_all(T0 + 30_000)
    rows = d.check(close_at=T0 + 30_000, flushed_until=T0 + 15_000)
    assert list(rows) == [(0, T0 + 15_000)] and d.agg.late_frames == 1


# -- the property test ----------------------------------------------------------------

ops = st.lists(
    st.one_of(
        # (kind, market, time step, jitter back in time, bid, spread, bid size, ask size)
        st.tuples(
            st.just("tick"),
            st.sampled_from(MARKETS),
            st.sampled_from([0, 0, 1, 7, 250, 499, 500, 999, 1_000, 2_000, 3_000]),
            st.sampled_from([0, 0, 0, 1, 300, 1_000, 2_500]),
            st.integers(min_value=1, max_value=100_000).map(lambda n: n / 100),
            st.integers(min_value=1, max_value=500).map(lambda n: n / 1000),
            st.integers(min_value=1, max_value=10_000).map(lambda n: n / 10),
            st.integers(min_value=1, max_value=10_000).map(lambda n: n / 10),
        ),
        st.tuples(st.just("boundary_tick"), st.sampled_from(MARKETS), st.integers(1, 100).map(float)),
        st.tuples(st.just("invalid"), st.sampled_from(MARKETS), st.sampled_from([0, 1, 300, 1_000])),
        st.tuples(st.just("out_of_order"), st.sampled_from(MARKETS), st.integers(0, 10**6), st.integers(1, 100).map(float)),
        st.tuples(st.just("flush"), st.sampled_from([-3_000, -1_500, -1_000, -1, 0, 1, 1_000])),
    ),
    min_size=10,
    max_size=150,
)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    window_ms=st.sampled_from([1_000, 2_000]),
    program=ops,
    final=st.sampled_from([-2_500, -1, 0, 1, 700, 5_000]),
)
def test_random_streams_match_the_reference(window_ms, program, final):
    d = Driver(window_ms)
    now = T0
    clock: dict[int, int] = {}  # per market: newest timestamp fed (ticks and invalidations)
    for op in program:
        kind, market = op[0], op[1]
        if kind == "flush":
            if len(d.close_until(now + op[1])) > 1:
                event("several windows closed at once")
            continue
        if kind == "tick":
            _, _, step, jitter, bid, spread, bid_size, ask_size = op
            now += step
            # Markets interleave out of order (jitter); one market's own stamps never go back.
            ts = max(clock.get(market, 0), now - jitter)
            d.tick(market, ts, bid, bid_size, round(bid + spread, 6), ask_size)
        elif kind == "boundary_tick":  # exactly on the next window boundary
            now += window_ms - now % window_ms
            ts = max(clock.get(market, 0), now)
            d.tick(market, ts, op[2], 1.0, op[2] + 0.5, 2.0)
        elif kind == "invalid":
            ts = max(clock.get(market, 0), now - op[2])
            d.invalid(market, ts)
        else:  # out of order for this market, but within its newest, still open window
            last = clock.get(market)
            if last is None:
                continue
            low = max(last - last % window_ms, d.agg.flushed_until)
            if low > last:
                continue
            ts = low + op[2] % (last - low + 1)
            d.tick(market, ts, op[3], 3.0, op[3] + 0.25, 4.0)
            event("out-of-order tick within a market" if ts < last else "repeated timestamp")
            continue  # the market's clock does not move
        clock[market] = ts
        # The alarm: keep open windows well under the cap.
        if now - d.agg.flushed_until > 8 * window_ms:
            d.close_until(now - 2 * window_ms)
        assert d.agg.open_windows() <= MAX_OPEN_WINDOWS
    close_at = now + final
    d.close_all(close_at)
    rows = d.check(close_at=close_at)
    if d.agg.late_frames:
        event("late frames")
    if any(row["twap_mid"] is None for row in rows.values()):
        event("a row without covered time")
    if any(0 < row["covered_ms"] < window_ms for row in rows.values()):
        event("a partly covered window")
    assert d.agg.dropped_windows == 0


# -- memory ---------------------------------------------------------------------------


def _accumulators(agg: WindowAggregator) -> int:
    return sum(len(accs) for accs in agg._windows.values())


def test_memory_is_bounded_by_markets_times_open_windows():
    rng = random.Random(7)
    markets = list(range(40))
    agg = WindowAggregator(1_000)
    ts = T0
    peak_windows = 0
    for i in range(20_000):
        ts += rng.choice((0, 1, 5, 20))
        market = rng.choice(markets)
        if rng.random() < 0.05:
            agg.invalidate(market, ts)
        else:
            bid = 100 + rng.random()
            agg.add_tick(market, ts - rng.choice((0, 0, 300)), bid, 1.0, bid + 0.01, 1.0)
        if i % 500 == 0:
            agg.close_until(ts - 1_500, {})
        peak_windows = max(peak_windows, agg.open_windows())
        assert agg.open_windows() <= MAX_OPEN_WINDOWS
        assert _accumulators(agg) <= len(markets) * agg.open_windows()
        assert len(agg._standing) <= len(markets)
    assert peak_windows > 1  # the stream did span several windows
    agg.close_all(ts, {})
    assert agg.open_windows() == 0 and _accumulators(agg) == 0 and not agg._standing


def test_open_windows_are_capped_without_closes_and_drops_are_counted():
    agg = WindowAggregator(1_000)
    for i in range(100):
        for market in range(3):
            agg.add_tick(market, T0 + i * 1_000 + market, 10.0, 1.0, 11.0, 1.0)
        assert agg.open_windows() <= MAX_OPEN_WINDOWS
        assert _accumulators(agg) <= 3 * MAX_OPEN_WINDOWS
    assert agg.open_windows() == MAX_OPEN_WINDOWS
    assert agg.dropped_windows == 100 - MAX_OPEN_WINDOWS
    # Each is given up with its start (the shard records its range lost), and closed for good.
    assert agg.given_up == [T0 + i * 1_000 for i in range(100 - MAX_OPEN_WINDOWS)]
    assert agg.flushed_until == T0 + (100 - MAX_OPEN_WINDOWS) * 1_000
    late = agg.late_frames
    agg.add_tick(0, T0 + 3_500, 10.0, 1.0, 11.0, 1.0)  # a frame of a window given up is late
    assert agg.late_frames == late + 1 and agg.open_windows() == MAX_OPEN_WINDOWS
    closed = agg.close_all(T0 + 100_000, {})
    # The newest MAX_OPEN_WINDOWS windows survive, complete.
    assert [w.start for w in closed] == [T0 + i * 1_000 for i in range(100 - MAX_OPEN_WINDOWS, 100)]
    assert all(len(w.rows) == 3 for w in closed)


def test_max_open_windows_is_the_documented_constant():
    assert aggregator_module.MAX_OPEN_WINDOWS == MAX_OPEN_WINDOWS >= 2


def test_introspection():
    agg = WindowAggregator(15_000)
    assert agg.current_window_start is None and agg.current_markets() == 0
    agg.add_tick(3, T0 + 1, 1.0, 1.0, 2.0, 1.0)
    agg.add_tick(4, T0 + 2, 1.0, 1.0, 2.0, 1.0)
    assert agg.current_window_start == T0 and agg.current_markets() == 2 and agg.open_windows() == 1
    agg.invalidate(3, T0 + 3)
    agg.add_tick(5, T0 + 4, 1.0, 1.0, 2.0, 1.0)
    agg.invalidate(5, T0 + 5)  # 5 ticked before: still counted
    agg.invalidate(4, T0 + 15_001)  # a new window, nobody ticked there yet
    assert agg.current_window_start == T0 + 15_000 and agg.current_markets() == 0
    agg.add_tick(4, T0 + 15_002, 1.0, 1.0, 2.0, 1.0)
    assert agg.current_markets() == 1 and agg.open_windows() == 2
    closed = agg.close_until(T0 + 15_000, {})
    assert [len(w.rows) for w in closed] == [3]
    assert agg.current_window_start == T0 + 15_000
    agg.close_until(T0 + 30_000, {})
    assert agg.current_window_start is None and agg.current_markets() == 0
