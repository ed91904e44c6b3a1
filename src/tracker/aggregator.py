"""The window aggregator: top-of-book ticks in, one row per market and window out.

Windows are aligned to WINDOW_SECONDS boundaries of the exchange's own message
`timestamp`, so what lands in a window depends only on the stream, never on when
the Worker processed it. A tick is a frame after which the market's book is valid
and two-sided; it contributes the best bid/ask as they stand after it.

Per market and window we keep running sums only (no per-tick lists), so memory is
bounded by markets x open windows, not by message rate or run time. Besides the
tick-weighted means we keep a time-weighted mid: each top of book weighted by how
long it stood within the window. Time during which the book was invalid, crossed
or one-sided is not covered (`covered_ms` says how much of the window was).

Depth samples (`add_sample`, at most one per market and exchange second, taken by
the feed) are summed separately from ticks: a window's depth columns are the means
of its samples. A sample always comes with a tick in the same window, so a row has
depth whenever it has samples; a row without any (none taken in that window) has
NULL depth columns and depth_samples 0 rather than invented zeros. A sample carries
the book's slippages too (OrderBook.slippages): a window's slippage at a size is the
mean over its samples that filled that size on both sides, counted per size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .orderbook import SLIPPAGE_SIZES
from .rows import SLIPPAGE_COLUMNS, WindowRow, imbalance

_SIZES = len(SLIPPAGE_SIZES)

# Windows are normally closed every window by the alarm; if alarms stop, this many
# open windows at most are kept before the oldest is given up (`given_up`: the shard
# records it lost, with its range).
MAX_OPEN_WINDOWS = 16


@dataclass(slots=True)
class ClosedWindow:
    start: int
    rows: list[WindowRow]


class _Acc:
    """Running sums for one market in one window."""

    __slots__ = (
        "ticks", "sum_bid", "sum_ask", "sum_spread", "sum_bps", "min_spread", "max_spread",
        "sum_bid_size", "sum_ask_size", "last_bid", "last_ask", "tw_sum", "covered",
        "samples", "depth_sums", "slip_sums", "fills",
    )

    def __init__(self) -> None:
        self.ticks = 0
        self.sum_bid = self.sum_ask = self.sum_spread = self.sum_bps = 0.0
        self.sum_bid_size = self.sum_ask_size = 0.0
        self.min_spread = float("inf")
        self.max_spread = float("-inf")
        self.last_bid = self.last_ask = 0.0
        self.tw_sum = 0.0
        self.covered = 0
        self.samples = 0
        self.depth_sums: list[float] | None = None  # bid/ask at 10, 50, 100 bps
        # Per size of SLIPPAGE_SIZES: buy and sell sums, and the samples that filled it.
        self.slip_sums: list[float] | None = None  # [buy_1k, sell_1k, buy_10k, ...]
        self.fills: list[int] | None = None

    def slippage_means(self) -> list[float | int | None]:
        """[slip_buy_1k, slip_sell_1k, fill_samples_1k, slip_buy_10k, ...] (rows.SLIPPAGE_COLUMNS)."""
        out: list[float | int | None] = []
        sums, fills = self.slip_sums, self.fills
        for k in range(_SIZES):
            n = fills[k] if fills is not None else 0
            if n:
                out += (sums[2 * k] / n, sums[2 * k + 1] / n, n)
            else:
                out += (None, None, 0)
        return out

    def depth_means(self) -> list[float | None]:
        if not self.samples:
            return [None] * 6
        n = self.samples
        return [total / n for total in self.depth_sums]

    def row(self, symbol: str, market_id: int, start: int, window_ms: int) -> WindowRow:
        n = self.ticks
        b10, a10, b50, a50, b100, a100 = self.depth_means()
        avg_bid = self.sum_bid / n
        avg_ask = self.sum_ask / n
        return WindowRow(
            symbol=symbol,
            market_index=market_id,
            timestamp=start,
            avg_bid=avg_bid,
            avg_ask=avg_ask,
            avg_spread=self.sum_spread / n,
            tick_count=n,
            avg_mid=(avg_bid + avg_ask) / 2,
            avg_spread_bps=self.sum_bps / n,
            min_spread=self.min_spread,
            max_spread=self.max_spread,
            avg_bid_size=self.sum_bid_size / n,
            avg_ask_size=self.sum_ask_size / n,
            last_bid=self.last_bid,
            last_ask=self.last_ask,
            twap_mid=self.tw_sum / self.covered if self.covered else None,
            covered_ms=self.covered,
            window_ms=window_ms,
            bid_depth_10=b10,
            ask_depth_10=a10,
            bid_depth_50=b50,
            ask_depth_50=a50,
            bid_depth_100=b100,
            ask_depth_100=a100,
            imbalance_50=imbalance(b50, a50),
            depth_samples=self.samples,
            **dict(zip(SLIPPAGE_COLUMNS, self.slippage_means(), strict=True)),
        )


class WindowAggregator:
    def __init__(self, window_ms: int, flushed_until: int = 0) -> None:
        self.window_ms = window_ms
        # Frames stamped before this (the end of the newest flushed window) are late.
        self.flushed_until = flushed_until
        # The first window this aggregator measures: a late frame from here on belongs to
        # a window it closed (it arrived after its window's end was written).
        self.measured_from = flushed_until
        self.late_frames = 0
        self.dropped_windows = 0  # windows given up, in all
        # Starts of windows given up and not yet recorded lost (the shard takes them).
        self.given_up: list[int] = []
        self._windows: dict[int, dict[int, _Acc]] = {}
        # market -> [since_ms, mid]: the top of book standing since `since_ms`,
        # whose time has not yet been credited to a window.
        self._standing: dict[int, list] = {}
        # market -> how far its time was credited when its top of book was invalidated.
        # A tick stamped before that (a Paradex snapshot is stamped with the book's last
        # change, which can precede the frame that ended the previous book) starts its
        # mid there, so no time is credited twice.
        self._credited: dict[int, int] = {}
        self._cur_start = -1
        self._cur_end = -1
        self._cur: dict[int, _Acc] = {}
        # market -> exchange second (timestamp // 1000) of its latest depth sample. Kept
        # here, not in the feed, so the one-sample-per-second rule holds across reconnects.
        self.sample_seconds: dict[int, int] = {}

    # -- ingest (hot path) -------------------------------------------------

    def add_tick(self, market_id: int, ts: int, bid: float, bid_size: float, ask: float, ask_size: float) -> bool | None:
        """Add one tick. True when it came too late for a window this aggregator closed
        (None otherwise, a tick before its first window included)."""
        mid = (bid + ask) * 0.5
        if ts < self.flushed_until:
            # Its window is already in D1: count it, never merge it silently.
            self.late_frames += 1
            self._restart_standing(market_id, mid)
            return ts >= self.measured_from
        if not self._cur_start <= ts < self._cur_end:
            self._switch_window(ts)
        accs = self._cur
        acc = accs.get(market_id)
        if acc is None:
            acc = accs[market_id] = _Acc()
        spread = ask - bid
        acc.ticks += 1
        acc.sum_bid += bid
        acc.sum_ask += ask
        acc.sum_spread += spread
        acc.sum_bps += spread / mid * 10_000.0
        if spread < acc.min_spread:
            acc.min_spread = spread
        if spread > acc.max_spread:
            acc.max_spread = spread
        acc.sum_bid_size += bid_size
        acc.sum_ask_size += ask_size
        acc.last_bid = bid
        acc.last_ask = ask

        standing = self._standing.get(market_id)
        if standing is None:
            credited = self._credited.get(market_id, ts)
            self._standing[market_id] = [credited if credited > ts else ts, mid]
            return
        since = standing[0]
        if ts > since:
            if since >= self._cur_start:  # the common case: all within this window
                elapsed = ts - since
                acc.tw_sum += standing[1] * elapsed
                acc.covered += elapsed
            else:
                self._credit(market_id, standing, ts)
            standing[0] = ts
        standing[1] = mid

    def add_sample(self, market_id: int, ts: int, depths: list[float],
                   slippages: tuple[list[float], list[float]]) -> None:
        """One sample of a frame stamped `ts`: its book's depths (OrderBook.band_depths)
        and slippages (OrderBook.slippages: buy and sell at each size both sides fill)."""
        if ts < self.flushed_until:
            return  # its window is in D1; the frame's tick was counted late already
        if not self._cur_start <= ts < self._cur_end:
            self._switch_window(ts)
        acc = self._cur.get(market_id)
        if acc is None:
            acc = self._cur[market_id] = _Acc()
        sums = acc.depth_sums
        if sums is None:
            acc.depth_sums = list(depths)
        else:
            for i, value in enumerate(depths):
                sums[i] += value
        acc.samples += 1
        buy, sell = slippages
        if buy:
            slip_sums = acc.slip_sums
            fills = acc.fills
            if slip_sums is None:
                slip_sums = acc.slip_sums = [0.0] * (2 * _SIZES)
                fills = acc.fills = [0] * _SIZES
            for k in range(len(buy)):
                slip_sums[2 * k] += buy[k]
                slip_sums[2 * k + 1] += sell[k]
                fills[k] += 1

    def invalidate(self, market_id: int, ts: int) -> None:
        """The market's top of book stops being valid at `ts` (gap, crossed, one side empty)."""
        standing = self._standing.pop(market_id, None)
        if standing is not None:  # its time is credited up to ts (or its since, if later)
            self._credited[market_id] = max(ts, standing[0], self._credited.get(market_id, ts))
        if standing is not None and ts > standing[0] and ts >= self.flushed_until:
            # The time up to `ts` is credited to ts's window even when the market has
            # not ticked there yet (it may later in that window): make sure it has an
            # accumulator there (no row comes of it unless a tick follows).
            if not self._cur_start <= ts < self._cur_end:
                self._switch_window(ts)
            if market_id not in self._cur:
                self._cur[market_id] = _Acc()
            self._credit(market_id, standing, ts)

    # -- closing windows (the alarm) ---------------------------------------

    def close_until(self, boundary_ms: int, symbols: Mapping[int, str]) -> list[ClosedWindow]:
        """Close every window that ends at or before `boundary_ms`, oldest first."""
        boundary_ms -= boundary_ms % self.window_ms
        closed = [
            self._close(start, start + self.window_ms, symbols)
            for start in sorted(self._windows)
            if start + self.window_ms <= boundary_ms
        ]
        if boundary_ms > self.flushed_until:
            self.flushed_until = boundary_ms
            for standing in self._standing.values():
                if standing[0] < boundary_ms:
                    standing[0] = boundary_ms
        return closed

    def close_all(self, now_ms: int, symbols: Mapping[int, str]) -> list[ClosedWindow]:
        """Close every window, the current partial one too (tracking stops)."""
        closed = []
        for start in sorted(self._windows):
            end = start + self.window_ms
            closed.append(self._close(start, min(end, max(now_ms, start)), symbols))
            self.flushed_until = max(self.flushed_until, end)
        self._standing.clear()
        self._credited.clear()
        return closed

    # -- introspection -------------------------------------------------------

    @property
    def current_window_start(self) -> int | None:
        return self._cur_start if self._cur_start >= 0 and self._cur_start in self._windows else None

    def current_markets(self) -> int:
        if self.current_window_start is None:
            return 0
        # Markets invalidated here before ticking have an (empty) accumulator too.
        return sum(1 for acc in self._cur.values() if acc.ticks)

    def open_windows(self) -> int:
        return len(self._windows)

    # -- internals -------------------------------------------------------------

    def _switch_window(self, ts: int) -> None:
        start = ts - ts % self.window_ms
        accs = self._windows.get(start)
        if accs is None:
            accs = self._windows[start] = {}
            while len(self._windows) > MAX_OPEN_WINDOWS:
                self._give_up(min(self._windows))
        self._cur_start, self._cur_end, self._cur = start, start + self.window_ms, accs

    def _give_up(self, start: int) -> None:
        """Alarms have not closed windows for a while: drop the oldest open one. It is
        closed for good, like a flushed one (frames stamped in it from now on are late),
        and lost: `given_up` holds it until the shard records its range."""
        del self._windows[start]
        self.dropped_windows += 1
        self.given_up.append(start)
        if start + self.window_ms > self.flushed_until:
            self.flushed_until = start + self.window_ms

    def _restart_standing(self, market_id: int, mid: float) -> None:
        standing = self._standing.get(market_id)
        if standing is None:
            self._standing[market_id] = [max(self.flushed_until, self._credited.get(market_id, 0)), mid]
        else:
            standing[1] = mid

    def _credit(self, market_id: int, standing: list, until: int) -> None:
        """Credit the standing mid's time [since, until) to the windows it spans, those
        where the market has not ticked (yet) included: a tick can still land there (a
        Paradex snapshot is stamped with its book's last change, often in an earlier
        window), and its row must then cover the time the old mid stood. A window gets
        a row only if the market ticks in it."""
        since, mid = standing
        window_ms = self.window_ms
        start = max(since, self.flushed_until)
        while start < until:
            window_start = start - start % window_ms
            end = min(until, window_start + window_ms)
            accs = self._windows.get(window_start)
            if accs is None and len(self._windows) < MAX_OPEN_WINDOWS:
                accs = self._windows[window_start] = {}
            if accs is not None:
                acc = accs.get(market_id)
                if acc is None:
                    acc = accs[market_id] = _Acc()
                acc.tw_sum += mid * (end - start)
                acc.covered += end - start
            start = end

    def _close(self, start: int, cut: int, symbols: Mapping[int, str]) -> ClosedWindow:
        accs = self._windows.pop(start)
        for market_id, standing in self._standing.items():
            if standing[0] < cut:
                acc = accs.get(market_id)
                since = max(standing[0], start)
                if acc is not None and cut > since:
                    acc.tw_sum += standing[1] * (cut - since)
                    acc.covered += cut - since
                standing[0] = cut
        if start == self._cur_start:
            self._cur_start = self._cur_end = -1
            self._cur = {}
        rows = [
            acc.row(symbols.get(market_id, str(market_id)), market_id, start, self.window_ms)
            for market_id, acc in accs.items()
            if acc.ticks
        ]
        return ClosedWindow(start=start, rows=rows)
