"""The CPython floor: the tracker's pure core fed the same generated frames in-process.

    python -m bench core [--markets 200] [--messages 300000] [--seed 1] [--rate-hint 10000]
    python -m bench core --ab slippages [--rounds 8]

`--rate-hint` is the stream's messages a second (all markets): a depth sample is taken
once a second per market, so it sets how many messages share one. `--ab METHOD` is an
A/B of one sampling method in ONE process: the feed run alternately as it is and with
OrderBook.METHOD stubbed to take no walk, CPU time per message (process_time, best of
`--rounds`), so a shared machine's load hits both alike.

What the Durable Object does per message, minus workerd and Pyodide: `BookFeed.on_frame`
(parse, book, continuity, top of book into the `WindowAggregator`), with the windows
closed as the alarm would close them. Also timed on the same frames, to show where the
time goes: `json.loads` alone, `protocol.parse_frame` alone (JSON + validation + floats),
and the feed with a do-nothing aggregator (book + continuity, no window sums).
Where the tracker samples depth (issue 11), the cost of one depth sample
(`OrderBook.band_depths` on the run's final books) is timed on its own too, and
(issue 20) that of the slippage walk the same sample takes (`OrderBook.slippages`).
"""
from __future__ import annotations

import argparse
import gc
import json
import time

from tracker import protocol
from tracker.aggregator import WindowAggregator
from tracker.feed import BookFeed
from tracker.orderbook import OrderBook

from .stream import DEFAULT_RATE_HINT, Stream, generate

CONNECTED = '{"session_id":"bench","type":"connected"}'
CHUNK = 10_000  # frames between window closes (the alarm's job)


class _NullAggregator(WindowAggregator):
    def add_tick(self, market_id, ts, bid, bid_size, ask, ask_size):
        pass

    def invalidate(self, market_id, ts):
        pass


def _best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _feed_run(stream: Stream, frames: list[str], aggregator_cls, window_ms: int) -> tuple[float, BookFeed]:
    start = stream.base_ts_ms - stream.base_ts_ms % window_ms
    aggregator = aggregator_cls(window_ms, start)
    feed = BookFeed(stream.market_ids(), aggregator)
    feed.on_frame(CONNECTED)
    symbols = {s.market_id: s.symbol for s in stream.specs}
    on_frame = feed.on_frame
    n_snap = stream.markets
    t0 = time.perf_counter()
    for i in range(0, len(frames), CHUNK):
        for text in frames[i:i + CHUNK]:
            on_frame(text)
        # the alarm: close what ended (1.5 s grace) by the newest frame's exchange time
        position = max(0, i + CHUNK - n_snap)
        aggregator.close_until(stream.synthetic_ts(position) - 1_500, symbols)
    return time.perf_counter() - t0, feed


def measure(markets: int = 200, messages: int = 300_000, seed: int = 1, window_ms: int = 15_000,
            repeats: int = 3, stream: Stream | None = None) -> dict:
    if stream is None:
        stream = generate(markets, messages, seed=seed)
    frames = stream.text_frames(limit=messages)
    n = len(frames)
    mean_bytes = sum(map(len, frames)) / n

    def run_all(fn):
        def go():
            for f in frames:
                fn(f)
        return go

    t_json = _best_of(repeats, run_all(json.loads))
    t_parse = _best_of(repeats, run_all(protocol.parse_frame))

    full = []
    nulls = []
    feed = None
    for _ in range(repeats):
        gc.collect()
        dt, feed = _feed_run(stream, frames, WindowAggregator, window_ms)
        full.append(dt)
        gc.collect()
        dt, _ = _feed_run(stream, frames, _NullAggregator, window_ms)
        nulls.append(dt)
    t_full, t_null = min(full), min(nulls)
    c = feed.counters
    depth = _depth_sample_cost(feed, repeats)
    slippage = _sample_cost(feed, repeats, "slippages")
    us = lambda t: round(t / n * 1e6, 2)  # noqa: E731
    return {
        "frames": n,
        "markets": stream.markets,
        "mean_frame_bytes": round(mean_bytes, 1),
        "msgs_per_s": round(n / t_full),
        "us_per_msg": us(t_full),
        "breakdown_us_per_msg": {
            "json_loads": us(t_json),
            "parse_frame_total": us(t_parse),
            "parse_frame_beyond_json": us(t_parse - t_json),
            "book_and_continuity": us(t_null - t_parse),
            "aggregator": us(t_full - t_null),
        },
        "counters": {"messages": c.messages - 1, "snapshots": c.snapshots, "updates": c.updates,
                     "malformed": c.malformed, "gaps": c.gaps, "crossed": c.crossed,
                     "one_sided": c.one_sided, "depth_samples": getattr(c, "depth_samples", None)},
        "depth_sample": depth,
        "slippage_sample": slippage,
        "repeats": repeats,
    }


def _depth_sample_cost(feed: BookFeed, repeats: int) -> dict | None:
    """µs per OrderBook.band_depths call over the run's two-sided books (None before issue 11)."""
    return _sample_cost(feed, repeats, "band_depths")


def _sample_cost(feed: BookFeed, repeats: int, method: str) -> dict | None:
    """µs per call of OrderBook.<method> over the run's two-sided books (None when the
    tracker has no such method: before issue 11, or 20)."""
    books = [b for b in feed.books.values()
             if b.valid and b.bid_prices and b.ask_prices and b.bid_prices[-1] < b.ask_prices[0]]
    if not books or not hasattr(books[0], method):
        return None
    rounds = max(1, 20_000 // len(books))
    calls = [getattr(book, method) for book in books]

    def go():
        for _ in range(rounds):
            for call in calls:
                call()

    t = _best_of(repeats, go)
    levels = sum(len(b.bid_prices) + len(b.ask_prices) for b in books) / len(books)
    return {"us_per_sample": round(t / (rounds * len(books)) * 1e6, 3), "books": len(books),
            "mean_levels_per_book": round(levels, 1)}


_EMPTY = {"slippages": ([], []), "band_depths": [0.0] * 6}


def ab(method: str, markets: int, messages: int, seed: int, rate_hint: int, rounds: int) -> dict:
    """CPU µs per message of the feed run with and without OrderBook.<method> (see the module doc)."""
    stream = generate(markets, messages, seed=seed, rate_hint=rate_hint)
    frames = stream.text_frames(limit=messages)
    real = getattr(OrderBook, method)
    empty = _EMPTY[method]
    best = {"with": float("inf"), "without": float("inf")}
    samples = 0
    try:
        for _ in range(rounds):
            for name, fn in (("without", lambda self: empty), ("with", real)):
                setattr(OrderBook, method, fn)
                gc.collect()
                t0 = time.process_time()
                _, feed = _feed_run(stream, frames, WindowAggregator, 15_000)
                best[name] = min(best[name], time.process_time() - t0)
                samples = feed.counters.depth_samples
    finally:
        setattr(OrderBook, method, real)
    n = len(frames)
    return {
        "method": method, "frames": n, "samples": samples, "msgs_per_market_second": rate_hint // markets,
        "us_cpu_per_msg": {k: round(v / n * 1e6, 3) for k, v in best.items()},
        "msgs_per_s_with_over_without": round(best["without"] / best["with"], 3),
        "us_cpu_per_sample": round((best["with"] - best["without"]) / samples * 1e6, 2) if samples else None,
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench core")
    ap.add_argument("--markets", type=int, default=200)
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate-hint", type=int, default=DEFAULT_RATE_HINT, help="messages a second, all markets")
    ap.add_argument("--ab", choices=sorted(_EMPTY), help="A/B of one OrderBook sampling method (module doc)")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args(argv)
    if args.ab:
        print(json.dumps(ab(args.ab, args.markets, args.messages, args.seed, args.rate_hint, args.rounds), indent=2))
        return 0
    stream = generate(args.markets, args.messages, seed=args.seed, rate_hint=args.rate_hint)
    print(json.dumps(measure(args.markets, args.messages, args.seed, repeats=args.repeats, stream=stream), indent=2))
    return 0
